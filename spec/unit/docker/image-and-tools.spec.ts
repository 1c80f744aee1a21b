import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'

// The Docker image and the compose file, checked without a Docker engine: the Dockerfile's
// critical lines by reading it, the compose file by Debian's docker-compose parser, kong.yml by
// decK. Tools that are not installed skip their tests, saying so (.ci/run installs them).
const ROOT = join(__dirname, '..', '..', '..')
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')

function missing(tool: string, args: string[]): string | undefined {
  const r = spawnSync(tool, args, { stdio: 'ignore' })
  return r.error !== undefined || r.status !== 0
    ? `[skipped: ${tool} is not installed (apt-get install ${tool})]`
    : undefined
}

describe('docker/Dockerfile: (a complete image, read line by line)', () => {
  const dockerfile = read('docker/Dockerfile')
  const lines = dockerfile.split('\n')
  const env = read('docker/kong.env')
    .split('\n')
    .filter((l) => l.startsWith('KONG_'))

  it('sets every setting of docker/kong.env as ENV, with the same value', () => {
    for (const line of env) {
      const [name, value] = [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]
      expect(lines).toContain(`ENV ${name}="${value}"`)
    }
  })

  it("lets Kong's user own Kong's prefix, where the plugin servers' sockets live", () => {
    expect(dockerfile).toMatch(/chown -R kong:0 \/usr\/local\/kong/)
  })

  it('runs as kong and ends with a healthcheck of Kong', () => {
    const last = lines.filter((l) => /^[A-Z]/.test(l)).slice(-2)
    expect(last).toEqual([
      'USER kong',
      'HEALTHCHECK --interval=5s --timeout=5s --retries=20 CMD ["kong", "health"]',
    ])
  })

  it('copies the built plugins, their dependencies and the plugin-server command', () => {
    expect(dockerfile).toContain('COPY --from=build /src/dist /opt/kong-jwt-toolkit/dist')
    expect(dockerfile).toContain(
      'COPY --from=build /src/node_modules /opt/kong-jwt-toolkit/node_modules',
    )
    expect(dockerfile).toContain('RUN npm run build:release && npm prune --omit=dev')
  })
})

const noCompose = missing('docker-compose', ['version'])
;(noCompose !== undefined ? describe.skip : describe)(
  `docker/docker-compose.yml: (parsed by docker-compose config) ${noCompose ?? ''}`.trim(),
  () => {
    it('is a valid compose file with Kong, Redis, the JWKS endpoint and the echo upstreams', () => {
      const out = execFileSync(
        'docker-compose',
        ['-f', join(ROOT, 'docker', 'docker-compose.yml'), 'config', '--services'],
        { encoding: 'utf8' },
      )
      expect(out.trim().split('\n').sort()).toEqual(
        ['acme-idp', 'catalog', 'kong', 'orders-1', 'orders-2', 'redis', 'users'].sort(),
      )
    })
  },
)

const noDeck = missing('deck', ['version'])
;(noDeck !== undefined ? describe.skip : describe)(
  `kong.yml: (deck validate, decK's own checks of structure and references) ${noDeck ?? ''}`.trim(),
  () => {
    const validate = (file: string) =>
      spawnSync('deck', ['validate', '-s', file], { encoding: 'utf8' })

    it('passes deck validate as written, anchors and merge keys included', () => {
      const r = validate(join(ROOT, 'kong.yml'))
      expect(r.stderr + r.stdout).toBe('')
      expect(r.status).toBe(0)
    })

    it('would fail deck validate with a plugin on a route that does not exist', () => {
      const dir = mkdtempSync(join(tmpdir(), 'kjt-deck-'))
      try {
        const file = join(dir, 'kong.yml')
        writeFileSync(
          file,
          `${read('kong.yml')}\n  - name: acl\n    route: no-such-route\n    config: { allow: [authenticated] }\n`,
        )
        const r = validate(file)
        expect(r.status).not.toBe(0)
        expect(r.stderr + r.stdout).toContain('no-such-route')
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  },
)
