import { defineConfig } from 'vitest/config';

/**
 * Two tiers. `unit`: the pure rules, no servers, seconds (`npm run test:unit`). `integration`: what touches
 * storage, FPX or the host, against one in-memory Azurite (global setup) and sandboxes the suites start.
 * `npm test` runs both.
 */
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start their own sandbox and share one Azurite; two cores, so two workers.
    maxWorkers: 2,
    // The JSON report gives .ci/run its "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.local/test-results.json' }]],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
