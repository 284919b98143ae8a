/**
 * `npm run bench:cold-start`: how long a fresh Node process takes to load the app and register every function,
 * for the esbuild bundle Azure runs (dev/build.ts) against the same sources transpiled file by file (what
 * deploying `tsc` output with node_modules would load). Each run is a new `node` process, as a cold start is;
 * the variants alternate so that machine load hits both alike. Prints medians and the bundle's size.
 *
 * The child loads the entry the way the Azure Functions Node.js worker loads a CommonJS app (`require` of
 * package.json `main`), with dev/host's `@azure/functions-core` recorder installed to receive registrations.
 *
 *   npm run bench:cold-start -- [--runs 9]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { buildBundle, PROJECT_ROOT, TELEMETRY_SDK } from '../dev/build';
import { ensureDevCertificates } from '../dev/certs';

const TARGET_MS = 300;
// Inside the project, so the transpiled files resolve packages from its node_modules. Git-ignored.
const WORK_DIR = path.join(PROJECT_ROOT, '.local', 'cold-start');

const HARNESS_SOURCE = `
import { createRequire } from 'node:module';
import { AppRegistration, beginStartup, finishStartup, installFunctionsCore } from './dev/host/functions-core';

const entry = process.argv[2] as string;
const cpu = process.cpuUsage();
const started = performance.now();
installFunctionsCore();
const app = new AppRegistration(entry);
beginStartup(app);
createRequire(__filename)(entry);
finishStartup(app);
const loadMs = performance.now() - started;
const used = process.cpuUsage(cpu);
process.stdout.write(JSON.stringify({
  loadMs,
  cpuMs: (used.user + used.system) / 1000,
  sinceProcessStartMs: performance.now(),
  modules: Object.keys(require.cache).length,
  functions: [...app.functions.keys()],
}));
// Timers and sockets the app may have opened must not keep the run alive.
process.exit(0);
`;

interface Run {
  loadMs: number;
  cpuMs: number;
  sinceProcessStartMs: number;
  modules: number;
  functions: string[];
  wallMs: number;
}

interface Variant {
  name: string;
  entry: string;
  /** Settings of this variant on top of the common ones (telemetry on). */
  env?: NodeJS.ProcessEnv;
  bytes: number;
  files: number;
  runs: Run[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(dir, file));
}

function jsSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.js')) continue;
    bytes += statSync(path.join(dir, file)).size;
    files += 1;
  }
  return { bytes, files };
}

/** The same sources, one .js per .ts, imports left to Node's resolution (packages from node_modules). */
async function transpileUnbundled(outdir: string): Promise<string> {
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: [
      ...sourceFiles(path.join(PROJECT_ROOT, 'functions')),
      ...sourceFiles(path.join(PROJECT_ROOT, 'lib')),
    ],
    outdir,
    outbase: PROJECT_ROOT,
    bundle: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  });
  // lib/config/host-json.ts reads ../../host.json, as from the project root.
  copyFileSync(path.join(PROJECT_ROOT, 'host.json'), path.join(outdir, 'host.json'));
  return path.join(outdir, 'functions', 'index.js');
}

async function buildHarness(file: string): Promise<void> {
  await build({
    stdin: {
      contents: HARNESS_SOURCE,
      loader: 'ts',
      resolveDir: PROJECT_ROOT,
      sourcefile: 'cold-start-harness.ts',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: file,
    logLevel: 'warning',
  });
}

function runOnce(harness: string, entry: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [harness, entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) {
        reject(
          new Error(
            `loading ${entry} failed (exit ${code}): ${err.trim().split('\n').slice(0, 6).join('\n')}`,
          ),
        );
        return;
      }
      resolve({ ...(JSON.parse(out) as Omit<Run, 'wallMs'>), wallMs });
    });
  });
}

async function main() {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number ≥ 1');

  const loadBefore = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  const certs = ensureDevCertificates();
  // Settings the composition root needs to load; nothing is contacted while loading.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    FPX_BASE_URL: 'https://127.0.0.1:8443/ftop/v1.2/api',
    FPX_CERT_PATH: certs.client.pemPath,
    FPX_CA_PATH: certs.ca.path,
    CRM_WEBHOOK_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
  };

  const bundle = await buildBundle(path.join(WORK_DIR, 'bundle'));
  const unbundledEntry = await transpileUnbundled(path.join(WORK_DIR, 'unbundled'));
  const harness = path.join(WORK_DIR, 'harness.js');
  await buildHarness(harness);

  const unbundledSize = jsSize(path.join(WORK_DIR, 'unbundled'));
  const variants: Variant[] = [
    { name: 'bundle', entry: bundle.file, bytes: bundle.bytes, files: 1, runs: [] },
    { name: 'unbundled', entry: unbundledEntry, ...unbundledSize, runs: [] },
    // Telemetry on (issue 17): the SDK file beside the bundle is loaded and registered. Nothing is sent while
    // loading (the first export is due after the interval); the endpoints are never contacted.
    {
      name: 'bundle, OTLP on',
      entry: bundle.file,
      bytes: bundle.bytes,
      files: 2,
      runs: [],
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' },
    },
    {
      name: 'bundle, App Insights on',
      entry: bundle.file,
      bytes: bundle.bytes,
      files: 2,
      runs: [],
      env: {
        APPLICATIONINSIGHTS_CONNECTION_STRING:
          'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/',
      },
    },
  ];

  // One warm-up each (file system cache), then alternate.
  for (const variant of variants) await runOnce(harness, variant.entry, { ...env, ...variant.env });
  for (let i = 0; i < runs; i++) {
    for (const variant of variants) {
      variant.runs.push(await runOnce(harness, variant.entry, { ...env, ...variant.env }));
    }
  }

  const [bundled, unbundled] = variants as [Variant, Variant];
  const same = JSON.stringify(bundled.runs[0]?.functions) === JSON.stringify(unbundled.runs[0]?.functions);
  console.log(
    `Cold start: load and register every function, fresh node ${process.version} per run, median of ${runs} (load average before: ${loadBefore})`,
  );
  console.log(
    `Functions registered: ${bundled.runs[0]?.functions.join(', ')}${same ? '' : '  (the two variants differ!)'}`,
  );
  console.log('');
  const rows = [
    [
      'variant',
      'load+register',
      'best',
      'cpu',
      'process start→registered',
      'process wall',
      'modules',
      'code',
    ],
    ...variants.map((v) => {
      const ms = (pick: (r: Run) => number) => `${median(v.runs.map(pick)).toFixed(0)} ms`;
      return [
        v.name,
        ms((r) => r.loadMs),
        `${Math.min(...v.runs.map((r) => r.loadMs)).toFixed(0)} ms`,
        ms((r) => r.cpuMs),
        ms((r) => r.sinceProcessStartMs),
        ms((r) => r.wallMs),
        String(median(v.runs.map((r) => r.modules))),
        v.name === 'bundle'
          ? `${(v.bytes / 1024).toFixed(0)} KiB in 1 file (everything)`
          : v.env
            ? `the bundle + ${TELEMETRY_SDK.file}`
            : `${(v.bytes / 1024).toFixed(0)} KiB in ${v.files} files + node_modules`,
      ];
    }),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => row[i]?.length ?? 0))) ?? [];
  for (const row of rows) {
    console.log(
      row
        .map((cell, i) =>
          i === 0 || i === row.length - 1 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0),
        )
        .join('   '),
    );
  }
  const bundleMs = median(bundled.runs.map((r) => r.loadMs));
  const unbundledMs = median(unbundled.runs.map((r) => r.loadMs));
  console.log('');
  console.log(
    `Bundle: ${bundleMs.toFixed(0)} ms (${(unbundledMs / bundleMs).toFixed(1)}× faster than unbundled), target ≤ ${TARGET_MS} ms: ${bundleMs <= TARGET_MS ? 'met' : 'NOT met'}`,
  );
  console.log(
    `Load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (figures rise with other work on the machine; cpu is the least sensitive)`,
  );
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
