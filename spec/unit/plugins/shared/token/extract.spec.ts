import { describe, expect, it } from '@jest/globals'
import {
  cookieHeaderWithout,
  extractToken,
  queryWithout,
} from '../../../../../plugins/shared/token/extract'

const sources = {
  headerNames: ['authorization', 'x-jwt'],
  cookieNames: ['session'],
  queryNames: ['jwt'],
}
const codeOf = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    return (e as { code: string }).code
  }
  return 'PASSED'
}

describe('token extraction', () => {
  it('reads a Bearer token, case-insensitively, with surrounding spaces', () => {
    expect(
      extractToken({ authorization: ['  bearer   abc.def.ghi '] }, undefined, sources).token,
    ).toBe('abc.def.ghi')
  })

  it('accepts a bare token in a custom header but not in Authorization', () => {
    expect(extractToken({ 'x-jwt': ['abc'] }, undefined, sources).token).toBe('abc')
    expect(codeOf(() => extractToken({ authorization: ['abc'] }, undefined, sources))).toBe(
      'ERR_TOKEN_MISSING',
    )
  })

  it('counts the same token found twice as one token and remembers both origins', () => {
    const r = extractToken(
      { authorization: ['Bearer t1'], cookie: ['session=t1'] },
      { jwt: ['t1'] },
      sources,
    )
    expect(r.token).toBe('t1')
    expect(r.origins.map((o) => o.kind)).toEqual(['header', 'cookie', 'query'])
  })

  it('refuses two different tokens, also as two values of one header', () => {
    expect(
      codeOf(() => extractToken({ authorization: ['Bearer a', 'Bearer b'] }, undefined, sources)),
    ).toBe('ERR_TOKEN_MULTIPLE')
    expect(
      codeOf(() => extractToken({ authorization: ['Bearer a'] }, { jwt: ['b'] }, sources)),
    ).toBe('ERR_TOKEN_MULTIPLE')
  })

  it('ignores cookies and query parameters that are not configured', () => {
    expect(codeOf(() => extractToken({ cookie: ['other=t'] }, { token: ['t'] }, sources))).toBe(
      'ERR_TOKEN_MISSING',
    )
  })

  it('parses quoted cookie values and several Cookie lines', () => {
    expect(extractToken({ cookie: ['a=1', 'session="t2"; b=2'] }, undefined, sources).token).toBe(
      't2',
    )
  })

  it('sees a token cookie hidden behind a comma, as some upstream parsers would', () => {
    expect(
      codeOf(() =>
        extractToken(
          { authorization: ['Bearer a'], cookie: ['x=1, session=b'] },
          undefined,
          sources,
        ),
      ),
    ).toBe('ERR_TOKEN_MULTIPLE')
  })

  it('rebuilds the Cookie header without the token cookie', () => {
    expect(cookieHeaderWithout(['a=1; session=t', 'b=2'], new Set(['session']))).toBe('a=1; b=2')
    expect(cookieHeaderWithout(['session=t'], new Set(['session']))).toBeUndefined()
  })

  it('rebuilds the query without the token parameter', () => {
    expect(queryWithout({ jwt: ['t'], page: ['2'], tag: ['a', 'b'] }, new Set(['jwt']))).toBe(
      'page=2&tag=a&tag=b',
    )
  })
})
