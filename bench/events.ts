/**
 * CRM events through the local Functions host (issue 19's figures).
 *   npm run bench:events [-- --referrals 10000 --per-second 200 --page-size 100]
 * 1. A partner's first sync: N new referrals in the FPX sandbox, pollReferrals once; the host's queue trigger
 *    runs deliverCrmEvent. Prints the time until the local receiver has every event (signature checked),
 *    events per second against the pace CRM_EVENTS_PER_SECOND, and the storage requests per event (outbox
 *    table, pace row, `crm-events` queue; counted on the wire, queue polling included).
 * 2. The usual case: 10 referrals change, pollReferrals again: the time from the end of the sync run to the
 *    last of their events at the receiver (goal: within 5 s).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { startAzurite } from '../dev/azurite';
import { startEventReceiver } from '../dev/event-receiver';
import { DEFAULT_ENTRY, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { sandboxSettings, startSandbox } from '../dev/sandbox';
import { SCHEDULE_DEFAULTS } from '../lib/config';

const { values } = parseArgs({
  options: {
    referrals: { type: 'string', default: '10000' },
    'per-second': { type: 'string', default: '200' },
    'page-size': { type: 'string', default: '100' },
  },
});
const N = Number(values.referrals);
const PER_SECOND = Number(values['per-second']);

/** Storage requests on the wire, by what they touch: counted where the SDKs call node:http. */
const requests = { outbox: 0, queue: 0, other: 0 };
let counting = false;
function countStorageRequests(ports: { table: number; queue: number }) {
  const original = http.request;
  const patched = function (this: unknown, ...args: Parameters<typeof http.request>) {
    const request = original.apply(this, args as never) as http.ClientRequest;
    const options = args[0] as http.RequestOptions | string | URL;
    const url = typeof options === 'string' || options instanceof URL ? new URL(options) : undefined;
    const port = Number(url?.port ?? (options as http.RequestOptions).port);
    const path = url?.pathname ?? (options as http.RequestOptions).path ?? '';
    if (!counting || (port !== ports.table && port !== ports.queue)) return request;
    if (port === ports.queue) {
      if (path.includes('/crm-events')) requests.queue++;
      else requests.other++;
    } else if (path.includes('CrmEventsOutbox')) {
      requests.outbox++;
    } else if (path.includes('$batch')) {
      // A batch names its table in the body: sniff the first chunk.
      const write = request.write.bind(request);
      let classified = false;
      request.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (!classified) {
          classified = true;
          if (String(chunk).includes('CrmEventsOutbox')) requests.outbox++;
          else requests.other++;
        }
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof request.write;
    } else {
      requests.other++;
    }
    return request;
  };
  (http as { request: typeof http.request }).request = patched as typeof http.request;
}

async function main() {
  const azurite = await startAzurite();
  countStorageRequests(azurite.ports);
  const sandbox = await startSandbox({ data: { referrals: N, tenants: 50 }, rateLimitPerMinute: 0 });
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const receiver = await startEventReceiver({ secret, port: 0, log: false });
  const logger = memoryLogger();
  const host = await startHost({
    entry: DEFAULT_ENTRY,
    port: 0,
    settings: {
      ...SCHEDULE_DEFAULTS,
      AzureWebJobsStorage: azurite.connectionString,
      ...sandboxSettings(sandbox),
      FPX_RATE_LIMIT_PER_MINUTE: '60000',
      FPX_PAGE_SIZE: values['page-size'],
      CRM_EVENTS_URL: receiver.url,
      CRM_EVENTS_SECRET: secret,
      CRM_EVENTS_PER_SECOND: String(PER_SECOND),
    },
    timers: false,
    // As host.json asks of Azure: an idle queue is polled at most 2 s apart.
    queuePollIntervalMs: { min: 100, max: 2000 },
    logger,
  });
  // Counted as events arrive: building a set of 10,000 ids every 10 ms would cost the process it measures.
  const ids = new Set<string>();
  const distinct = () => {
    for (let i = ids.size; i < receiver.events.length; i++) ids.add(receiver.events[i]?.webhookId ?? '');
    return ids.size;
  };
  const waitForEvents = async (count: number, timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs;
    let lastReport = performance.now();
    while (distinct() < count) {
      if (performance.now() > deadline) {
        const errors = logger.entries.filter((e) => e.level === 'error' || e.level === 'warning').slice(-5);
        throw new Error(
          `${distinct()} of ${count} events after ${timeoutMs} ms; ${errors.map((e) => e.message).join('\n')}`,
        );
      }
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        console.log(`  ${distinct()} events received…`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return performance.now();
  };
  try {
    console.log(`first sync: ${N} new referrals, CRM_EVENTS_PER_SECOND=${PER_SECOND}`);
    counting = true;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const poll = await host.invoke('pollReferrals');
    if (poll.outcome !== 'Succeeded') throw new Error(`pollReferrals failed: ${poll.error?.message}`);
    const synced = performance.now();
    const done = await waitForEvents(N, 30 * 60_000);
    counting = false;
    const cpu = process.cpuUsage(cpuBefore);
    const first = Math.min(...receiver.events.map((e) => e.receivedAt));
    const sending = (done - started) / 1000;
    const storage = requests.outbox + requests.queue;
    console.log(
      `  pollReferrals ${((synced - started) / 1000).toFixed(1)} s; all ${N} events at the receiver after ` +
        `${sending.toFixed(1)} s (${((done - synced) / 1000).toFixed(1)} s after the sync ended); ` +
        `${(N / sending).toFixed(0)} events/s overall, ${(N / ((Date.now() - first) / 1000)).toFixed(0)} events/s from the first event ` +
        `(pace ${PER_SECOND}/s: floor ${(N / PER_SECOND).toFixed(1)} s)`,
    );
    console.log(
      `  storage requests per event: ${(storage / N).toFixed(2)} (outbox table and pace row ${(requests.outbox / N).toFixed(2)}, ` +
        `crm-events queue incl. polling ${(requests.queue / N).toFixed(2)}); besides, other tables (the sync's rows, ` +
        `the sender's check that an event's row is stored) ${(requests.other / N).toFixed(2)}; signatures refused: ${receiver.rejected}; ` +
        `repeats: ${receiver.events.length - distinct()}`,
    );
    console.log(
      `  CPU of this process (host, sync, sender, receiver; Azurite apart): ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms per event`,
    );

    // The usual case: a few referrals change between two runs.
    const changed = sandbox.data.referrals.slice(0, 10);
    for (const referral of changed) referral.tenantName = `${referral.tenantName} (renamed)`;
    const before = distinct();
    const again = performance.now();
    const second = await host.invoke('pollReferrals');
    if (second.outcome !== 'Succeeded') throw new Error(`pollReferrals failed: ${second.error?.message}`);
    const ended = performance.now();
    const arrived = await waitForEvents(before + changed.length, 60_000);
    console.log(
      `usual run: ${changed.length} changed referrals: pollReferrals ${((ended - again) / 1000).toFixed(1)} s, ` +
        `their events at the receiver ${((arrived - ended) / 1000).toFixed(2)} s after the run ended (goal <= 5 s)`,
    );
  } finally {
    await host.stop();
    await receiver.close();
    await sandbox.close();
    await azurite.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
