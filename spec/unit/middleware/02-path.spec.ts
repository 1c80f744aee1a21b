import { describe, expect, it } from '@jest/globals'
import { parseRequestLine } from '../../../plugins/shared/gateway-assertion'
import { normalizePath, pathMatches } from '../../../middleware/path'

describe('middleware: the request line and the path the service received', () => {
  it.each([
    ['GET /orders/1?x=y HTTP/1.1', { method: 'GET', path: '/orders/1' }],
    ['DELETE /orders/1 HTTP/2.0', { method: 'DELETE', path: '/orders/1' }],
    ['GET http://shop.example/orders/1?x HTTP/1.1', { method: 'GET', path: '/orders/1' }],
    ['GET http://shop.example?x HTTP/1.1', { method: 'GET', path: '/' }],
    ['GET /a b HTTP/1.1', { method: 'GET', path: '/a b' }],
    ['GET /old', { method: 'GET', path: '/old' }],
  ])('reads %j as method and path', (line, expected) => {
    expect(parseRequestLine(line)).toEqual(expected)
  })

  it.each([undefined, '', 'GET', ' /x HTTP/1.1', 'G(T /x HTTP/1.1', 'GET ?x HTTP/1.1'])(
    'reads nothing from %j',
    (line) => {
      expect(parseRequestLine(line)).toBeUndefined()
    },
  )

  it.each([
    ['/orders/%31', '/orders/1'],
    ['/orders/%2f', '/orders/%2F'],
    ['/orders//1', '/orders/1'],
    ['/orders/./1', '/orders/1'],
    ['/orders/x/../1', '/orders/1'],
    ['/../../orders', '/orders'],
    ['/orders/', '/orders/'],
  ])('normalizes %s as %s', (path, expected) => {
    expect(normalizePath(path)).toBe(expected)
  })

  it('keeps encoded slashes apart from real ones', () => {
    expect(pathMatches('/orders%2F1', '/orders/1', {})).toBe(false)
  })

  it('maps the client path as Kong does with strip_path and a service path', () => {
    expect(pathMatches('/1', '/orders/1', { routePrefix: '/orders' })).toBe(true)
    expect(pathMatches('/', '/orders', { routePrefix: '/orders' })).toBe(true)
    expect(pathMatches('/', '/orders/', { routePrefix: '/orders/' })).toBe(true)
    expect(pathMatches('/-x', '/orders-x', { routePrefix: '/orders' })).toBe(true)
    expect(
      pathMatches('/svc/1', '/orders/1', { routePrefix: '/orders', servicePath: '/svc' }),
    ).toBe(true)
    expect(pathMatches('/svc', '/orders', { routePrefix: '/orders', servicePath: '/svc' })).toBe(
      true,
    )
    expect(pathMatches('/svc/orders/1', '/orders/1', { servicePath: '/svc' })).toBe(true)
    expect(pathMatches('/1', '/catalog/1', { routePrefix: '/orders' })).toBe(false)
    expect(pathMatches('/orders/1', '/orders/1', { routePrefix: '/orders' })).toBe(false)
  })
})
