import type { ElementField, KongField, KongSchema } from '../plugins/shared/schema/kong-fields'

type AnyField = KongField | ElementField

function typeOf(f: AnyField): string {
  switch (f.type) {
    case 'array':
    case 'set': {
      const el = f.elements
      return `${f.type} of ${el.type === 'record' ? 'records' : typeOf(el)}`
    }
    case 'map':
      return `map ${typeOf(f.keys)} → ${typeOf(f.values)}`
    case 'string':
      return f.one_of !== undefined ? f.one_of.map((v) => `\`${v}\``).join(' \\| ') : 'string'
    default:
      return f.type
  }
}

function constraints(f: AnyField): string[] {
  const out: string[] = []
  if ('between' in f && f.between !== undefined) out.push(`${f.between[0]}–${f.between[1]}`)
  if ('referenceable' in f && f.referenceable === true) out.push('vault reference allowed')
  return out
}

function defaultOf(f: AnyField): string {
  if (!('default' in f) || f.default === undefined) return ''
  return `\`${JSON.stringify(f.default)}\``
}

function rows(fields: KongSchema, prefix: string, out: string[]): void {
  for (const entry of fields) {
    for (const [name, f] of Object.entries(entry)) {
      const path = `${prefix}${name}`
      const extra = constraints(f)
      const type = typeOf(f) + (extra.length > 0 ? ` (${extra.join('; ')})` : '')
      const description = f.description.replace(/\|/g, '\\|')
      out.push(
        `| \`${path}\` | ${type} | ${f.required === true ? 'yes' : ''} | ${defaultOf(f)} | ${description} |`,
      )
      if (f.type === 'record') rows(f.fields, `${path}.`, out)
      if ((f.type === 'array' || f.type === 'set') && f.elements.type === 'record')
        rows(f.elements.fields, `${path}[].`, out)
    }
  }
}

/** The README config reference of one plugin, generated from its Kong schema. */
export function configReference(schema: KongSchema): string {
  const out = ['| Field | Type | Required | Default | Description |', '|---|---|---|---|---|']
  rows(schema, '', out)
  return out.join('\n')
}
