// Five tiers, cheapest first (house style §4.9). `npm test` builds first, then runs unit,
// emulator and pluginserver in parallel workers and integration and e2e one file at a time
// (their outage and failover tests bound decision times; one Redis deployment or Kong target
// at a time).
//
// TypeScript and jose 6 (ESM-only; the plugins require() it, which Node ≥ 20.19 allows but
// Jest's module loader does not) go through @swc/jest into CommonJS.
'use strict'

const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  },
]

/** One tier: its folder and the timeout of each test and hook. */
const tier = (name, timeoutMs) => ({
  displayName: name,
  testEnvironment: 'node',
  testMatch: [`<rootDir>/spec/${name}/**/*.spec.ts`],
  transform: { '^.+\\.(ts|js|mjs)$': swc },
  // cookie 2 (fastify's inject, used by the middleware's fastify test) is ESM-only too.
  transformIgnorePatterns: ['/node_modules/(?!(jose|cookie)/)'],
  setupFilesAfterEnv: [`<rootDir>/spec/helpers/timeouts/${timeoutMs}.ts`],
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
})

module.exports = {
  projects: [
    tier('unit', 5000),
    tier('emulator', 30000),
    tier('pluginserver', 30000),
    tier('integration', 60000),
    tier('e2e', 60000),
  ],
  verbose: true,
  reporters: ['default', '<rootDir>/spec/helpers/summary-reporter.cjs'],
}
