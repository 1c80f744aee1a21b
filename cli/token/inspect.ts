import { selectCredential } from '../../plugins/consumer-jwt/core'
import { CATALOGUE } from '../../plugins/shared/errors'
import { CliError, EXIT, type CliIO } from '../common'
import { loadConsumerJwt, type VerifierGroup } from './consumer-credentials'
import { keyLookup } from './key-lookup'
import { assess, type Assessment } from './verdicts'

export interface InspectOpts {
  config?: string
  fetch?: boolean
  json?: boolean
}

type Json = Record<string, unknown>

const PARTS = ['header', 'payload'] as const

/**
 * Header and claims of a compact JWS, decoded WITHOUT verification, with an error that says what
 * is wrong with it: the number of parts, which part is not base64url, not JSON, not an object.
 */
export function decodeForDisplay(input: string): { token: string; header: Json; claims: Json } {
  const token = input.trim().replace(/^Bearer\s+/i, '')
  const parts = token.split('.')
  if (parts.length !== 3) {
    const jwe =
      parts.length === 5
        ? ': 5 parts is an encrypted JWT (JWE), which consumer-jwt does not take'
        : ''
    throw new CliError(
      `not a signed JWT: ${parts.length} dot-separated part${parts.length === 1 ? '' : 's'}, a JWT has 3 (header.payload.signature)${jwe}`,
      EXIT.USAGE,
    )
  }
  const decoded: Json[] = []
  for (const [i, name] of PARTS.entries()) {
    const part = parts[i] as string
    if (part === '') throw new CliError(`the ${name} (part ${i + 1}) is empty`, EXIT.USAGE)
    const bad = /[^A-Za-z0-9_-]/.exec(part)
    if (bad !== null)
      throw new CliError(
        `the ${name} (part ${i + 1}) is not base64url: it holds ${JSON.stringify(bad[0])} at position ${bad.index + 1}`,
        EXIT.USAGE,
      )
    let value: unknown
    try {
      value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    } catch {
      throw new CliError(`the ${name} (part ${i + 1}) is base64url but not JSON`, EXIT.USAGE)
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new CliError(`the ${name} (part ${i + 1}) is JSON but not an object`, EXIT.USAGE)
    decoded.push(value as Json)
  }
  if (!/^[A-Za-z0-9_-]*$/.test(parts[2] as string))
    throw new CliError('the signature (part 3) is not base64url', EXIT.USAGE)
  return { token, header: decoded[0] as Json, claims: decoded[1] as Json }
}

/** `route a, route b, route c and 4 more` */
export function places(where: readonly string[]): string {
  return where.length > 3
    ? `${where.slice(0, 3).join(', ')} and ${where.length - 3} more`
    : where.join(', ')
}

/** `in 4m 10s`, `3h 2m ago`, `now`. */
export function relative(seconds: number, nowSec: number): string {
  let d = Math.abs(seconds - nowSec)
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ]
  const out: string[] = []
  for (const [size, unit] of units) {
    if (d >= size && out.length < 2) {
      out.push(`${Math.floor(d / size)}${unit}`)
      d %= size
    }
  }
  if (out.length === 0) return 'now'
  const text = out.join(' ')
  return seconds >= nowSec ? `in ${text}` : `${text} ago`
}

/** The groups a token is for: those whose key claim names one of their credentials, else all. */
function groupsFor(groups: readonly VerifierGroup[], header: Json, claims: Json): VerifierGroup[] {
  const matching = groups.filter((g) => {
    try {
      selectCredential(g.config, header, claims)
      return true
    } catch {
      return false
    }
  })
  return matching.length > 0 ? matching : [...groups]
}

function verdictLine(a: Assessment): string {
  const refusal = a.refusal
  if (refusal?.code !== undefined) {
    const spec = CATALOGUE[refusal.code]
    const unchecked = a.verdicts
      .slice(0, a.verdicts.indexOf(refusal))
      .some((v) => v.check === 'signature' && v.status === 'skip')
    return `REFUSED: ${spec.status} ${refusal.code} (${spec.message}), at the ${refusal.check} check${unchecked ? ' (or earlier, at the signature not checked here)' : ''}`
  }
  const skipped = a.verdicts.filter((v) => v.status === 'skip')
  return skipped.length === 0
    ? 'PASSES every check'
    : `passes every check made here (${skipped.map((v) => `${v.check}: ${v.detail}`).join('; ')})`
}

export async function inspect(input: string, opts: InspectOpts, io: CliIO): Promise<number> {
  const { token, header, claims } = decodeForDisplay(input)
  const nowMs = io.now()
  const nowSec = Math.floor(nowMs / 1000)

  const checks: { where: readonly string[]; assessment: Assessment }[] = []
  if (opts.config !== undefined) {
    const settings = loadConsumerJwt(opts.config, io.env)
    for (const group of groupsFor(settings.groups, header, claims)) {
      const lookup = keyLookup(group, opts.fetch === true, { now: io.now })
      checks.push({
        where: group.where,
        assessment: await assess(token, group.config, nowMs, lookup),
      })
    }
  } else if (opts.fetch === true) {
    throw new CliError('--fetch needs --config: the JWKS URL comes from the credential', EXIT.USAGE)
  }
  const refused = checks.some((c) => c.assessment.refusal !== undefined)

  if (opts.json === true) {
    io.out(
      JSON.stringify(
        {
          header,
          claims,
          ...(opts.config === undefined
            ? {}
            : {
                checks: checks.map((c) => ({
                  consumer_jwt_on: c.where,
                  credential: c.assessment.credential?.key ?? null,
                  consumer: c.assessment.credential?.consumer ?? null,
                  verdicts: c.assessment.verdicts,
                  refusal:
                    c.assessment.refusal?.code === undefined
                      ? null
                      : {
                          code: c.assessment.refusal.code,
                          status: CATALOGUE[c.assessment.refusal.code].status,
                        },
                })),
              }),
        },
        null,
        2,
      ),
    )
    return refused ? EXIT.REFUSED : EXIT.OK
  }

  io.out(`header: ${JSON.stringify(header, null, 2)}`)
  io.out(`claims: ${JSON.stringify(claims, null, 2)}`)
  for (const name of ['iat', 'nbf', 'exp'] as const) {
    const v = claims[name]
    if (typeof v === 'number' && Number.isFinite(v))
      io.out(`${name}: ${new Date(v * 1000).toISOString()} (${relative(v, nowSec)})`)
  }
  if (typeof claims.exp === 'number' && typeof claims.iat === 'number')
    io.out(`lifetime: ${claims.exp - claims.iat} s`)
  if (opts.config === undefined) {
    io.out('(decoded, not verified; give --config kong.yml to see what consumer-jwt would say)')
    return EXIT.OK
  }
  for (const c of checks) {
    const many =
      c.where.length > 3
        ? `${c.where.slice(0, 3).join(', ')} and ${c.where.length - 3} more`
        : c.where.join(', ')
    io.out('')
    io.out(`consumer-jwt on ${many}:`)
    const width = Math.max(...c.assessment.verdicts.map((v) => v.check.length))
    for (const v of c.assessment.verdicts) {
      const mark = v.status === 'pass' ? 'pass' : v.status === 'fail' ? 'FAIL' : 'skip'
      io.out(
        `  ${mark}  ${v.check.padEnd(width)}  ${v.detail}${v.status === 'fail' && v.code !== undefined ? `  [${v.code}]` : ''}`,
      )
    }
    io.out(`  => ${verdictLine(c.assessment)}`)
  }
  io.out('(not checked here: revocation, see `revoke status`; the route scope rules)')
  return refused ? EXIT.REFUSED : EXIT.OK
}
