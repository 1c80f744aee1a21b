/**
 * The containerised Kong target (KONG_TARGET=container): Kong 3.9 with our plugins, built from
 * docker/Dockerfile by testcontainers and driven like any external Kong (kong-target.ts). The
 * servers the scenarios run on loopback (the echo upstream, the partner JWKS endpoint, Redis)
 * are exposed to the container with testcontainers' host port forwarding, and every loopback URL
 * of a pushed config is rewritten to `host.testcontainers.internal`. Image pins live in the
 * Dockerfiles (docker/Dockerfile's KONG_IMAGE and NODE_IMAGE, docker/redis.Dockerfile), which
 * this builds from: one place to bump.
 *
 * Needs a Docker engine; `noDockerReason()` says why it cannot run, so tests skip visibly.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { GenericContainer, TestContainers, Wait } from 'testcontainers'
import { startEchoUpstream } from '../../../emulator/echo-upstream'
import { globexSecret } from '../../../emulator/demo-kit'
import { startExternal, type KongTarget, type KongTargetOptions } from './kong-target'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const HOST_ALIAS = 'host.testcontainers.internal'
const IMAGE = 'kong-jwt-toolkit:e2e'

/** Why no containerised Kong can run here, or undefined when a Docker engine answers. */
export function noDockerReason(): string | undefined {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    encoding: 'utf8',
    timeout: 15_000,
  })
  if (r.error !== undefined || r.status !== 0)
    return '[skipped: no Docker engine reachable (docker info failed); KONG_TARGET=container needs one]'
  return undefined
}

/** Every loopback port a config names (JWKS endpoint, Redis): the container must reach them. */
export function loopbackPorts(config: string): number[] {
  const ports = [...config.matchAll(/\b(?:127\.0\.0\.1|localhost):(\d+)/g)].map((m) => Number(m[1]))
  return [...new Set(ports)]
}

export async function startContainerTarget(opts: KongTargetOptions): Promise<KongTarget> {
  const reason = noDockerReason()
  if (reason !== undefined) throw new Error(`KONG_TARGET=container: ${reason}`)
  const echo = await startEchoUpstream(0, '127.0.0.1')
  try {
    await TestContainers.exposeHostPorts(echo.port, ...loopbackPorts(opts.config))
    const image = await GenericContainer.fromDockerfile(ROOT, 'docker/Dockerfile').build(IMAGE, {
      deleteOnExit: false,
    })
    const kong = await image
      .withEnvironment({
        PARTNER_GLOBEX_SECRET: globexSecret(),
        // Start on an empty config: every scenario pushes its own.
        KONG_DECLARATIVE_CONFIG: '',
      })
      .withExposedPorts(8000, 8001)
      .withWaitStrategy(Wait.forHttp('/status', 8001).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start()
    const host = kong.getHost()
    const target = await startExternal(
      opts,
      `http://${host}:${kong.getMappedPort(8000)}`,
      `http://${host}:${kong.getMappedPort(8001)}`,
      { echo, echoUrl: `http://${HOST_ALIAS}:${echo.port}`, loopbackAlias: HOST_ALIAS },
    )
    return {
      ...target,
      stop: async () => {
        await target.stop()
        await kong.stop()
      },
    }
  } catch (error) {
    await echo.stop()
    throw error
  }
}
