import { spawn } from 'node:child_process';
import path from 'node:path';
import { request } from 'undici';
import { expect, test } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

test('npm start comes up, answers GET /api/health with 200, and Ctrl-C stops everything', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'dev/start.ts',
      '--in-memory',
      '--storage-ports',
      'auto',
      '--port',
      '0',
      '--sandbox-port',
      '0',
    ],
    {
      cwd: ROOT,
      // Its own Azurite on free ports: never a developer's on 10000, never the queues other suites use.
      env: {
        ...process.env,
        AzureWebJobsStorage: '',
        FPX_BASE_URL: '',
        FPX_CERT_PATH: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor(
      () => (output.includes('Ctrl-C stops everything') ? true : undefined),
      45_000,
      () => output,
    );
    const hostUrl = await waitFor(
      () => /Functions host\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1],
      45_000,
      () => output,
    );
    const sandboxUrl = /FPX\s+sandbox (https:\/\/\S+)/.exec(output)?.[1];
    expect(output).toMatch(/Storage\s+Azurite \(in memory\)/);
    expect(sandboxUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ftop\/v1\.2\/api$/);

    const response = await request(`${hostUrl}/api/health`);
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toEqual({ status: 'ok' });
    const details = await request(`${hostUrl}/api/health/details`);
    expect(details.statusCode).toBe(200);
    expect(await details.body.json()).toMatchObject({
      status: 'ok',
      checks: { storage: { ok: true }, fpx: { ok: true } },
    });
    expect(output).toContain(`curl ${hostUrl}/api/health/details`);
    // The reference data is there at once, not after the first 02:00 run.
    const referenceRun = await waitFor(
      () => /syncReferenceData ran once at start-up: (\w+)/.exec(output)?.[1],
      45_000,
      () => output,
    );
    expect(referenceRun, output).toBe('Succeeded');

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    // The host's port is closed once it has stopped.
    await expect(request(`${hostUrl}/api/health`)).rejects.toThrow();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 60_000);

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, context: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out; output so far:\n${context()}`);
}
