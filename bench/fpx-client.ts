/**
 * FPX client throughput against the sandbox over real mutual TLS.
 *   npm run bench:fpx-client [-- --calls 4000 --limit 1200 --limited-calls 600]
 * 1. limits off: calls per second the client and sandbox manage together;
 * 2. client and sandbox both at L calls/min: achieved rate as a fraction of L, and the 429s.
 */
import { parseArgs } from 'node:util';
import { startSandbox } from '../dev/sandbox';
import { FileCertificateSource } from '../lib/cert';
import { FpxClient, FpxTransport } from '../lib/fpx';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '32' },
    limit: { type: 'string', default: '1200' },
    'limited-calls': { type: 'string', default: '600' },
  },
});
const calls = Number(values.calls);
const concurrency = Number(values.concurrency);
const limit = Number(values.limit);
const limitedCalls = Number(values['limited-calls']);

async function run(
  fpx: FpxClient,
  total: number,
  workers: number,
): Promise<{ seconds: number; failed: number }> {
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < total) {
        next++;
        await fpx.referenceList('timezones').catch(() => failed++);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, failed };
}

async function main() {
  const sandbox = await startSandbox({ rateLimitPerMinute: 0, data: { tenants: 10, referrals: 10 } });
  const make = (perMinute: number) =>
    new FpxClient(
      new FpxTransport({
        baseUrl: sandbox.url,
        certificates: new FileCertificateSource(sandbox.certs.client.pemPath),
        caPem: sandbox.certs.ca.certPem,
        rateLimitPerMinute: perMinute,
      }),
      25,
    );
  try {
    const unlimited = make(10_000_000);
    await run(unlimited, 200, concurrency); // warm-up: TLS sessions, JIT
    const open = await run(unlimited, calls, concurrency);
    console.log(
      `limits off: ${calls} calls, ${open.failed} failed, ${(calls / open.seconds).toFixed(0)} calls/s`,
    );
    await unlimited.transport.close();

    sandbox.setRateLimit(limit);
    sandbox.clearRequests();
    const limited = make(limit);
    const paced = await run(limited, limitedCalls, concurrency);
    const achieved = limitedCalls / paced.seconds / (limit / 60);
    const throttled = sandbox.requests.filter((r) => r.status === 429).length;
    console.log(
      `limited to L=${limit}/min on both sides: ${limitedCalls} calls in ${paced.seconds.toFixed(1)} s, ` +
        `achieved ${(achieved * limit).toFixed(0)}/min = ${achieved.toFixed(3)} of L (target >= 0.95), ` +
        `429s: ${throttled} (target 0), failed: ${paced.failed}`,
    );
    await limited.transport.close();
  } finally {
    await sandbox.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
