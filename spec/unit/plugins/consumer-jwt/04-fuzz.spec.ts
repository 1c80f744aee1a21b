import fc from 'fast-check'
import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../helpers/labelled'
import { ConsumerJwtHandler } from '../../../../plugins/consumer-jwt/handler'
import { CATALOGUE } from '../../../../plugins/shared/errors'
import { FakeKong } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'
import { HS_SECRET, mint, secretKey } from '../../../helpers/tokens'

const NOW = 1_800_000_000
const handler = new ConsumerJwtHandler(
  {
    credentials: [{ key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET }],
    cookie_names: ['session'],
    uri_param_names: ['jwt'],
  },
  { clock: { now: () => NOW * 1000 }, env: {}, logger: new MemoryLogger() },
)

const b64 = (v: string) => Buffer.from(v).toString('base64url')

/** Anything a client can put where a token is looked for, from noise to near-valid JWTs. */
const tokenish = fc.oneof(
  fc.string(),
  fc.stringMatching(/^[A-Za-z0-9_.-]{0,300}$/),
  fc.tuple(fc.json(), fc.json(), fc.string()).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${b64(s)}`),
  fc
    .record(
      { alg: fc.constantFrom('HS256', 'none', 'RS256', 'HS512', ''), kid: fc.string() },
      { requiredKeys: [] },
    )
    .chain((header) =>
      fc
        .record(
          {
            iss: fc.oneof(fc.constant('web'), fc.string(), fc.integer()),
            exp: fc.oneof(fc.integer(), fc.string(), fc.constant(NOW + 60)),
            scope: fc.oneof(fc.string(), fc.array(fc.string()), fc.object()),
          },
          { requiredKeys: [] },
        )
        .map((payload) => `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}.c2ln`),
    ),
)

describe('consumer-jwt: (fuzz: whatever the client sends)', () => {
  it('answers garbage with a catalogued 4xx refusal, never a 500 and never a pass', async () => {
    await fc.assert(
      fc.asyncProperty(
        tokenish,
        fc.constantFrom('header', 'cookie', 'query', 'bare-header'),
        async (value, where) => {
          const kong = new FakeKong({
            headers:
              where === 'header'
                ? { authorization: `Bearer ${value}` }
                : where === 'bare-header'
                  ? { authorization: value }
                  : where === 'cookie'
                    ? { cookie: `session=${value}` }
                    : {},
            query: where === 'query' ? { jwt: value } : {},
          })
          kong.consumers.push({ id: 'c-1', username: 'web-app' })
          await handler.accessWith(kong)
          labelled(kong.exitResult, `value ${JSON.stringify(value)}`).toBeDefined()
          expect(kong.exitResult?.status).toBeGreaterThanOrEqual(400)
          expect(kong.exitResult?.status).toBeLessThan(500)
          // Catalogued: the code is one of ours, with the catalogue's status.
          const code = String(kong.exitResult?.body['code'])
          expect(Object.keys(CATALOGUE)).toContain(code)
          expect(kong.exitResult?.status).toBe(CATALOGUE[code as keyof typeof CATALOGUE].status)
          expect(kong.authenticated).toBeUndefined()
        },
      ),
      { numRuns: 400 },
    )
  })

  it('still accepts a valid token whatever noise the other headers carry', async () => {
    const token = await mint({ iss: 'web', sub: 'u' }, { key: secretKey(), now: NOW })
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.stringMatching(/^x-[a-z]{1,8}$/), fc.string()),
        async (noise) => {
          const kong = new FakeKong({ headers: { ...noise, authorization: `Bearer ${token}` } })
          kong.consumers.push({ id: 'c-1', username: 'web-app' })
          await handler.accessWith(kong)
          expect(kong.exitResult).toBeUndefined()
          expect(kong.authenticated?.consumer?.id).toBe('c-1')
        },
      ),
      { numRuns: 100 },
    )
  })
})
