import { readFileSync } from 'node:fs'
import {
  globexSecret,
  KONG_YML,
  localizeKongYml,
  startDemoIdp,
  type DemoIdp,
} from '../../../emulator/demo-kit'
import { startKongTarget, type KongTarget } from './kong-target'

export interface ToolkitTarget {
  readonly kong: KongTarget
  readonly idp: DemoIdp
  stop(): Promise<void>
}

/**
 * A Kong target running the project's kong.yml as written, pointed only at local servers:
 * partner-acme's JWKS endpoint on loopback, the partner-globex secret for Kong's env vault, and
 * Redis when given (without it jwt-revocation is left out).
 */
export async function startToolkitTarget(redis?: {
  url: string
  keyPrefix?: string
}): Promise<ToolkitTarget> {
  const idp = await startDemoIdp()
  try {
    const kong = await startKongTarget({
      config: localizeKongYml(readFileSync(KONG_YML, 'utf8'), {
        jwksUrl: idp.jwksUrl,
        redisUrl: redis?.url,
        ...(redis?.keyPrefix !== undefined ? { redisKeyPrefix: redis.keyPrefix } : {}),
      }),
      env: { ...process.env, PARTNER_GLOBEX_SECRET: globexSecret() },
    })
    return {
      kong,
      idp,
      stop: async () => {
        await kong.stop()
        await idp.stop()
      },
    }
  } catch (error) {
    await idp.stop()
    throw error
  }
}
