import { describe, expect, it } from '@jest/globals'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { explainRequest, type Explanation } from '../../../cli/policy/explain'
import { loadPolicy, parsePolicy } from '../../../cli/policy/load'
import { BAD_KONG_YML, cli, KONG_YML } from './policy-helpers'

const policy = loadPolicy(KONG_YML)

function explain(consumer: string, method: string, path: string, scopes?: string[]): Explanation {
  return explainRequest(policy, { consumer, method, path, ...(scopes ? { scopes } : {}) })
}

describe('explain on kong.yml', () => {
  it('allows web-app to read orders: the orders-read route, consumer-jwt then acl, orders:read needed', () => {
    const e = explain('web-app', 'GET', '/orders/42')
    expect(e.route?.name).toBe('orders-read')
    expect(e.route?.where).toBe('services[0].routes[0]')
    expect(e.steps.map((s) => [s.plugin, s.priority, s.bound, s.outcome])).toEqual([
      ['consumer-jwt', 1450, 'route', 'passed'],
      ['acl', 950, 'global', 'passed'],
    ])
    expect(e.required).toEqual({ scopes: ['orders:read'], match: 'all', by: 'consumer-jwt' })
    expect(e.verdict).toMatchObject({ status: 200, code: undefined })
    expect(e.verdict.reason).toBe(
      'proxied to service orders as GET /orders/42, consumer web-app authenticated',
    )
  })

  it('refuses partner-acme a DELETE with 403 ERR_SCOPE_INSUFFICIENT: it needs orders:admin', () => {
    const e = explain('partner-acme', 'DELETE', '/orders/1')
    expect(e.route?.name).toBe('orders-admin')
    expect(e.request.scopes).toEqual(['catalog:read', 'orders:read'])
    expect(e.request.scopesFrom).toBe('ceiling')
    expect(e.required?.scopes).toEqual(['orders:admin'])
    expect(e.verdict).toEqual({
      status: 403,
      code: 'ERR_SCOPE_INSUFFICIENT',
      message: 'Insufficient scope',
      reason: 'DELETE needs all of [orders:admin], missing [orders:admin]',
      by: 'consumer-jwt',
    })
    expect(e.steps.map((s) => s.outcome)).toEqual(['refused', 'not reached'])
  })

  it('refuses a token above the consumer ceiling with 401 ERR_SCOPE_CEILING_EXCEEDED, before any scope rule', () => {
    const e = explain('partner-acme', 'DELETE', '/orders/1', ['orders:admin'])
    expect(e.request.scopesFrom).toBe('option')
    expect(e.required).toBeUndefined()
    expect(e.verdict).toMatchObject({
      status: 401,
      code: 'ERR_SCOPE_CEILING_EXCEEDED',
      reason: 'consumer partner-acme may not hold orders:admin',
    })
  })

  it('refuses mobile-app, whose ceiling lacks orders:admin, the DELETE route', () => {
    const e = explain('mobile-app', 'DELETE', '/orders/7')
    expect(e.verdict).toMatchObject({ status: 403, code: 'ERR_SCOPE_INSUFFICIENT' })
  })

  it('allows partner-globex to read the catalog with the scopes given', () => {
    const e = explain('partner-globex', 'GET', '/catalog/items', ['catalog:read'])
    expect(e.route?.name).toBe('catalog-read')
    expect(e.verdict.status).toBe(200)
  })

  it("answers Kong's 404 when no route matches, before any plugin", () => {
    const e = explain('web-app', 'GET', '/nowhere')
    expect(e.route).toBeUndefined()
    expect(e.steps).toEqual([])
    expect(e.verdict).toMatchObject({
      status: 404,
      code: undefined,
      message: 'no Route matched with those values',
      by: 'router',
    })
  })

  it('a method no /orders route lists is a 404 as well', () => {
    expect(explain('web-app', 'OPTIONS', '/orders').verdict.status).toBe(404)
  })

  it('lets anyone through the public /status as the anonymous consumer public', () => {
    const e = explain('partner-acme', 'GET', '/status')
    expect(e.route?.name).toBe('public-status')
    expect(e.steps.map((s) => [s.plugin, s.priority, s.outcome])).toEqual([
      ['key-auth', 1250, 'passed'],
      ['acl', 950, 'passed'],
    ])
    expect(e.steps[0]?.notes).toEqual([
      'partner-acme has no keyauth_credentials: authenticates the anonymous consumer public',
    ])
    expect(e.verdict.reason).toContain('consumer public authenticated')
  })
})

describe('explain on a file with a refused config', () => {
  const text = `_format_version: "3.0"
services:
  - name: s
    url: http://s/
    routes:
      - name: r
        paths: [/r]
        plugins:
          - name: consumer-jwt
            config:
              claims_to_headers: [{ claim: sub, header: X-Consumer-ID }]
              credentials:
                - { key: k, consumer: c, algorithms: [HS256], secret_env: K }
consumers:
  - username: c
`

  it('answers 500 ERR_CONFIG_INVALID where the plugin would refuse its config', () => {
    const e = explainRequest(parsePolicy(text, 'kong.yml'), {
      consumer: 'c',
      method: 'GET',
      path: '/r',
    })
    expect(e.verdict).toMatchObject({ status: 500, code: 'ERR_CONFIG_INVALID', by: 'consumer-jwt' })
    expect(e.verdict.reason).toContain('claims_to_headers[0].header: X-Consumer-ID is reserved')
  })

  it('explains nothing when Kong would not load the file at all', () => {
    expect(() =>
      explainRequest(loadPolicy(BAD_KONG_YML), {
        consumer: 'alpha-app',
        method: 'GET',
        path: '/api',
      }),
    ).toThrow(
      'Kong would not load ' +
        BAD_KONG_YML +
        ': services[1].plugins[0].config.leway: unknown field (kong-jwt-toolkit check lists every problem)',
    )
  })
})

describe('explain command', () => {
  it('prints the route, the plugins in order, the scopes needed and the verdict', async () => {
    const { code, out } = await cli(
      'explain',
      KONG_YML,
      '--consumer',
      'partner-acme',
      '--method',
      'DELETE',
      '--path',
      '/orders/1',
    )
    expect(code).toBe(0)
    const lines = out.split('\n')
    expect(lines[0]).toBe(
      "request   DELETE /orders/1 as partner-acme, token scopes: catalog:read orders:read (the consumer's scope_ceiling)",
    )
    expect(lines[1]).toMatch(
      /^route {5}orders-admin at services\[0\]\.routes\[2\] \(.*kong\.yml:\d+\), service orders$/,
    )
    expect(lines).toContain('required  all of [orders:admin] (consumer-jwt)')
    expect(lines.at(-1)).toBe(
      'verdict   403 ERR_SCOPE_INSUFFICIENT (Insufficient scope): DELETE needs all of [orders:admin], missing [orders:admin]',
    )
  })

  it('takes several --scope values, space or comma separated too', async () => {
    const { out } = await cli(
      'explain',
      KONG_YML,
      '--consumer',
      'web-app',
      '--method',
      'POST',
      '--path',
      '/orders',
      '--scope',
      'orders:read,orders:write',
      '--format',
      'json',
    )
    const e = JSON.parse(out) as Explanation
    expect(e.request.scopes).toEqual(['orders:read', 'orders:write'])
    expect(e.verdict.status).toBe(200)
  })

  it('refuses an unknown consumer with exit 2, naming the declared ones', async () => {
    const { code, out, err } = await cli(
      'explain',
      KONG_YML,
      '--consumer',
      'partner-initech',
      '--method',
      'GET',
      '--path',
      '/orders',
    )
    expect(code).toBe(2)
    expect(out).toBe('')
    expect(err).toBe(
      `error: consumer partner-initech is not declared in ${KONG_YML} (declared: web-app, mobile-app, partner-acme, partner-globex, public)`,
    )
  })

  it('needs --consumer, --method and --path', async () => {
    const { code, err } = await cli('explain', KONG_YML, '--method', 'GET', '--path', '/x')
    expect(code).toBe(2)
    expect(err).toContain("required option '--consumer <name>' not specified")
  })

  it('refuses a file that is not YAML with exit 2, naming its line and column', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'kjt-explain-')), 'kong.yml')
    writeFileSync(file, '_format_version: "3.0"\nconsumers:\n  - username: [a\n')
    const { code, err } = await cli(
      'explain',
      file,
      '--consumer',
      'a',
      '--method',
      'GET',
      '--path',
      '/',
    )
    expect(code).toBe(2)
    expect(err).toMatch(new RegExp(`^error: ${file}:4:1: invalid YAML: `))
  })

  it('refuses a missing file with exit 2', async () => {
    const { code, err } = await cli(
      'explain',
      '/nonexistent/kong.yml',
      '--consumer',
      'a',
      '--method',
      'GET',
      '--path',
      '/',
    )
    expect(code).toBe(2)
    expect(err).toBe('error: /nonexistent/kong.yml: no such file')
  })
})
