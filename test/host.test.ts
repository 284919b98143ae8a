import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { loadApp } from '../dev/host/app-loader';
import { functionsCoreApi } from '../dev/host/functions-core';
import { type RunningHost, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { records } from './fixtures/host-app/records';
import { waitFor } from './support/wait';

const ENTRY = path.join(__dirname, 'fixtures', 'host-app', 'index.ts');
const connection = inject('storageConnection');
const run = randomBytes(4).toString('hex');
const QUEUE = `host-ok-${run}`;
const FAILING_QUEUE = `host-fails-${run}`;

const settings = {
  AzureWebJobsStorage: connection,
  HOST_TEST_TICK_SCHEDULE: '*/1 * * * * *',
  HOST_TEST_SLOW_SCHEDULE: '*/1 * * * * *',
  HOST_TEST_QUEUE: QUEUE,
  HOST_TEST_POISON_QUEUE: FAILING_QUEUE,
};

const log = memoryLogger();
let host: RunningHost;

function queue(name: string): QueueClient {
  return new QueueClient(connection, name);
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

beforeAll(async () => {
  host = await startHost({
    entry: ENTRY,
    port: 0,
    settings,
    logger: log,
    queuePollIntervalMs: { min: 50, max: 200 },
  });
});

afterAll(async () => {
  // A slowTick run still holding on would keep stop() waiting.
  records.finishSlowRuns();
  await host?.stop();
});

describe('registrations', () => {
  test('serves every function registered through @azure/functions-core and nothing else', async () => {
    const registered = await loadApp(ENTRY);
    expect(functionsCoreApi().getProgrammingModel()?.name).toBe('@azure/functions');
    expect(host.functions.map((f) => f.name)).toEqual([...registered.functions.keys()]);
    expect(host.functions.map((f) => f.name).sort()).toEqual(
      [
        'defaultRoute',
        'echo',
        'explode',
        'getItem',
        'queueFails',
        'queueOk',
        'slowTick',
        'teapot',
        'tick',
      ].sort(),
    );
    const listed = (await (await fetch(`${host.url}/admin/functions`)).json()) as { name: string }[];
    expect(listed.map((f) => f.name)).toEqual(host.functions.map((f) => f.name));
    expect((await fetch(`${host.url}/api/unknown`)).status).toBe(404);
    expect((await fetch(`${host.url}/elsewhere`)).status).toBe(404);
    expect(records.hooks).toContain('appStart');
  });

  test('resolves %SETTING% references in schedules and queue names', () => {
    const byName = Object.fromEntries(host.functions.map((f) => [f.name, f]));
    expect(byName.tick?.schedule).toBe('*/1 * * * * *');
    expect(byName.queueOk?.queueName).toBe(QUEUE);
    expect(byName.getItem?.url).toBe(`${host.url}/api/items/{id:int}/{label?}`);
  });

  test('a function whose %SETTING% is unset is in error and not registered, naming the setting; the others run', async () => {
    const { HOST_TEST_SLOW_SCHEDULE: _unset, ...withoutSlow } = settings;
    const logger = memoryLogger();
    // No defaults in the host: an empty value is as unset as a missing one, as in Azure.
    const second = await startHost({
      entry: ENTRY,
      port: 0,
      timers: false,
      queues: false,
      settings: { ...withoutSlow, HOST_TEST_TICK_SCHEDULE: '' },
      logger,
    });
    try {
      const names = second.functions.map((f) => f.name);
      expect(names).not.toContain('slowTick');
      expect(names).not.toContain('tick');
      expect(names).toEqual(expect.arrayContaining(['teapot', 'getItem', 'queueOk']));
      expect(second.errors.get('slowTick')?.message).toMatch(
        /^Setting HOST_TEST_SLOW_SCHEDULE is missing: function slowTick uses it in its schedule "%HOST_TEST_SLOW_SCHEDULE%"/,
      );
      expect(second.errors.get('tick')?.message).toMatch(/Setting HOST_TEST_TICK_SCHEDULE is missing/);
      expect(logger.entries).toContainEqual(
        expect.objectContaining({
          level: 'error',
          message: expect.stringMatching(
            /^The 'slowTick' function is in error and was not registered: Setting HOST_TEST_SLOW_SCHEDULE is missing/,
          ),
        }),
      );
      // The others run: HTTP, and a manual run; the one in error answers with its error.
      expect((await fetch(`${second.url}/api/teapot`)).status).toBe(418);
      await expect(second.invoke('slowTick')).rejects.toThrow(/Setting HOST_TEST_SLOW_SCHEDULE is missing/);
      const admin = await fetch(`${second.url}/admin/functions/slowTick`, { method: 'POST', body: '{}' });
      expect(admin.status).toBe(404);
      expect(await admin.json()).toEqual({
        message: expect.stringMatching(
          /^Function slowTick is in error: Setting HOST_TEST_SLOW_SCHEDULE is missing/,
        ),
      });
      const status = (await (await fetch(`${second.url}/admin/host/status`)).json()) as { errors?: string[] };
      expect(status.errors).toEqual([
        expect.stringMatching(/^tick: Setting HOST_TEST_TICK_SCHEDULE is missing/),
        expect.stringMatching(/^slowTick: Setting HOST_TEST_SLOW_SCHEDULE is missing/),
      ]);
    } finally {
      await second.stop();
    }
    expect(records.hooks).toContain('appTerminate');
  });
});

describe('http triggers', () => {
  test('route parameters, constraints, query and headers reach the handler', async () => {
    const res = await fetch(`${host.url}/api/items/42/blue?sort=asc&tag=a&tag=b`, {
      headers: { 'x-test-agent': 'vitest' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      id: 42,
      label: 'blue',
      query: { sort: 'asc', tag: 'b' },
      tags: ['a', 'b'],
      agent: 'vitest',
    });
    // Optional parameter left out; the int constraint refuses text; trailing slash and case are ignored.
    expect(await (await fetch(`${host.url}/api/items/7`)).json()).toMatchObject({ id: 7, label: null });
    expect((await fetch(`${host.url}/api/items/seven`)).status).toBe(404);
    expect((await fetch(`${host.url}/API/Items/8/`)).status).toBe(200);
  });

  test('methods outside the registration are not found', async () => {
    expect((await fetch(`${host.url}/api/items/1`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${host.url}/api/echo`)).status).toBe(404);
    // No methods registered: GET and POST; no route: the function name.
    expect(await (await fetch(`${host.url}/api/defaultRoute`)).json()).toEqual({
      functionName: 'defaultRoute',
    });
    expect((await fetch(`${host.url}/api/defaultRoute`, { method: 'POST', body: 'x' })).status).toBe(200);
    expect((await fetch(`${host.url}/api/defaultRoute`, { method: 'PUT', body: 'x' })).status).toBe(404);
  });

  test('the raw body bytes and headers are preserved (signature checks work)', async () => {
    const raw = Buffer.concat([
      Buffer.from('{ "text" : "h\u00e9llo",\n  "n":1 }'),
      Buffer.from([0xff, 0x00]),
    ]);
    const res = await fetch(`${host.url}/api/echo?x=1`, {
      method: 'PUT',
      body: raw,
      headers: { 'content-type': 'application/octet-stream', 'webhook-id': 'msg_1' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-echo-method')).toBe('PUT');
    const echoed = (await res.json()) as { bodyBase64: string; url: string; headers: Record<string, string> };
    expect(Buffer.from(echoed.bodyBase64, 'base64').equals(raw)).toBe(true);
    expect(echoed.url).toBe(`${host.url}/api/echo?x=1`);
    expect(echoed.headers['webhook-id']).toBe('msg_1');
    expect(echoed.headers['content-type']).toBe('application/octet-stream');
  });

  test('status, body, headers and cookies of the answer', async () => {
    const res = await fetch(`${host.url}/api/teapot`);
    expect(res.status).toBe(418);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.getSetCookie()).toEqual(['brew=earl%20grey; Path=/; HttpOnly']);
    expect(await res.text()).toBe('short and stout');
  });

  test('a handler that throws gives 500 and the error and the handler logs are logged', async () => {
    const res = await fetch(`${host.url}/api/explode`);
    expect(res.status).toBe(500);
    const id = res.headers.get('x-ms-invocation-id');
    const line = log.entries.find(
      (e) => e.invocationId === id && e.message.startsWith("Executed 'Functions.explode'"),
    );
    expect(line?.level).toBe('error');
    expect(line?.message).toMatch(/\(Failed, Id=[-0-9a-f]+, Duration=\d+ms\): kaboom/);
    expect(log.entries).toContainEqual(
      expect.objectContaining({
        category: 'user',
        level: 'warning',
        functionName: 'explode',
        message: 'about to fail',
      }),
    );
    expect(records.hooks).toContain('post:explode:preInvocation:error');
    expect(records.hooks).toContain('post:getItem:preInvocation:ok');
  });
});

describe('timer triggers', () => {
  test('run on their schedule with the timer object Azure gives', async () => {
    const [first, second] = await waitFor('two ticks', () => records.ticks.length >= 2 && records.ticks);
    expect(first?.timer).toEqual({
      isPastDue: expect.any(Boolean),
      schedule: { adjustForDST: true },
      scheduleStatus: { last: expect.any(String), next: expect.any(String), lastUpdated: expect.any(String) },
    });
    const timer = second?.timer as { scheduleStatus: { last: string; next: string } } | undefined;
    const status = timer?.scheduleStatus ?? { last: '', next: '' };
    expect(Date.parse(status.next)).toBeGreaterThan(Date.parse(status.last));
    expect(
      log.entries.some((e) => e.category === 'user' && e.functionName === 'tick' && /^tick /.test(e.message)),
    ).toBe(true);
  });

  test('POST /admin/functions/{name} answers 202 and runs the timer (not past due)', async () => {
    const res = await fetch(`${host.url}/admin/functions/tick`, {
      method: 'POST',
      body: JSON.stringify({ input: '' }),
    });
    expect(res.status).toBe(202);
    const executing = await waitFor('the manual run', () =>
      log.entries.find(
        (e) => e.functionName === 'tick' && e.message.includes("Reason='This function was programmatically"),
      ),
    );
    const record = await waitFor('its record', () =>
      records.ticks.find((r) => r.invocationId === executing.invocationId),
    );
    expect(record.timer).toMatchObject({ isPastDue: false });
    expect(
      (await fetch(`${host.url}/admin/functions/nothing`, { method: 'POST', body: '{"input":""}' })).status,
    ).toBe(404);
  });

  test('a run still going when the next is due makes the host skip that one and say so', async () => {
    // The first run (every second) holds on until the host has skipped the one due meanwhile.
    await waitFor('a skipped run', () =>
      log.entries.some((e) => /Timer slowTick: skipped the run due at .* still in progress/.test(e.message)),
    );
    expect(records.slowRuns.filter((r) => r.end)).toEqual([]);
    records.finishSlowRuns();
    await waitFor('two slow runs', () => records.slowRuns.filter((r) => r.end).length >= 2);
    const finished = records.slowRuns.filter((r) => r.end);
    for (let i = 1; i < finished.length; i++) {
      expect(finished[i]?.start).toBeGreaterThanOrEqual(finished[i - 1]?.end ?? Infinity);
    }
  });
});

describe('queue triggers', () => {
  test('a base64 JSON message arrives parsed with its trigger metadata, then is deleted', async () => {
    const client = queue(QUEUE);
    await client.createIfNotExists();
    const sent = await client.sendMessage(base64(JSON.stringify({ tenantId: 't-1', n: 1 })));
    await client.sendMessage('not base64: plain text');
    const record = await waitFor('the JSON message', () =>
      records.queueItems.find((r) => r.triggerMetadata?.id === sent.messageId),
    );
    expect(record.item).toEqual({ tenantId: 't-1', n: 1 });
    expect(record.triggerMetadata).toMatchObject({
      dequeueCount: 1,
      id: sent.messageId,
      popReceipt: expect.any(String),
      insertionTime: expect.any(String),
      expirationTime: expect.any(String),
      nextVisibleTime: expect.any(String),
    });
    await waitFor('the text message', () =>
      records.queueItems.find((r) => r.item === 'not base64: plain text'),
    );
    await waitFor(
      'an empty queue',
      async () => (await client.peekMessages()).peekedMessageItems.length === 0,
    );
  });

  test('a message that always fails goes to <queue>-poison after exactly 5 attempts', async () => {
    const client = queue(FAILING_QUEUE);
    await client.createIfNotExists();
    const text = base64(JSON.stringify({ bad: true }));
    await client.sendMessage(text);
    const poison = queue(`${FAILING_QUEUE}-poison`);
    const moved = await waitFor('the poison message', async () => {
      if (!(await poison.exists())) return undefined;
      return (await poison.peekMessages()).peekedMessageItems[0];
    });
    expect(moved.messageText).toBe(text);
    expect(records.poisonAttempts.map((a) => a.triggerMetadata?.dequeueCount)).toEqual([1, 2, 3, 4, 5]);
    expect(records.poisonAttempts[0]?.item).toEqual({ bad: true });
    await waitFor(
      'an empty queue',
      async () => (await client.peekMessages()).peekedMessageItems.length === 0,
    );
    expect(
      log.entries.some((e) => e.message.includes(`Moving message to queue '${FAILING_QUEUE}-poison'`)),
    ).toBe(true);
  });
});
