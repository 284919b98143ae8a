import { defineConfig } from 'vitest/config';

/**
 * Two tiers. `unit`: the pure rules, no servers, seconds (`npm run test:unit`). `integration`: what touches
 * storage, FPX or the host, against one in-memory Azurite (global setup) and sandboxes the suites start.
 * `npm test` runs both.
 *
 * A test file gets a fresh module graph (a fresh process) only where it needs one: the suites that load the
 * app entry (its composition root reads the settings once per process), run a Functions host or spawn
 * processes. The others, and the unit tier, share one module graph per worker: lib/ is imported once per
 * worker, not once per file.
 */
const OWN_PROCESS = [
  'test/bundle.test.ts',
  'test/crm-host.test.ts',
  'test/details.test.ts',
  'test/health.test.ts',
  'test/host.test.ts',
  'test/invoke.test.ts',
  'test/ops-page.test.ts',
  'test/poll-function.test.ts',
  'test/start.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start their own sandbox and share one Azurite; two cores, so two workers.
    maxWorkers: 2,
    // Transformed modules kept on disk (node_modules/.experimental-vitest-cache, keyed by their content):
    // a second run does not transform lib/ again.
    experimental: { fsModuleCache: true },
    // The JSON report gives .ci/run its "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.local/test-results.json' }]],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: OWN_PROCESS,
          globalSetup: ['test/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration (shared)',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', ...OWN_PROCESS],
          globalSetup: ['test/global-setup.ts'],
          isolate: false,
        },
      },
    ],
  },
});
