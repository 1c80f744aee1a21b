import type Kong from 'kong-pdk/kong'
import type { HeaderPatch, KongRoute, MultiMap, Pdk } from './port'

/**
 * Wraps the `kong` object kong-pdk hands a phase method into our port. This is the one place
 * that knows kong-pdk's generated typings; they misstate many return types (protocol doc §3.3),
 * so each result is cast to what Kong 3.x really sends. Calling through the typed interface
 * still checks at compile time that every method name exists in kong-pdk's interfaces.
 */
export function adaptKong(raw: unknown): Pdk {
  const kong = raw as Kong
  return {
    request: {
      getHeaders: async (max) => (await kong.request.getHeaders(max)) as MultiMap,
      getHeader: async (name) => await kong.request.getHeader(name),
      getQuery: async () => (await kong.request.getQuery()) as MultiMap,
      getMethod: () => kong.request.getMethod(),
    },
    client: {
      loadConsumer: async (idOrUsername, byUsername): Promise<unknown> =>
        await kong.client.loadConsumer(idOrUsername, byUsername),
      authenticate: async (consumer, credential) => {
        // No credential (anonymous): send the consumer alone rather than a nil argument.
        const client = kong.client as unknown as { authenticate(...args: object[]): Promise<null> }
        if (credential === null) await client.authenticate(consumer)
        else await client.authenticate(consumer, credential)
      },
      getConsumer: async (): Promise<unknown> => await kong.client.getConsumer(),
      getCredential: async (): Promise<unknown> => kong.client.getCredential(),
    },
    router: {
      getRoute: async () => (await kong.router.getRoute()) as unknown as KongRoute | undefined,
    },
    nginx: {
      getVar: async (name) => {
        const value: unknown = await (
          kong.nginx as unknown as { getVar(n: string): Promise<unknown> }
        ).getVar(name)
        return typeof value === 'string' ? value : undefined
      },
    },
    serviceRequest: {
      setHeaders: async (headers: HeaderPatch) => {
        await kong.service.request.setHeaders(headers)
      },
      setRawQuery: async (query) => {
        await kong.service.request.setRawQuery(query)
      },
    },
    response: {
      exit: (status, body, headers) => {
        // Fire and forget: kong-pdk resolves exit at once and Kong never answers it.
        void kong.response.exit(status, body as never, headers)
      },
    },
    ctx: {
      get: (key) => kong.ctx.shared.get(key) as Promise<unknown>,
      set: async (key, value) => {
        await kong.ctx.shared.set(key, value as string)
      },
    },
    log: {
      err: async (message) => {
        await (kong.log as unknown as { err(m: string): Promise<unknown> }).err(message)
      },
    },
  }
}
