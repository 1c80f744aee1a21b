import { describe, expect, it } from '@jest/globals'
import { isPluginError } from '../../../../../plugins/shared/errors'
import { recordOf, type KongField } from '../../../../../plugins/shared/schema/kong-fields'
import { readRecord } from '../../../../../plugins/shared/schema/read'

/** A small schema exercising every attribute the reader takes from a field. */
const itemFields = {
  name: { type: 'string', required: true, len_min: 1, description: 'Name of the item.' },
  tags: {
    type: 'set',
    elements: { type: 'string', len_min: 1 },
    default: [],
    description: 'Tags of the item.',
  },
} as const satisfies Record<string, KongField>

const fields = {
  mode: {
    type: 'string',
    default: 'fast',
    one_of: ['fast', 'safe'],
    required: true,
    description: 'A string with one_of and a default.',
  },
  label: { type: 'string', description: 'An optional string without default.' },
  code: { type: 'string', len_min: 3, description: 'A string at least 3 long.' },
  host: {
    type: 'string',
    match: '^[%w%-]+$',
    description: 'A string with a Lua pattern.',
  },
  url: {
    type: 'string',
    referenceable: true,
    default: 'redis://127.0.0.1:6379',
    description: 'A referenceable string with a default.',
  },
  timeout: {
    type: 'integer',
    default: 250,
    between: [10, 5000],
    required: true,
    description: 'An integer with bounds.',
  },
  weight: { type: 'number', gt: 0, description: 'A number greater than 0.' },
  count: { type: 'integer', description: 'An integer without bounds.' },
  enabled: { type: 'boolean', default: true, required: true, description: 'A boolean.' },
  names: {
    type: 'array',
    elements: { type: 'string' },
    default: ['authorization'],
    description: 'A list of strings with a default.',
  },
  kinds: {
    type: 'set',
    elements: { type: 'string', one_of: ['jti', 'subject', 'consumer'] },
    default: ['jti', 'subject', 'consumer'],
    len_min: 1,
    description: 'A set with element one_of and len_min.',
  },
  nodes: {
    type: 'array',
    elements: { type: 'string', match: '^[^%s]+:%d+$' },
    default: [],
    description: 'A list of patterned strings.',
  },
  items: {
    type: 'array',
    required: true,
    len_min: 1,
    elements: { type: 'record', fields: recordOf(itemFields) },
    description: 'A required list of records.',
  },
  nested: {
    type: 'record',
    fields: recordOf(itemFields),
    description: 'A record field.',
  },
} as const satisfies Record<string, KongField>

const valid = { items: [{ name: 'a' }] }

/** The ERR_CONFIG_INVALID detail `read` throws. */
function refusal(read: () => unknown): string {
  try {
    read()
  } catch (error) {
    if (isPluginError(error) && error.code === 'ERR_CONFIG_INVALID') return error.detail ?? ''
    throw error
  }
  throw new Error('expected the read to be refused')
}

const reader = (raw: Record<string, unknown>) => readRecord({ ...valid, ...raw }, fields)

describe('config reader: (types, defaults and bounds from the Kong field)', () => {
  describe('defaults and unset values', () => {
    it('reads an absent field and a null one alike, as the default of the field', () => {
      for (const unset of [{}, { mode: null, timeout: null, enabled: null, names: null }]) {
        const r = reader(unset)
        expect(r.read('mode')).toBe('fast')
        expect(r.read('timeout')).toBe(250)
        expect(r.read('enabled')).toBe(true)
        expect(r.read('names')).toEqual(['authorization'])
      }
    })

    it('reads an unset field without a default as undefined', () => {
      expect(reader({}).read('label')).toBeUndefined()
      expect(reader({ label: null }).read('label')).toBeUndefined()
      expect(reader({ nested: null }).record('nested', itemFields)).toBeUndefined()
    })

    it('refuses an unset required field without a default, absent or null', () => {
      expect(refusal(() => readRecord({}, fields).read('items'))).toBe('items: is required')
      expect(refusal(() => readRecord({ items: null }, fields).read('items'))).toBe(
        'items: is required',
      )
    })

    it('hands out a frozen copy of a list default, never the schema object itself', () => {
      const names = reader({}).read('names')
      expect(Object.isFrozen(names)).toBe(true)
      expect(names).not.toBe(fields.names.default)
    })

    it('keeps a written value over the default, falsy values included', () => {
      const r = reader({ enabled: false, names: [], label: '' })
      expect(r.read('enabled')).toBe(false)
      expect(r.read('names')).toEqual([])
      expect(r.read('label')).toBe('')
    })
  })

  describe('bounds', () => {
    it('between: accepts both ends and refuses one past each', () => {
      expect(reader({ timeout: 10 }).read('timeout')).toBe(10)
      expect(reader({ timeout: 5000 }).read('timeout')).toBe(5000)
      for (const timeout of [9, 5001]) {
        expect(refusal(() => reader({ timeout }).read('timeout'))).toBe(
          'timeout: must be an integer between 10 and 5000',
        )
      }
    })

    it('gt: refuses the bound itself and accepts anything above it', () => {
      expect(reader({ weight: 0.5 }).read('weight')).toBe(0.5)
      expect(refusal(() => reader({ weight: 0 }).read('weight'))).toBe(
        'weight: must be a number greater than 0',
      )
    })

    it('one_of: refuses a string outside the list, naming the allowed values', () => {
      expect(reader({ mode: 'safe' }).read('mode')).toBe('safe')
      expect(refusal(() => reader({ mode: 'slow' }).read('mode'))).toBe(
        'mode: must be one of fast, safe',
      )
    })

    it('len_min on a string: 1 reads as non-empty, more gives the length', () => {
      expect(
        refusal(() =>
          reader({ items: [{ name: '' }] })
            .records('items', itemFields)[0]
            ?.read('name'),
        ),
      ).toBe('items[0].name: must be a non-empty string')
      expect(refusal(() => reader({ code: 'ab' }).read('code'))).toBe(
        'code: must be at least 3 characters long',
      )
      expect(reader({ code: 'abc' }).read('code')).toBe('abc')
    })

    it('len_min on a list: counts the elements, in the words of the noun given', () => {
      expect(refusal(() => reader({ kinds: [] }).read('kinds', { noun: 'kind' }))).toBe(
        'kinds: must list at least one kind',
      )
      expect(refusal(() => reader({ items: [] }).read('items'))).toBe(
        'items: must list at least one element',
      )
    })

    it('match: applies the Lua pattern, described in the words given or quoted as is', () => {
      expect(reader({ host: 'X-Sub-1' }).read('host')).toBe('X-Sub-1')
      expect(refusal(() => reader({ host: 'X Sub' }).read('host'))).toBe(
        'host: must match the Lua pattern ^[%w%-]+$',
      )
      expect(
        refusal(() => reader({ host: 'X Sub' }).read('host', { pattern: 'a header name' })),
      ).toBe('host: must be a header name')
    })

    it('checks each list element: one_of, len_min and match, at the path of the list', () => {
      expect(refusal(() => reader({ kinds: ['jti', 'aud'] }).read('kinds', { noun: 'kind' }))).toBe(
        'kinds: unknown kind "aud"; allowed: jti, subject, consumer',
      )
      expect(
        refusal(() =>
          reader({ kinds: ['aud'] }).read('kinds', { unknown: (k) => `no such kind ${k}` }),
        ),
      ).toBe('kinds: no such kind aud')
      expect(
        refusal(() =>
          reader({ items: [{ name: 'a', tags: ['x', ''] }] })
            .records('items', itemFields)[0]
            ?.read('tags'),
        ),
      ).toBe('items[0].tags: must be an array of non-empty strings')
      expect(
        refusal(() => reader({ nodes: ['n1:7000', 'n1'] }).read('nodes', { pattern: 'host:port' })),
      ).toBe('nodes: "n1" is not host:port')
      expect(reader({ nodes: ['n1:7000', '[::1]:26379'] }).read('nodes')).toEqual([
        'n1:7000',
        '[::1]:26379',
      ])
    })

    it('refuses "" in a referenceable field: Kong puts it there for a vault reference it cannot resolve', () => {
      expect(refusal(() => reader({ url: '' }).read('url'))).toBe(
        'url: is empty: an unresolved vault reference? (Kong substitutes "" for a reference it cannot resolve)',
      )
    })
  })

  describe('types', () => {
    it.each([
      ['label', 42, 'label: must be a string'],
      ['timeout', 1.5, 'timeout: must be an integer between 10 and 5000'],
      ['timeout', '250', 'timeout: must be an integer between 10 and 5000'],
      ['count', 2.5, 'count: must be an integer'],
      ['weight', Number.NaN, 'weight: must be a number greater than 0'],
      ['enabled', 'true', 'enabled: must be a boolean'],
      ['names', 'authorization', 'names: must be an array of strings'],
      ['names', ['authorization', 7], 'names: must be an array of strings'],
      ['items', [{ name: 'a' }, 'b'], 'items[1]: must be a record'],
      ['nested', ['a'], 'nested: must be a record'],
    ] as const)('refuses %s = %p: %s', (name, value, detail) => {
      expect(refusal(() => reader({ [name]: value }).read(name))).toBe(detail)
    })

    it('refuses a config that is not a record, naming it config or by its path', () => {
      for (const raw of [null, undefined, 'x', 3, ['a']]) {
        expect(refusal(() => readRecord(raw, fields))).toBe('config: must be a record')
      }
      expect(refusal(() => readRecord('redis://x', fields, 'redis'))).toBe(
        'redis: must be a record',
      )
    })

    it('gives each value the TypeScript type of its field', () => {
      const r = reader({})
      const mode: 'fast' | 'safe' = r.read('mode')
      const timeout: number = r.read('timeout')
      const kinds: readonly ('jti' | 'subject' | 'consumer')[] = r.read('kinds')
      // @ts-expect-error a field without a default may be undefined
      const label: string = r.read('label')
      expect([mode, timeout, kinds, label]).toEqual([
        'fast',
        250,
        ['jti', 'subject', 'consumer'],
        undefined,
      ])
    })
  })

  describe('lists and records', () => {
    it('removes duplicates from a set, keeping the first of each, and keeps them in an array', () => {
      expect(reader({ kinds: ['subject', 'jti', 'subject'] }).read('kinds')).toEqual([
        'subject',
        'jti',
      ])
      expect(reader({ names: ['a', 'a'] }).read('names')).toEqual(['a', 'a'])
    })

    it('reads a list of records field by field, each at its own path', () => {
      const items = reader({ items: [{ name: 'a', tags: ['x', 'x'] }, { name: 'b' }] }).records(
        'items',
        itemFields,
      )
      expect(items.map((item) => item.read('name'))).toEqual(['a', 'b'])
      expect(items[0]?.read('tags')).toEqual(['x'])
      const wrong = reader({ items: [{ name: 'a' }, { name: 'b', tags: 'x' }] }).records(
        'items',
        itemFields,
      )
      expect(refusal(() => wrong[1]?.read('tags'))).toBe(
        'items[1].tags: must be an array of strings',
      )
    })

    it('reads a record field at its path, and a nested reader at a path of its own', () => {
      const nested = reader({ nested: { name: '' } }).record('nested', itemFields)
      expect(refusal(() => nested?.read('name'))).toBe('nested.name: must be a non-empty string')
      const redis = readRecord({ name: 7 }, itemFields, 'revocation.redis')
      expect(refusal(() => redis.read('name'))).toBe('revocation.redis.name: must be a string')
      expect(redis.invalid('name', 'nope').detail).toBe('revocation.redis.name: nope')
    })

    it('fails loudly, as a bug and not as a config error, when given fields other than the record declares', () => {
      const { name: _name, ...tagsOnly } = itemFields
      expect(() => reader({}).records('items', tagsOnly)).toThrow(
        'items: read with fields other than the record it declares',
      )
      expect(() => reader({}).record('nested', tagsOnly)).toThrow(
        'nested: read with fields other than the record it declares',
      )
      expect(() => reader({}).records('names', itemFields)).toThrow('names: read with fields')
    })

    it('reads an unset list of records without a default as no records', () => {
      const optional = readRecord({}, { list: { ...fields.items, required: false } })
      expect(optional.records('list', itemFields)).toEqual([])
    })
  })
})
