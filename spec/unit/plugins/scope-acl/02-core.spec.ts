import { describe, expect, it } from '@jest/globals'
import {
  authorize,
  compilePolicy,
  groupsOf,
  policyForRoute,
  requirementFor,
  type Policy,
  type Requirement,
} from '../../../../plugins/scope-acl/core'
import { parseConfig } from '../../../../plugins/scope-acl/schema'

const ORDERS = {
  rules: [
    { methods: ['GET', 'HEAD'], scopes: ['orders:read'] },
    { methods: ['POST', 'PUT', 'PATCH'], scopes: ['orders:write'] },
    { methods: ['DELETE'], scopes: ['orders:admin'] },
  ],
}

const policyOf = (raw: Record<string, unknown>): Policy => compilePolicy(parseConfig(raw))

function decide(
  raw: Record<string, unknown>,
  method: string,
  claims: Record<string, unknown> | undefined,
) {
  const policy = policyOf(raw)
  return authorize(requirementFor(policy.top, method), claims, policy, method)
}

describe('scope-acl: (core)', () => {
  it('allows GET with orders:read and refuses it without, naming the needed scope', () => {
    expect(decide(ORDERS, 'GET', { scope: 'orders:read' })).toEqual({ allowed: true })
    const verdict = decide(ORDERS, 'GET', { scope: 'orders:write' })
    expect(verdict.allowed).toBe(false)
    if (verdict.allowed) return
    expect(verdict.logOnly).toBe(false)
    expect(verdict.error.code).toBe('ERR_SCOPE_INSUFFICIENT')
    expect(verdict.error.status).toBe(403)
    expect(verdict.error.challenge).toEqual({ scope: 'orders:read' })
    expect(verdict.error.detail).toContain('missing [orders:read]')
  })

  it('applies the rule of the request method', () => {
    const writer = { scope: 'orders:write' }
    expect(decide(ORDERS, 'POST', writer).allowed).toBe(true)
    expect(decide(ORDERS, 'PATCH', writer).allowed).toBe(true)
    expect(decide(ORDERS, 'DELETE', writer).allowed).toBe(false)
    expect(decide(ORDERS, 'delete', { scope: 'orders:admin' }).allowed).toBe(true)
  })

  it('refuses a missing token with 401 ERR_SCOPE_CONTEXT_MISSING, never 403', () => {
    const verdict = decide(ORDERS, 'GET', undefined)
    expect(verdict.allowed).toBe(false)
    if (verdict.allowed) return
    expect(verdict.error.code).toBe('ERR_SCOPE_CONTEXT_MISSING')
    expect(verdict.error.status).toBe(401)
  })

  it('refuses a method no rule lists with 403 and no scope to ask for (deny by default)', () => {
    const verdict = decide(ORDERS, 'OPTIONS', { scope: 'orders:read orders:write orders:admin' })
    expect(verdict.allowed).toBe(false)
    if (verdict.allowed) return
    expect(verdict.error.code).toBe('ERR_SCOPE_INSUFFICIENT')
    expect(verdict.error.challenge).toBeUndefined()
    expect(decide(ORDERS, 'OPTIONS', undefined)).toMatchObject({
      allowed: false,
      error: { code: 'ERR_SCOPE_CONTEXT_MISSING' },
    })
  })

  it('applies default_rule to unlisted methods', () => {
    const raw = { ...ORDERS, default_rule: { scopes: ['orders:other'] } }
    expect(decide(raw, 'OPTIONS', { scope: 'orders:other' }).allowed).toBe(true)
    expect(decide(raw, 'OPTIONS', { scope: 'orders:read' })).toMatchObject({
      allowed: false,
      error: { challenge: { scope: 'orders:other' } },
    })
  })

  it('lets unlisted methods through without a token when allow_unlisted_methods is set', () => {
    expect(decide({ ...ORDERS, allow_unlisted_methods: true }, 'OPTIONS', undefined)).toEqual({
      allowed: true,
    })
  })

  it('with match all needs every scope; with match any one of them', () => {
    const all = { rules: [{ methods: ['GET'], scopes: ['a', 'b'], match: 'all' }] }
    const any = { rules: [{ methods: ['GET'], scopes: ['a', 'b'], match: 'any' }] }
    expect(decide(all, 'GET', { scope: 'a' })).toMatchObject({
      allowed: false,
      error: { challenge: { scope: 'a b' } },
    })
    expect(decide(all, 'GET', { scope: 'b a' }).allowed).toBe(true)
    expect(decide(any, 'GET', { scope: 'b' }).allowed).toBe(true)
    expect(decide(any, 'GET', { scope: 'c' })).toMatchObject({
      allowed: false,
      error: { challenge: { scope: 'a b' } },
    })
  })

  it('matches exact scope tokens only: admin never matches superadmin', () => {
    const raw = { rules: [{ methods: ['GET'], scopes: ['admin'] }] }
    expect(decide(raw, 'GET', { scope: 'superadmin' }).allowed).toBe(false)
    expect(decide(raw, 'GET', { scope: 'admin-lite' }).allowed).toBe(false)
    expect(decide(raw, 'GET', { scp: ['Admin'] }).allowed).toBe(false)
  })

  it('expands orders:* only when wildcard_suffix is configured', () => {
    const raw = { wildcard_suffix: true, rules: [{ methods: ['GET'], scopes: ['orders:*'] }] }
    expect(decide(raw, 'GET', { scope: 'orders:read' }).allowed).toBe(true)
    expect(decide(raw, 'GET', { scope: 'invoices:read' }).allowed).toBe(false)
    // Without the flag a configured * is refused at parse time (01-schema); granted scopes are never patterns.
    expect(
      decide({ rules: [{ methods: ['GET'], scopes: ['orders:read'] }] }, 'GET', {
        scope: 'orders:*',
      }).allowed,
    ).toBe(false)
  })

  it('reads scp as an array or a string, and scope and scp together', () => {
    const raw = { rules: [{ methods: ['GET'], scopes: ['a', 'b'] }] }
    expect(decide(raw, 'GET', { scp: ['a', 'b'] }).allowed).toBe(true)
    expect(decide(raw, 'GET', { scp: 'a b' }).allowed).toBe(true)
    expect(decide(raw, 'GET', { scope: 'a', scp: ['b'] }).allowed).toBe(true)
  })

  it('reads a nested claim path and only the configured claims', () => {
    const raw = {
      scope_claims: ['realm_access.roles'],
      rules: [{ methods: ['GET'], scopes: ['admin'] }],
    }
    expect(decide(raw, 'GET', { realm_access: { roles: ['user', 'admin'] } }).allowed).toBe(true)
    expect(decide(raw, 'GET', { scope: 'admin' }).allowed).toBe(false)
  })

  it('marks a refusal by a log-only rule as log-only, and a missing token under it too', () => {
    const raw = { rules: [{ methods: ['GET'], scopes: ['a'], log_only: true }] }
    expect(decide(raw, 'GET', { scope: 'b' })).toMatchObject({
      allowed: false,
      logOnly: true,
      error: { code: 'ERR_SCOPE_INSUFFICIENT' },
    })
    expect(decide(raw, 'GET', undefined)).toMatchObject({
      allowed: false,
      logOnly: true,
      error: { code: 'ERR_SCOPE_CONTEXT_MISSING' },
    })
    expect(decide(raw, 'GET', { scope: 'a' })).toEqual({ allowed: true })
  })

  it('never treats a deny-by-default refusal as log-only', () => {
    const raw = { rules: [{ methods: ['GET'], scopes: ['a'], log_only: true }] }
    expect(decide(raw, 'POST', { scope: 'a' })).toMatchObject({ allowed: false, logOnly: false })
  })

  it('knows whether the rules depend on the method', () => {
    expect(policyOf(ORDERS).top.dependsOnMethod).toBe(true)
    expect(policyOf({ default_rule: { scopes: ['a'] } }).top.dependsOnMethod).toBe(false)
    expect(policyOf({ allow_unlisted_methods: true }).top.dependsOnMethod).toBe(false)
    // Every rule asks what the default asks: the method cannot change the outcome.
    expect(
      policyOf({ rules: [{ methods: ['GET'], scopes: ['a'] }], default_rule: { scopes: ['a'] } })
        .top.dependsOnMethod,
    ).toBe(false)
    expect(
      policyOf({
        rules: [{ methods: ['GET'], scopes: ['a'] }],
        default_rule: { scopes: ['a'], match: 'any', log_only: true },
      }).top.dependsOnMethod,
    ).toBe(true)
  })

  it('gives an unknown or unread method the unlisted requirement', () => {
    const top = policyOf({ ...ORDERS, default_rule: { scopes: ['x'] } }).top
    const expected: Requirement = { kind: 'scopes', scopes: ['x'], match: 'all', logOnly: false }
    expect(requirementFor(top, 'PROPFIND')).toEqual(expected)
    expect(requirementFor(top, undefined)).toEqual(expected)
  })

  it('picks a routes entry by route name, then id, else the top-level rules', () => {
    const policy = policyOf({
      ...ORDERS,
      routes: [
        { route: 'partner-orders', rules: [{ methods: ['GET'], scopes: ['partner:read'] }] },
        {
          route: '7d0a3a4e-0000-4000-8000-000000000003',
          rules: [{ methods: ['GET'], scopes: ['by-id'] }],
        },
      ],
    })
    const scopesFor = (route: { id: string; name?: string | null } | undefined) => {
      const r = requirementFor(policyForRoute(policy, route), 'GET')
      return r.kind === 'scopes' ? r.scopes : r.kind
    }
    expect(scopesFor({ id: 'x', name: 'partner-orders' })).toEqual(['partner:read'])
    expect(scopesFor({ id: '7d0a3a4e-0000-4000-8000-000000000003', name: null })).toEqual(['by-id'])
    expect(scopesFor({ id: 'other', name: 'other' })).toEqual(['orders:read'])
    expect(scopesFor(undefined)).toEqual(['orders:read'])
    // A routes entry replaces the top-level rules for its route: DELETE is unlisted there.
    expect(
      requirementFor(policyForRoute(policy, { id: 'x', name: 'partner-orders' }), 'DELETE'),
    ).toEqual({ kind: 'deny' })
  })

  it('publishes the token scopes as sorted groups from the configured claims', () => {
    expect(groupsOf({ scope: 'orders:write orders:read', scp: ['a'] }, ['scope', 'scp'])).toEqual([
      'a',
      'orders:read',
      'orders:write',
    ])
    expect(groupsOf({ scope: 'x' }, ['scp'])).toEqual([])
  })
})
