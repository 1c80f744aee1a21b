/**
 * Where denials and internal errors are written. Kong runs each plugin server with
 * `ngx.pipe.spawn` and logs every line it prints at [info] with the prefix `[<name>:<pid>]`
 * (protocol doc §2.9), so a line on stderr lands in Kong's error log at no RPC cost: a
 * `kong.log.*` call would add a round trip to every refusal. stderr, not stdout: stdout must
 * stay clean JSON for `--dump-all-plugins`.
 */
export interface Logger {
  info(message: string): void
  warn(message: string): void
  error(message: string): void
}

export function stderrLogger(plugin: string): Logger {
  const write = (level: string, message: string): void => {
    process.stderr.write(`[${plugin}] ${level}: ${message.replace(/[\r\n]+/g, ' ')}\n`)
  }
  return {
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
  }
}
