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

/**
 * The revocation CLI in-process with connection options instead of a URL (`--sentinel …`,
 * `--cluster-node …`), quiet, with no REDIS_* in its environment.
 */
export function quietCliVia(
  connection: readonly string[],
  keyPrefix: string,
): (...args: string[]) => Promise<number> {
  const io: CliIO = { out: () => undefined, err: () => undefined, env: {}, now: () => Date.now() }
  return (...args) => run([...args, ...connection, '--key-prefix', keyPrefix], io)
}
