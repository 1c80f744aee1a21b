/**
 * The plugin settings of a kong.conf: which plugins Kong loads (`plugins =`), which plugin
 * servers it starts (`pluginserver_names =`) and each server's `pluginserver_<name>_*` lines
 * (`-` in a plugin name is `_` in the setting key). Format as Kong reads it: `key = value`
 * lines, `#` starts a comment (`\#` is a literal #), keys case-insensitive.
 */
import { PolicyLoadError, readPolicyFile } from './load'

export interface KongConfSetting {
  readonly value: string
  readonly line: number
}

export interface KongConf {
  readonly file: string
  readonly settings: ReadonlyMap<string, KongConfSetting>
}

export function parseKongConf(text: string, file: string): KongConf {
  const settings = new Map<string, KongConfSetting>()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw
      .replace(/(?<!\\)#.*$/, '')
      .replace(/\\#/g, '#')
      .trim()
    if (line === '') return
    const eq = line.indexOf('=')
    if (eq <= 0) {
      throw new PolicyLoadError(`not a "key = value" line: ${raw.trim()}`, file, {
        line: i + 1,
        column: 1,
      })
    }
    settings.set(line.slice(0, eq).trim().toLowerCase(), {
      value: line.slice(eq + 1).trim(),
      line: i + 1,
    })
  })
  return { file, settings }
}

export function loadKongConf(file: string): KongConf {
  return parseKongConf(readPolicyFile(file, 'kong.conf'), file)
}

function list(conf: KongConf, key: string): { names: readonly string[]; line?: number } {
  const s = conf.settings.get(key)
  if (s === undefined) return { names: [] }
  return {
    names: s.value
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== ''),
    line: s.line,
  }
}

/** Why Kong, started with this kong.conf, would not run `plugin`; undefined when it would. */
export function missingDeclaration(
  conf: KongConf,
  plugin: string,
  /** bundled: one of Kong's; plugin-server: one of ours; other: a custom (Lua) plugin. */
  kind: 'bundled' | 'plugin-server' | 'other',
): string | undefined {
  const plugins = conf.settings.has('plugins') ? list(conf, 'plugins') : { names: ['bundled'] }
  const at = (line: number | undefined) => (line === undefined ? '' : ` (${conf.file}:${line})`)
  if (kind === 'bundled') {
    if (plugins.names.includes(plugin) || plugins.names.includes('bundled')) return undefined
    return `plugin ${plugin} is bundled with Kong but not loaded: plugins = ${plugins.names.join(',')}${at(plugins.line)} lists neither it nor "bundled"`
  }
  if (!plugins.names.includes(plugin)) {
    return conf.settings.has('plugins')
      ? `plugin ${plugin} is not in plugins = ${plugins.names.join(',')}${at(plugins.line)}: Kong refuses the config`
      : `plugin ${plugin} is not loaded: ${conf.file} has no "plugins =" line (Kong's default is bundled only)`
  }
  if (kind === 'other') return undefined
  const servers = list(conf, 'pluginserver_names')
  if (!servers.names.includes(plugin)) {
    return `plugin ${plugin} has no plugin server: pluginserver_names${servers.line === undefined ? ' is not set' : ` = ${servers.names.join(',')}${at(servers.line)} does not list it`}`
  }
  const key = plugin.replace(/-/g, '_')
  const missing = ['socket', 'start_cmd', 'query_cmd']
    .map((s) => `pluginserver_${key}_${s}`)
    .filter((k) => !conf.settings.has(k))
  if (missing.length > 0) {
    return `plugin server ${plugin} is not fully declared: ${missing.join(', ')} missing in ${conf.file} (Kong would fall back to its default paths, not this toolkit's)`
  }
  return undefined
}
