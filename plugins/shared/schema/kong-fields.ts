/**
 * A typed subset of Kong's schema field DSL (kong/db/schema/metaschema.lua). The plugin
 * server wraps a plugin's `Schema` export as `config: {type: "record", fields: Schema}` and
 * Kong validates every request's config against it, so this is the schema language: Kong
 * checks types, defaults, one_of, between and required itself. Cross-field rules Kong cannot
 * see (no entity_checks through the plugin server) live in each plugin's parseConfig.
 */
interface FieldBase {
  /** Kong requires 10 to 500 characters; the README config reference is generated from these. */
  readonly description: string
  readonly required?: boolean
  readonly referenceable?: boolean
  readonly encrypted?: boolean
}

export interface StringField extends FieldBase {
  readonly type: 'string'
  readonly default?: string
  readonly one_of?: readonly string[]
  readonly len_min?: number
  readonly match?: string
}
export interface IntegerField extends FieldBase {
  readonly type: 'integer'
  readonly default?: number
  readonly between?: readonly [number, number]
  readonly gt?: number
}
export interface NumberField extends FieldBase {
  readonly type: 'number'
  readonly default?: number
  readonly between?: readonly [number, number]
  readonly gt?: number
}
export interface BooleanField extends FieldBase {
  readonly type: 'boolean'
  readonly default?: boolean
}
export interface ArrayField extends FieldBase {
  readonly type: 'array' | 'set'
  readonly elements: ElementField
  readonly default?: readonly unknown[]
  readonly len_min?: number
}
export interface MapField extends FieldBase {
  readonly type: 'map'
  readonly keys: ElementField
  readonly values: ElementField
  readonly default?: Readonly<Record<string, unknown>>
}
export interface RecordField extends FieldBase {
  readonly type: 'record'
  readonly fields: readonly Readonly<Record<string, KongField>>[]
}

/** Elements of arrays and maps carry no description in Kong's DSL. */
export type ElementField =
  | Omit<StringField, 'description'>
  | Omit<IntegerField, 'description'>
  | Omit<NumberField, 'description'>
  | Omit<BooleanField, 'description'>
  | (Omit<RecordField, 'description'> & { readonly description?: string })
  | (Omit<ArrayField, 'description'> & { readonly description?: string })

export type KongField =
  StringField | IntegerField | NumberField | BooleanField | ArrayField | MapField | RecordField

/** Kong's list form: `[{name: field}, ...]`, in declaration order. */
export type KongSchema = readonly Readonly<Record<string, KongField>>[]

export function toKongSchema(fields: Readonly<Record<string, KongField>>): KongSchema {
  return Object.entries(fields).map(([name, field]) => ({ [name]: field }))
}

export function recordOf(
  fields: Readonly<Record<string, KongField>>,
): readonly Readonly<Record<string, KongField>>[] {
  return toKongSchema(fields)
}

/**
 * A copy of record fields with no `default` and no `required`, down through nested records
 * (not into array elements, which only exist when written). Kong fills a record field even when
 * it was not configured (recordings F7), with its fields' defaults: an optional nested setting
 * whose fields have none arrives as `{}` when unset, so any value in it was written by the
 * operator. The parser then applies the defaults itself.
 */
export function withoutDefaults<F extends Readonly<Record<string, KongField>>>(fields: F): F {
  const strip = (field: KongField): KongField => {
    const {
      default: _default,
      required: _required,
      ...rest
    } = field as KongField & {
      default?: unknown
    }
    if (rest.type !== 'record') return rest
    return {
      ...rest,
      fields: rest.fields.map((entry) =>
        Object.fromEntries(Object.entries(entry).map(([name, f]) => [name, strip(f)])),
      ),
    }
  }
  return Object.fromEntries(
    Object.entries(fields).map(([name, field]) => [name, strip(field)]),
  ) as unknown as F
}

/** Whether a config value says nothing: null, absent, or a record of such values only. */
export function isUnset(value: unknown): boolean {
  if (value === undefined || value === null) return true
  if (typeof value !== 'object' || Array.isArray(value)) return false
  return Object.values(value).every(isUnset)
}

/** Every plugin's `log_refusals` setting (plugins/shared/refusal-log.ts). */
export const logRefusalsField = {
  type: 'string',
  default: 'summary',
  one_of: ['summary', 'every'],
  required: true,
  description:
    "How refusals reach Kong's log (through the plugin server's stderr, at [info]): summary writes one line per minute with counts per code and one example each; every writes a line per refusal with its detail.",
} as const satisfies StringField
