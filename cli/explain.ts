import type { Command } from 'commander'
import type { CliIO } from './common'
export function registerExplain(_program: Command, _io: CliIO): void {}
