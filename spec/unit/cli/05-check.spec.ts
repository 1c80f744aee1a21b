import { describe, expect, it } from '@jest/globals'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  checkFile,
  checkPolicy,
  FINDINGS,
  type CheckReport,
  type FindingCode,
} from '../../../cli/policy/check'
import { parseKongConf } from '../../../cli/policy/kong-conf'
import { parsePolicy } from '../../../cli/policy/load'
import { BAD_KONG_YML, cli, KONG_CONF, KONG_YML } from './policy-helpers'

function tempFile(name: string, text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'kjt-check-')), name)
  writeFileSync(file, text)
  return file
}

/** The line of the fixture marked `# FINDING: …<code>…`. */
function markedLine(text: string, code: FindingCode): number {
  const lines = text.split('\n')
  const i = lines.findIndex((l) => new RegExp(`# FINDING: .*\\b${code}\\b`).test(l))
  if (i === -1) throw new Error(`the fixture marks no ${code}`)
  return i + 1
}

/** Every finding of the bad fixture: where it must be reported. */
const EXPECTED: Record<Exclude<FindingCode, 'yaml-invalid' | 'kong-config-invalid'>, string> = {
  'lifetime-uncapped': 'services[0].routes[0].plugins[0].config',
  'leeway-missing': 'services[0].routes[0].plugins[0].config.leeway',
  'secret-too-short': 'services[0].routes[0].plugins[0].config.credentials[0].secret',
  'ceiling-too-broad': 'services[0].routes[0].plugins[0].config.credentials[0].scope_ceiling',
  'secret-shared': 'services[0].routes[0].plugins[0].config.credentials[1].secret',
  'unknown-consumer': 'services[0].routes[0].plugins[0].config.credentials[2].consumer',
  'dead-scope-rule': 'services[0].routes[0].plugins[0].config.scopes.rules[0]',
  'duplicate-key-binding': 'services[0].routes[1].plugins[0].config.credentials[0].key',
  'value-unreadable': 'services[0].routes[1].plugins[0].config.credentials[1].secret',
  'scope-named-like-guard': 'services[0].routes[1].plugins[0].config.scopes.rules[0]',
  'route-unauthenticated': 'services[0].routes[2]',
  'plugin-unknown': 'services[0].routes[2].plugins[0].name',
  'plugin-not-installed': 'services[0].routes[2].plugins[0].name',
  'public-route': 'services[0].routes[3]',
  'unknown-field': 'services[1].plugins[0].config.leway',
  'config-invalid': 'services[1].plugins[0].config.maximum_lifetime',
  'config-refused': 'services[1].routes[0].plugins[0].config.rules[0].scopes[0]',
  'revocation-without-redis': 'services[1].routes[0].plugins[1].config',
  'guard-missing': 'services[2].routes[0]',
  'consumer-outside-guard': 'consumers[2]',
}

describe('check: the project kong.yml', () => {
  it('checks clean: no error, no warning, only the notes on the vault secret and the public route', () => {
    const report = checkFile(KONG_YML, {
      kongConf: parseKongConf(readFileSync(KONG_CONF, 'utf8'), KONG_CONF),
    })
    expect(report.errors).toBe(0)
    expect(report.warnings).toBe(0)
    expect(report.findings.map((f) => [f.code, f.path])).toEqual([
      ['value-unreadable', 'services[0].routes[0].plugins[0].config.credentials[3].secret'],
      ['public-route', 'services[1].routes[2]'],
    ])
  })

  it('exits 0 on the clean kong.yml and prints a summary', async () => {
    const { code, out } = await cli('check', KONG_YML, '--kong-conf', KONG_CONF)
    expect(code).toBe(0)
    expect(out).toMatch(/kong\.yml: 0 errors, 0 warnings, 2 notes$/)
  })
})

describe('check: the deliberately bad kong.yml', () => {
  const text = readFileSync(BAD_KONG_YML, 'utf8')
  const report = checkFile(BAD_KONG_YML, {
    kongConf: parseKongConf(readFileSync(KONG_CONF, 'utf8'), KONG_CONF),
  })

  it('holds an example of every finding but the two that stop the check', () => {
    const expected = Object.keys(FINDINGS).filter(
      (c) => c !== 'yaml-invalid' && c !== 'kong-config-invalid',
    )
    expect(Object.keys(EXPECTED).sort()).toEqual(expected.sort())
  })

  it.each(Object.entries(EXPECTED) as Array<[FindingCode, string]>)(
    'reports %s at its path and the marked line',
    (code, where) => {
      const line = markedLine(text, code)
      const found = report.findings.filter((f) => f.code === code)
      expect(
        found.map((f) => ({ path: f.path, line: f.line, severity: f.severity })),
      ).toContainEqual({
        path: where,
        line,
        severity: FINDINGS[code][0],
      })
    },
  )

  it('reports nothing unmarked', () => {
    const marked = new Set(
      text
        .split('\n')
        .map((l, i) => (l.includes('# FINDING:') ? i + 1 : 0))
        .filter((n) => n > 0),
    )
    expect(report.findings.filter((f) => !marked.has(f.line ?? 0))).toEqual([])
  })

  it('counts errors, warnings and notes', () => {
    expect([report.errors, report.warnings, report.infos]).toEqual([15, 4, 2])
  })

  it('names a scope of an any-rule that no ceiling allows, though the rule can still match', () => {
    expect(
      report.findings.filter(
        (f) =>
          f.code === 'dead-scope-rule' &&
          f.path === 'services[0].routes[1].plugins[0].config.scopes.rules[0]',
      ),
    ).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/^names authenticated, which no consumer's scope_ceiling/),
      }),
    ])
  })

  it('names the rule, the missing scope and the consequence of a dead rule', () => {
    const dead = report.findings.find((f) => f.code === 'dead-scope-rule')
    expect(dead?.message).toMatch(
      /needs all of \[api:admin\], which no consumer's scope_ceiling allows/,
    )
  })

  it('exits 1 and prints file:line:column, severity, code and path for each finding', async () => {
    const { code, out } = await cli('check', BAD_KONG_YML)
    expect(code).toBe(1)
    expect(out).toContain(
      `${BAD_KONG_YML}:${markedLine(text, 'secret-too-short')}:19  error secret-too-short  at services[0].routes[0].plugins[0].config.credentials[0].secret`,
    )
    expect(out).toContain(
      'HS512 needs a secret of at least 64 bytes (RFC 7518 §3.2); this one has 42',
    )
    expect(out).toMatch(/: 14 errors, 4 warnings, 2 notes$/)
  })

  it('--format json gives the same findings as objects, for CI', async () => {
    const { code, out } = await cli(
      'check',
      BAD_KONG_YML,
      '--kong-conf',
      KONG_CONF,
      '--format',
      'json',
    )
    expect(code).toBe(1)
    const json = JSON.parse(out) as CheckReport
    expect(json.file).toBe(BAD_KONG_YML)
    expect([json.errors, json.warnings, json.infos]).toEqual([15, 4, 2])
    expect(json.findings).toEqual(report.findings)
    expect(json.findings[0]).toEqual({
      severity: 'warning',
      code: 'lifetime-uncapped',
      path: EXPECTED['lifetime-uncapped'],
      line: markedLine(text, 'lifetime-uncapped'),
      column: 13,
      message: expect.stringMatching(/^maximum_lifetime 0/),
    })
  })
})

describe('check --help', () => {
  it('lists every finding code with its severity, and the exit codes', async () => {
    const { code, out } = await cli('check', '--help')
    expect(code).toBe(0)
    for (const [finding, [severity]] of Object.entries(FINDINGS)) {
      expect(out).toMatch(new RegExp(`^  ${finding} +${severity} `, 'm'))
    }
    expect(out).toContain('Exit codes: 0 no errors (warnings and notes allowed), 1 errors found')
  })
})

describe('check: files that cannot be checked', () => {
  it('a missing file: exit 2 and a clear message', async () => {
    const { code, out, err } = await cli('check', '/nonexistent/kong.yml')
    expect(code).toBe(2)
    expect(out).toBe('')
    expect(err).toBe('error: /nonexistent/kong.yml: no such file')
  })

  it('a missing kong.conf: exit 2 and a clear message', async () => {
    const { code, err } = await cli('check', KONG_YML, '--kong-conf', '/nonexistent/kong.conf')
    expect(code).toBe(2)
    expect(err).toBe('error: /nonexistent/kong.conf: no such file')
  })

  it('invalid YAML: one yaml-invalid error with its line and column, exit 1', async () => {
    const file = tempFile(
      'kong.yml',
      '_format_version: "3.0"\nservices:\n  - name: a\n    url: [http://a\n',
    )
    const report = checkFile(file)
    expect(report.findings).toEqual([
      expect.objectContaining({ severity: 'error', code: 'yaml-invalid', line: 5, column: 1 }),
    ])
    expect(report.findings[0]?.message).toMatch(/^invalid YAML: /)
    const { code, out } = await cli('check', file)
    expect(code).toBe(1)
    expect(out).toContain(`${file}:5:1  error yaml-invalid`)
  })

  it('an entity Kong refuses: kong-config-invalid at its path and line', () => {
    const file = tempFile(
      'kong.yml',
      '_format_version: "3.0"\nservices:\n  - name: a\n    url: http://a/\n    routes:\n      - name: r\n        pathz: [/x]\n',
    )
    expect(checkFile(file).findings).toEqual([
      {
        severity: 'error',
        code: 'kong-config-invalid',
        path: 'services[0].routes[0].pathz',
        line: 7,
        column: 9,
        message: "services[0].routes[0]: unknown field 'pathz'",
      },
    ])
  })
})

describe('check: findings outside the fixture', () => {
  const base = `_format_version: "3.0"
services:
  - name: s
    url: http://s/
    routes:
      - name: r
        paths: [/r]
        plugins:
          - name: consumer-jwt
            config:
              maximum_lifetime: 600
              credentials:
                - key: k
                  consumer: c
                  algorithms: [HS256]
                  secret_env: K_SECRET
                  scope_ceiling: [r:read]
              scopes:
                default_rule: { scopes: [r:read] }
              REVOCATION
consumers:
  - username: c
    acls: [{ group: authenticated }]
`
  const guard = 'plugins:\n  - name: acl\n    config:\n      allow: [authenticated]\n'

  it('no global acl: guard-missing', () => {
    const policy = parsePolicy(base.replace('REVOCATION', ''), 'kong.yml')
    expect(checkPolicy(policy).filter((f) => f.severity !== 'info')).toEqual([
      expect.objectContaining({ code: 'guard-missing', path: 'plugins', line: 1 }),
    ])
  })

  it('an empty Redis url in consumer-jwt revocation: revocation-without-redis from the plugin parser', () => {
    const text =
      base.replace('REVOCATION', 'revocation: { check: [jti], redis: { url: "" } }') + guard
    const findings = checkPolicy(parsePolicy(text, 'kong.yml'))
    expect(findings.filter((f) => f.severity !== 'info')).toEqual([
      expect.objectContaining({
        code: 'revocation-without-redis',
        path: 'services[0].routes[0].plugins[0].config.revocation.redis',
        line: 20,
      }),
    ])
    expect(findings.find((f) => f.severity === 'error')?.message).toMatch(/500 ERR_CONFIG_INVALID/)
  })

  it('a secret_env is read by the plugin server, not here: a note, not a failure', () => {
    const findings = checkPolicy(parsePolicy(base.replace('REVOCATION', '') + guard, 'kong.yml'))
    expect(findings).toEqual([
      expect.objectContaining({
        severity: 'info',
        code: 'value-unreadable',
        path: 'services[0].routes[0].plugins[0].config.credentials[0].secret_env',
        line: 16,
        message: expect.stringContaining('environment variable K_SECRET'),
      }),
    ])
  })

  it('a secret under 32 bytes is what consumer-jwt itself refuses: secret-too-short', () => {
    const text = (base.replace('REVOCATION', '') + guard).replace(
      'secret_env: K_SECRET',
      'secret: short-secret',
    )
    expect(checkPolicy(parsePolicy(text, 'kong.yml'))).toEqual([
      expect.objectContaining({
        code: 'secret-too-short',
        path: 'services[0].routes[0].plugins[0].config.credentials[0].secret',
        message: expect.stringContaining('must be at least 32 bytes'),
      }),
    ])
  })

  it('kong.conf without a plugin server for consumer-jwt: plugin-not-installed', () => {
    const conf = parseKongConf(
      'plugins = bundled,consumer-jwt\npluginserver_names = consumer-jwt\n',
      'kong.conf',
    )
    const findings = checkPolicy(parsePolicy(base.replace('REVOCATION', '') + guard, 'kong.yml'), {
      kongConf: conf,
    })
    expect(findings.filter((f) => f.code === 'plugin-not-installed')).toEqual([
      expect.objectContaining({
        path: 'services[0].routes[0].plugins[0].name',
        message: expect.stringContaining(
          'pluginserver_consumer_jwt_socket, pluginserver_consumer_jwt_start_cmd, pluginserver_consumer_jwt_query_cmd missing',
        ),
      }),
    ])
  })
})
