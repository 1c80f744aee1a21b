import { describe, expect, it } from '@jest/globals'
import { grants, isWildcard, matchScopes } from '../../../../../plugins/shared/scopes/match'

const set = (...s: string[]) => new Set(s)

describe('scopes: (match)', () => {
  it('grants a scope only on an exact, case-sensitive match', () => {
    expect(grants(set('admin'), 'admin', false)).toBe(true)
    expect(grants(set('superadmin'), 'admin', false)).toBe(false)
    expect(grants(set('admin'), 'superadmin', false)).toBe(false)
    expect(grants(set('Admin'), 'admin', false)).toBe(false)
    expect(grants(set('orders:read:all'), 'orders:read', false)).toBe(false)
  })

  it('treats a required orders:* literally when wildcard_suffix is off', () => {
    expect(grants(set('orders:read'), 'orders:*', false)).toBe(false)
    expect(grants(set('orders:*'), 'orders:*', false)).toBe(true)
  })

  it('matches a required orders:* against any granted scope with that prefix when on', () => {
    expect(grants(set('orders:read'), 'orders:*', true)).toBe(true)
    expect(grants(set('orders:'), 'orders:*', true)).toBe(false)
    expect(grants(set('orders'), 'orders:*', true)).toBe(false)
    expect(grants(set('invoices:read'), 'orders:*', true)).toBe(false)
  })

  it('never treats a granted scope as a pattern', () => {
    expect(grants(set('orders:*'), 'orders:read', true)).toBe(false)
    expect(grants(set('*'), 'admin', true)).toBe(false)
  })

  it('does not treat a bare * as a wildcard', () => {
    expect(isWildcard('*')).toBe(false)
    expect(grants(set('anything'), '*', true)).toBe(false)
  })

  it('with match all, needs every required scope and reports the missing ones', () => {
    expect(matchScopes(set('a', 'b'), ['a', 'b'], { match: 'all', wildcardSuffix: false })).toEqual(
      {
        satisfied: true,
        missing: [],
      },
    )
    expect(matchScopes(set('a'), ['a', 'b', 'c'], { match: 'all', wildcardSuffix: false })).toEqual(
      {
        satisfied: false,
        missing: ['b', 'c'],
      },
    )
  })

  it('with match any, needs one required scope', () => {
    expect(
      matchScopes(set('b'), ['a', 'b'], { match: 'any', wildcardSuffix: false }).satisfied,
    ).toBe(true)
    expect(matchScopes(set('c'), ['a', 'b'], { match: 'any', wildcardSuffix: false })).toEqual({
      satisfied: false,
      missing: ['a', 'b'],
    })
    expect(matchScopes(set(), ['a'], { match: 'any', wildcardSuffix: false }).satisfied).toBe(false)
  })

  it('is satisfied by an empty requirement in either mode', () => {
    expect(matchScopes(set(), [], { match: 'any', wildcardSuffix: false }).satisfied).toBe(true)
    expect(matchScopes(set(), [], { match: 'all', wildcardSuffix: false }).satisfied).toBe(true)
  })
})
