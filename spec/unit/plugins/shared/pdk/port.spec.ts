import { describe, expect, it } from '@jest/globals'
import { asKongConsumer, asKongCredential } from '../../../../../plugins/shared/pdk/port'

describe('asKongConsumer: (what load_consumer/get_consumer sent, read as a consumer)', () => {
  it('gives the entity itself when it has a string id', () => {
    const entity = { id: 'c-1', username: 'alice', custom_id: null }
    expect(asKongConsumer(entity)).toBe(entity)
  })

  it.each([
    ['nil as undefined', undefined],
    ['nil as null (a decoded MessagePack nil)', null],
    ['a string', 'c-1'],
    ['an entity without an id', { username: 'alice' }],
    ['an entity whose id is not a string', { id: 42 }],
  ])('gives undefined for %s', (_label, value) => {
    expect(asKongConsumer(value)).toBeUndefined()
  })
})

describe('asKongCredential: (what get_credential sent, read as Lua reads it)', () => {
  it('takes any table as a credential, as `if kong.client.get_credential() then` does', () => {
    const credential = { id: 'c1', consumer: { id: 'x' } }
    expect(asKongCredential(credential)).toBe(credential)
    expect(asKongCredential({ username: 'ldap-user' })).toEqual({ username: 'ldap-user' })
  })

  it('reads nil, decoded as undefined or null, and non-tables as no credential', () => {
    for (const nil of [undefined, null, false, 0, '', 'x', []])
      expect(asKongCredential(nil)).toBeUndefined()
  })
})
