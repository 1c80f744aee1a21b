import path from 'node:path'
import type { CliIO } from '../../../cli/common'
import { run } from '../../../cli/index'

export const ROOT = path.resolve(__dirname, '../../..')
export const KONG_YML = path.join(ROOT, 'kong.yml')
export const KONG_CONF = path.join(ROOT, 'docker/kong.conf')
export const BAD_KONG_YML = path.join(ROOT, 'spec/fixtures/policy/bad-kong.yml')

export interface CliRun {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** Runs the CLI in-process and captures what it prints. */
export async function cli(...args: string[]): Promise<CliRun> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIO = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: {},
    now: () => Date.now(),
  }
  const code = await run(args, io)
  return { code, out: out.join('\n'), err: err.join('\n') }
}
