/**
 * A second plugin process for the pub/sub test: the BUILT jwt-revocation handler, driven over
 * stdin/stdout with one JSON line per request; each answer says whether the cache is live.
 * Run with `node -e PLUGIN_PROCESS <dist> <config>`.
 */
export const PLUGIN_PROCESS = String.raw`
'use strict'
const readline = require('node:readline')
const { JwtRevocationHandler, defaultStore } = require(
  process.argv[1] + '/plugins/jwt-revocation/handler.js',
)

const quiet = { info() {}, warn() {}, error() {} }
let store
const handler = new JwtRevocationHandler(
  { missing_subject: 'allow', ...JSON.parse(process.argv[2]) },
  { logger: quiet, storeFor: (config, logger) => (store = defaultStore(config, logger)) },
)

function fakePdk(token, consumer) {
  const state = { status: 200 }
  const none = async () => undefined
  const pdk = {
    request: { getHeaders: async () => ({}), getHeader: none, getQuery: async () => ({}), getMethod: async () => 'GET' },
    client: { loadConsumer: none, authenticate: none, getConsumer: async () => consumer, getCredential: none },
    router: { getRoute: none },
    nginx: { getVar: none },
    serviceRequest: { setHeaders: none, setRawQuery: none },
    response: {
      exit: (status, body) => {
        state.status = status
        state.code = body && body.code
      },
    },
    ctx: { get: async () => token, set: none },
    log: { err: none },
  }
  return { pdk, state }
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, token, consumer } = JSON.parse(line)
  const { pdk, state } = fakePdk(token, consumer)
  await handler.accessWith(pdk)
  // cacheLive: whether this process's absence cache is serving (its subscription is live).
  process.stdout.write(JSON.stringify({ id, ...state, cacheLive: store?.cacheLive === true }) + '\n')
})
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
`
