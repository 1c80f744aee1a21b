import { expect } from '@jest/globals'

/**
 * `expect(actual)` whose failures start with `label`, for assertions in loops over recorded
 * cases (Jest's `expect` takes no message argument). Chains such as `.not.toBe` and
 * `.rejects.toThrow` keep working.
 */
export function labelled<T>(actual: T, label: unknown): ReturnType<typeof expect<T>> {
  const relabel = (error: unknown): unknown => {
    if (error instanceof Error) error.message = `${String(label)}\n\n${error.message}`
    return error
  }
  const wrap = (target: object): object =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const value: unknown = Reflect.get(t, prop, receiver)
        if (typeof value === 'function') {
          return (...args: unknown[]): unknown => {
            try {
              const result: unknown = (value as (...a: unknown[]) => unknown).apply(t, args)
              if (result instanceof Promise)
                return result.catch((e: unknown) => {
                  throw relabel(e)
                })
              return result
            } catch (error) {
              throw relabel(error)
            }
          }
        }
        return typeof value === 'object' && value !== null ? wrap(value) : value
      },
    })
  return wrap(expect(actual)) as ReturnType<typeof expect<T>>
}
