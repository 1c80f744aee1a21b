/**
 * Kong 3.9's bundled (Lua) plugins, as far as the CLI and the emulator need them: each one's
 * PRIORITY (kong/plugins/<name>/handler.lua; Kong runs higher priorities first), which of them
 * authenticate a consumer, and the config fields of the three the emulator reproduces (key-auth,
 * jwt, acl; kong/plugins/<name>/schema.lua). Our own plugins' priorities are in
 * plugins/shared/priorities.ts.
 */
import type { SchemaField } from './schema'

export const BUNDLED_PRIORITIES: Readonly<Record<string, number>> = {
  'pre-function': 1_000_000,
  'correlation-id': 100_001,
  zipkin: 100_000,
  'bot-detection': 2500,
  cors: 2000,
  session: 1900,
  acme: 1705,
  jwt: 1450,
  oauth2: 1400,
  'key-auth': 1250,
  'ldap-auth': 1200,
  'basic-auth': 1100,
  'hmac-auth': 1030,
  'grpc-gateway': 998,
  'ip-restriction': 990,
  'request-size-limiting': 951,
  acl: 950,
  'rate-limiting': 910,
  'response-ratelimiting': 900,
  'request-transformer': 801,
  'response-transformer': 800,
  redirect: 779,
  'ai-request-transformer': 777,
  'ai-prompt-template': 773,
  'ai-prompt-decorator': 772,
  'ai-prompt-guard': 771,
  'ai-proxy': 770,
  'ai-response-transformer': 769,
  'standard-webhooks': 760,
  'aws-lambda': 750,
  'azure-functions': 749,
  'proxy-cache': 100,
  opentelemetry: 14,
  prometheus: 13,
  'http-log': 12,
  statsd: 11,
  datadog: 10,
  'file-log': 9,
  'udp-log': 8,
  'tcp-log': 7,
  loggly: 6,
  syslog: 4,
  'grpc-web': 3,
  'request-termination': 2,
  'post-function': -1000,
}

/** Bundled plugins that authenticate a consumer (kong.client.authenticate). */
export const BUNDLED_AUTH_PLUGINS: ReadonlySet<string> = new Set([
  'jwt',
  'oauth2',
  'key-auth',
  'ldap-auth',
  'basic-auth',
  'hmac-auth',
  'session',
])

/** kong/plugins/key-auth/schema.lua (3.9) config fields. */
export const KEY_AUTH_FIELDS: readonly SchemaField[] = [
  {
    key_names: {
      type: 'array',
      elements: { type: 'string' },
      default: ['apikey'],
      required: true,
    },
  },
  { hide_credentials: { type: 'boolean', default: false, required: true } },
  { anonymous: { type: 'string' } },
  { key_in_header: { type: 'boolean', default: true, required: true } },
  { key_in_query: { type: 'boolean', default: true, required: true } },
  { key_in_body: { type: 'boolean', default: false, required: true } },
  { run_on_preflight: { type: 'boolean', default: true, required: true } },
  { realm: { type: 'string' } },
]

/** kong/plugins/jwt/schema.lua (3.9) config fields. */
export const JWT_FIELDS: readonly SchemaField[] = [
  { uri_param_names: { type: 'set', elements: { type: 'string' }, default: ['jwt'] } },
  { cookie_names: { type: 'set', elements: { type: 'string' }, default: [] } },
  { key_claim_name: { type: 'string', default: 'iss' } },
  { secret_is_base64: { type: 'boolean', required: true, default: false } },
  { claims_to_verify: { type: 'set', elements: { type: 'string', one_of: ['exp', 'nbf'] } } },
  { anonymous: { type: 'string' } },
  { run_on_preflight: { type: 'boolean', required: true, default: true } },
  { maximum_expiration: { type: 'number', default: 0, between: [0, 31536000] } },
  { header_names: { type: 'set', elements: { type: 'string' }, default: ['authorization'] } },
  { realm: { type: 'string' } },
]

/** kong/plugins/acl/schema.lua (3.9) config fields. */
export const ACL_FIELDS: readonly SchemaField[] = [
  { allow: { type: 'array', elements: { type: 'string' } } },
  { deny: { type: 'array', elements: { type: 'string' } } },
  { hide_groups_header: { type: 'boolean', required: true, default: false } },
  { always_use_authenticated_groups: { type: 'boolean', required: true, default: false } },
]

/** Config fields of the bundled plugins known here, by name. */
export const BUNDLED_FIELDS: Readonly<Record<string, readonly SchemaField[]>> = {
  'key-auth': KEY_AUTH_FIELDS,
  jwt: JWT_FIELDS,
  acl: ACL_FIELDS,
}
