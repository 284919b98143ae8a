/**
 * Referral sync against the FPX sandbox and Azurite (issue 4's figures).
 *   npm run bench:sync [-- --referrals 10000 --page-size 25 --limit 600 --rss-referrals 100000]
 * 1. first sync of N referrals: FPX list calls (target ⌈N/pageSize⌉) and table write requests to
 *    FpxReferrals (target ≤ ⌈N/100⌉ + 2); unchanged re-sync: entity writes (target 0);
 * 2. sandbox and client both at L calls/min: wall time over the floor (calls − 1) ÷ (L/60) s
 *    (target ≤ 1.05) and 429s (target 0) — measured on an unchanged re-sync, so the listing, not
 *    Azurite's write speed, sets the pace;
 * 3. peak RSS of a sync of --rss-referrals at page size 100 in a process of its own (target ≤ 256 MB).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startAzurite } from '../dev/azurite';
import { startSandbox } from '../dev/sandbox';
import { FileCertificateSource } from '../lib/cert';
import { FpxClient, FpxTransport } from '../lib/fpx';
import { tableClient } from '../lib/storage';
import { syncReferrals } from '../lib/sync';

const { values } = parseArgs({
  options: {
    referrals: { type: 'string', default: '10000' },
    'page-size': { type: 'string', default: '25' },
    limit: { type: 'string', default: '600' },
    'rss-referrals': { type: 'string', default: '100000' },
  },
});
const N = Number(values.referrals);
const pageSize = Number(values['page-size']);
const L = Number(values.limit);
const rssN = Number(values['rss-referrals']);
const ROOT = path.resolve(__dirname, '..');

async function main() {
  const azurite = await startAzurite();
  const sandbox = await startSandbox({ data: { referrals: N, tenants: 50 }, rateLimitPerMinute: 0 });
  const suffix = randomBytes(3).toString('hex');
  const writes = { rows: 0 };
  const table = (name: string) => {
    const client = tableClient(azurite.connectionString, `${name}${suffix}`);
    if (name === 'FpxReferrals') {
      client.pipeline.addPolicy(
        {
          name: 'countWrites',
          sendRequest(request, next) {
            if (request.method !== 'GET') writes.rows++;
            return next(request);
          },
        },
        { afterPhase: 'Retry' },
      );
    }
    return client;
  };
  const memo = new Map<string, ReturnType<typeof table>>();
  const tables = (name: string) => {
    const client = memo.get(name) ?? table(name);
    memo.set(name, client);
    return client;
  };
  const transport = (perMinute: number) =>
    new FpxTransport({
      baseUrl: sandbox.url,
      certificates: new FileCertificateSource(sandbox.certs.client.pemPath),
      caPem: sandbox.certs.ca.certPem,
      rateLimitPerMinute: perMinute,
    });
  try {
    const open = transport(10_000_000);
    const first = await syncReferrals({ fpx: new FpxClient(open, pageSize), table: tables });
    console.log(
      `first sync of ${N} referrals (page size ${pageSize}): ${first.apiCalls} FPX list calls ` +
        `(target ${Math.ceil(N / pageSize)}), ${writes.rows} write requests to FpxReferrals ` +
        `(target <= ${Math.ceil(N / 100) + 2}; ${first.transactions} transactions, largest ${first.largestTransaction}), ` +
        `${first.tableRequests} table requests in all, ${(first.durationMs / 1000).toFixed(1)} s`,
    );
    const writesBefore = writes.rows;
    const again = await syncReferrals({ fpx: new FpxClient(open, pageSize), table: tables });
    console.log(
      `unchanged re-sync: ${again.entityWrites} entity writes (target 0), ${writes.rows - writesBefore} write requests ` +
        `to FpxReferrals, ${again.tableRequests} table requests in all, ${(again.durationMs / 1000).toFixed(1)} s`,
    );
    await open.close();

    sandbox.setRateLimit(L);
    sandbox.clearRequests();
    const limited = transport(L);
    const started = performance.now();
    const paced = await syncReferrals({ fpx: new FpxClient(limited, pageSize), table: tables });
    const wall = (performance.now() - started) / 1000;
    const floor = (paced.apiCalls - 1) / (L / 60);
    const throttled = sandbox.requests.filter((r) => r.status === 429).length;
    console.log(
      `at L=${L}/min on client and sandbox: ${paced.apiCalls} calls in ${wall.toFixed(1)} s, floor ${floor.toFixed(1)} s, ` +
        `ratio ${(wall / floor).toFixed(3)} (target <= 1.05), 429s: ${throttled} (target 0)`,
    );
    await limited.close();
  } finally {
    await sandbox.close();
  }

  if (rssN > 0) {
    const rss = await peakRss(azurite.connectionString, rssN);
    console.log(
      `sync of ${rssN} referrals at page size 100 in its own process: peak RSS ${rss.peakRssMb.toFixed(0)} MB ` +
        `(target <= 256), ${rss.result.apiCalls} calls, ${rss.result.entityWrites} entities written, ` +
        `${(rss.wallMs / 1000).toFixed(0)} s`,
    );
  }
  await azurite.stop();
}

/** Sandbox and sync each in a process of their own, so the figure is the sync's memory alone. */
async function peakRss(storage: string, referrals: number) {
  const sandboxPort = 20_000 + Math.floor(Math.random() * 20_000);
  const sandbox = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'dev/sandbox/main.ts',
      '--port',
      String(sandboxPort),
      '--referrals',
      String(referrals),
      '--rate-limit',
      '0',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const url = await firstMatch(sandbox, /listening on (\S+)/);
    const certs = path.join(ROOT, '.local', 'certs');
    const run = spawn(
      process.execPath,
      ['--import', 'tsx', 'bench/sync-run.ts', '--suffix', randomBytes(3).toString('hex')],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          AzureWebJobsStorage: storage,
          FPX_BASE_URL: url,
          FPX_CERT_PATH: path.join(certs, 'client.pem'),
          FPX_CA_PATH: path.join(certs, 'ca.pem'),
          FPX_PAGE_SIZE: '100',
          FPX_RATE_LIMIT_PER_MINUTE: '60000',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const line = await firstMatch(run, /^(\{.*\})$/m);
    return JSON.parse(line) as {
      result: { apiCalls: number; entityWrites: number };
      wallMs: number;
      peakRssMb: number;
    };
  } finally {
    sandbox.kill('SIGINT');
  }
}

function firstMatch(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = pattern.exec(output);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before printing ${pattern}`)));
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
