import { describe, expect, it } from '@jest/globals'
import { asKongConsumer } from '../../../../../plugins/shared/pdk/port'

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
