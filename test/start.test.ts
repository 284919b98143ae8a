import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { request } from 'undici';
import { expect, inject, test } from 'vitest';
import { startSandbox } from '../dev/sandbox';
import { waitFor } from './support/wait';

const ROOT = path.resolve(__dirname, '..');
const LOCAL_SETTINGS = path.join(ROOT, '.local', 'settings.json');

/** No settings of the developer's: npm start, invoke and webhook find everything themselves. */
const NO_SETTINGS = {
  AzureWebJobsStorage: '',
  FPX_BASE_URL: '',
  FPX_CERT_PATH: '',
  FPX_CA_PATH: '',
  CRM_WEBHOOK_SECRET: '',
  CRM_WEBHOOK_URL: '',
  POLL_REFERRALS_SCHEDULE: '',
  POLL_TENANTS_SCHEDULE: '',
  REFERENCE_DATA_SCHEDULE: '',
  CERT_CHECK_SCHEDULE: '',
};

function tsx(
  args: string[],
  settings: Record<string, string> = {},
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...NO_SETTINGS, ...settings },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

test('npm start comes up with first data, invoke and webhook beside it find its parts, and Ctrl-C stops everything', async () => {
  // Its own Azurite on free ports: never a developer's on 10000, never the queues other suites use.
  const start = tsx([
    'dev/start.ts',
    '--in-memory',
    '--storage-ports',
    'auto',
    '--port',
    '0',
    '--sandbox-port',
    '0',
  ]);
  const { child, output } = start;
  let invoke: ReturnType<typeof tsx> | undefined;
  let webhook: ReturnType<typeof tsx> | undefined;
  try {
    const started = { timeoutMs: 45_000, intervalMs: 50, detail: output };
    await waitFor('npm start to be up', () => output().includes('Ctrl-C stops everything'), started);
    const hostUrl = /Functions host\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1];
    const sandboxUrl = /FPX\s+sandbox (https:\/\/\S+)/.exec(output())?.[1];
    expect(output()).toMatch(/Storage\s+Azurite \(in memory\)/);
    expect(sandboxUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ftop\/v1\.2\/api$/);
    // The settings it supplies are printed, schedules included: the host itself adds none.
    expect(output()).toMatch(/Settings npm start filled in/);
    expect(output()).toMatch(/POLL_REFERRALS_SCHEDULE\s+0 \*\/5 \* \* \* \*/);
    expect(output()).toContain(`FPX_BASE_URL               ${sandboxUrl}`);
    expect(output()).not.toContain('IN ERROR');

    const response = await request(`${hostUrl}/api/health`);
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toEqual({ status: 'ok' });
    const details = await request(`${hostUrl}/api/health/details`);
    expect(details.statusCode).toBe(200);
    expect(await details.body.json()).toMatchObject({
      status: 'ok',
      checks: { storage: { ok: true }, fpx: { ok: true } },
    });
    expect(output()).toContain(`curl ${hostUrl}/api/health/details`);

    // The command npm start suggests works beside it with no settings: its storage, sandbox and certificates;
    // and a signed webhook reaches its host (on a free port, not 7071) with its secret.
    invoke = tsx(['dev/invoke.ts', 'health']);
    webhook = tsx(['dev/webhook.ts', 'notes', 'dev/examples/note.json']);

    // First data at once: with its own sandbox, the three syncs run once at start-up, and it says so.
    await waitFor(
      'the first data to start',
      () =>
        output().includes(
          'First data: running syncReferenceData, pollTenants, pollReferrals once now against the FPX sandbox',
        ),
      started,
    );
    for (const name of ['pollTenants', 'pollReferrals', 'syncReferenceData']) {
      const outcome = await waitFor(
        `${name} at start-up`,
        () => new RegExp(`${name} ran once at start-up: (\\w+)`).exec(output())?.[1],
        started,
      );
      expect(outcome, output()).toBe('Succeeded');
    }

    // .local/settings.json says where its parts are while it runs.
    const running = JSON.parse(readFileSync(LOCAL_SETTINGS, 'utf8')) as {
      pid: number;
      hostUrl: string;
      storage: string;
      fpx: { url: string };
    };
    expect(running).toMatchObject({ pid: child.pid, hostUrl, fpx: { url: sandboxUrl } });
    const state = TableClient.fromConnectionString(running.storage, 'FpxSyncState', {
      allowInsecureConnection: true,
    });
    for (const stream of ['tenants', 'referrals']) {
      expect(await state.getEntity('sync', stream)).toMatchObject({ lastStatus: 'succeeded' });
    }
    const referenceData = TableClient.fromConnectionString(running.storage, 'FpxReferenceData', {
      allowInsecureConnection: true,
    });
    expect((await referenceData.listEntities().next()).done).toBe(false);

    expect(await invoke.exited, invoke.output()).toBe(0);
    expect(invoke.output()).toMatch(/Using the Azurite, FPX sandbox, certificates.* of npm start/);
    expect(JSON.parse(invoke.output().trimEnd().split('\n').at(-1) ?? '')).toMatchObject({
      function: 'health',
      outcome: 'Succeeded',
      result: { status: 200, body: { status: 'ok' } },
    });
    expect(await webhook.exited, webhook.output()).toBe(0);
    expect(webhook.output()).toMatch(/^HTTP 20\d/m);

    child.kill('SIGINT');
    expect(await start.exited).toBe(0);
    // The host's port is closed once it has stopped, and the settings file is gone.
    await expect(request(`${hostUrl}/api/health`)).rejects.toThrow();
    expect(existsSync(LOCAL_SETTINGS)).toBe(false);
  } finally {
    for (const c of [child, invoke?.child, webhook?.child]) if (c && c.exitCode === null) c.kill('SIGKILL');
  }
}, 120_000);

test('pointed at another FPX, npm start runs nothing before its schedule, and says so', async () => {
  const fpx = await startSandbox({ rateLimitPerMinute: 0 });
  // An account of its own on the suite's Azurite (no other suite's messages): npm start starts neither its own
  // storage nor its own FPX.
  const start = tsx(['dev/start.ts', '--port', '0', '--smtp-port', '0', '--events-port', '0'], {
    AzureWebJobsStorage: inject('storageAccounts').start,
    FPX_BASE_URL: fpx.url,
    FPX_CA_PATH: fpx.certs.ca.path,
    FPX_CERT_PATH: fpx.certs.client.pemPath,
  });
  const { child, output } = start;
  try {
    const started = { timeoutMs: 45_000, intervalMs: 50, detail: output };
    await waitFor('npm start to be up', () => output().includes('Ctrl-C stops everything'), started);
    await waitFor(
      'its word on the schedule',
      () => output().includes('nothing runs before its schedule'),
      started,
    );
    expect(output()).toContain(`FPX              ${fpx.url}`);
    expect(output()).not.toMatch(/Storage\s+Azurite/);
    // Its FPX comes from the settings, not from npm start: neither printed as filled in nor lent to invoke.
    expect(output()).not.toMatch(/FPX_BASE_URL {2,}/);
    expect(JSON.parse(readFileSync(LOCAL_SETTINGS, 'utf8'))).not.toHaveProperty('fpx');
    child.kill('SIGINT');
    expect(await start.exited).toBe(0);
    // Stopped, so nothing can still be on its way: no run happened, and FPX was never called.
    expect(output()).not.toMatch(/First data|ran once at start-up/);
    expect(fpx.requests.map((r) => `${r.method} ${r.path}`)).toEqual([]);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await fpx.close();
  }
}, 60_000);
