import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { startKongTarget, type KongTarget } from './helpers/kong-target'

// Uses a fixture plugin that exists only on the emulator's side, so it cannot run against an
// external Kong; skipped visibly there.
const external =
  Boolean(process.env['KONG_PROXY_URL'] && process.env['KONG_ADMIN_URL']) ||
  process.env['KONG_TARGET'] === 'container'
const FIXTURES = path.resolve(__dirname, '..', 'emulator', 'fixtures')

const CONFIG = `
_format_version: "3.0"
services:
  - name: smoke
    url: http://upstream.invalid:8080
    routes:
      - name: throws
        paths: [/throws]
        plugins:
          - name: throw-in-access
            config: { mode: throw }
      - name: throws-after-side-effect
        paths: [/side-effect]
        plugins:
          - name: throw-in-access
            config: { mode: set-then-throw }
      - name: denies
        paths: [/denies]
        plugins:
          - name: throw-in-access
            config: { mode: deny }
`

;(external ? describe.skip : describe)(
  'emulator smoke (emulator only: uses a fixture plugin)',
  () => {
    let kong: KongTarget

    beforeAll(async () => {
      kong = await startKongTarget({
        config: CONFIG,
        pluginDirs: [path.join(FIXTURES, 'throw-in-access')],
      })
    })

    afterAll(async () => {
      await kong?.stop()
    })

    it('lets the request through to the upstream when a plugin throws in access (Kong fails open)', async () => {
      const res = await kong.proxy('/throws/x')
      expect(res.status).toBe(200)
      const seen = kong.upstreamRequestFor(res)
      expect(seen?.path).toBe('/x')
    })

    it('keeps side effects made before the throw (the header reaches the upstream)', async () => {
      const res = await kong.proxy('/side-effect')
      expect(res.status).toBe(200)
      expect(kong.upstreamRequestFor(res)?.headers['x-before-throw']).toBe('yes')
    })

    it('answers with the plugin exit and never contacts the upstream', async () => {
      const before = kong.upstreamRequests.length
      const res = await kong.proxy('/denies')
      expect(res.status).toBe(401)
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(await res.json()).toEqual({ message: 'denied by fixture' })
      expect(kong.upstreamRequests.length).toBe(before)
    })

    it("answers 404 with Kong's message and a request id when no route matches", async () => {
      const res = await kong.proxy('/nowhere')
      expect(res.status).toBe(404)
      const body = (await res.json()) as { message: string; request_id: string }
      expect(body.message).toBe('no Route matched with those values')
      expect(body.request_id).toBe(res.headers.get('x-kong-request-id'))
    })
  },
)
