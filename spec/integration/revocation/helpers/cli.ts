import type { CliIO } from '../../../../cli/common'
import { run } from '../../../../cli/index'

/** The revocation CLI in-process against `redisUrl`, quiet; resolves to its exit code. */
export function quietCli(
  redisUrl: string,
  keyPrefix?: string,
): (...args: string[]) => Promise<number> {
  const io: CliIO = {
    out: () => undefined,
    err: () => undefined,
    env: { REDIS_URL: redisUrl },
    now: () => Date.now(),
  }
  return (...args) => run(keyPrefix === undefined ? args : [...args, '--key-prefix', keyPrefix], io)
}
