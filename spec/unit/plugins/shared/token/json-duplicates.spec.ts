import { describe, expect, it } from '@jest/globals'
import { findDuplicateKey } from '../../../../../plugins/shared/token/json-duplicates'

describe('token: (duplicate JSON member names)', () => {
  it('finds a name written twice in one object', () => {
    expect(findDuplicateKey('{"iss":"a","sub":"u","iss":"b"}')).toBe('iss')
  })

  it('compares names after unescaping them', () => {
    expect(findDuplicateKey('{"iss":"a","\\u0069ss":"b"}')).toBe('iss')
  })

  it('finds a duplicate in a nested object', () => {
    expect(findDuplicateKey('{"a":{"x":1,"y":[{"z":1,"z":2}]}}')).toBe('z')
  })

  it('accepts the same name in sibling and nested objects', () => {
    expect(findDuplicateKey('{"a":{"k":1},"b":{"k":2},"k":[{"k":1},{"k":2}]}')).toBeUndefined()
  })

  it('is not fooled by names, quotes, braces and commas inside string values', () => {
    expect(findDuplicateKey('{"a":"\\",\\"a\\":{","b":"}{,","c":["a","a"]}')).toBeUndefined()
    expect(findDuplicateKey('{"a":"x\\\\","a":1}')).toBe('a')
  })

  it('accepts a plain claims set', () => {
    expect(findDuplicateKey('{"iss":"web","aud":["a","b"],"exp":1,"n":null}')).toBeUndefined()
  })
})
