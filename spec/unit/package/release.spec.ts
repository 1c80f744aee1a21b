import { readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'

// What users copy to their Kong (README "Put the plugins into your Kong", docker/Dockerfile) is
// the release build: `npm run build:release`, then `npm prune --omit=dev`. It must hold the
// plugins, the plugin-server command and the CLI, need nothing pruned, and carry no dependency
// that nothing shipped uses.

const ROOT = join(__dirname, '..', '..', '..')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const pkg = JSON.parse(read('package.json')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  scripts: Record<string, string>
}
const release = JSON.parse(read('tsconfig.build.json')) as { include: string[] }

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path)
    return /\.ts$/.test(name) && !/\.spec\.ts$/.test(name) ? [path] : []
  })
}

/** The package a bare import names (`jose`, `@scope/pkg`, `kong-pdk/lib/x` → `kong-pdk`). */
function bareImports(file: string): string[] {
  const text = read(file)
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/g),
    ...text.matchAll(/(?:^|\n)\s*import\s+'([^']+)'/g),
    ...text.matchAll(/\brequire(?:\.resolve)?\('([^']+)'\)/g),
    ...text.matchAll(/\bimport\('([^']+)'\)/g),
  ].map((m) => m[1] ?? '')
  return specs
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] ?? s)))
}

const excludedDirs = (JSON.parse(read('tsconfig.build.json')) as { exclude: string[] }).exclude
const shipped = release.include
  .flatMap(sources)
  .filter((f) => !excludedDirs.some((x) => f === x || f.startsWith(`${x}/`)))
const used = new Map<string, string[]>()
for (const file of shipped)
  for (const name of bareImports(file)) used.set(name, [...(used.get(name) ?? []), file])

describe('release build: (what users copy to Kong)', () => {
  it('leaves the example service out of the release build', () => {
    const excluded = (JSON.parse(read('tsconfig.build.json')) as { exclude: string[] }).exclude
    expect(excluded).toContain('middleware/example')
    expect(shipped.filter((f) => f.startsWith('middleware/example'))).toEqual([])
  })

  it('compiles the plugins, the plugin-server command and the CLI, and no dev tool', () => {
    expect(release.include).toEqual(expect.arrayContaining(['plugins', 'pluginserver', 'cli']))
    for (const tool of ['emulator', 'bench', 'spec', 'scripts'])
      expect(release.include).not.toContain(tool)
    expect(pkg.scripts['build:release']).toContain('tsc -p tsconfig.build.json')
  })

  it('needs only production dependencies: nothing it imports is pruned by npm prune --omit=dev', () => {
    const pruned = [...used.keys()].filter((name) => !(name in pkg.dependencies))
    expect(pruned.map((name) => `${name} (${used.get(name)?.join(', ') ?? ''})`)).toEqual([])
  })

  it('carries no dead production dependency: each is imported by shipped code', () => {
    expect(Object.keys(pkg.dependencies).filter((name) => !used.has(name))).toEqual([])
  })

  it('is what the Docker image builds and copies, without the emulator or the bench', () => {
    const dockerfile = read('docker/Dockerfile')
    expect(dockerfile).toContain('RUN npm run build:release && npm prune --omit=dev')
    for (const dir of release.include) expect(dockerfile).toContain(`COPY ${dir} ${dir}`)
    expect(dockerfile).not.toMatch(/COPY (emulator|bench) /)
  })

  it('is what the README tells users to build before copying dist/', () => {
    expect(read('README.md')).toContain('npm ci && npm run build:release && npm prune --omit=dev')
  })
})
