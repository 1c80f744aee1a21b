/**
 * Polls `probe` until it holds; resolves to the milliseconds it took, or throws naming `what`.
 * What tests use instead of a fixed sleep before an assertion: they wait for the state itself.
 */
export async function until(
  what: string,
  ms: number,
  probe: () => boolean | Promise<boolean>,
  intervalMs = 10,
): Promise<number> {
  const t0 = performance.now()
  for (;;) {
    if (await probe()) return performance.now() - t0
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
