/**
 * Every plugin priority in one place. Kong runs higher priorities first.
 *
 * Authentication first, then revocation, then authorization:
 * - consumer-jwt at 1450, the slot of Kong's bundled jwt plugin, so it runs before Kong's
 *   acl (950) and rate-limiting (910) and those see the authenticated consumer.
 * - jwt-revocation at 1400: after every bundled auth plugin that can run before it
 *   (jwt 1450, key-auth 1250 runs later, but it carries no JWT), before acl and scope-acl.
 * - scope-acl at 960: after authentication and revocation, just before Kong's acl (950).
 */
export const PRIORITIES = {
  'consumer-jwt': 1450,
  'jwt-revocation': 1400,
  'scope-acl': 960,
} as const

export type PluginName = keyof typeof PRIORITIES
