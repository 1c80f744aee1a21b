import { describe, expect, it } from '@jest/globals'
import {
  decodeEntry,
  decodeEvent,
  encodeEntry,
  encodeEvent,
  eventsChannel,
  revocationKey,
} from '../../../../../plugins/shared/revocation/keys'

const P = 'jwt-revocation:'

describe('revocation keys', () => {
  it('lays out one key per kind under the prefix', () => {
    expect(revocationKey(P, { kind: 'jti', jti: 'abc' })).toBe('jwt-revocation:jti:abc')
    expect(revocationKey(P, { kind: 'subject', sub: 'alice' })).toBe('jwt-revocation:sub:alice')
    expect(revocationKey(P, { kind: 'subject', sub: 'alice', iss: 'https://idp' })).toBe(
      'jwt-revocation:iss:https%3A%2F%2Fidp:sub:alice',
    )
    expect(revocationKey(P, { kind: 'consumer', id: '8f1c' })).toBe(
      'jwt-revocation:consumer:id:8f1c',
    )
    expect(revocationKey(P, { kind: 'consumer_username', username: 'acme' })).toBe(
      'jwt-revocation:consumer:username:acme',
    )
    expect(eventsChannel(P)).toBe('jwt-revocation:events')
  })

  it('encodes separators so that no two targets share a key', () => {
    const a = revocationKey(P, { kind: 'subject', sub: 'x:sub:y', iss: 'i' })
    const b = revocationKey(P, { kind: 'subject', sub: 'y', iss: 'i:sub:x' })
    expect(a).not.toBe(b)
    expect(revocationKey(P, { kind: 'subject', sub: 'iss:a:sub:b' })).toBe(
      'jwt-revocation:sub:iss%3Aa%3Asub%3Ab',
    )
    expect(revocationKey(P, { kind: 'jti', jti: 'a*b{c}' })).toBe('jwt-revocation:jti:a%2Ab%7Bc%7D')
  })

  it('round-trips entries', () => {
    const e = { at: 1_700_000_000, reason: 'stolen laptop', by: 'cli:ops' }
    expect(decodeEntry(encodeEntry(e))).toEqual(e)
    expect(encodeEntry({ at: 5 })).toBe('{"at":5}')
  })

  it('reads a bare number set by hand as a cutoff', () => {
    expect(decodeEntry('1700000000')).toEqual({ at: 1_700_000_000 })
  })

  it('reads an unreadable value as revoked forever, never as "not revoked"', () => {
    expect(decodeEntry('garbage').at).toBe(Number.POSITIVE_INFINITY)
    expect(decodeEntry('{"at":"soon"}').at).toBe(Number.POSITIVE_INFINITY)
  })

  it('round-trips events and rejects anything else', () => {
    expect(decodeEvent(encodeEvent({ op: 'revoke', key: 'k' }))).toEqual({ op: 'revoke', key: 'k' })
    expect(decodeEvent('nope')).toBeUndefined()
    expect(decodeEvent('{"op":"drop","key":"k"}')).toBeUndefined()
  })
})
