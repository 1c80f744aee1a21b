import { Option, type Command } from 'commander'
import { checkFile, FINDINGS, type CheckReport, type Finding } from './policy/check'
import { loadKongConf } from './policy/kong-conf'
import { describeLoadError, PolicyLoadError } from './policy/load'
import { CliError, EXIT, type CliIO } from './common'

/**
 * `kong-jwt-toolkit check <kong.yml>`: the policy findings of a kong.yml (cli/policy/check.ts),
 * as text for people or JSON for CI. Exit 1 when there is an error, 0 otherwise (warnings and
 * notes included), 2 when the files cannot be read.
 */

function location(report: CheckReport, f: Finding): string {
  if (f.line === undefined) return report.file
  return `${report.file}:${f.line}:${f.column ?? 1}`
}

export function formatText(report: CheckReport): string[] {
  const lines: string[] = []
  for (const f of report.findings) {
    lines.push(
      `${location(report, f)}  ${f.severity} ${f.code}  at ${f.path === '' ? '(top)' : f.path}`,
    )
    lines.push(`  ${f.message}`)
  }
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`
  lines.push(
    `${report.file}: ${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}, ${plural(report.infos, 'note')}`,
  )
  return lines
}

function findingList(): string {
  const width = Math.max(...Object.keys(FINDINGS).map((k) => k.length))
  return Object.entries(FINDINGS)
    .map(([code, [severity, what]]) => `  ${code.padEnd(width)}  ${severity.padEnd(7)}  ${what}`)
    .join('\n')
}

export function registerCheck(program: Command, io: CliIO): void {
  program
    .command('check')
    .description(
      'Check a kong.yml before it ships: plugin configs as the plugins parse them, consumers, keys and secrets, unauthenticated routes, the acl guard, scope rules and ceilings',
    )
    .argument('<kong.yml>', 'the declarative config (format 3.0) to check')
    .option(
      '--kong-conf <file>',
      'also check that kong.conf loads every plugin the file uses (plugins =, pluginserver_names, pluginserver_<name>_*)',
    )
    .addOption(
      new Option('--format <format>', 'text for people, json for CI')
        .choices(['text', 'json'])
        .default('text'),
    )
    .addHelpText(
      'after',
      `
Exit codes: 0 no errors (warnings and notes allowed), 1 errors found, 2 a file cannot be read.

Findings:
${findingList()}

Examples:
  kong-jwt-toolkit check kong.yml
  kong-jwt-toolkit check kong.yml --kong-conf docker/kong.conf --format json`,
    )
    .action((file: string, opts: { kongConf?: string; format: 'text' | 'json' }, cmd: Command) => {
      let report: CheckReport
      try {
        const kongConf = opts.kongConf === undefined ? undefined : loadKongConf(opts.kongConf)
        report = checkFile(file, kongConf === undefined ? {} : { kongConf })
      } catch (error) {
        if (error instanceof PolicyLoadError) {
          throw new CliError(describeLoadError(error), EXIT.USAGE)
        }
        throw error
      }
      if (opts.format === 'json') io.out(JSON.stringify(report, null, 2))
      else for (const line of formatText(report)) io.out(line)
      cmd.setOptionValue('__exitCode', report.errors > 0 ? EXIT.POLICY_ERRORS : EXIT.OK)
    })
}
