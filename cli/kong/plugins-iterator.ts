/**
 * Which configuration of a plugin applies to a request: Kong's plugins iterator
 * (kong/runloop/plugins_iterator.lua). Shared by the emulator and the CLI's `explain`.
 */

/** The key of one (route, service, consumer) combination; '' for an unset scope. */
export function compoundKey(route?: string, service?: string, consumer?: string): string {
  return `${route ?? ''}:${service ?? ''}:${consumer ?? ''}`
}

/** plugins_iterator.lua lookup_cfg: most specific configuration first, the global one last. */
export function lookupConfig<T>(
  combos: ReadonlyMap<string, T> | undefined,
  routeId: string | undefined,
  serviceId: string | undefined,
  consumerId: string | undefined,
): T | undefined {
  if (!combos) return undefined
  const tries: Array<[string | undefined, string | undefined, string | undefined, boolean]> = [
    [routeId, serviceId, consumerId, !!(routeId && serviceId && consumerId)],
    [routeId, undefined, consumerId, !!(routeId && consumerId)],
    [undefined, serviceId, consumerId, !!(serviceId && consumerId)],
    [routeId, serviceId, undefined, !!(routeId && serviceId)],
    [undefined, undefined, consumerId, !!consumerId],
    [routeId, undefined, undefined, !!routeId],
    [undefined, serviceId, undefined, !!serviceId],
  ]
  for (const [r, s, c, ok] of tries) {
    if (!ok) continue
    const hit = combos.get(compoundKey(r, s, c))
    if (hit) return hit
  }
  return combos.get(compoundKey())
}
