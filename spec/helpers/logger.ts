import type { Logger } from '../../plugins/shared/logger'

/** Collects log lines so tests can assert that a detail went to the log (and not the client). */
export class MemoryLogger implements Logger {
  readonly lines: { level: 'info' | 'warn' | 'error'; message: string }[] = []
  info(message: string): void {
    this.lines.push({ level: 'info', message })
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message })
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message })
  }
  text(): string {
    return this.lines.map((l) => `${l.level}: ${l.message}`).join('\n')
  }
}
