/**
 * What every command group of the CLI shares.
 *
 * Exit codes:
 *   0  done (for `revoke status`: not revoked)
 *   1  `revoke status`: the token is revoked; `token inspect --config`: consumer-jwt would refuse it;
 *      `check`: the kong.yml has errors
 *   2  usage: a bad option, a token that cannot be decoded, a time that cannot be read, a
 *      file that cannot be read (`check`, `explain`), a consumer kong.yml does not declare
 *   3  the backend (Redis) is unavailable or failed the command; a write was not confirmed
 */
export const EXIT = {
  OK: 0,
  REVOKED: 1,
  REFUSED: 1,
  POLICY_ERRORS: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
} as const

/** Where a command writes, and what it reads from the environment: injectable for tests. */
export interface CliIO {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  readonly env: NodeJS.ProcessEnv
  /** Milliseconds since the epoch. */
  readonly now: () => number
}

/** An expected failure: its message is printed as is, and the process exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
    this.name = 'CliError'
  }
}
