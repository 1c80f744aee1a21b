import type { Command } from 'commander'
import { decodeJwt, type JWTPayload } from 'jose'
import { hostname, userInfo } from 'node:os'
import { describeTarget, findRevocations } from '../plugins/jwt-revocation/core'
import {
  DEFAULT_JTI_LEEWAY_SECONDS,
  DEFAULT_KEY_PREFIX,
  revocationKey,
  type RevocationTarget,
} from '../plugins/shared/revocation/keys'
import { SharedRedis } from '../plugins/shared/revocation/redis-clients'
import { RedisRevocationStore } from '../plugins/shared/revocation/redis-revocation-store'
import {
  isRevocationUnavailable,
  type InspectResult,
} from '../plugins/shared/revocation/revocation-store'
import { isPluginError } from '../plugins/shared/errors'
import {
  DEFAULT_REDIS_URL,
  describeRedis,
  parseRedisSettings,
} from '../plugins/shared/schema/redis-fields'
import { CliError, EXIT, type CliIO } from './common'

/**
 * `kong-jwt-toolkit revoke …`: write, lift and inspect the revocations jwt-revocation reads, with
 * the same key layout (plugins/shared/revocation/keys.ts) and the same decision code for
 * `status` (plugins/jwt-revocation/core.ts). Every change is announced on the events channel in
 * the same Redis step, so plugin caches drop it at once.
 */

interface ConnectionOpts {
  redisUrl?: string
  sentinel?: string[]
  sentinelMaster?: string
  sentinelUsername?: string
  clusterNode?: string[]
  redisUsername?: string
  database?: string
  tls?: boolean
  keyPrefix: string
  timeoutMs: string
}

interface RevokeOpts extends ConnectionOpts {
  reason?: string
  by?: string
}

/** Seconds since the epoch from `now`, integer seconds, or an ISO 8601 date. */
export function parseTime(value: string, nowMs: number, what: string): number {
  const v = value.trim()
  // "now" rounds up to the next whole second: a token issued in the same second as the
  // revocation (iat has whole seconds) is refused too.
  if (v === 'now') return Math.floor(nowMs / 1000) + 1
  if (/^\d{1,11}$/.test(v)) return Number(v)
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const ms = Date.parse(v)
    if (!Number.isNaN(ms)) return Math.ceil(ms / 1000)
  }
  throw new CliError(
    `${what}: cannot read ${JSON.stringify(value)}; use now, Unix seconds or an ISO 8601 date`,
    EXIT.USAGE,
  )
}

/** Seconds from `90`, `90s`, `15m`, `12h`, `7d`. */
export function parseDuration(value: string, what: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim())
  if (m === null)
    throw new CliError(
      `${what}: cannot read ${JSON.stringify(value)}; use e.g. 90s, 15m, 12h, 7d`,
      EXIT.USAGE,
    )
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd']
  return Number(m[1]) * unit
}

/** Claims of a pasted token, decoded WITHOUT verification (the operator is revoking it). */
export function tokenClaims(token: string): JWTPayload {
  try {
    return decodeJwt(token.trim().replace(/^Bearer\s+/i, ''))
  } catch (cause) {
    throw new CliError(
      `--token: not a decodable JWT (${cause instanceof Error ? cause.message : String(cause)})`,
      EXIT.USAGE,
    )
  }
}

function iso(seconds: number): string {
  return Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : 'forever'
}

function defaultBy(): string {
  try {
    return `cli:${userInfo().username}@${hostname()}`
  } catch {
    return `cli@${hostname()}`
  }
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

function withConnection(cmd: Command, io: CliIO): Command {
  return cmd
    .option(
      '--redis-url <url>',
      `one server: redis://, rediss:// or a socket path (default: $REDIS_URL or ${DEFAULT_REDIS_URL})`,
    )
    .option(
      '--sentinel <host:port>',
      'a Sentinel of the deployment, repeatable (default: $REDIS_SENTINELS, comma-separated); the master is found through them',
      collect,
    )
    .option(
      '--sentinel-master <name>',
      'the master group the Sentinels monitor, as sentinel_name (default: $REDIS_SENTINEL_MASTER)',
    )
    .option(
      '--sentinel-username <user>',
      'ACL user for the Sentinels themselves; their password comes from $REDIS_SENTINEL_PASSWORD',
    )
    .option(
      '--cluster-node <host:port>',
      'a node of a Redis Cluster, repeatable (default: $REDIS_CLUSTER_NODES, comma-separated)',
      collect,
    )
    .option(
      '--redis-username <user>',
      'ACL user for Redis; the password always comes from $REDIS_PASSWORD, never from an option',
    )
    .option('--database <n>', 'database index with --sentinel (with a URL: its /db path)')
    .option('--tls', 'TLS to the Sentinels and the master, or to the Cluster nodes')
    .option(
      '--key-prefix <prefix>',
      "key prefix, as the plugin's key_prefix",
      io.env['REVOCATION_KEY_PREFIX'] ?? DEFAULT_KEY_PREFIX,
    )
    .option('--timeout-ms <ms>', 'give up on Redis after this long', '5000')
}

const list = (v: string | undefined): string[] | undefined =>
  v === undefined || v.trim() === ''
    ? undefined
    : v
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '')

/**
 * The plugin's `redis` record (plugins/shared/schema/redis-fields.ts) from the options, else from
 * the environment: one server by URL, a Sentinel group, or a Cluster. Passwords come from the
 * environment only, so they never show in `ps`.
 */
export function redisRecord(opts: ConnectionOpts, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const given = [
    opts.redisUrl !== undefined && '--redis-url',
    opts.sentinel !== undefined && '--sentinel',
    opts.clusterNode !== undefined && '--cluster-node',
  ].filter((g) => g !== false)
  if (given.length > 1)
    throw new CliError(`${given.join(' and ')}: give one kind of Redis deployment`, EXIT.USAGE)
  let mode: 'single' | 'sentinel' | 'cluster'
  let sentinels = opts.sentinel
  let clusterNodes = opts.clusterNode
  if (given.length === 1)
    mode = opts.sentinel ? 'sentinel' : opts.clusterNode ? 'cluster' : 'single'
  else {
    sentinels = list(env['REDIS_SENTINELS'])
    clusterNodes = list(env['REDIS_CLUSTER_NODES'])
    if (sentinels !== undefined && clusterNodes !== undefined)
      throw new CliError(
        'REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: give one kind of Redis deployment',
        EXIT.USAGE,
      )
    mode = sentinels !== undefined ? 'sentinel' : clusterNodes !== undefined ? 'cluster' : 'single'
  }
  const master = opts.sentinelMaster ?? env['REDIS_SENTINEL_MASTER']
  if (mode !== 'sentinel') {
    for (const [flag, v] of [
      ['--sentinel-master', opts.sentinelMaster],
      ['--sentinel-username', opts.sentinelUsername],
    ] as const)
      if (v !== undefined) throw new CliError(`${flag} needs --sentinel`, EXIT.USAGE)
  }
  if (mode === 'sentinel' && (master === undefined || master === ''))
    throw new CliError(
      '--sentinel needs --sentinel-master <name> (the name in `sentinel monitor <name> …`)',
      EXIT.USAGE,
    )
  if (mode === 'single' && opts.tls === true)
    throw new CliError(
      '--tls is for --sentinel and --cluster-node; for one server use a rediss:// URL',
      EXIT.USAGE,
    )
  let database: number | undefined
  if (opts.database !== undefined) {
    if (mode !== 'sentinel')
      throw new CliError(
        '--database is for --sentinel (a URL names its database as /db; a Cluster has only 0)',
        EXIT.USAGE,
      )
    database = Number(opts.database)
    if (!Number.isInteger(database) || database < 0 || database > 15)
      throw new CliError('--database: must be an integer from 0 to 15', EXIT.USAGE)
  }
  const common = {
    password: env['REDIS_PASSWORD'] || null,
    username: opts.redisUsername ?? null,
    ...(opts.tls === true ? { tls: true } : {}),
  }
  switch (mode) {
    case 'single':
      return { ...common, url: opts.redisUrl ?? env['REDIS_URL'] ?? DEFAULT_REDIS_URL }
    case 'sentinel':
      return {
        ...common,
        mode,
        sentinels,
        sentinel_name: master,
        sentinel_username: opts.sentinelUsername ?? null,
        sentinel_password: env['REDIS_SENTINEL_PASSWORD'] || null,
        ...(database !== undefined ? { database } : {}),
      }
    case 'cluster':
      return { ...common, mode, cluster_nodes: clusterNodes }
  }
}

/** The plugin's field names in a settings error, as the CLI's options. */
const OPTION_OF: Record<string, string> = {
  url: '--redis-url',
  sentinels: '--sentinel',
  sentinel_name: '--sentinel-master',
  cluster_nodes: '--cluster-node',
  password: '$REDIS_PASSWORD',
  sentinel_password: '$REDIS_SENTINEL_PASSWORD',
  username: '--redis-username',
  sentinel_username: '--sentinel-username',
  database: '--database',
}

/** Opens a store for one command, runs `fn`, and always closes the connection. */
async function withStore<T>(
  opts: ConnectionOpts,
  io: CliIO,
  fn: (store: RedisRevocationStore) => Promise<T>,
): Promise<T> {
  const timeoutMs = Number(opts.timeoutMs)
  if (!Number.isInteger(timeoutMs) || timeoutMs < 10)
    throw new CliError('--timeout-ms: must be an integer >= 10', EXIT.USAGE)
  let settings
  try {
    settings = parseRedisSettings({
      ...redisRecord(opts, io.env),
      connect_timeout_ms: Math.min(timeoutMs, 60_000),
    })
  } catch (error) {
    if (!isPluginError(error)) throw error
    const detail = error.detail ?? error.message
    const m = /^redis\.(\w+): (.*)$/.exec(detail)
    const option = m === null ? undefined : OPTION_OF[m[1] as string]
    throw new CliError(
      option === undefined ? `Redis settings: ${detail}` : `${option}: ${m?.[2] ?? ''}`,
      EXIT.USAGE,
    )
  }
  let lastError = ''
  const quiet = {
    info: () => undefined,
    warn: (m: string) => (lastError = m),
    error: (m: string) => (lastError = m),
  }
  const redis = new SharedRedis(settings, { commandTimeoutMs: timeoutMs, failFast: false }, quiet)
  const store = new RedisRevocationStore(redis, {
    prefix: opts.keyPrefix,
    timeoutMs,
    cacheTtlMs: 0,
    failFast: false,
  })
  try {
    return await fn(store)
  } catch (error) {
    if (isRevocationUnavailable(error)) {
      const last =
        lastError === '' ? '' : ` (last connection error: ${lastError.replace(/^redis \S+ /, '')})`
      throw new CliError(
        `Redis ${describeRedis(settings)} unavailable: ${error.message}${last}`,
        EXIT.UNAVAILABLE,
      )
    }
    throw error
  } finally {
    await redis.close()
  }
}

function setExit(cmd: Command, code: number): void {
  cmd.setOptionValue('__exitCode', code)
}

export function registerRevoke(program: Command, io: CliIO): void {
  const revoke = program
    .command('revoke')
    .description(
      'Revoke JWTs in Redis for the jwt-revocation plugin: one token, a subject, or a consumer',
    )

  withConnection(revoke.command('jti'), io)
    .description("Revoke one token by its jti, kept until the token's own expiry (plus leeway)")
    .argument('[jti]', 'the jti claim (or use --token)')
    .option('--token <jwt>', 'read jti and exp from this token (decoded, not verified)')
    .option(
      '--exp <time>',
      "the token's expiry: Unix seconds, ISO 8601, or 'never' to keep the revocation forever",
    )
    .option(
      '--leeway <seconds>',
      `keep the key this long after exp, to cover verifiers' clock tolerance (at least ${DEFAULT_JTI_LEEWAY_SECONDS})`,
      String(DEFAULT_JTI_LEEWAY_SECONDS),
    )
    .option('--reason <text>', 'why, stored with the revocation')
    .option('--by <who>', 'who, stored with the revocation (default cli:<user>@<host>)')
    .action(
      async (
        jtiArg: string | undefined,
        opts: RevokeOpts & { token?: string; exp?: string; leeway: string },
      ) => {
        const claims = opts.token === undefined ? undefined : tokenClaims(opts.token)
        const fromToken =
          typeof claims?.jti === 'string' && claims.jti !== '' ? claims.jti : undefined
        if (jtiArg !== undefined && fromToken !== undefined && jtiArg !== fromToken) {
          throw new CliError(
            `the jti argument (${jtiArg}) and the token's jti (${fromToken}) differ`,
            EXIT.USAGE,
          )
        }
        const jti = jtiArg ?? fromToken
        if (jti === undefined) {
          throw new CliError(
            claims === undefined
              ? 'give a jti or --token'
              : 'the token has no jti claim; it cannot be revoked alone (revoke its subject or consumer)',
            EXIT.USAGE,
          )
        }
        const now = io.now()
        let exp: number | undefined
        if (opts.exp === 'never') exp = undefined
        else if (opts.exp !== undefined) exp = parseTime(opts.exp, now, '--exp')
        else if (typeof claims?.exp === 'number') exp = claims.exp
        else {
          throw new CliError(
            claims === undefined
              ? "give the token's --exp (or --token, or --exp never)"
              : 'the token has no exp; give --exp <time> or --exp never',
            EXIT.USAGE,
          )
        }
        const leeway = parseDuration(opts.leeway, '--leeway')
        if (leeway < DEFAULT_JTI_LEEWAY_SECONDS) {
          // The plugin accepts a token up to this margin past its exp (authenticators' leeway):
          // a revocation that expires sooner would let the revoked token pass meanwhile.
          throw new CliError(
            `--leeway ${leeway} is shorter than the ${DEFAULT_JTI_LEEWAY_SECONDS} s past exp during which jwt-revocation still accepts a token: the revoked token would pass again in between`,
            EXIT.USAGE,
          )
        }
        const expireAt = exp === undefined ? undefined : exp + leeway
        if (expireAt !== undefined && expireAt * 1000 <= now) {
          io.out(
            `jti ${jti}: the token expired at ${iso(exp as number)}; it is refused anyway, nothing stored`,
          )
          return
        }
        const target: RevocationTarget = { kind: 'jti', jti }
        const result = await withStore(opts, io, (store) =>
          store.revoke(
            target,
            { at: Math.floor(now / 1000), reason: opts.reason, by: opts.by ?? defaultBy() },
            { expireAt },
          ),
        )
        io.out(
          `revoked jti ${jti} (key ${revocationKey(opts.keyPrefix, target)}, ${expireAt === undefined ? 'kept until lifted' : `kept until ${iso(expireAt)}`}; ${result.notified} plugin process(es) notified)`,
        )
      },
    )

  const cutoffCommand = (
    name: 'subject' | 'consumer',
    description: string,
    argument: string,
  ): Command =>
    withConnection(revoke.command(name), io)
      .description(description)
      .argument(argument)
      .option(
        '--at <time>',
        "refuse tokens issued before this moment: 'now', Unix seconds or ISO 8601",
        'now',
      )
      .option(
        '--ttl <duration>',
        'forget the cutoff after this long (your longest token lifetime is enough), e.g. 24h',
      )
      .option('--reason <text>', 'why, stored with the revocation')
      .option('--by <who>', 'who, stored with the revocation (default cli:<user>@<host>)')

  const writeCutoff = async (
    target: RevocationTarget,
    opts: RevokeOpts & { at: string; ttl?: string },
  ): Promise<void> => {
    const now = io.now()
    const at = parseTime(opts.at, now, '--at')
    const ttl = opts.ttl === undefined ? undefined : parseDuration(opts.ttl, '--ttl')
    const expireAt = ttl === undefined ? undefined : Math.max(at, Math.floor(now / 1000)) + ttl
    const result = await withStore(opts, io, (store) =>
      store.revoke(target, { at, reason: opts.reason, by: opts.by ?? defaultBy() }, { expireAt }),
    )
    const what = describeTarget(target)
    if (!result.applied) {
      io.out(
        `${what}: already revoked before ${iso(result.entry.at)}, which is later than ${iso(at)}; kept (lift it first to move the cutoff back)`,
      )
      return
    }
    io.out(
      `revoked ${what}: tokens issued before ${iso(at)} are refused (key ${revocationKey(opts.keyPrefix, target)}, ${expireAt === undefined ? 'kept until lifted' : `kept until ${iso(expireAt)}`}; ${result.notified} plugin process(es) notified)`,
    )
  }

  cutoffCommand(
    'subject',
    'Revoke every token a subject (sub) got before a moment, optionally for one issuer',
    '<sub>',
  )
    .option('--issuer <iss>', 'only tokens of this issuer (iss); without it, every issuer')
    .action(
      async (sub: string, opts: RevokeOpts & { at: string; ttl?: string; issuer?: string }) => {
        await writeCutoff({ kind: 'subject', sub, iss: opts.issuer }, opts)
      },
    )

  cutoffCommand('consumer', 'Revoke every token a Kong consumer got before a moment', '<consumer>')
    .option('--username', 'the argument is the consumer username, not its id')
    .action(
      async (
        consumer: string,
        opts: RevokeOpts & { at: string; ttl?: string; username?: boolean },
      ) => {
        await writeCutoff(
          opts.username === true
            ? { kind: 'consumer_username', username: consumer }
            : { kind: 'consumer', id: consumer },
          opts,
        )
      },
    )

  withConnection(revoke.command('lift'), io)
    .description(
      'Lift a revocation: lift jti <jti> | lift subject <sub> [--issuer] | lift consumer <consumer> [--username]',
    )
    .argument('<kind>', 'jti, subject or consumer')
    .argument('<value>', 'the jti, sub or consumer')
    .option('--issuer <iss>', 'subject: the issuer the revocation was made for')
    .option('--username', 'consumer: the value is the consumer username')
    .action(
      async (
        kind: string,
        value: string,
        opts: ConnectionOpts & { issuer?: string; username?: boolean },
      ) => {
        let target: RevocationTarget
        if (kind === 'jti') target = { kind: 'jti', jti: value }
        else if (kind === 'subject') target = { kind: 'subject', sub: value, iss: opts.issuer }
        else if (kind === 'consumer')
          target =
            opts.username === true
              ? { kind: 'consumer_username', username: value }
              : { kind: 'consumer', id: value }
        else
          throw new CliError(
            `lift: unknown kind ${JSON.stringify(kind)}; use jti, subject or consumer`,
            EXIT.USAGE,
          )
        const result = await withStore(opts, io, (store) => store.lift(target))
        io.out(
          result.existed
            ? `lifted revocation of ${describeTarget(target)} (${result.notified} plugin process(es) notified)`
            : `${describeTarget(target)} was not revoked; nothing to lift`,
        )
      },
    )

  withConnection(revoke.command('status'), io)
    .description('Show whether a token is revoked, and why (exit code 1 when it is)')
    .option('--token <jwt>', 'the token (decoded, not verified): checks its jti, sub/iss and iat')
    .option('--jti <jti>', 'a jti')
    .option('--sub <sub>', 'a subject')
    .option('--issuer <iss>', "the subject's issuer")
    .option('--consumer <id>', 'the Kong consumer id the token authenticates as')
    .option('--consumer-username <name>', 'the Kong consumer username')
    .option('--json', 'print JSON')
    .action(async function (
      this: Command,
      opts: ConnectionOpts & {
        token?: string
        jti?: string
        sub?: string
        issuer?: string
        consumer?: string
        consumerUsername?: string
        json?: boolean
      },
    ) {
      const claims: JWTPayload = opts.token === undefined ? {} : { ...tokenClaims(opts.token) }
      if (opts.jti !== undefined) claims.jti = opts.jti
      if (opts.sub !== undefined) claims.sub = opts.sub
      if (opts.issuer !== undefined) claims.iss = opts.issuer
      const targets: RevocationTarget[] = []
      if (typeof claims.jti === 'string') targets.push({ kind: 'jti', jti: claims.jti })
      if (typeof claims.sub === 'string') {
        targets.push({ kind: 'subject', sub: claims.sub })
        if (typeof claims.iss === 'string')
          targets.push({ kind: 'subject', sub: claims.sub, iss: claims.iss })
      }
      if (opts.consumer !== undefined) targets.push({ kind: 'consumer', id: opts.consumer })
      if (opts.consumerUsername !== undefined)
        targets.push({ kind: 'consumer_username', username: opts.consumerUsername })
      if (targets.length === 0)
        throw new CliError(
          'status: give --token, or at least one of --jti, --sub, --consumer, --consumer-username',
          EXIT.USAGE,
        )

      const inspected: InspectResult[] = await withStore(opts, io, (store) =>
        Promise.all(targets.map((t) => store.inspect(t))),
      )
      const findings = findRevocations(
        claims,
        targets,
        inspected.map((r) => r.entry),
      )
      const hasIat = typeof claims.iat === 'number'
      const revoked = findings.length > 0
      const rows = targets.map((target, i) => {
        const r = inspected[i] as InspectResult
        const finding = findings.find((f) => f.target === target)
        return {
          target: describeTarget(target),
          key: r.key,
          stored: r.entry,
          ttl_seconds: r.ttlSeconds,
          revokes_token: finding !== undefined,
          why: finding?.why,
        }
      })
      if (opts.json === true) {
        io.out(JSON.stringify({ revoked, checked: rows }, null, 2))
      } else {
        for (const row of rows) {
          const stored =
            row.stored === undefined
              ? 'not revoked'
              : `${row.target.startsWith('jti') ? 'revoked at' : 'cutoff'} ${iso(row.stored.at)}${row.stored.reason === undefined ? '' : ` (${row.stored.reason})`}${row.stored.by === undefined ? '' : ` by ${row.stored.by}`}${row.ttl_seconds === undefined ? '' : `, key expires in ${row.ttl_seconds} s`}`
          const verdict =
            row.stored === undefined
              ? ''
              : row.revokes_token
                ? ' -> refuses this token'
                : ' -> this token was issued after it'
          io.out(`${row.target}: ${stored}${verdict}   [${row.key}]`)
        }
        const first = findings[0]
        io.out(revoked && first !== undefined ? `REVOKED: ${first.why}` : 'not revoked')
        if (!hasIat && findings.some((f) => f.iatMissing)) {
          io.out(
            'note: no iat known (give --token): any cutoff above refuses the token unless the plugin has missing_iat = allow',
          )
        }
      }
      setExit(this, revoked ? EXIT.REVOKED : EXIT.OK)
    })
}
