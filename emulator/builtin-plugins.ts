/**
 * Bundled (Lua) plugins the emulator reproduces because the recordings use them.
 *
 * key-auth (priority 1250): enough of Kong 3.9's kong/plugins/key-auth/handler.lua to replay
 * recording 06 — key from header or query (key_names), 401 `No API key found in request` with
 * `WWW-Authenticate: Key`, 401 `Unauthorized` for an unknown key, and on success the consumer is
 * authenticated and X-Consumer-* / X-Credential-Identifier are set upstream. `anonymous`,
 * `key_in_body` and `realm` are NOT emulated.
 */
import type { DeclarativeConfig } from './declarative-config'
import { consumerView, kongErrorBody } from './pdk'
import type { Phase, RequestContext } from './request-context'
import type { SchemaField } from './schema'

export type BuiltinHandler = (
  ctx: RequestContext,
  conf: Readonly<Record<string, unknown>>,
  config: DeclarativeConfig,
) => void | Promise<void>

export interface BuiltinPlugin {
  readonly name: string
  readonly priority: number
  readonly fields: readonly SchemaField[]
  readonly handlers: Partial<Record<Phase, BuiltinHandler>>
}

function errorExit(ctx: RequestContext, status: number, message: string, extra: Record<string, string>): void {
  const rendered = kongErrorBody(message, ctx.id, ctx.headers.get('accept'))
  const headers = ctx.responseHeaders.clone()
  headers.set('Content-Type', [rendered.contentType])
  for (const [k, v] of Object.entries(extra)) headers.set(k, [v])
  ctx.exit = { status, headers, body: rendered.body, source: 'error' }
}

const keyAuth: BuiltinPlugin = {
  name: 'key-auth',
  priority: 1250,
  fields: [
    { key_names: { type: 'array', elements: { type: 'string' }, default: ['apikey'], required: true } },
    { hide_credentials: { type: 'boolean', default: false, required: true } },
    { anonymous: { type: 'string' } },
    { key_in_header: { type: 'boolean', default: true, required: true } },
    { key_in_query: { type: 'boolean', default: true, required: true } },
    { key_in_body: { type: 'boolean', default: false, required: true } },
    { run_on_preflight: { type: 'boolean', default: true, required: true } },
    { realm: { type: 'string' } },
  ],
  handlers: {
    access(ctx, conf, config) {
      if (conf['run_on_preflight'] === false && ctx.method === 'OPTIONS') return
      const names = Array.isArray(conf['key_names']) ? (conf['key_names'] as string[]) : ['apikey']
      const query = new URLSearchParams(ctx.rawQuery ?? '')
      let key: string | undefined
      for (const name of names) {
        if (conf['key_in_header'] !== false) key = ctx.headers.get(name)
        if (key === undefined && conf['key_in_query'] !== false) key = query.get(name) ?? undefined
        if (key !== undefined) {
          if (conf['hide_credentials'] === true) {
            ctx.headers.delete(name)
            query.delete(name)
            ctx.upstreamQuery = query.toString()
          }
          break
        }
      }
      if (key === undefined || key === '') {
        errorExit(ctx, 401, 'No API key found in request', { 'WWW-Authenticate': 'Key' })
        return
      }
      const cred = config.keyauthCredentials.find((c) => c.key === key)
      const consumer = cred ? config.consumers.find((c) => c.id === cred.consumer.id) : undefined
      if (!cred || !consumer) {
        errorExit(ctx, 401, 'Unauthorized', { 'WWW-Authenticate': 'Key' })
        return
      }
      const set = (name: string, v: string | undefined): void => {
        if (v === undefined) ctx.headers.delete(name)
        else ctx.headers.set(name, [v])
      }
      set('X-Consumer-ID', consumer.id)
      set('X-Consumer-Custom-ID', consumer.custom_id)
      set('X-Consumer-Username', consumer.username)
      set('X-Credential-Identifier', cred.id)
      ctx.headers.delete('X-Anonymous-Consumer')
      ctx.consumer = consumerView(consumer)
      ctx.credential = { id: cred.id, key: cred.key, consumer: { id: consumer.id }, created_at: cred.created_at }
      ctx.authenticatedConsumer = consumer
    },
  },
}

export const BUILTIN_PLUGINS: readonly BuiltinPlugin[] = [keyAuth]
