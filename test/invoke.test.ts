import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, test } from 'vitest';
import { memoryLogger } from '../dev/host/logger';
import { invokeFunction, summarize } from '../dev/invoke';
import { runningStart } from '../dev/local-settings';
import { records } from './fixtures/host-app/records';

const ROOT = path.join(__dirname, '..');
const ENTRY = path.join(__dirname, 'fixtures', 'host-app', 'index.ts');
const settings = {
  AzureWebJobsStorage: inject('storageConnection'),
  HOST_TEST_TICK_SCHEDULE: '*/1 * * * * *',
  HOST_TEST_SLOW_SCHEDULE: '0 0 0 1 1 *',
  HOST_TEST_QUEUE: 'invoke-test-unused',
  HOST_TEST_POISON_QUEUE: 'invoke-test-unused-fails',
};

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  summary: Record<string, unknown>;
}

/** `tsx dev/invoke.ts …` as `npm run invoke` runs it, in a child process. */
function invokeCli(...args: string[]): Promise<CliRun> {
  return invokeCliWith({}, ...args);
}

function invokeCliWith(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'dev/invoke.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...settings, FUNCTIONS_ENTRY: ENTRY, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trimEnd().split('\n').at(-1) ?? '';
      let summary: Record<string, unknown> = {};
      try {
        summary = JSON.parse(last) as Record<string, unknown>;
      } catch {
        // Usage errors print no summary.
      }
      resolve({ code, stdout, stderr, summary });
    });
  });
}

describe.concurrent('npm run invoke', () => {
  test('an http function: exit 0, handler logs, then the JSON summary with the answer', async () => {
    const run = await invokeCli(
      'getItem',
      '--input',
      JSON.stringify({ path: '/api/items/5/red', query: { tag: ['x', 'y'] } }),
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('getItem: getItem called for 5');
    expect(run.summary).toEqual({
      function: 'getItem',
      invocationId: expect.stringMatching(/^[-0-9a-f]{36}$/),
      outcome: 'Succeeded',
      durationMs: expect.any(Number),
      result: {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: { id: 5, label: 'red', query: { tag: 'y' }, tags: ['x', 'y'], agent: null },
      },
    });
  });

  test('a failing function: exit 1 and the error in the summary', async () => {
    const run = await invokeCli('explode');
    expect(run.code).toBe(1);
    expect(run.summary).toMatchObject({ function: 'explode', outcome: 'Failed', error: 'kaboom' });
    expect(run.stderr).toContain('about to fail');
  });

  test('a function whose %SETTING% is unset is in error: exit 1, the summary names the setting', async () => {
    const run = await invokeCliWith({ HOST_TEST_SLOW_SCHEDULE: '' }, 'slowTick');
    expect(run.code).toBe(1);
    expect(run.summary).toMatchObject({
      function: 'slowTick',
      invocationId: null,
      outcome: 'Failed',
      error: expect.stringMatching(/^Setting HOST_TEST_SLOW_SCHEDULE is missing: function slowTick/),
    });
  });

  test('an unknown function: exit 2 listing the known ones', async () => {
    const run = await invokeCli('noSuchFunction');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Unknown function "noSuchFunction". Known functions: getItem, echo, teapot');
  });
});

// What the CLI prints for each kind of trigger, in process: the CLI itself is the same code (summarize).
test('a timer without input and a queue function with a JSON message', async () => {
  const logger = memoryLogger();
  const timer = await invokeFunction(ENTRY, 'tick', undefined, settings, { logger });
  expect(summarize(timer)).toMatchObject({ function: 'tick', outcome: 'Succeeded', result: null });
  expect(logger.entries.some((e) => e.functionName === 'tick' && e.message === 'tick false')).toBe(true);
  const queue = await invokeFunction(ENTRY, 'queueOk', { tenantId: 't-9' }, settings, { logger });
  expect(summarize(queue)).toMatchObject({ function: 'queueOk', outcome: 'Succeeded' });
  expect(records.queueItems.find((r) => r.invocationId === queue.invocationId)?.item).toEqual({
    tenantId: 't-9',
  });
});

test('invokeFunction runs one function in process and reports the http answer', async () => {
  const logger = memoryLogger();
  const outcome = await invokeFunction(ENTRY, 'teapot', undefined, settings, { logger });
  expect(outcome).toMatchObject({
    functionName: 'teapot',
    outcome: 'Succeeded',
    result: {
      status: 418,
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        'set-cookie': 'brew=earl%20grey; Path=/; HttpOnly',
      },
      body: 'short and stout',
    },
  });
  expect(logger.entries.some((e) => e.message.startsWith("Executed 'Functions.teapot' (Succeeded"))).toBe(
    true,
  );
});

describe('the settings file of a running npm start', () => {
  test('a settings file left by an npm start that is gone is ignored', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'local-settings-')), 'settings.json');
    const write = (pid: number | undefined) =>
      writeFileSync(file, JSON.stringify({ pid, hostUrl: 'http://127.0.0.1:7999', storage: 'UseAzurite' }));
    write(process.pid);
    expect(runningStart(file)).toMatchObject({
      start: { hostUrl: 'http://127.0.0.1:7999' },
      parts: { storage: 'UseAzurite' },
    });
    write(spawnSync(process.execPath, ['-e', '']).pid);
    expect(runningStart(file)).toBeUndefined();
  });
});
