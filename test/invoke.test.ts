import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, inject, test } from 'vitest';
import { memoryLogger } from '../dev/host/logger';
import { invokeFunction } from '../dev/invoke';

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
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'dev/invoke.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...settings, FUNCTIONS_ENTRY: ENTRY },
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

  test('a timer without input and a queue function with a JSON message', async () => {
    const [timer, queue] = await Promise.all([
      invokeCli('tick'),
      invokeCli('queueOk', '--input', '{"tenantId":"t-9"}'),
    ]);
    expect(timer.code).toBe(0);
    expect(timer.stdout).toContain('tick: tick false');
    expect(timer.summary).toMatchObject({ function: 'tick', outcome: 'Succeeded', result: null });
    expect(queue.code).toBe(0);
    expect(queue.summary).toMatchObject({ function: 'queueOk', outcome: 'Succeeded' });
  });

  test('a failing function: exit 1 and the error in the summary', async () => {
    const run = await invokeCli('explode');
    expect(run.code).toBe(1);
    expect(run.summary).toMatchObject({ function: 'explode', outcome: 'Failed', error: 'kaboom' });
    expect(run.stderr).toContain('about to fail');
  });

  test('an unknown function: exit 2 listing the known ones', async () => {
    const run = await invokeCli('noSuchFunction');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Unknown function "noSuchFunction". Known functions: getItem, echo, teapot');
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
