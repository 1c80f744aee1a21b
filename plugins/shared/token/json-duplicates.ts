/**
 * RFC 7515 §5.2 and RFC 7519 §4 let a parser reject a JOSE header or claims set holding the
 * same member name twice, or keep the last one. `JSON.parse` keeps the last; a service behind
 * Kong that decodes the token again with a first-wins parser would then read another `sub` or
 * `scope` than the one we checked. So a duplicate is refused instead.
 *
 * Scans text that is already known to be valid JSON (jose has parsed it) and returns the first
 * member name found twice in one object, compared after unescaping (`"\u0069ss"` is `"iss"`).
 */
export function findDuplicateKey(json: string): string | undefined {
  // One entry per open container: the names seen so far in an object, null for an array.
  const stack: (Set<string> | null)[] = []
  let expectKey = false
  for (let i = 0; i < json.length; i++) {
    const c = json[i]
    if (c === '"') {
      const end = endOfString(json, i)
      const top = stack[stack.length - 1]
      if (expectKey && top) {
        const name = JSON.parse(json.slice(i, end + 1)) as string
        if (top.has(name)) return name
        top.add(name)
        expectKey = false
      }
      i = end
    } else if (c === '{') {
      stack.push(new Set())
      expectKey = true
    } else if (c === '[') {
      stack.push(null)
    } else if (c === '}' || c === ']') {
      stack.pop()
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] instanceof Set
    }
  }
  return undefined
}

/** Index of the quote closing the string that opens at `start`. */
function endOfString(json: string, start: number): number {
  for (let i = start + 1; i < json.length; i++) {
    const c = json[i]
    if (c === '\\') i++
    else if (c === '"') return i
  }
  return json.length - 1
}
