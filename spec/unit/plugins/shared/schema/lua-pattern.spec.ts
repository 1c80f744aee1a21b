import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../../helpers/labelled'
import { luaPattern } from '../../../../../plugins/shared/schema/lua-pattern'

/** [pattern, accepted, refused]: what Lua's string.find(s, pattern) finds, or not. */
const CASES: readonly (readonly [string, readonly string[], readonly string[]])[] = [
  // The patterns of our schemas.
  ['^[^%s]+$', ['jwt-revocation:', 'a:b', 'é'], ['', 'a b', 'a\tb', ' a', 'a\n']],
  ['^https?://', ['https://idp', 'http://idp'], ['file:///etc', 'HTTPS://idp', ' https://idp']],
  ['^[%w%-]+$', ['X-Sub-1', 'a'], ['X Sub', 'X_Sub', 'X.Sub', '']],
  ['^[^%s]+:%d+$', ['n1:7000', '[::1]:26379', '10.0.0.1:6379'], ['n1', 'n1:', 'n1:x', 'n 1:70']],
  // Classes, complements, quantifiers, anchors and escapes.
  ['^%a%l%u%d%x$', ['abC9f'], ['abc9f', '1bC9f']],
  ['^%S+$', ['abc'], ['a c']],
  ['^%W$', ['-', ' '], ['a', '7']],
  ['^%p$', ['!', '/', ':', '@', '[', '`', '{', '~'], ['a', ' ']],
  ['^a.c$', ['abc', 'a c', 'a\nc'], ['ac', 'abbc']],
  ['^ab?c$', ['ac', 'abc'], ['abbc']],
  ['^ab*c$', ['ac', 'abbbc'], ['adc']],
  ['^a-b$', ['b', 'aaab'], ['ac']],
  ['^%.%-%%$', ['.-%'], ['a-%', '.a%']],
  ['[a-c]x', ['zzbx', 'ax'], ['dx', 'x']],
  ['^[]a]+$', [']a]'], ['b']],
  ['^[^]a]$', ['b'], [']', 'a']],
  ['x$', ['ax'], ['xa']],
  ['a$b', ['a$b'], ['ab']],
  ['^{1}|/$', ['{1}|/'], ['1']],
]

describe('Lua patterns: (Kong `match`, applied by the config reader)', () => {
  it.each(CASES)('%s finds what Lua finds', (pattern, accepted, refused) => {
    const re = luaPattern(pattern)
    for (const s of accepted) labelled(re.test(s), `${pattern} on ${JSON.stringify(s)}`).toBe(true)
    for (const s of refused) labelled(re.test(s), `${pattern} on ${JSON.stringify(s)}`).toBe(false)
  })

  it.each([
    ['(%d+)', 'a capture'],
    ['%b()', '%b'],
    ['%f[%w]', '%f'],
    ['(a)%1', 'a capture'],
    ['[%S]', '%S inside a set'],
    ['[abc', 'an unclosed ['],
    ['abc%', 'a trailing %'],
  ])('refuses %s rather than match it wrongly', (pattern, what) => {
    expect(() => luaPattern(pattern)).toThrow(`${what} is not supported`)
  })

  it('compiles a pattern once', () => {
    expect(luaPattern('^[%w%-]+$')).toBe(luaPattern('^[%w%-]+$'))
  })
})
