/**
 * What the webhook path adds to an FPX note create, in one run:
 *   npm run bench:webhooks [-- --calls 400 --concurrent-calls 2000 --rate 100]
 * A direct `FpxClient.createNote` against the sandbox (limits off, mutual TLS) versus the same create
 * through `POST /api/crm/notes` on the local host (real functions/index.ts, Azurite, signature, claim and
 * record in Table Storage), at concurrency 1 and 50. Prints p50/p99 of both and the overhead.
 * Everything but Azurite runs in this process (a host in a child process measured slower: one more hop
 * on the same two cores), so at concurrency 50 the figures are bound by this process's CPU per call,
 * which is printed too, with the throughput: there latency is about 50 x CPU per call, whatever the path.
 * A third row offers calls at a fixed rate (`--rate` per second, at most 50 in flight), below what either
 * path saturates at, timing each from its scheduled start: the overhead of a loaded but unsaturated app.
 * Target: overhead <= 5 ms at p50 and <= 20 ms at p99.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startAzurite } from '../dev/azurite';
import { startHost } from '../dev/host/host';
import { sandboxSettings, startSandbox } from '../dev/sandbox';
import { buildServices } from '../functions/services';
import { loadConfig, SCHEDULE_DEFAULTS } from '../lib/config';
import { signWebhook, webhookKeys } from '../lib/crm';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '400' },
    'concurrent-calls': { type: 'string', default: '2000' },
    rate: { type: 'string', default: '100' },
  },
});
const TENANT = '9d4c6f56-7db9-4236-9957-ce225e3583be';

type Call = () => Promise<void>;

/** Latencies (ms) of `total` calls made by `concurrency` workers, and this process's CPU per call. */
async function measure(total: number, concurrency: number, makeCall: (i: number) => Call) {
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const wall = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const call = makeCall(next++);
        const started = performance.now();
        await call();
        latencies.push(performance.now() - started);
      }
    }),
  );
  return summary(latencies, cpu, total, wall);
}

/** `total` calls started at `perSecond` (at most 50 in flight), each timed from when it was due. */
async function measureAtRate(total: number, perSecond: number, makeCall: (i: number) => Call) {
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const wall = performance.now();
  const due = (i: number) => wall + (i * 1000) / perSecond;
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < total) {
        const i = next++;
        const wait = due(i) - performance.now();
        if (wait > 0) await sleep(wait);
        await makeCall(i)();
        latencies.push(performance.now() - due(i));
      }
    }),
  );
  return summary(latencies, cpu, total, wall);
}

function summary(latencies: number[], cpu: NodeJS.CpuUsage, total: number, wall: number) {
  const used = process.cpuUsage(cpu);
  return {
    latencies: latencies.sort((a, b) => a - b),
    cpuMsPerCall: (used.user + used.system) / 1000 / total,
    callsPerSecond: total / ((performance.now() - wall) / 1000),
  };
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

async function main() {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const [key] = webhookKeys([secret]);
  const [azurite, sandbox] = await Promise.all([
    startAzurite(),
    startSandbox({ rateLimitPerMinute: 0, data: { tenants: 4, referrals: 2 } }),
  ]);
  const settings = {
    AzureWebJobsStorage: azurite.connectionString,
    ...sandboxSettings(sandbox),
    FPX_RATE_LIMIT_PER_MINUTE: '60000', // the highest the setting allows: a slot every millisecond
    CRM_WEBHOOK_SECRET: secret,
  };
  const host = await startHost({
    port: 0,
    timers: false,
    queues: false,
    settings: { ...SCHEDULE_DEFAULTS, ...settings },
    logger: { log: () => undefined },
  });
  const direct = buildServices(loadConfig(settings)).fpx;
  const toHost = new Agent({ connections: 64 });
  const run = randomUUID().slice(0, 8);

  const directCall =
    (i: number): Call =>
    async () => {
      await direct.createNote(TENANT, { text: `direct ${run} ${i}`, noteCategoryId: 1 });
    };
  const webhookCall = (i: number): Call => {
    // Signed before the clock starts: signing is the CRM's work, not ours.
    const body = JSON.stringify({ tenantId: TENANT, text: `webhook ${run} ${i}`, noteCategoryId: 1 });
    const id = `msg_${run}_${i}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(key as Buffer, id, timestamp, body),
    };
    return async () => {
      const response = await request(`${host.url}/api/crm/notes`, {
        method: 'POST',
        headers,
        body,
        dispatcher: toHost,
      });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`webhook answered ${response.statusCode}`);
    };
  };

  try {
    const rows: string[] = [];
    type Run = Awaited<ReturnType<typeof measure>>;
    const report = (label: string, fpx: Run, webhook: Run) => {
      const line = (p: number) => {
        const d = percentile(fpx.latencies, p);
        const w = percentile(webhook.latencies, p);
        return `p${p} direct ${d.toFixed(2)} ms, webhook ${w.toFixed(2)} ms, overhead ${(w - d).toFixed(2)} ms`;
      };
      const per = (run: Run) =>
        `${run.cpuMsPerCall.toFixed(2)} ms CPU, ${run.callsPerSecond.toFixed(0)} calls/s`;
      rows.push(
        `${label}: ${line(50)}; ${line(99)}\n  this process: direct ${per(fpx)}; webhook ${per(webhook)}`,
      );
    };
    for (const [concurrency, total] of [
      [1, Number(values.calls)],
      [50, Number(values['concurrent-calls'])],
    ] as const) {
      const base = concurrency * 10_000_000;
      // Each measured right after a warm-up at the same concurrency: JIT, tables, and one TLS connection per
      // concurrent call already open (undici closes idle ones after 4 s).
      await measure(200, concurrency, (i) => directCall(base + 1_000_000 + i));
      const fpx = await measure(total, concurrency, (i) => directCall(base + i));
      await measure(200, concurrency, (i) => webhookCall(base + 1_000_000 + i));
      const webhook = await measure(total, concurrency, (i) => webhookCall(base + i));
      report(`concurrency ${String(concurrency).padStart(2)} (${total} calls each)`, fpx, webhook);
    }
    const rate = Number(values.rate);
    const total = Number(values['concurrent-calls']);
    const fpx = await measureAtRate(total, rate, (i) => directCall(90_000_000 + i));
    const webhook = await measureAtRate(total, rate, (i) => webhookCall(90_000_000 + i));
    report(`${rate} calls/s offered, up to 50 in flight (${total} calls each)`, fpx, webhook);
    console.log(rows.join('\n'));
    console.log('target: overhead <= 5 ms at p50 and <= 20 ms at p99');
  } finally {
    await toHost.close();
    await direct.transport.close();
    await host.stop();
    await Promise.all([sandbox.close(), azurite.stop()]);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
