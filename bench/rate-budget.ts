/**
 * The deployment's one FPX budget across separate processes (issue 13):
 *   npm run bench:rate-budget [-- --limit 1200 --seconds 120]
 * One Azurite, one sandbox enforcing a sliding 60-second window of L calls per client certificate, and four
 * Node processes, each with the app's own composition root (its own FPX client and budget), as four
 * Functions instances would have. Each process tags its calls with its own Origin, so the sandbox's log
 * tells them apart. Prints, against their targets:
 *   1. all four busy: 429s (0), busiest 60-s window (≤ L), calls a minute in total (≥ 0.9 L),
 *      storage requests per FPX call (≤ 0.1), interactive slot wait p50 / p99 (p50 ≤ one slot interval);
 *   2. one busy, three idle: its calls a minute (≥ 0.9 L);
 *   3. one of four killed: seconds until the other three use its share (≤ 10 s).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startAzurite } from '../dev/azurite';
import { type RequestLogEntry, sandboxSettings, startSandbox } from '../dev/sandbox';
import { busiestWindow } from '../lib/rate-budget';

const { values } = parseArgs({
  options: { limit: { type: 'string', default: '1200' }, seconds: { type: 'string', default: '120' } },
});
const L = Number(values.limit);
const SECONDS = Number(values.seconds);

interface Report {
  calls: number;
  throttled: number;
  storeRequests: number;
  interactiveStoreRequests: number;
  slotsClaimed: number;
  waits: number[];
}
/** Each phase's load runs this long before it is measured: the figures are the steady state. */
const WARM_UP_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const azurite = await startAzurite();
  const sandbox = await startSandbox({ data: { tenants: 4, referrals: 4 }, rateLimitPerMinute: L });
  const workers: ChildProcess[] = [];
  const spawn = async (index: number) => {
    const child = fork(new URL('./rate-budget-worker.ts', import.meta.url).pathname, [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        AzureWebJobsStorage: azurite.connectionString,
        ...sandboxSettings(sandbox),
        FPX_RATE_LIMIT_PER_MINUTE: String(L),
        FPX_ORIGIN: `https://instance-${index}.bench.invalid`,
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    workers[index] = child;
    return child;
  };
  const tell = (child: ChildProcess | undefined, message: object) => child?.send(message);
  const report = (child: ChildProcess) =>
    new Promise<Report>((resolve) => {
      child.once('message', (m) => resolve(m as Report));
      child.send({ do: 'report' });
    });
  const origin = (entry: RequestLogEntry) => Number(/instance-(\d+)/.exec(entry.origin ?? '')?.[1] ?? -1);
  const inPhase = (from: number, to: number) =>
    sandbox.requests.filter((entry) => entry.time >= from && entry.time < to);

  try {
    await Promise.all([0, 1, 2, 3].map(spawn));
    const interval = 60_000 / L;

    // 1. All four busy; instance 0 also makes an interactive call every second.
    for (const child of workers) tell(child, { do: 'busy', workers: 16 });
    tell(workers[0], { do: 'interactive', everyMs: 1000 });
    await sleep(WARM_UP_MS);
    const before = await Promise.all(workers.map(report));
    let from = Date.now();
    await sleep(SECONDS * 1000);
    let to = Date.now();
    for (const child of workers) tell(child, { do: 'idle' });
    const after = await Promise.all(workers.map(report));
    let calls = inPhase(from, to);
    const throttled = calls.filter((e) => e.status === 429).length;
    const busiest = busiestWindow(calls.map((e) => e.time));
    const perMinute = (calls.length / (to - from)) * 60_000;
    const sum = (key: 'calls' | 'storeRequests' | 'interactiveStoreRequests') =>
      after.reduce((n, r, i) => n + r[key] - (before[i] as Report)[key], 0);
    const storePerCall = sum('storeRequests') / sum('calls');
    const bulkStorePerCall = (sum('storeRequests') - sum('interactiveStoreRequests')) / sum('calls');
    const waits = after.flatMap((r) => r.waits).sort((a, b) => a - b);
    const pct = (p: number) => waits[Math.min(waits.length - 1, Math.floor(p * waits.length))] ?? NaN;
    console.log(`L = ${L} calls/min, slot interval ${interval.toFixed(1)} ms; phases of ${SECONDS} s`);
    console.log(
      `1. four busy: ${calls.length} calls, ${perMinute.toFixed(0)}/min = ${(perMinute / L).toFixed(3)} L (target >= 0.9); ` +
        `busiest 60-s window ${busiest} (target <= ${L}); 429s ${throttled} (target 0); ` +
        `per instance ${[0, 1, 2, 3].map((i) => calls.filter((e) => origin(e) === i).length).join(' / ')}`,
    );
    console.log(
      `   storage requests per FPX call: ${storePerCall.toFixed(3)} in all (target <= 0.1), ` +
        `${bulkStorePerCall.toFixed(3)} for the bulk blocks, the rest for ${waits.length} interactive calls' own slots; ` +
        `interactive slot wait over ${waits.length} calls: p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms ` +
        `(target p50 <= ${interval.toFixed(1)} ms)`,
    );
    await sleep(2_000);

    // 2. One busy, three idle.
    tell(workers[1], { do: 'busy', workers: 16 });
    await sleep(WARM_UP_MS);
    from = Date.now();
    await sleep(Math.min(SECONDS, 60) * 1000);
    to = Date.now();
    tell(workers[1], { do: 'idle' });
    calls = inPhase(from, to);
    const alone = (calls.filter((e) => origin(e) === 1).length / (to - from)) * 60_000;
    const perFive: number[] = [];
    for (let t = from; t + 5_000 <= to; t += 5_000)
      perFive.push(calls.filter((e) => e.time >= t && e.time < t + 5_000).length);
    console.log(`   (calls per 5 s: ${perFive.join(' ')})`);
    console.log(
      `2. one busy, three idle: ${alone.toFixed(0)}/min = ${(alone / L).toFixed(3)} L (target >= 0.9); ` +
        `busiest window ${busiestWindow(calls.map((e) => e.time))}; 429s ${calls.filter((e) => e.status === 429).length}`,
    );
    await sleep(2_000);

    // 3. Four busy, then one is killed; how long until the other three's rate covers its share?
    from = Date.now();
    for (const child of workers) tell(child, { do: 'busy', workers: 16 });
    await sleep(20_000);
    // Blocks go round the instances a few seconds each: kill instance 3 while it holds the grid.
    for (let waited = 0; waited < 30_000; waited += 100) {
      const recent = sandbox.requests.filter((e) => e.time > Date.now() - 300);
      if (recent.length > 0 && recent.every((e) => origin(e) === 3)) break;
      await sleep(100);
    }
    const killedAt = Date.now();
    workers[3]?.kill('SIGKILL');
    await sleep(20_000);
    to = Date.now();
    for (const child of workers.slice(0, 3)) tell(child, { do: 'idle' });
    const survivors = inPhase(from, to).filter((e) => origin(e) >= 0 && origin(e) < 3);
    const steady = survivors.filter((e) => e.time >= from + 5_000 && e.time < killedAt).length;
    const fourRate = inPhase(from + 5_000, killedAt).length / ((killedAt - from - 5_000) / 1000);
    let recoveredAfter = Number.NaN;
    // The first moment from which the survivors' rate, over a 2-s window, reaches 90 % of what all four had.
    for (let t = killedAt; t < to - 2_000; t += 100) {
      const rate = survivors.filter((e) => e.time >= t && e.time < t + 2_000).length / 2;
      if (rate >= 0.9 * fourRate) {
        recoveredAfter = (t - killedAt) / 1000;
        break;
      }
    }
    const killedCalls = inPhase(killedAt, to).filter((e) => origin(e) === 3).length;
    console.log(
      `3. one of four killed: before, four made ${fourRate.toFixed(1)} calls/s (three of them ${(steady / ((killedAt - from - 5_000) / 1000)).toFixed(1)}); ` +
        `the other three reach 90 % of that ${recoveredAfter.toFixed(1)} s after the kill (target <= 10 s); ` +
        `calls of the killed one after the kill: ${killedCalls}; 429s ${inPhase(from, to).filter((e) => e.status === 429).length}`,
    );
    console.log(`sandbox's busiest windows: ${JSON.stringify(Object.values(sandbox.busiestWindows()))}`);
  } finally {
    for (const child of workers) child?.kill();
    await sandbox.close();
    await azurite.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
