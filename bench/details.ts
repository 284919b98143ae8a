/**
 * Per-tenant details through the local host's queue processing (issue 7's figures).
 *   npm run bench:details [-- --tenants 500 --limit 3000 --hosts 2]
 * `--hosts 2`: a second host process polls the same queue (the deployment's one budget shared by both).
 * Sandbox and client both at L calls/min; pollTenants fans out one message per tenant and the host's
 * queue trigger runs syncTenantDetails for each. Prints the FPX calls made against the calls the data
 * needs, wall time over the rate-limit floor (calls − 1) ÷ (L/60) (target ≤ 1.10) and the 429s (target 0).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startAzurite } from '../dev/azurite';
import { DEFAULT_ENTRY, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { sandboxSettings, startSandbox } from '../dev/sandbox';
import { SCHEDULE_DEFAULTS } from '../lib/config';
import { tableClient } from '../lib/storage';
import { readDetailsState } from '../lib/sync';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string', default: '500' },
    limit: { type: 'string', default: '3000' },
    hosts: { type: 'string', default: '1' },
  },
});
const TENANTS = Number(values.tenants);
const L = Number(values.limit);
const HOSTS = Number(values.hosts);
const PAGE_SIZE = 25;

async function main() {
  const azurite = await startAzurite();
  const sandbox = await startSandbox({ data: { tenants: TENANTS, referrals: 0 }, rateLimitPerMinute: L });
  const settings = {
    AzureWebJobsStorage: azurite.connectionString,
    ...sandboxSettings(sandbox),
    FPX_RATE_LIMIT_PER_MINUTE: String(L),
    FPX_PAGE_SIZE: String(PAGE_SIZE),
  };
  const logger = memoryLogger();
  const host = await startHost({
    entry: DEFAULT_ENTRY,
    port: 0,
    settings: { ...SCHEDULE_DEFAULTS, ...settings },
    timers: false,
    queuePollIntervalMs: { min: 20, max: 500 },
    logger,
  });
  // More instances on the same queue, each a process of its own with its own FPX client: one budget for all.
  const others: ChildProcess[] = [];
  for (let i = 1; i < HOSTS; i++) {
    const child = fork(new URL('./details-host.ts', import.meta.url).pathname, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...settings },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    others.push(child);
  }
  try {
    // What the data needs at least: per tenant one entitlements call over every FRP service, then for each
    // service with records its own listing (records name no service, FPX-NOTES #12) and its seats; the
    // contact pages, the note pages of every category (an empty listing is still one call); the note
    // categories and FRP services once per process.
    const categories = sandbox.data.reference.noteCategories.map((c) => Number(c.id));
    const pages = (n: number) => Math.max(1, Math.ceil(n / PAGE_SIZE));
    let needed = 1 + pages(sandbox.data.partnerTenants.length); // + the pollTenants listing itself
    for (const tenant of sandbox.data.partnerTenants) {
      const details = sandbox.data.tenants.get(tenant.tenantId);
      if (!details) throw new Error('sandbox tenant without details');
      const own = <T extends { rfaId: number | null }>(list: T[]) => list.filter((e) => e.rfaId === null);
      const withRecords = [...details.entitlements.values()].filter((s) => s.records.length > 0).length;
      needed += 1 + 2 * withRecords + pages(own(details.contacts).length);
      for (const category of categories) {
        needed += pages(
          own(details.notes).filter((n) => Number(n.note.noteCategory?.id) === category).length,
        );
      }
    }

    // The first run finds no entitlement rows to say where records were; the second reads those services first.
    for (const run of ['first run', 'second run (unchanged data)']) {
      console.log(`${run}:`);
      sandbox.clearRequests();
      const started = performance.now();
      const poll = await host.invoke('pollTenants');
      if (poll.outcome !== 'Succeeded') throw new Error(`pollTenants failed: ${poll.error?.message}`);
      const { fanOut } = poll.result as { fanOut: { enqueued: number; runId: string } };
      const state = tableClient(azurite.connectionString, 'FpxSyncState');
      // Progress: the FPX calls so far; a stall (no call for 30 s before the run is complete) is reported.
      let lastCalls = -1;
      let lastProgress = performance.now();
      let lastReport = 0;
      for (;;) {
        const row = await readDetailsState(state);
        if (row?.runId === fanOut.runId && row.lastStatus !== 'running') {
          if (row.tenantsFailed > 0) console.log(`failed tenants: ${row.failedTenants}`);
          break;
        }
        const calls = sandbox.requests.length;
        if (calls > lastCalls) {
          lastCalls = calls;
          lastProgress = performance.now();
        } else if (performance.now() - lastProgress > 30_000) {
          const errors = logger.entries.filter((e) => e.level === 'error' || e.level === 'warning');
          console.log(`stalled after ${calls} FPX calls; last errors:`);
          for (const e of errors.slice(-5)) console.log(`  ${e.functionName ?? ''} ${e.message}`);
          throw new Error('stalled');
        }
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          console.log(`  ${((lastReport - started) / 1000).toFixed(0)} s: ${calls} FPX calls`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      const wall = (performance.now() - started) / 1000;
      const calls = sandbox.requests.length;
      const throttled = sandbox.requests.filter((r) => r.status === 429).length;
      const repeats =
        calls - new Set(sandbox.requests.map((r) => `${r.path}?${JSON.stringify(r.query)}`)).size;
      const floor = (calls - 1) / (L / 60);
      console.log(
        `pollTenants + ${fanOut.enqueued} tenants at L=${L}/min on ${HOSTS} host process(es): ${calls} FPX calls, the data needs ${needed} ` +
          `(repeated requests: ${repeats}); ${wall.toFixed(1)} s, floor ${floor.toFixed(1)} s, ` +
          `ratio ${(wall / floor).toFixed(3)} (target <= 1.10); 429s: ${throttled} (target 0)`,
      );
      const kinds: Record<string, number> = {};
      for (const r of sandbox.requests) {
        const kind = r.path.startsWith('/tenants/')
          ? r.path
              .replace(/^\/tenants\/[^/]+/, '/tenants/{id}')
              .replace(/\/services\/\d+\//, '/services/{serviceId}/')
          : r.path;
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
      console.log(
        `FPX calls per tenant: ${(calls / fanOut.enqueued).toFixed(2)}; by endpoint: ` +
          Object.entries(kinds)
            .map(([kind, n]) => `${kind} ${n} (${(n / fanOut.enqueued).toFixed(2)}/tenant)`)
            .join(', '),
      );
      // Unused categories would also be fetched: show the split for the record.
      const failures = logger.entries.filter((e) => e.level === 'error' && e.category === 'host');
      console.log(
        `note categories: ${categories.join(', ')}; page size ${PAGE_SIZE}; failed invocations: ${failures.length}`,
      );
      for (const f of failures.slice(0, 3)) console.log(`  ${f.message}`);
    }
  } finally {
    for (const child of others) child.disconnect();
    await host.stop();
    await sandbox.close();
    await azurite.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
