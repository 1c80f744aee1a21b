/**
 * Loads a kong.yml (declarative 3.0) for the policy commands, keeping where everything was
 * written: every entity and every config value can be named by a path in the file
 * (`services[0].routes[2].plugins[0].config.scopes.default_rule`) and located at a line.
 *
 * The YAML is read the way Kong reads it (cli/kong/declarative-config.ts: anchors, aliases and
 * `<<` merge keys resolved) and the entities are built by the same code the emulator uses.
 */
import { readFileSync } from 'node:fs'
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  YAMLError,
  type Document,
  type Node as YamlNode,
} from 'yaml'
import {
  buildConfig,
  ConfigError,
  kongYamlValue,
  parseKongYamlDocument,
  type ConsumerEntity,
  type DeclarativeConfig,
  type EntitySources,
  type PluginEntity,
  type RouteEntity,
  type ServiceEntity,
} from '../kong/declarative-config'
import { isPlainObject } from '../kong/values'

/** 1-based line and column, as editors show them. */
export interface Position {
  readonly line: number
  readonly column: number
}

/** A kong.yml that cannot be loaded at all: missing, unreadable, not YAML, not a Kong config. */
export class PolicyLoadError extends Error {
  override readonly name = 'PolicyLoadError'
  constructor(
    message: string,
    readonly file: string,
    /** Where in the file, when known. */
    readonly position?: Position,
    /** The path of the entity at fault, when known. */
    readonly path?: string,
    /** False for a file that is missing or unreadable, true for one whose content is wrong. */
    readonly inFile = true,
  ) {
    super(message)
  }
}

/** One plugin configuration as written in the file, with the entities it is bound to. */
export interface PluginUse {
  /** Path of the plugin entity, e.g. `services[0].routes[1].plugins[0]`. */
  readonly where: string
  readonly entity: PluginEntity
  readonly route?: RouteEntity
  readonly service?: ServiceEntity
  readonly consumer?: ConsumerEntity
}

export interface LoadedPolicy {
  readonly file: string
  readonly config: DeclarativeConfig
  readonly sources: EntitySources
  readonly plugins: readonly PluginUse[]
  /** Where a path of the file was written (the deepest part of it that exists). */
  locate(path: string): Position | undefined
  /** The path of a route, service or consumer entity. */
  whereOf(entity: RouteEntity | ServiceEntity | ConsumerEntity): string | undefined
}

type Segment = string | number

/** `a.b[0].c` → ['a', 'b', 0, 'c']. */
export function pathSegments(path: string): Segment[] {
  const out: Segment[] = []
  for (const part of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part)
    if (m === null) {
      out.push(part)
      continue
    }
    if (m[1] !== undefined && m[1] !== '') out.push(m[1])
    for (const idx of (m[2] ?? '').matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]))
  }
  return out
}

/** ['a', 'b', 0, 'c'] → `a.b[0].c`. */
export function joinPath(base: string, ...segments: Segment[]): string {
  let out = base
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`
    else if (s !== '') out += out === '' ? s : `.${s}`
  }
  return out
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && (key.value === '<<' || key.source === '<<')
}

/**
 * The node holding `key` in a YAML map, following `<<` merges (explicit keys win, then the
 * merged maps in order, as YAML 1.1 and Kong's lyaml do). Returns the key node and value node.
 */
function mapEntry(
  doc: Document,
  node: YamlNode,
  key: string,
  depth = 0,
): { key: YamlNode | undefined; value: YamlNode | undefined } | undefined {
  if (depth > 32 || !isMap(node)) return undefined
  const merges: YamlNode[] = []
  for (const pair of node.items) {
    if (!isPair(pair)) continue
    if (isMergeKey(pair.key)) {
      if (pair.value !== null) merges.push(pair.value as YamlNode)
      continue
    }
    const k = isScalar(pair.key) ? pair.key.value : pair.key
    if (String(k) === key) {
      return {
        key: pair.key as YamlNode | undefined,
        value: (pair.value ?? undefined) as YamlNode | undefined,
      }
    }
  }
  for (const m of merges) {
    const sources = isSeq(m) ? (m.items as YamlNode[]) : [m]
    for (const source of sources) {
      const found = mapEntry(doc, resolve(doc, source), key, depth + 1)
      if (found !== undefined) return found
    }
  }
  return undefined
}

function resolve(doc: Document, node: YamlNode): YamlNode {
  let n: YamlNode | undefined = node
  for (let i = 0; i < 32 && n !== undefined && isAlias(n); i++) n = n.resolve(doc)
  return n ?? node
}

function nodeStart(node: YamlNode | undefined): number | undefined {
  return node?.range?.[0]
}

/** Builds the locator of one parsed document. */
function locator(doc: Document, lines: LineCounter): (path: string) => Position | undefined {
  const toPosition = (offset: number): Position => {
    const { line, col } = lines.linePos(offset)
    return { line, column: col }
  }
  return (path) => {
    let node = doc.contents
    if (node === null) return undefined
    let best = nodeStart(node)
    for (const seg of pathSegments(path)) {
      node = resolve(doc, node)
      if (typeof seg === 'number') {
        if (!isSeq(node)) break
        const item = node.items[seg] as YamlNode | undefined
        if (item === undefined) break
        node = item
        best = nodeStart(item) ?? best
      } else {
        const entry = mapEntry(doc, node, seg)
        if (entry === undefined) break
        // The key's line: where `secret:` is written, even when its value is on the next line.
        best = nodeStart(entry.key) ?? nodeStart(entry.value) ?? best
        if (entry.value === undefined) break
        node = entry.value
      }
    }
    return best === undefined ? undefined : toPosition(best)
  }
}

/** The path a ConfigError message starts with (`services[0].routes[1].paths: …`). */
function configErrorPath(message: string): string | undefined {
  const m = /^([A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*)(?::|\s)/.exec(message)
  if (m === null || m[1] === undefined) return undefined
  const unknown = /: unknown field '([^']+)'/.exec(message)
  const path = m[1] === 'declarative' ? '' : m[1]
  return unknown?.[1] !== undefined ? joinPath(path, unknown[1]) : path
}

/** Parses kong.yml text; `file` names it in messages. */
export function parsePolicy(text: string, file: string): LoadedPolicy {
  const lines = new LineCounter()
  let doc: Document
  try {
    doc = parseKongYamlDocument(text, lines)
  } catch (error) {
    if (error instanceof YAMLError) {
      const pos = error.linePos?.[0]
      const first = error.message.split('\n')[0] ?? error.message
      throw new PolicyLoadError(
        `invalid YAML: ${first.replace(/ at line \d+, column \d+:?$/, '')}`,
        file,
        pos === undefined ? undefined : { line: pos.line, column: pos.col },
      )
    }
    throw error
  }
  const locate = locator(doc, lines)
  const value = kongYamlValue(doc)
  if (!isPlainObject(value)) {
    throw new PolicyLoadError(
      'not a Kong declarative configuration (expected a map with _format_version: "3.0")',
      file,
      { line: 1, column: 1 },
    )
  }
  let config: DeclarativeConfig
  try {
    config = buildConfig(value, Math.floor(Date.now() / 1000))
  } catch (error) {
    if (error instanceof ConfigError) {
      const path = configErrorPath(error.message)
      throw new PolicyLoadError(
        error.message,
        file,
        path === undefined ? undefined : locate(path),
        path,
      )
    }
    throw error
  }
  const sources = config.sources ?? {
    services: [],
    routes: [],
    consumers: [],
    plugins: [],
    acls: [],
  }
  const plugins = config.plugins.map((entity, i): PluginUse => {
    const route = config.routes.find((r) => r.id === entity.route?.id)
    const service = config.services.find((s) => s.id === entity.service?.id)
    const consumer = config.consumers.find((c) => c.id === entity.consumer?.id)
    return {
      where: sources.plugins[i] ?? `plugins[${i}]`,
      entity,
      ...(route ? { route } : {}),
      ...(service ? { service } : {}),
      ...(consumer ? { consumer } : {}),
    }
  })
  const whereOf = (entity: RouteEntity | ServiceEntity | ConsumerEntity): string | undefined => {
    const r = config.routes.indexOf(entity as RouteEntity)
    if (r !== -1) return sources.routes[r]
    const s = config.services.indexOf(entity as ServiceEntity)
    if (s !== -1) return sources.services[s]
    const c = config.consumers.indexOf(entity)
    return c === -1 ? undefined : sources.consumers[c]
  }
  return { file, config, sources, plugins, locate, whereOf }
}

/**
 * The text of a file a policy command reads (`what` names the kind in the message); a missing or
 * unreadable file is a PolicyLoadError that is not `inFile`.
 */
export function readPolicyFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new PolicyLoadError(
      code === 'ENOENT'
        ? `${file}: no such file`
        : code === 'EISDIR'
          ? `${file}: is a directory, not a ${what}`
          : `${file}: cannot read (${(error as Error).message})`,
      file,
      undefined,
      undefined,
      false,
    )
  }
}

/** Reads and parses a kong.yml file. */
export function loadPolicy(file: string): LoadedPolicy {
  return parsePolicy(readPolicyFile(file, 'kong.yml'), file)
}

/**
 * What a command prints for a PolicyLoadError: the message, after `file:line:column` when the
 * fault is in the file's content.
 */
export function describeLoadError(error: PolicyLoadError): string {
  return error.inFile
    ? `${formatLocation(error.file, error.position)}: ${error.message}`
    : error.message
}

/** `file:line:column`, or just the file. */
export function formatLocation(file: string, position: Position | undefined): string {
  return position === undefined ? file : `${file}:${position.line}:${position.column}`
}
