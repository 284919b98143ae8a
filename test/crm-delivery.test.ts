/**
 * Durable delivery through the queue worker's handler, against real Azurite queues and the sandbox:
 * retries with backoff, the poison path with its alert, and creates whose outcome was unknown.
 */
import { randomUUID } from 'node:crypto';
import { expect, inject, test } from 'vitest';
import { type CrmDeps, deliveryIdFor, handleWebhook, PendingWrites, recoverStalled } from '../lib/crm';
import { unpackJson } from '../lib/crm/packed-json';
import {
  crmFixture,
  noteCreates,
  postWebhook,
  recordingLog,
  runWorker,
  storedNotes,
  suiteSandbox,
  TENANT,
  webhookRequest,
  workerOutcomes,
} from './crm-support';

const sandbox = suiteSandbox();
const connection = inject('storageConnection');

/** Final records that never land: the instance died right after answering. */
class LostWrites extends PendingWrites {
  override start(): void {}
}

const post = (deps: CrmDeps, secrets: string[], body: Record<string, unknown>) =>
  postWebhook({ deps, secrets }, 'notes', body);

test('queued while FPX is down, delivered by the worker once it is back', async () => {
  const fx = crmFixture(connection, sandbox());
  const text = `outage ${randomUUID()}`;
  sandbox().setOutage(true);
  let queued: Awaited<ReturnType<typeof post>>;
  try {
    queued = await post(fx.deps, fx.secrets, { tenantId: TENANT, text, noteCategoryId: 1 });
    expect(queued.status).toBe(202);
  } finally {
    sandbox().setOutage(false);
  }
  // Its retry waits out the backoff (1 s here: the queue keeps the message invisible that long; here the
  // clock moves instead), then the worker delivers it.
  expect(fx.queue.scheduled).toEqual([{ deliveryId: queued.deliveryId, delaySeconds: 1 }]);
  expect(await runWorker(fx.deps)).toEqual(['delivered']);
  const record = await fx.deps.store.get(queued.deliveryId);
  expect(record).toMatchObject({ status: 'delivered', attempts: 2, answerStatus: 202 });
  expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
  // A duplicate message (e.g. redelivered) finds it delivered and does nothing.
  await fx.deps.queue.schedule(queued.deliveryId, 0);
  expect(await runWorker(fx.deps)).toEqual(['skipped']);
});

test('attempts exhausted: failed with the last error, message in the poison queue, operators alerted', async () => {
  const fx = crmFixture(connection, sandbox(), { maxAttempts: 3, backoffSeconds: 1 });
  const text = `doomed ${randomUUID()}`;
  // This note's creates fail every time; nothing else is affected.
  const before = sandbox().requests.length;
  sandbox().injectFault({ kind: '5xx', status: 502 }, { method: 'POST', path: /\/notes$/ }, 3);
  const first = await post(fx.deps, fx.secrets, { tenantId: TENANT, text, noteCategoryId: 1 });
  expect(first.status).toBe(202);

  const errors: string[] = [];
  expect([...(await runWorker(fx.deps, errors)), ...(await runWorker(fx.deps, errors))]).toEqual([
    'retry',
    'failed',
  ]);
  // The backoff doubles: 1 s after the webhook's attempt, then 1 to 2 s.
  const delays = fx.queue.scheduled.map((s) => s.delaySeconds);
  expect(delays).toHaveLength(2);
  expect(delays[0]).toBe(1);
  expect(delays[1]).toBeGreaterThanOrEqual(1);
  expect(delays[1]).toBeLessThanOrEqual(2);
  expect(await fx.deps.store.get(first.deliveryId)).toMatchObject({
    status: 'failed',
    attempts: 3,
    lastError: expect.stringContaining('502'),
  });
  const poison = await fx.deps.queue.poisonQueue.receiveMessages({ numberOfMessages: 5 });
  expect(
    poison.receivedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString())),
  ).toEqual([{ deliveryId: first.deliveryId }]);
  expect(fx.alerts).toHaveLength(1);
  expect(fx.alerts[0]).toContain(`CRM delivery ${first.deliveryId} failed after 3 attempts`);
  expect(errors.join('\n')).toContain('failed after 3 attempts');
  // Three calls (the webhook's and two retries), each refused before FPX read the body.
  const calls = sandbox()
    .requests.slice(before)
    .filter((r) => r.method === 'POST' && r.path.endsWith('/notes'));
  expect(calls.map((r) => r.status)).toEqual([502, 502, 502]);
  expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(0);
});

test('a create whose answer was lost is found in FPX, not created again', async () => {
  const fx = crmFixture(connection, sandbox());
  // FPX creates the note, then the connection drops before the answer: the outcome is unknown.
  const text = `dropped ${randomUUID()}`;
  sandbox().injectFault({ kind: 'dropAfterHandling' }, { method: 'POST', path: /\/notes$/ });
  const note = await post(fx.deps, fx.secrets, { tenantId: TENANT, text, noteCategoryId: 3 });
  expect(note.status).toBe(202);
  expect((await fx.deps.store.get(note.deliveryId))?.unknownSince).not.toBe('');

  const email = `lost.${randomUUID().slice(0, 8)}@example.com`;
  sandbox().injectFault({ kind: 'dropAfterHandling' }, { method: 'POST', path: /\/contacts$/ });
  const contactId = `msg_${randomUUID()}`;
  const contact = await handleWebhook(
    fx.deps,
    'contacts',
    webhookRequest(
      'contacts',
      JSON.stringify({
        tenantId: TENANT,
        name: 'Sam Lost',
        email,
        title: null,
        surveyEligible: null,
        countryRegionId: null,
        surveyLanguageId: null,
        contactTypeId: 1,
        services: null,
      }),
      { secrets: fx.secrets, webhookId: contactId },
    ),
    recordingLog().log,
  );
  expect(contact.status).toBe(202);

  expect(await workerOutcomes(fx.deps, 2)).toEqual(['delivered', 'delivered']);
  expect(noteCreates(sandbox(), text)).toHaveLength(1);
  expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
  const contacts =
    sandbox()
      .data.tenants.get(TENANT)
      ?.contacts.filter((c) => c.contact.email === email) ?? [];
  expect(contacts).toHaveLength(1);
  expect(
    sandbox().requests.filter((r) => r.method === 'POST' && (r.body as { email?: string })?.email === email),
  ).toHaveLength(1);

  const record = await fx.deps.store.get(deliveryIdFor(contactId));
  expect(record).toMatchObject({
    status: 'delivered',
    attempts: 1,
    lastError: expect.stringContaining('found in FPX'),
  });
  const bytes = record && (await fx.deps.store.result(record));
  expect(bytes && (await unpackJson(bytes))).toMatchObject({ email, name: 'Sam Lost' });
});

test('an entitlement record added (no serviceIntentId) whose answer was lost is found, not added again', async () => {
  const fx = crmFixture(connection, sandbox());
  // Make room on service 2 (200 seats in one record) for a new "In Progress" record of 50.
  const service = sandbox().data.tenants.get(TENANT)?.entitlements.get(2);
  const [record] = service?.records ?? [];
  if (!service || !record)
    throw new Error('the sandbox() data changed: service 2 of the tenant has no record');
  record.entitlementCount = service.maxEntitlements - 50;
  const notes = `pilot ${randomUUID()}`;

  sandbox().injectFault(
    { kind: 'dropAfterHandling' },
    { method: 'PATCH', path: /\/services\/2\/entitlements$/ },
  );
  const webhookId = `msg_${randomUUID()}`;
  const body = { tenantId: TENANT, serviceId: 2, l1Id: 'In Progress', entitlementCount: 50, notes };
  const answer = await handleWebhook(
    fx.deps,
    'entitlements',
    webhookRequest('entitlements', JSON.stringify(body), { secrets: fx.secrets, webhookId }),
    recordingLog().log,
  );
  expect(answer.status).toBe(202);
  // Sent again, FPX would refuse it (L1 statuses are unique per service): it must be looked for instead.
  expect(await runWorker(fx.deps)).toEqual(['delivered']);
  expect(service.records.filter((r) => r.notes === notes)).toHaveLength(1);
  expect(
    sandbox().requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/services/2/entitlements')),
  ).toHaveLength(1);
});

test('an instance that dies after FPX took the note but before recording it: recovery finishes it, once', async () => {
  const fx = crmFixture(connection, sandbox());
  // The crash: the answer goes out, the final record never lands (the write after answering is lost).
  const dying: CrmDeps = { ...fx.deps, pending: new LostWrites() };
  const text = `crashed ${randomUUID()}`;
  const note = await post(dying, fx.secrets, { tenantId: TENANT, text, noteCategoryId: 2 });
  expect(note.status).toBe(200);
  expect((await fx.deps.store.get(note.deliveryId))?.status).toBe('processing');
  const quiet = recordingLog().log;

  // While the lease lasts the attempt may still be running: recovery leaves it alone.
  expect(await recoverStalled(fx.deps, quiet)).toBe(0);
  // No repeat from the CRM: once the lease has ended, recovery queues it and the worker finishes it.
  fx.clock.advance(fx.deps.policy.leaseMs + 1_000);
  expect(await recoverStalled(fx.deps, quiet)).toBe(1);
  expect(await runWorker(fx.deps)).toEqual(['delivered']);
  // The dead attempt's call counts; finding its note is no second one.
  expect(await fx.deps.store.get(note.deliveryId)).toMatchObject({
    status: 'delivered',
    attempts: 1,
    lastError: expect.stringContaining('found in FPX'),
  });
  expect(noteCreates(sandbox(), text)).toHaveLength(1);
  expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
  // Finished: nothing stalled is left, and no message is waiting.
  expect(await recoverStalled(fx.deps, quiet)).toBe(0);
  expect(await runWorker(fx.deps)).toEqual([]);
});

test('recovery leaves recorded and queued deliveries alone, and a webhook queues no message of its own', async () => {
  const fx = crmFixture(connection, sandbox());
  const text = `recorded ${randomUUID()}`;
  const note = await post(fx.deps, fx.secrets, { tenantId: TENANT, text, noteCategoryId: 2 });
  expect(note.status).toBe(200);
  await fx.deps.pending.settled(note.deliveryId);
  sandbox().setOutage(true);
  try {
    const queued = await post(fx.deps, fx.secrets, {
      tenantId: TENANT,
      text: `${text} queued`,
      noteCategoryId: 2,
    });
    expect(queued.status).toBe(202);
  } finally {
    sandbox().setOutage(false);
  }
  // Past every lease: still nothing for recovery.
  fx.clock.advance(fx.deps.policy.leaseMs + 1_000);
  expect(await recoverStalled(fx.deps, recordingLog().log)).toBe(0);
  // Only the queued delivery's retry is on the queue.
  const { approximateMessagesCount } = await fx.deps.queue.main.getProperties();
  expect(approximateMessagesCount).toBe(1);
  expect(fx.queue.scheduled).toHaveLength(1);
  expect(noteCreates(sandbox(), text)).toHaveLength(1);
});
