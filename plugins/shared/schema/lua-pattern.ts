/**
 * Kong's `match` field attribute is a Lua pattern (Lua 5.1 manual §5.4.1); the config reader
 * applies the same pattern to what it reads, so the pattern is written once, in the field.
 *
 * Translated: anchors `^` and `$`, `.`, the classes `%a %c %d %l %p %s %u %w %x` (ASCII, as Lua
 * in the C locale) and their upper-case complements, `%` before any other punctuation (a
 * literal), sets `[...]` (with `^`, ranges and lower-case classes), and the quantifiers
 * `* + ? -`. Captures, `%b`, `%f` and back-references are refused: a field using them needs this
 * file extended, and the refusal says so at the first read rather than matching wrongly.
 */
const CLASSES: Readonly<Record<string, string>> = {
  a: 'A-Za-z',
  c: '\\x00-\\x1f\\x7f',
  d: '0-9',
  l: 'a-z',
  p: '!-\\/:-@\\[-`{-~',
  s: '\\t\\n\\v\\f\\r ',
  u: 'A-Z',
  w: 'A-Za-z0-9',
  x: '0-9A-Fa-f',
}

const REGEXP_SPECIAL = /[\\^$.*+?()[\]{}|/-]/

function literal(char: string): string {
  return REGEXP_SPECIAL.test(char) ? `\\${char}` : char
}

function unsupported(pattern: string, what: string): Error {
  return new Error(`Lua pattern ${JSON.stringify(pattern)}: ${what} is not supported`)
}

/** `%x` at `pattern[i]` (the `%`), as a set body (inside) or a whole atom (outside). */
function escape(pattern: string, i: number, inSet: boolean): string {
  const c = pattern[i + 1]
  if (c === undefined) throw unsupported(pattern, 'a trailing %')
  const body = CLASSES[c.toLowerCase()]
  if (body !== undefined) {
    const complement = c !== c.toLowerCase()
    if (inSet) {
      if (complement) throw unsupported(pattern, `%${c} inside a set`)
      return body
    }
    return complement ? `[^${body}]` : `[${body}]`
  }
  if (/[A-Za-z0-9]/.test(c)) throw unsupported(pattern, `%${c}`)
  return literal(c)
}

/** The set starting at `pattern[start]` (the `[`): its RegExp and the index after its `]`. */
function set(pattern: string, start: number): [string, number] {
  let i = start + 1
  let out = '['
  if (pattern[i] === '^') {
    out += '^'
    i++
  }
  // A `]` right after `[` or `[^` is a literal in Lua.
  let first = true
  for (;;) {
    const c = pattern[i]
    if (c === undefined) throw unsupported(pattern, 'an unclosed [')
    if (c === ']' && !first) return [`${out}]`, i + 1]
    first = false
    if (c === '%') {
      out += escape(pattern, i, true)
      i += 2
    } else if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      out += `${literal(c)}-${literal(pattern[i + 2] as string)}`
      i += 3
    } else {
      out += literal(c)
      i++
    }
  }
}

function translate(pattern: string): RegExp {
  let out = ''
  let i = 0
  if (pattern.startsWith('^')) {
    out += '^'
    i = 1
  }
  while (i < pattern.length) {
    const c = pattern[i] as string
    let atom: string
    if (c === '$' && i === pattern.length - 1) {
      out += '$'
      break
    } else if (c === '%') {
      atom = escape(pattern, i, false)
      i += 2
    } else if (c === '[') {
      ;[atom, i] = set(pattern, i)
    } else if (c === '.') {
      atom = '[\\s\\S]'
      i++
    } else if (c === '(' || c === ')') {
      throw unsupported(pattern, 'a capture')
    } else {
      atom = literal(c)
      i++
    }
    const q = pattern[i]
    if (q === '*' || q === '+' || q === '?') {
      atom += q
      i++
    } else if (q === '-') {
      atom += '*?'
      i++
    }
    out += atom
  }
  return new RegExp(out)
}

const compiled = new Map<string, RegExp>()

/** The RegExp that finds what Lua's `string.find(s, pattern)` finds. */
export function luaPattern(pattern: string): RegExp {
  let re = compiled.get(pattern)
  if (re === undefined) {
    re = translate(pattern)
    compiled.set(pattern, re)
  }
  return re
}
