import { defineConfig } from 'vitest/config'

// Five tiers, cheapest first (house style §4.9). `npm test` builds first, then runs them all.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['spec/unit/**/*.spec.ts'] } },
      {
        test: {
          name: 'emulator',
          include: ['spec/emulator/**/*.spec.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'pluginserver',
          include: ['spec/pluginserver/**/*.spec.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['spec/integration/**/*.spec.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          // Outage and failover tests bound decision times: one Redis deployment at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['spec/e2e/**/*.spec.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
