import { Option, type Command } from 'commander'
import { explainRequest, ExplainError, type Explanation } from './policy/explain'
import { describeLoadError, loadPolicy, PolicyLoadError } from './policy/load'
import { CliError, EXIT, type CliIO } from './common'

/**
 * `kong-jwt-toolkit explain <kong.yml> --consumer … --method … --path …`: the route, the plugins
 * in the order Kong runs them, the scopes required and the verdict for one request, from
 * kong.yml alone (cli/policy/explain.ts). Sends nothing.
 */

export function formatExplanation(e: Explanation, file: string): string[] {
  const { request: r } = e
  const scopes = r.scopes.length === 0 ? 'none' : r.scopes.join(' ')
  const from = {
    option: 'from --scope',
    ceiling: "the consumer's scope_ceiling",
    none: 'no --scope and no scope_ceiling',
  }[r.scopesFrom]
  const lines = [
    `request   ${r.method} ${r.path}${r.host === undefined ? '' : ` (host ${r.host})`} as ${r.consumer}, token scopes: ${scopes} (${from})`,
  ]
  if (e.route === undefined) {
    lines.push('route     none')
  } else {
    const at =
      e.route.where === undefined
        ? ''
        : ` at ${e.route.where}${e.route.line === undefined ? '' : ` (${file}:${e.route.line})`}`
    lines.push(
      `route     ${e.route.name ?? e.route.id}${at}, service ${e.route.service ?? '(none)'}`,
    )
  }
  if (e.steps.length > 0) {
    lines.push('plugins   in the order Kong runs them:')
    const width = Math.max(...e.steps.map((s) => s.plugin.length))
    for (const s of e.steps) {
      lines.push(
        `  ${s.plugin.padEnd(width)}  ${String(s.priority ?? '?').padStart(5)}  ${s.bound.padEnd(7)}  ${s.outcome}`,
      )
      for (const n of s.notes) lines.push(`  ${' '.repeat(width)}         - ${n}`)
    }
  }
  if (e.required !== undefined) {
    lines.push(
      `required  ${e.required.match} of [${e.required.scopes.join(' ')}] (${e.required.by})`,
    )
  }
  const v = e.verdict
  lines.push(
    `verdict   ${v.status}${v.code === undefined ? '' : ` ${v.code}`} (${v.message}): ${v.reason}`,
  )
  return lines
}

interface ExplainOpts {
  consumer: string
  method: string
  path: string
  scope?: string[]
  host?: string
  format: 'text' | 'json'
}

export function registerExplain(program: Command, io: CliIO): void {
  program
    .command('explain')
    .description(
      'Explain what Kong would do with one request, from kong.yml alone (nothing is sent): the route, the plugins in order, the scopes required and the verdict with its reason code',
    )
    .argument('<kong.yml>', 'the declarative config (format 3.0)')
    .requiredOption('--consumer <name>', 'the consumer making the request (username or id)')
    .requiredOption('--method <method>', 'HTTP method, e.g. GET')
    .requiredOption('--path <path>', 'request path, e.g. /orders/1')
    .option(
      '--scope <scope...>',
      "the token's scopes (repeat or list several; default: the consumer's scope_ceiling)",
    )
    .option('--host <host>', 'Host header, for routes that match on hosts')
    .addOption(
      new Option('--format <format>', 'text for people, json for scripts')
        .choices(['text', 'json'])
        .default('text'),
    )
    .addHelpText(
      'after',
      `
The token is assumed to be validly signed and unexpired, and not revoked (Redis is not asked);
the decisions of consumer-jwt's scope ceiling and of the scope rules are the plugins' own code.
Exit codes: 0 explained (whatever the verdict); 2 the file cannot be read or loaded, or the
consumer is not declared.

Examples:
  kong-jwt-toolkit explain kong.yml --consumer partner-acme --method DELETE --path /orders/1
  kong-jwt-toolkit explain kong.yml --consumer web-app --method GET --path /orders --scope orders:read`,
    )
    .action((file: string, opts: ExplainOpts) => {
      let explanation: Explanation
      try {
        const scopes = opts.scope?.flatMap((s) => s.split(/[\s,]+/)).filter((s) => s !== '')
        explanation = explainRequest(loadPolicy(file), {
          consumer: opts.consumer,
          method: opts.method,
          path: opts.path,
          ...(opts.host !== undefined ? { host: opts.host } : {}),
          ...(scopes !== undefined ? { scopes } : {}),
        })
      } catch (error) {
        if (error instanceof PolicyLoadError) {
          throw new CliError(describeLoadError(error), EXIT.USAGE)
        }
        if (error instanceof ExplainError) throw new CliError(error.message, EXIT.USAGE)
        throw error
      }
      if (opts.format === 'json') io.out(JSON.stringify(explanation, null, 2))
      else for (const line of formatExplanation(explanation, file)) io.out(line)
    })
}
