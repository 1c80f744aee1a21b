/**
 * Kong's schema processing for an external plugin's `config`, from the dumped Schema
 * (doc §2.8; FINDINGS F7): defaults filled, records filled even when not configured, fields with
 * no default and no value left ABSENT (not null), integers kept integral; validation errors for
 * unknown fields, missing required fields, wrong types, one_of, between, len_min/len_max, elements,
 * keys/values and nested records.
 *
 * Not emulated (marked in README): `match*` Lua patterns, `custom_validator`, entity_checks,
 * shorthand_fields.
 */
import { isPlainObject } from './values'

export interface FieldDef {
  readonly type: string
  readonly default?: unknown
  readonly required?: boolean
  readonly one_of?: readonly unknown[]
  readonly between?: readonly [number, number]
  readonly gt?: number
  readonly len_min?: number
  readonly len_max?: number
  readonly len_eq?: number
  readonly elements?: FieldDef
  readonly keys?: FieldDef
  readonly values?: FieldDef
  readonly fields?: readonly SchemaField[]
  readonly referenceable?: boolean
  readonly [attr: string]: unknown
}

/** One entry of a Kong field list: `{ <name>: FieldDef }`. */
export type SchemaField = Readonly<Record<string, FieldDef>>

export type ValueResolver = (value: string, field: FieldDef) => string

export class SchemaError extends Error {
  override readonly name = 'SchemaError'
  constructor(readonly errors: Readonly<Record<string, string>>) {
    super(
      Object.entries(errors)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; '),
    )
  }
}

function entriesOf(fields: readonly SchemaField[]): Array<[string, FieldDef]> {
  const out: Array<[string, FieldDef]> = []
  for (const f of fields) {
    for (const [name, def] of Object.entries(f)) out.push([name, def])
  }
  return out
}

/** The `config` record of a dumped plugin Schema. */
export function configFields(schema: {
  readonly fields: readonly SchemaField[]
}): readonly SchemaField[] {
  for (const [name, def] of entriesOf(schema.fields)) {
    if (name === 'config' && def.type === 'record') return def.fields ?? []
  }
  return []
}

function clone(v: unknown): unknown {
  return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as unknown)
}

/**
 * Validates `input` against a record's fields and returns the processed value.
 * @throws SchemaError with one message per failing path (Kong reports all of them).
 */
export function processConfig(
  fields: readonly SchemaField[],
  input: unknown,
  resolve?: ValueResolver,
): Record<string, unknown> {
  const errors: Record<string, string> = {}
  const out = processRecord(fields, input ?? {}, '', errors, resolve)
  if (Object.keys(errors).length > 0) throw new SchemaError(errors)
  return out ?? {}
}

function processRecord(
  fields: readonly SchemaField[],
  input: unknown,
  at: string,
  errors: Record<string, string>,
  resolve?: ValueResolver,
): Record<string, unknown> | undefined {
  if (!isPlainObject(input)) {
    errors[at || 'config'] = 'expected a record'
    return undefined
  }
  const defs = entriesOf(fields)
  const known = new Set(defs.map(([n]) => n))
  for (const k of Object.keys(input)) {
    if (!known.has(k)) errors[join(at, k)] = 'unknown field'
  }
  const out: Record<string, unknown> = {}
  for (const [name, def] of defs) {
    const v = processField(def, input[name], join(at, name), errors, resolve)
    if (v !== undefined) out[name] = v
  }
  return out
}

function join(at: string, k: string | number): string {
  return at === '' ? String(k) : `${at}.${k}`
}

function processField(
  def: FieldDef,
  raw: unknown,
  at: string,
  errors: Record<string, string>,
  resolve?: ValueResolver,
): unknown {
  let value = raw === null ? undefined : raw
  if (value === undefined) {
    if (def.default !== undefined && def.default !== null) value = clone(def.default) ?? undefined
    else if (def.type === 'record') value = {}
    else {
      if (def.required === true) errors[at] = 'required field missing'
      return undefined
    }
  }
  if (
    typeof value === 'string' &&
    def.referenceable === true &&
    resolve &&
    value.startsWith('{vault://')
  ) {
    value = resolve(value, def)
  }
  return checkType(def, value, at, errors, resolve)
}

function checkType(
  def: FieldDef,
  value: unknown,
  at: string,
  errors: Record<string, string>,
  resolve?: ValueResolver,
): unknown {
  switch (def.type) {
    case 'string': {
      if (typeof value !== 'string') {
        fail(errors, at, 'expected a string')
        return undefined
      }
      if (def.len_min !== undefined && value.length < def.len_min) {
        fail(errors, at, `length must be at least ${def.len_min}`)
        return undefined
      }
      if (def.len_max !== undefined && value.length > def.len_max) {
        fail(errors, at, `length must be at most ${def.len_max}`)
        return undefined
      }
      if (def.len_eq !== undefined && value.length !== def.len_eq) {
        fail(errors, at, `length must be ${def.len_eq}`)
        return undefined
      }
      break
    }
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        fail(errors, at, 'expected a number')
        return undefined
      }
      break
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        fail(errors, at, 'expected an integer')
        return undefined
      }
      break
    case 'boolean':
      if (typeof value !== 'boolean') {
        fail(errors, at, 'expected a boolean')
        return undefined
      }
      break
    case 'array':
    case 'set': {
      if (!Array.isArray(value)) {
        fail(errors, at, def.type === 'set' ? 'expected a set' : 'expected an array')
        return undefined
      }
      if (def.len_min !== undefined && value.length < def.len_min) {
        fail(errors, at, `length must be at least ${def.len_min}`)
        return undefined
      }
      if (def.len_max !== undefined && value.length > def.len_max) {
        fail(errors, at, `length must be at most ${def.len_max}`)
        return undefined
      }
      const el = def.elements
      const items = el
        ? value.map((v, i) => checkElement(el, v, join(at, i + 1), errors, resolve))
        : value
      return def.type === 'set'
        ? [...new Set(items.map((v) => JSON.stringify(v)))].map((s) => JSON.parse(s) as unknown)
        : items
    }
    case 'map': {
      if (!isPlainObject(value)) {
        fail(errors, at, 'expected a map')
        return undefined
      }
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value)) {
        if (def.keys) checkType(def.keys, k, join(at, k), errors, resolve)
        out[k] = def.values ? checkElement(def.values, v, join(at, k), errors, resolve) : v
      }
      return out
    }
    case 'record':
      return processRecord(def.fields ?? [], value, at, errors, resolve)
    case 'json':
      return value
    default: {
      fail(errors, at, `unsupported field type '${def.type}'`)
      return undefined
    }
  }
  if (def.one_of && !def.one_of.includes(value)) {
    fail(errors, at, `expected one of: ${def.one_of.map(String).join(', ')}`)
    return undefined
  }
  if (def.between && typeof value === 'number') {
    const [lo, hi] = def.between
    if (value < lo || value > hi) {
      fail(errors, at, `value should be between ${lo} and ${hi}`)
      return undefined
    }
  }
  if (def.gt !== undefined && typeof value === 'number' && !(value > def.gt)) {
    fail(errors, at, `value must be greater than ${def.gt}`)
    return undefined
  }
  return value
}

function checkElement(
  def: FieldDef,
  v: unknown,
  at: string,
  errors: Record<string, string>,
  resolve?: ValueResolver,
): unknown {
  if (v === null || v === undefined) {
    fail(errors, at, 'required field missing')
    return undefined
  }
  const value =
    typeof v === 'string' && def.referenceable === true && resolve && v.startsWith('{vault://')
      ? resolve(v, def)
      : v
  return checkType(def, value, at, errors, resolve)
}

/** Records a refusal at `at`; the caller then drops the value (returns undefined). */
function fail(errors: Record<string, string>, at: string, msg: string): void {
  errors[at] = msg
}
