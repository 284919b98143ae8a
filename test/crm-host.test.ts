/**
 * The CRM webhooks end to end on the local Functions host serving the real functions/index.ts, with its
 * queue trigger fed from Azurite (an account of its own: no other suite's host may take crm-deliveries messages)
 * and the FPX sandbox over mutual TLS: an outage of 200 webhooks, the sender and its examples, OpenAPI.
 * Two instances of the app, as Azure scales out: one answers HTTP, the other runs the queue trigger, started
 * once the outage's webhooks are all answered (so no retry comes while FPX is still down, whatever the pace).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type RunningHost, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
import { getDelivery, sendWebhook } from '../dev/webhook';
import { SCHEDULE_DEFAULTS } from '../lib/config';
import { notePayload } from '../lib/crm';
import { newSecret, storedNotes, TENANT } from './crm-support';
import { waitFor } from './support/wait';

let sandbox: Sandbox;
let host: RunningHost;
let worker: Promise<RunningHost> | undefined;
const secrets = [newSecret()];
const log = memoryLogger();
let settings: Record<string, string>;

beforeAll(async () => {
  sandbox = await startSandbox({ rateLimitPerMinute: 0 });
  settings = {
    ...SCHEDULE_DEFAULTS,
    AzureWebJobsStorage: inject('storageAccounts').crmhost,
    ...sandboxSettings(sandbox),
    FPX_RATE_LIMIT_PER_MINUTE: '60000',
    CRM_WEBHOOK_SECRET: secrets.join(' '),
    // The shortest backoff: a retry is due a second after its 202.
    CRM_DELIVERY_BACKOFF_SECONDS: '1',
  };
  host = await startHost({ port: 0, timers: false, queues: false, logger: log, settings });
});
afterAll(async () => {
  await (await worker)?.stop();
  await host?.stop();
  await sandbox?.close();
});

/** The instance that runs the queue trigger (crm-deliveries), started on first need. */
function startWorker(): Promise<RunningHost> {
  worker ??= startHost({
    http: false,
    timers: false,
    logger: log,
    queuePollIntervalMs: { min: 20, max: 200 },
    settings,
  });
  return worker;
}

const send = (endpoint: string, body: unknown, webhookId?: string) =>
  sendWebhook(endpoint, typeof body === 'string' ? body : JSON.stringify(body), {
    baseUrl: host.url,
    secrets,
    webhookId,
  });

test('during an outage 200 webhooks are answered 202; once it ends each is delivered exactly once', async () => {
  const run = randomUUID();
  const texts = Array.from({ length: 200 }, (_, i) => `outage ${run} #${i}`);
  const answers: Awaited<ReturnType<typeof send>>[] = [];
  sandbox.setOutage(true);
  try {
    for (let start = 0; start < texts.length; start += 50) {
      const batch = texts.slice(start, start + 50);
      answers.push(
        ...(await Promise.all(
          batch.map((text) => send('notes', { tenantId: TENANT, text, noteCategoryId: 1 })),
        )),
      );
    }
  } finally {
    sandbox.setOutage(false);
  }
  expect(answers.map((a) => a.status)).toEqual(texts.map(() => 202));
  expect(answers.every((a) => (a.body as { status: string }).status === 'queued')).toBe(true);

  // The outage is over: the queue trigger takes the retries as they fall due.
  await startWorker();
  await waitFor('all 200 notes in FPX', () =>
    texts.every((text) => storedNotes(sandbox, TENANT, text).length > 0),
  );
  for (const text of texts) expect(storedNotes(sandbox, TENANT, text)).toHaveLength(1);
  const created = sandbox.requests.filter(
    (r) =>
      r.method === 'POST' &&
      r.status === 200 &&
      String((r.body as { text?: string })?.text).startsWith(`outage ${run}`),
  );
  expect(created).toHaveLength(200);

  const states = await Promise.all(
    answers.map((a) =>
      getDelivery((a.body as { deliveryId: string }).deliveryId, { baseUrl: host.url, secrets }),
    ),
  );
  for (const state of states) {
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ status: 'delivered', result: { noteCategory: { id: 1 } } });
    expect((state.body as { attempts: number }).attempts).toBeGreaterThanOrEqual(2);
  }
});

test('a note whose answer was lost on the way back is delivered once (dropAfterHandling)', async () => {
  await startWorker();
  const text = `lost answer ${randomUUID()}`;
  sandbox.injectFault({ kind: 'dropAfterHandling' }, { method: 'POST', path: /\/notes$/ });
  const answer = await send('notes', { tenantId: TENANT, text, noteCategoryId: 4 });
  expect(answer.status).toBe(202);
  const { deliveryId } = answer.body as { deliveryId: string };
  const state = await waitFor('the retry', async () => {
    const current = await getDelivery(deliveryId, { baseUrl: host.url, secrets });
    return (current.body as { status: string }).status === 'delivered' && current;
  });
  // One POST reached FPX; the retry only looked it up, which is not an attempt.
  expect(state.body).toMatchObject({ attempts: 1, result: { text } });
  expect(storedNotes(sandbox, TENANT, text)).toHaveLength(1);
  expect(
    sandbox.requests.filter((r) => r.method === 'POST' && (r.body as { text?: string })?.text === text),
  ).toHaveLength(1);
});

describe('the sender and its examples', () => {
  const examples = path.join(__dirname, '..', 'dev', 'examples');
  const example = (file: string) => readFileSync(path.join(examples, file), 'utf8');

  test('each example is accepted by FPX; sending one again replays the answer', async () => {
    const webhookId = `msg_${randomUUID()}`;
    const note = await send('notes', example('note.json'), webhookId);
    expect(note.status).toBe(200);
    for (const [endpoint, file] of [
      ['notes', 'note-referral.json'],
      ['contacts', 'contact.json'],
      ['contacts', 'contact-update.json'],
      ['entitlements', 'entitlement.json'],
    ] as const) {
      const answer = await send(endpoint, example(file));
      expect({ file, status: answer.status, body: answer.body }).toMatchObject({ file, status: 200 });
    }
    const again = await send('notes', example('note.json'), webhookId);
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(note.body);
  });
});

test('GET /api/openapi.json documents the endpoints from the same schemas', async () => {
  const response = await fetch(`${host.url}/api/openapi.json`);
  expect(response.status).toBe(200);
  const doc = (await response.json()) as {
    openapi: string;
    paths: Record<
      string,
      Record<
        string,
        { responses: Record<string, unknown>; requestBody?: { content: Record<string, { schema: unknown }> } }
      >
    >;
  };
  expect(doc.openapi).toBe('3.1.0');
  expect(Object.keys(doc.paths).sort()).toEqual([
    '/api/crm/contacts',
    '/api/crm/deliveries/{id}',
    '/api/crm/entitlements',
    '/api/crm/notes',
  ]);
  for (const route of ['/api/crm/notes', '/api/crm/contacts', '/api/crm/entitlements']) {
    expect(Object.keys(doc.paths[route]?.post?.responses ?? {}).sort()).toEqual(
      ['200', '202', '400', '401', '409', '413', '415', '422', '503'].sort(),
    );
  }
  const { z } = await import('zod');
  const { $schema: _, ...noteSchema } = z.toJSONSchema(notePayload, { io: 'input', unrepresentable: 'any' });
  expect(doc.paths['/api/crm/notes']?.post?.requestBody?.content['application/json']?.schema).toEqual(
    noteSchema,
  );
});
