import { describe, expect, it } from '@jest/globals'
import {
  consumerTargets,
  decide,
  findRevocations,
  needsConsumer,
  onUnavailable,
  planLookup,
  tokenTargets,
} from '../../../../plugins/jwt-revocation/core'
import { parseConfig, type Config } from '../../../../plugins/jwt-revocation/schema'
import { isPluginError, type ErrorCode } from '../../../../plugins/shared/errors'
import type { RevocationEntry } from '../../../../plugins/shared/revocation/keys'

const config = (over: Record<string, unknown> = {}): Config => parseConfig(over)

function codeOf(fn: () => unknown): ErrorCode | 'none' {
  try {
    fn()
  } catch (error) {
    if (isPluginError(error)) return error.code
    throw error
  }
  return 'none'
}

const T0 = 1_700_000_000

describe('jwt-revocation: (core)', () => {
  describe('planLookup', () => {
    it('looks up the jti, the subject (global and per issuer) and the consumer by id and username', () => {
      const targets = planLookup(
        { jti: 'j1', sub: 'alice', iss: 'https://idp' },
        { id: 'c-1', username: 'partner' },
        config(),
      )
      expect(targets).toEqual([
        { kind: 'jti', jti: 'j1' },
        { kind: 'subject', sub: 'alice' },
        { kind: 'subject', sub: 'alice', iss: 'https://idp' },
        { kind: 'consumer', id: 'c-1' },
        { kind: 'consumer_username', username: 'partner' },
      ])
    })

    it('follows subject_scope: global only, issuer only', () => {
      const claims = { jti: 'j', sub: 'alice', iss: 'https://idp' }
      expect(tokenTargets(claims, config({ subject_scope: 'global' }))).toEqual([
        { kind: 'jti', jti: 'j' },
        { kind: 'subject', sub: 'alice' },
      ])
      expect(tokenTargets(claims, config({ subject_scope: 'issuer' }))).toEqual([
        { kind: 'jti', jti: 'j' },
        { kind: 'subject', sub: 'alice', iss: 'https://idp' },
      ])
    })

    it('looks up only the kinds in check', () => {
      expect(
        planLookup(
          { jti: 'j', sub: 's' },
          { id: 'c' },
          config({ check: ['subject'], subject_scope: 'global' }),
        ),
      ).toEqual([{ kind: 'subject', sub: 's' }])
      expect(needsConsumer(config({ check: ['jti', 'subject'] }))).toBe(false)
      expect(needsConsumer(config())).toBe(true)
    })

    it('refuses with ERR_CLAIM_MISSING by default when a checked kind has nothing to look up by', () => {
      expect(codeOf(() => tokenTargets({ jti: 'j' }, config()))).toBe('ERR_CLAIM_MISSING')
      expect(codeOf(() => tokenTargets({ jti: 'j', sub: 's' }, config()))).toBe('ERR_CLAIM_MISSING')
      expect(
        codeOf(() => tokenTargets({ jti: 'j', sub: 's' }, config({ subject_scope: 'global' }))),
      ).toBe('none')
      expect(codeOf(() => consumerTargets(undefined, config()))).toBe('ERR_CLAIM_MISSING')
    })

    it('skips the subject when the token has no sub, and the consumer when none is authenticated, with missing_subject = allow', () => {
      const allow = config({ missing_subject: 'allow' })
      expect(planLookup({ jti: 'j' }, undefined, allow)).toEqual([{ kind: 'jti', jti: 'j' }])
      expect(planLookup({ jti: 'j', sub: 's' }, undefined, allow)).toEqual([
        { kind: 'jti', jti: 'j' },
        { kind: 'subject', sub: 's' },
      ])
      expect(consumerTargets({ id: 'c', username: null }, config())).toEqual([
        { kind: 'consumer', id: 'c' },
      ])
    })

    it('refuses a token without jti with ERR_CLAIM_MISSING by default', () => {
      expect(codeOf(() => tokenTargets({ sub: 's' }, config()))).toBe('ERR_CLAIM_MISSING')
      expect(codeOf(() => tokenTargets({ sub: 's', jti: '' }, config()))).toBe('ERR_CLAIM_MISSING')
    })

    it('lets a token without jti through to the other checks when missing_jti = allow', () => {
      expect(
        tokenTargets({ sub: 's' }, config({ missing_jti: 'allow', subject_scope: 'global' })),
      ).toEqual([{ kind: 'subject', sub: 's' }])
    })

    it('does not care about a missing jti when jti is not checked', () => {
      expect(
        codeOf(() =>
          tokenTargets({ sub: 's' }, config({ check: ['subject'], subject_scope: 'global' })),
        ),
      ).toBe('none')
    })

    it('refuses a non-string jti or sub with ERR_CLAIM_INVALID', () => {
      expect(codeOf(() => tokenTargets({ jti: 42 } as never, config()))).toBe('ERR_CLAIM_INVALID')
      expect(codeOf(() => tokenTargets({ jti: 'j', sub: ['a'] } as never, config()))).toBe(
        'ERR_CLAIM_INVALID',
      )
    })
  })

  describe('decide', () => {
    const cfg = config()
    const jti = { kind: 'jti', jti: 'j1' } as const
    const sub = { kind: 'subject', sub: 'alice' } as const
    const consumer = { kind: 'consumer', id: 'c-1' } as const
    const cutoff = (at: number, reason?: string): RevocationEntry => ({ at, reason })

    it('passes when nothing is stored', () => {
      expect(
        codeOf(() => decide({ jti: 'j1', iat: T0 }, [jti, sub], [undefined, undefined], cfg)),
      ).toBe('none')
    })

    it('refuses a revoked jti with ERR_TOKEN_REVOKED, whatever its iat', () => {
      expect(codeOf(() => decide({ jti: 'j1', iat: T0 + 999 }, [jti], [cutoff(T0)], cfg))).toBe(
        'ERR_TOKEN_REVOKED',
      )
    })

    it('refuses a token issued before the subject cutoff', () => {
      expect(codeOf(() => decide({ sub: 'alice', iat: T0 - 1 }, [sub], [cutoff(T0)], cfg))).toBe(
        'ERR_TOKEN_REVOKED',
      )
    })

    it('passes a token issued at or after the cutoff (re-authentication works)', () => {
      expect(codeOf(() => decide({ sub: 'alice', iat: T0 }, [sub], [cutoff(T0)], cfg))).toBe('none')
      expect(codeOf(() => decide({ sub: 'alice', iat: T0 + 5 }, [sub], [cutoff(T0)], cfg))).toBe(
        'none',
      )
    })

    it('refuses a token issued before the consumer cutoff', () => {
      expect(codeOf(() => decide({ iat: T0 - 60 }, [consumer], [cutoff(T0)], cfg))).toBe(
        'ERR_TOKEN_REVOKED',
      )
    })

    it('treats an unreadable stored entry as revoked, never as absent', () => {
      expect(
        codeOf(() => decide({ iat: T0 }, [sub], [{ at: Number.POSITIVE_INFINITY }], cfg)),
      ).toBe('ERR_TOKEN_REVOKED')
    })

    it('refuses a token without iat when a cutoff exists, with ERR_CLAIM_MISSING by default', () => {
      expect(codeOf(() => decide({ sub: 'alice' }, [sub], [cutoff(T0)], cfg))).toBe(
        'ERR_CLAIM_MISSING',
      )
    })

    it('passes a token without iat when no cutoff exists', () => {
      expect(codeOf(() => decide({ sub: 'alice' }, [sub], [undefined], cfg))).toBe('none')
    })

    it('passes a token without iat despite a cutoff when missing_iat = allow', () => {
      expect(
        codeOf(() =>
          decide({ sub: 'alice' }, [sub], [cutoff(T0)], config({ missing_iat: 'allow' })),
        ),
      ).toBe('none')
    })

    it('prefers ERR_TOKEN_REVOKED over a missing iat when a jti is revoked too', () => {
      expect(codeOf(() => decide({ jti: 'j1' }, [sub, jti], [cutoff(T0), cutoff(T0)], cfg))).toBe(
        'ERR_TOKEN_REVOKED',
      )
    })

    it('explains every finding, with the reason given at revocation', () => {
      const findings = findRevocations(
        { jti: 'j1', iat: T0 - 10 },
        [jti, sub],
        [cutoff(T0, 'stolen'), cutoff(T0, 'logout')],
      )
      expect(findings.map((f) => f.why)).toEqual([
        'jti j1 revoked at 2023-11-14T22:13:20.000Z (stolen)',
        'subject alice revoked before 2023-11-14T22:13:20.000Z, token issued 2023-11-14T22:13:10.000Z (logout)',
      ])
    })
  })

  describe('onUnavailable', () => {
    it('refuses with 503 ERR_REVOCATION_UNAVAILABLE under fail_closed', () => {
      expect(codeOf(() => onUnavailable(config(), 'redis down'))).toBe('ERR_REVOCATION_UNAVAILABLE')
    })

    it('returns a log line and lets the caller pass under fail_open', () => {
      expect(onUnavailable(config({ on_unavailable: 'fail_open' }), 'redis down')).toMatch(
        /skipped.*redis down.*fail_open/,
      )
    })
  })
})
