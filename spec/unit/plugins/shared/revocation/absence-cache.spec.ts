import { describe, expect, it } from '@jest/globals'
import { AbsenceCache } from '../../../../../plugins/shared/revocation/absence-cache'

function cache(ttlMs = 1000, maxEntries = 10_000) {
  const t = { now: 0 }
  const c = new AbsenceCache(ttlMs, { now: () => t.now }, maxEntries)
  c.setLive(true)
  return { c, t }
}

describe('revocation absence cache', () => {
  it('remembers an absent key until its TTL passes', () => {
    const { c, t } = cache(1000)
    c.rememberAbsent(['k'], c.generation)
    expect(c.isAbsent('k')).toBe(true)
    t.now = 999
    expect(c.isAbsent('k')).toBe(true)
    t.now = 1000
    expect(c.isAbsent('k')).toBe(false)
  })

  it('forgets a key as soon as its revocation is announced', () => {
    const { c } = cache()
    c.rememberAbsent(['a', 'b'], c.generation)
    c.invalidate('a')
    expect(c.isAbsent('a')).toBe(false)
    expect(c.isAbsent('b')).toBe(true)
  })

  it('does not store an answer that raced with a revocation announcement', () => {
    const { c } = cache()
    const generation = c.generation // lookup starts
    c.invalidate('k') // revoke announced while Redis was answering "absent"
    c.rememberAbsent(['k'], generation)
    expect(c.isAbsent('k')).toBe(false)
  })

  it('serves nothing while the invalidation channel is not live, and starts empty when it is back', () => {
    const { c } = cache()
    c.rememberAbsent(['k'], c.generation)
    c.setLive(false)
    expect(c.enabled).toBe(false)
    expect(c.isAbsent('k')).toBe(false)
    c.rememberAbsent(['k'], c.generation)
    c.setLive(true)
    expect(c.isAbsent('k')).toBe(false)
  })

  it('is off with a TTL of 0', () => {
    const c = new AbsenceCache(0, { now: () => 0 })
    c.setLive(true)
    c.rememberAbsent(['k'], c.generation)
    expect(c.isAbsent('k')).toBe(false)
  })

  it('keeps at most maxEntries, dropping the oldest', () => {
    const { c } = cache(1000, 2)
    c.rememberAbsent(['a'], c.generation)
    c.rememberAbsent(['b'], c.generation)
    c.rememberAbsent(['c'], c.generation)
    expect(c.size).toBe(2)
    expect(c.isAbsent('a')).toBe(false)
    expect(c.isAbsent('c')).toBe(true)
  })

  it('drops everything on clear (an unreadable announcement)', () => {
    const { c } = cache()
    c.rememberAbsent(['a', 'b'], c.generation)
    c.clear()
    expect(c.size).toBe(0)
  })
})
