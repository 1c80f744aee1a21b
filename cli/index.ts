#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { VERSION } from '../plugins/shared/version'
import { CliError, EXIT, type CliIO } from './common'
import { registerCheck } from './check'
import { registerExplain } from './explain'
import { registerKeys } from './keys'
import { registerRevoke } from './revoke'
import { registerToken } from './token'

/**
 * The project's CLI, `kong-jwt-toolkit`. Each command group lives in its own file and adds
 * itself with a `register<Group>(program, io)` function: cli/revoke.ts, cli/token.ts,
 * cli/keys.ts, cli/check.ts and cli/explain.ts (the last two on the kong.yml loader and checks
 * of cli/policy/).
 * Exit codes are listed in cli/common.ts.
 */
export function buildProgram(io: CliIO): Command {
  const program = new Command('kong-jwt-toolkit')
    .description('Tools for the kong-jwt-toolkit plugins')
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    })
  registerRevoke(program, io)
  registerToken(program, io)
  registerKeys(program, io)
  registerCheck(program, io)
  registerExplain(program, io)
  return program
}

/** Runs one command line (without the `node script` prefix) and resolves to its exit code. */
export async function run(args: readonly string[], io: CliIO): Promise<number> {
  const program = buildProgram(io)
  let code: number = EXIT.OK
  program.hook('postAction', (_this, action) => {
    const c: unknown = action.getOptionValue('__exitCode')
    if (typeof c === 'number') code = c
  })
  try {
    await program.parseAsync([...args], { from: 'user' })
    return code
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`error: ${error.message}`)
      return error.exitCode
    }
    if (error instanceof CommanderError) {
      // --help and --version end with exit code 0; everything else commander reports is usage.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE
    }
    io.err(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    return EXIT.UNAVAILABLE
  }
}

export { CliError, EXIT, type CliIO }

let stdoutClosed = false

export const processIO: CliIO = {
  out: (line) => {
    if (!stdoutClosed) process.stdout.write(`${line}\n`)
  },
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  now: () => Date.now(),
}

if (require.main === module) {
  // `check kong.yml | head`: a reader that stops early is not an error; the rest is dropped.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error
    stdoutClosed = true
  })
  run(process.argv.slice(2), processIO).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      process.stderr.write(`error: ${String(error)}\n`)
      process.exitCode = EXIT.UNAVAILABLE
    },
  )
}
