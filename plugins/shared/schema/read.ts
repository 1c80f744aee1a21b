import { PluginError } from '../errors'
import { jsonText } from '../json'
import type { ElementField, KongField } from './kong-fields'
import { luaPattern } from './lua-pattern'

/**
 * Reads the config Kong sends (a msgpack-decoded table) field by field, with the type, default
 * and bounds (`one_of`, `between`, `gt`, `len_min`, `match`, `required`) taken from the Kong
 * field definition itself, so none of them is written twice. Kong checks the same bounds before
 * a config reaches the plugin server; reading them again here keeps a plugin whole when its
 * config comes from elsewhere (tests, the CLI, a consumer-jwt nested record) and gives every
 * value its TypeScript type.
 *
 * Unset is `undefined` or `null` (Kong sends null, or leaves a field out, when it has no
 * value): it reads as the field's default, as a refusal when the field is `required` and has no
 * default, and as `undefined` otherwise. Every refusal is `ERR_CONFIG_INVALID` with a detail
 * `<path>: <why>`, the path written as in kong.yml (`credentials[0].key`, `redis.url`).
 */

export type Raw = Readonly<Record<string, unknown>>
export type Fields = Readonly<Record<string, KongField>>

/** Words for the refusals of one field; the bounds themselves always come from the field. */
export interface Wording {
  /** One element of a list: "must list at least one method", `unknown method "GTE"; …`. */
  readonly noun?: string
  /** What the field's `match` pattern accepts: "must be a header name (letters, digits, -)". */
  readonly pattern?: string
  /** The refusal of a list element outside `one_of`, replacing `unknown <noun> "<value>"; …`. */
  readonly unknown?: (value: string) => string
}

type Base<F> = F extends { readonly type: 'string'; readonly one_of: readonly (infer U)[] }
  ? U
  : F extends { readonly type: 'string' }
    ? string
    : F extends { readonly type: 'integer' | 'number' }
      ? number
      : F extends { readonly type: 'boolean' }
        ? boolean
        : F extends { readonly type: 'array' | 'set'; readonly elements: infer E }
          ? readonly Base<E>[]
          : F extends { readonly type: 'record' | 'map' }
            ? Raw
            : never

/** The value a field reads as: never undefined when it has a default or is required. */
export type FieldValue<F> = F extends { readonly default: unknown }
  ? Base<F>
  : F extends { readonly required: true }
    ? Base<F>
    : Base<F> | undefined

/** `path: why` as ERR_CONFIG_INVALID, the shape of every config refusal. */
export function invalid(path: string, why: string): PluginError {
  return new PluginError('ERR_CONFIG_INVALID', `${path}: ${why}`)
}

export function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function unset(value: unknown): value is null | undefined {
  return value === undefined || value === null
}

const EMPTY_REFERENCE =
  'is empty: an unresolved vault reference? (Kong substitutes "" for a reference it cannot resolve)'

/** "strings", "integers", …: what a list holds, for "must be an array of strings". */
function plural(field: ElementField): string {
  return field.type === 'array' || field.type === 'set' ? 'arrays' : `${field.type}s`
}

function quote(value: unknown): string {
  return jsonText(value) ?? String(value)
}

/** A number field's refusal: the same words for a wrong type and a value out of bounds. */
function numberWhy(field: {
  readonly type: 'integer' | 'number'
  readonly between?: readonly [number, number]
  readonly gt?: number
}): string {
  const kind = field.type === 'integer' ? 'an integer' : 'a number'
  if (field.between !== undefined) {
    return `must be ${kind} between ${field.between[0]} and ${field.between[1]}`
  }
  if (field.gt !== undefined) return `must be ${kind} greater than ${field.gt}`
  return `must be ${kind}`
}

/**
 * Why a scalar `value` breaks `field`, or undefined. Strings, numbers and booleans only; lists
 * and records are read by the reader itself.
 */
function scalarWhy(
  field: ElementField | KongField,
  value: unknown,
  wording: Wording,
): string | undefined {
  switch (field.type) {
    case 'string': {
      if (typeof value !== 'string') return 'must be a string'
      if (value === '' && field.referenceable === true) return EMPTY_REFERENCE
      if (field.len_min !== undefined && value.length < field.len_min) {
        return field.len_min === 1
          ? 'must be a non-empty string'
          : `must be at least ${field.len_min} characters long`
      }
      if (field.one_of !== undefined && !field.one_of.includes(value)) {
        return `must be one of ${field.one_of.join(', ')}`
      }
      if (field.match !== undefined && !luaPattern(field.match).test(value)) {
        return wording.pattern !== undefined
          ? `must be ${wording.pattern}`
          : `must match the Lua pattern ${field.match}`
      }
      return undefined
    }
    case 'integer':
    case 'number': {
      const ok =
        typeof value === 'number' &&
        (field.type === 'integer' ? Number.isInteger(value) : Number.isFinite(value)) &&
        (field.between === undefined || (value >= field.between[0] && value <= field.between[1])) &&
        (field.gt === undefined || value > field.gt)
      return ok ? undefined : numberWhy(field)
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be a boolean'
    case 'array':
    case 'set':
    case 'map':
    case 'record':
      throw new Error(`scalarWhy: ${field.type} is not a scalar`)
  }
}

/** Why one scalar list element breaks `field`, said at the list's path (value quoted). */
function elementWhy(field: ElementField, value: unknown, wording: Wording): string | undefined {
  if (field.type !== 'string' || typeof value !== 'string') return scalarWhy(field, value, wording)
  if (field.len_min !== undefined && value.length < field.len_min) {
    return field.len_min === 1
      ? 'must be an array of non-empty strings'
      : `${quote(value)} is shorter than ${field.len_min} characters`
  }
  if (field.one_of !== undefined && !field.one_of.includes(value)) {
    return (
      wording.unknown?.(value) ??
      `unknown ${wording.noun ?? 'value'} ${quote(value)}; allowed: ${field.one_of.join(', ')}`
    )
  }
  if (field.match !== undefined && !luaPattern(field.match).test(value)) {
    return wording.pattern !== undefined
      ? `${quote(value)} is not ${wording.pattern}`
      : `${quote(value)} does not match the Lua pattern ${field.match}`
  }
  return undefined
}

/** A copy of a default, frozen, so no config can alter the schema it came from. */
function defaultOf(value: unknown): unknown {
  return Array.isArray(value) ? Object.freeze([...(value as unknown[])]) : value
}

/** The fields of one record of the config, read against its Kong field definitions. */
export class RecordReader<F extends Fields> {
  /**
   * @param raw the record as Kong sent it
   * @param fields its Kong field definitions (the object `recordOf`/`toKongSchema` list)
   * @param at the record's path: '' for the plugin config, `redis`, `credentials[0]`, …
   */
  constructor(
    readonly raw: Raw,
    readonly fields: F,
    readonly at: string,
  ) {}

  /** The path of a field of this record, as in kong.yml. */
  path(name: string): string {
    return this.at === '' ? name : `${this.at}.${name}`
  }

  /** ERR_CONFIG_INVALID naming a field of this record. */
  invalid(name: string, why: string): PluginError {
    return invalid(this.path(name), why)
  }

  /**
   * One field, typed and checked by its definition: the default (a frozen copy) when unset,
   * sets without duplicates, lists frozen. Lists of records come back as checked records (see
   * `records` to read them field by field).
   * @throws PluginError ERR_CONFIG_INVALID naming the field.
   */
  read<K extends keyof F & string>(name: K, wording: Wording = {}): FieldValue<F[K]> {
    const field: KongField = this.fields[name] as KongField
    const value = this.raw[name]
    if (unset(value)) {
      if ('default' in field && field.default !== undefined) {
        return defaultOf(field.default) as FieldValue<F[K]>
      }
      if (field.required === true) throw this.invalid(name, 'is required')
      return undefined as FieldValue<F[K]>
    }
    switch (field.type) {
      case 'array':
      case 'set':
        return this.#list(
          name,
          field.type,
          field.elements,
          field.len_min,
          value,
          wording,
        ) as FieldValue<F[K]>
      case 'record':
      case 'map':
        if (!isRecord(value)) throw this.invalid(name, `must be a ${field.type}`)
        return value as FieldValue<F[K]>
      case 'string':
      case 'integer':
      case 'number':
      case 'boolean': {
        const why = scalarWhy(field, value, wording)
        if (why !== undefined) throw this.invalid(name, why)
        return value as FieldValue<F[K]>
      }
    }
  }

  #list(
    name: string,
    type: 'array' | 'set',
    elements: ElementField,
    lenMin: number | undefined,
    value: unknown,
    wording: Wording,
  ): readonly unknown[] {
    const path = this.path(name)
    const ofWhat = `must be an array of ${plural(elements)}`
    if (!Array.isArray(value)) throw invalid(path, ofWhat)
    const items: unknown[] = []
    value.forEach((item: unknown, i) => {
      if (elements.type === 'record') {
        if (!isRecord(item)) throw invalid(`${path}[${i}]`, 'must be a record')
      } else if (elements.type === 'array' || elements.type === 'set') {
        if (!Array.isArray(item)) throw invalid(path, ofWhat)
      } else {
        if (typeof item !== (elements.type === 'integer' ? 'number' : elements.type)) {
          throw invalid(path, ofWhat)
        }
        const why = elementWhy(elements, item, wording)
        if (why !== undefined) throw invalid(path, why)
      }
      if (type === 'array' || typeof item === 'object' || !items.includes(item)) items.push(item)
    })
    if (lenMin !== undefined && items.length < lenMin) {
      const noun = wording.noun ?? 'element'
      throw invalid(
        path,
        `must list at least ${lenMin === 1 ? `one ${noun}` : `${lenMin} ${noun}s`}`,
      )
    }
    return Object.freeze(items)
  }

  /**
   * A list-of-records field, each record with a reader of its own (path `name[i]`). `fields` are
   * the definitions the field's `elements` were made from (`recordOf(fields)`).
   */
  records<E extends Fields>(
    name: keyof F & string,
    fields: E,
    wording: Wording = {},
  ): readonly RecordReader<E>[] {
    const field = this.fields[name] as KongField
    this.#sameFields(
      name,
      field.type === 'array' || field.type === 'set' ? field.elements : field,
      fields,
    )
    const list = this.read(name, wording) as readonly Raw[] | undefined
    return (list ?? []).map((item, i) => new RecordReader(item, fields, `${this.path(name)}[${i}]`))
  }

  /** A record field with a reader of its own (`fields` as given to `recordOf`); undefined when unset. */
  record<E extends Fields>(name: keyof F & string, fields: E): RecordReader<E> | undefined {
    this.#sameFields(name, this.fields[name] as KongField, fields)
    const value = this.read(name) as Raw | undefined
    return value === undefined ? undefined : new RecordReader(value, fields, this.path(name))
  }

  /** A wiring mistake (fields that are not the record's own) fails loudly, not as a config error. */
  #sameFields(name: string, record: KongField | ElementField, fields: Fields): void {
    const declared = record.type === 'record' ? record.fields.flatMap((f) => Object.keys(f)) : []
    if (declared.join() !== Object.keys(fields).join()) {
      throw new Error(`${this.path(name)}: read with fields other than the record it declares`)
    }
  }
}

/**
 * A reader for `raw`, which must be a record.
 * @param at the record's path ('' for the plugin config, which is then named `config`).
 * @throws PluginError ERR_CONFIG_INVALID `<at>: must be a record`.
 */
export function readRecord<F extends Fields>(raw: unknown, fields: F, at = ''): RecordReader<F> {
  if (!isRecord(raw)) throw invalid(at === '' ? 'config' : at, 'must be a record')
  return new RecordReader(raw, fields, at)
}
