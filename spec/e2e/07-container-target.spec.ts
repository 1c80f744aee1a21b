import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { demoToken } from '../../emulator/demo-kit'
import { noDockerReason } from './helpers/container-target'
import type { KongTarget } from './helpers/kong-target'
import { startToolkitTarget, type ToolkitTarget } from './helpers/toolkit-target'

// kong.yml on a containerised Kong 3.9 built from docker/Dockerfile (testcontainers). The whole
// suite runs there with KONG_TARGET=container; this file checks the image itself whenever a
// Docker engine is reachable, and skips with the reason otherwise (our machines have none).
const skip =
  process.env['KONG_PROXY_URL'] !== undefined
    ? '[skipped: an external Kong is set]'
    : noDockerReason()

;(skip !== undefined ? describe.skip : describe)(
  `docker image: (kong.yml on a containerised Kong built from docker/Dockerfile) ${skip ?? ''}`.trim(),
  () => {
    let target: ToolkitTarget
    let kong: KongTarget
    const previous = process.env['KONG_TARGET']

    beforeAll(async () => {
      process.env['KONG_TARGET'] = 'container'
      target = await startToolkitTarget()
      kong = target.kong
    }, 300_000)

    afterAll(async () => {
      if (previous === undefined) delete process.env['KONG_TARGET']
      else process.env['KONG_TARGET'] = previous
      await target?.stop()
    })

    it('serves the public route without a token through the bundled key-auth anonymous', async () => {
      const res = await kong.proxy('/status')
      expect(res.status).toBe(200)
      expect(kong.upstreamRequestFor(res)?.headers['x-consumer-username']).toBe('public')
    })

    it('authenticates web-app through the plugin server in the image and refuses a missing token', async () => {
      const token = await demoToken('web-app', { scope: 'orders:read' })
      const ok = await kong.proxy('/orders/1', { headers: { Authorization: `Bearer ${token}` } })
      expect(ok.status).toBe(200)
      expect(kong.upstreamRequestFor(ok)?.headers['x-consumer-username']).toBe('web-app')
      const refused = await kong.proxy('/orders/1')
      expect(refused.status).toBe(401)
      expect(((await refused.json()) as { code: string }).code).toBe('ERR_TOKEN_MISSING')
    })
  },
)
