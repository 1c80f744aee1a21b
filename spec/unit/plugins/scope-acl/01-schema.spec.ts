import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../helpers/labelled'
import { isPluginError } from '../../../../plugins/shared/errors'
import { fields, parseConfig, Schema } from '../../../../plugins/scope-acl/schema'
import type { KongField } from '../../../../plugins/shared/schema/kong-fields'

/** A config as Kong sends it: every default filled, an unset record as null, Kong's own keys. */
const valid = {
  rules: [
    { methods: ['GET', 'HEAD'], scopes: ['orders:read'], match: 'all', log_only: false },
    { methods: ['POST', 'PUT', 'PATCH'], scopes: ['orders:write'], match: 'all', log_only: false },
    { methods: ['DELETE'], scopes: ['orders:admin', 'ops'], match: 'any', log_only: true },
  ],
  default_rule: null,
  allow_unlisted_methods: false,
  routes: [],
  scope_claims: ['scope', 'scp'],
  wildcard_suffix: false,
  publish_groups: false,
  realm: 'kong',
  service_id: '5f0c2f3e-0000-4000-8000-000000000001',
  __key__: 'plugins:scope-acl::::',
  __seq__: 1,
}

function refusal(raw: unknown): { code: string; message: string } {
  try {
    parseConfig(raw)
  } catch (error) {
    if (isPluginError(error)) return { code: error.code, message: error.message }
    throw error
  }
  throw new Error('parseConfig accepted the config')
}

describe('scope-acl: (schema)', () => {
  it('accepts a valid config and returns it frozen', () => {
    const config = parseConfig(valid)
    expect(config.rules).toHaveLength(3)
    expect(config.rules[2]).toEqual({
      methods: ['DELETE'],
      scopes: ['orders:admin', 'ops'],
      match: 'any',
      log_only: true,
    })
    expect(config.default_rule).toBeNull()
    expect(config.scope_claims).toEqual(['scope', 'scp'])
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.rules[0])).toBe(true)
  })

  it('fills the documented defaults when a field is absent', () => {
    const config = parseConfig({ rules: [{ methods: ['GET'], scopes: ['a'] }] })
    expect(config).toEqual({
      rules: [{ methods: ['GET'], scopes: ['a'], match: 'all', log_only: false }],
      default_rule: null,
      log_refusals: 'summary',
      allow_unlisted_methods: false,
      routes: [],
      scope_claims: ['scope', 'scp'],
      wildcard_suffix: false,
      publish_groups: false,
      realm: 'kong',
    })
  })

  it('reads a default_rule Kong filled with defaults but no scopes as no default rule', () => {
    expect(
      parseConfig({ ...valid, default_rule: { scopes: null, match: 'all', log_only: false } })
        .default_rule,
    ).toBeNull()
    expect(
      parseConfig({ ...valid, default_rule: { scopes: ['x'], match: 'any', log_only: false } })
        .default_rule,
    ).toEqual({
      scopes: ['x'],
      match: 'any',
      log_only: false,
    })
  })

  it('refuses a method listed by two rules (ambiguous), naming the rule', () => {
    const r = refusal({ ...valid, rules: [...valid.rules, { methods: ['GET'], scopes: ['x'] }] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules[3].methods')
    expect(r.message).toContain('GET is already listed by rules[0]')
  })

  it('refuses default_rule together with allow_unlisted_methods', () => {
    const r = refusal({ ...valid, default_rule: { scopes: ['x'] }, allow_unlisted_methods: true })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('allow_unlisted_methods')
  })

  it('refuses a config that would refuse every request', () => {
    const r = refusal({ ...valid, rules: [] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules:')
  })

  it('refuses a * in a required scope when wildcard_suffix is false', () => {
    const r = refusal({
      ...valid,
      rules: [{ methods: ['GET'], scopes: ['orders:read', 'orders:*'] }],
    })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules[0].scopes[1]')
    expect(r.message).toContain('wildcard_suffix is false')
  })

  it('accepts a trailing * when wildcard_suffix is true', () => {
    const config = parseConfig({
      ...valid,
      wildcard_suffix: true,
      rules: [{ methods: ['GET'], scopes: ['orders:*'] }],
    })
    expect(config.rules[0]?.scopes).toEqual(['orders:*'])
  })

  it('refuses a * that is not the last character', () => {
    const r = refusal({
      ...valid,
      wildcard_suffix: true,
      rules: [{ methods: ['GET'], scopes: ['orders:*:read'] }],
    })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules[0].scopes[0]')
  })

  it('refuses a bare * even with wildcard_suffix', () => {
    const r = refusal({ ...valid, wildcard_suffix: true, default_rule: { scopes: ['*'] } })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('default_rule.scopes[0]')
  })

  it('refuses a scope that is not an RFC 6749 scope token', () => {
    const r = refusal({ ...valid, rules: [{ methods: ['GET'], scopes: ['orders read'] }] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules[0].scopes[0]')
  })

  it('refuses a rule without scopes', () => {
    const r = refusal({ ...valid, rules: [{ methods: ['GET'], scopes: [] }] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules[0].scopes')
  })

  it('refuses a rule without methods or with an unknown method', () => {
    expect(refusal({ ...valid, rules: [{ methods: [], scopes: ['a'] }] }).message).toContain(
      'rules[0].methods',
    )
    const r = refusal({ ...valid, rules: [{ methods: ['GTE'], scopes: ['a'] }] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('unknown method GTE')
  })

  it('refuses an unknown match mode', () => {
    const r = refusal({ ...valid, rules: [{ methods: ['GET'], scopes: ['a'], match: 'some' }] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('rules[0].match')
  })

  it('refuses two routes entries for the same route', () => {
    const entry = { route: 'orders', rules: [{ methods: ['GET'], scopes: ['a'] }] }
    const r = refusal({ ...valid, routes: [entry, entry] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('routes[1].route')
  })

  it('checks the rules of a routes entry like top-level rules', () => {
    const r = refusal({
      ...valid,
      routes: [{ route: 'orders', rules: [{ methods: ['GET'], scopes: [] }] }],
    })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('routes[0].rules[0].scopes')
  })

  it('refuses routes entries on a plugin bound to one route', () => {
    const r = refusal({
      ...valid,
      route_id: '5f0c2f3e-0000-4000-8000-000000000002',
      routes: [{ route: 'orders', rules: [{ methods: ['GET'], scopes: ['a'] }] }],
    })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('routes:')
  })

  it('refuses a scope claim path with an empty segment', () => {
    const r = refusal({ ...valid, scope_claims: ['scope', 'realm_access..roles'] })
    expect(r.code).toBe('ERR_CONFIG_INVALID')
    expect(r.message).toContain('scope_claims[1]')
  })

  it('refuses fields of the wrong type, naming them', () => {
    expect(refusal(null).message).toContain('config')
    expect(refusal({ ...valid, publish_groups: 'yes' }).message).toContain('publish_groups')
    expect(refusal({ ...valid, realm: '' }).message).toContain('realm')
    expect(refusal({ ...valid, rules: {} }).message).toContain('rules')
    expect(refusal({ ...valid, routes: [{ rules: [] }] }).message).toContain('routes[0].route')
  })

  it('gives every Kong field, nested ones included, a description of 10 to 500 characters', () => {
    const check = (name: string, field: KongField): void => {
      labelled(field.description.length, name).toBeGreaterThanOrEqual(10)
      labelled(field.description.length, name).toBeLessThanOrEqual(500)
      const nested =
        field.type === 'record'
          ? field.fields
          : field.type === 'array' || field.type === 'set'
            ? field.elements.type === 'record'
              ? field.elements.fields
              : []
            : []
      for (const entry of nested)
        for (const [sub, f] of Object.entries(entry)) check(`${name}.${sub}`, f)
    }
    for (const [name, field] of Object.entries(fields)) check(name, field)
  })

  it('exports the Kong schema as a list of single-field records in declaration order', () => {
    expect(Schema.map((entry) => Object.keys(entry)[0])).toEqual([
      'rules',
      'default_rule',
      'allow_unlisted_methods',
      'routes',
      'scope_claims',
      'wildcard_suffix',
      'publish_groups',
      'realm',
      'log_refusals',
    ])
  })
})
