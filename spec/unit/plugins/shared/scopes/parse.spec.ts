import { describe, expect, it } from '@jest/globals'
import {
  claimAt,
  DEFAULT_SCOPE_CLAIMS,
  readScopes,
} from '../../../../../plugins/shared/scopes/parse'

describe('scopes: (parse)', () => {
  it('reads scope and scp by default', () => {
    expect(DEFAULT_SCOPE_CLAIMS).toEqual(['scope', 'scp'])
    expect(readScopes({ scope: 'a b', scp: ['c'] })).toEqual(new Set(['a', 'b', 'c']))
  })

  it('splits a space-delimited scope string and ignores extra whitespace', () => {
    expect(readScopes({ scope: '  orders:read \t orders:write\n' })).toEqual(
      new Set(['orders:read', 'orders:write']),
    )
    expect(readScopes({ scope: '' })).toEqual(new Set())
  })

  it('accepts scp as an array or as a string', () => {
    expect(readScopes({ scp: ['a', 'b'] })).toEqual(new Set(['a', 'b']))
    expect(readScopes({ scp: 'a b' })).toEqual(new Set(['a', 'b']))
  })

  it('ignores values that are not strings and array entries with whitespace', () => {
    expect(readScopes({ scope: 42, scp: ['ok', 7, null, '', 'has space', { a: 1 }] })).toEqual(
      new Set(['ok']),
    )
    expect(readScopes({ scope: ['not', 'a', 'string'] }, ['scope'])).toEqual(
      new Set(['not', 'a', 'string']),
    )
  })

  it('reads nested claims through a dotted path', () => {
    const claims = { realm_access: { roles: ['admin', 'user'] } }
    expect(readScopes(claims, ['realm_access.roles'])).toEqual(new Set(['admin', 'user']))
    expect(claimAt(claims, 'realm_access.missing')).toBeUndefined()
    expect(claimAt({ a: ['x'] }, 'a.0')).toBeUndefined()
  })

  it('prefers a top-level claim whose name contains a dot', () => {
    expect(claimAt({ 'a.b': 'flat', a: { b: 'nested' } }, 'a.b')).toBe('flat')
  })

  it('does not walk into inherited properties', () => {
    expect(claimAt({}, 'constructor')).toBeUndefined()
    expect(claimAt({ a: {} }, 'a.toString')).toBeUndefined()
  })

  it('reads only the configured claims', () => {
    expect(readScopes({ scope: 'a', scp: ['b'] }, ['scp'])).toEqual(new Set(['b']))
  })
})
