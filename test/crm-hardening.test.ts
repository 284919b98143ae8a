/**
 * Issue 14, the CRM side: no delivery stranded `queued` by a lost message, poison queues alerted once per
 * incident, updates never applied out of order (`superseded`), bodies read no further than the limit, the
 * status request bound to its path, and errors redacted before they reach a log. lib's handlers on plain
 * requests (the bounded bodies also end to end, through the Functions library's HttpRequest and
 * functions/http-adapter.ts), Azurite, the sandbox over mutual TLS; time moves by the injected clock.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import { describe, expect, inject, test } from 'vitest';
import { signedHeaders } from '../dev/webhook';
import { type AlertSender, LogAlertSender } from '../lib/alerts';
import { IncidentTracker } from '../lib/alerts/incident';
import { AlertLedger } from '../lib/alerts/ledger';
import {
  alertPoisonQueues,
  type CrmDeps,
  deliveryStatus,
  handleWebhook,
  MAX_BODY_BYTES,
  openApiDocument,
  PendingWrites,
  type PoisonWatch,
  REPLAYED_HEADER,
  recoverStalled,
  type WebhookEndpoint,
} from '../lib/crm';
import type { PlainRequest } from '../lib/http';
import { queueClient, tableClient } from '../lib/storage';
import {
  bodyOf,
  type CrmFixture,
  crmFixture,
  deliveryStatusFunction,
  deliveryStatusHttpRequest,
  deliveryStatusRequest,
  headerOf,
  loggedContext,
  postWebhook,
  recordingLog,
  runWorker,
  storedNotes,
  suiteSandbox,
  TENANT,
  webhookFunction,
} from './crm-support';

const sandbox = suiteSandbox();
const connection = inject('storageConnection');
const MINUTE = 60_000;

/** A fixture and its clock's `advance`: `deps.now` is the only clock the CRM side reads. */
function clockedFixture(policy: Parameters<typeof crmFixture>[2] = {}) {
  const fx = crmFixture(connection, sandbox(), policy);
  return { fx, advance: (ms: number) => fx.clock.advance(ms) };
}

const post = (
  fx: CrmFixture,
  endpoint: WebhookEndpoint,
  body: Record<string, unknown>,
  options: { at?: Date; webhookId?: string } = {},
) => postWebhook(fx, endpoint, body, { ...options, drain: true });

/** Sent while FPX is down: 202, its retry on the queue. */
async function postDuringOutage(
  fx: CrmFixture,
  endpoint: WebhookEndpoint,
  body: Record<string, unknown>,
  at?: Date,
) {
  sandbox().setOutage(true);
  try {
    const queued = await post(fx, endpoint, body, { at });
    expect(queued.status).toBe(202);
    return queued;
  } finally {
    sandbox().setOutage(false);
  }
}

/** The retry's message without waiting out its backoff: the queue emptied, the message sent again at once. */
async function retryNow(deps: CrmDeps, advance: (ms: number) => void, deliveryId: string) {
  await deps.queue.main.clearMessages();
  await deps.queue.schedule(deliveryId, 0);
  advance(MINUTE);
}

async function status(fx: CrmFixture, deliveryId: string) {
  const answer = await deliveryStatus(fx.deps, deliveryStatusRequest(deliveryId, fx.secrets), deliveryId);
  return { status: answer.status, body: bodyOf(answer) };
}

describe('1. no stranded queued delivery', () => {
  test('a queued delivery whose message was lost is queued again after the grace period, once, and delivered', async () => {
    const { fx, advance } = clockedFixture();
    const text = `stranded ${randomUUID()}`;
    const queued = await postDuringOutage(fx, 'notes', { tenantId: TENANT, text, noteCategoryId: 1 });
    // The host's own retries failed (storage or identity down before the lease): the message is in poison.
    await fx.deps.queue.main.clearMessages();
    await fx.deps.queue.poison({ deliveryId: queued.deliveryId });
    const quiet = recordingLog().log;

    advance(5 * MINUTE);
    expect(await recoverStalled(fx.deps, quiet)).toBe(0);
    expect(await runWorker(fx.deps)).toEqual([]);

    advance(6 * MINUTE);
    const { log, lines } = recordingLog();
    expect(await recoverStalled(fx.deps, log)).toBe(1);
    expect(lines.join('\n')).toContain('long overdue');
    // Its new message waits on the queue: the next run does not queue it a second time.
    advance(5 * MINUTE);
    expect(await recoverStalled(fx.deps, quiet)).toBe(0);
    expect(await runWorker(fx.deps)).toEqual(['delivered']);
    expect(await fx.deps.store.get(queued.deliveryId)).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
  });

  test('a message reaching a poison queue alerts the operators once per incident', async () => {
    const run = randomBytes(4).toString('hex');
    const queues = [
      queueClient(connection, `crm-deliveries-poison-${run}`),
      queueClient(connection, `fpx-tenant-details-poison-${run}`),
    ];
    const [deliveries, details] = queues as [(typeof queues)[0], (typeof queues)[0]];
    const table = tableClient(connection, `FpxQueueAlerts${run}`);
    const mails: string[] = [];
    let failNext = false;
    const logSender = new LogAlertSender('tests', (line) => mails.push(line));
    const sender: AlertSender = {
      transport: 'log',
      send: async (message) => {
        if (failNext) {
          failNext = false;
          throw new Error('SMTP refused: smtp://alerts:hunter2@mail.example.com AccountKey=c2VjcmV0;');
        }
        await logSender.send(message);
      },
    };
    let now = Date.now();
    const watch: PoisonWatch = {
      queues,
      incidents: new IncidentTracker(table),
      ledger: new AlertLedger(table),
      alerts: sender,
      now: () => now,
    };
    const { log, lines } = recordingLog();
    const check = async () => {
      now += 5 * MINUTE;
      return alertPoisonQueues(watch, log);
    };

    // Queues not created yet hold nothing: no alert.
    expect((await check()).map((q) => q.depth)).toEqual([0, 0]);
    expect(mails).toHaveLength(0);

    await deliveries.create();
    await deliveries.sendMessage(
      Buffer.from(JSON.stringify({ deliveryId: randomUUID() })).toString('base64'),
    );
    expect((await check())[0]).toMatchObject({ depth: 1, alert: 'sent' });
    expect(mails).toHaveLength(1);
    expect(mails[0]).toContain(`Messages in the poison queue ${deliveries.name}`);
    expect(mails[0]).toContain('deliveryId');
    // The same incident, more messages, later runs: no second mail.
    await deliveries.sendMessage(Buffer.from('{"deliveryId":"x"}').toString('base64'));
    expect((await check())[0]).toMatchObject({ depth: 2, alert: 'already' });
    expect((await check())[0]).toMatchObject({ alert: 'already' });
    expect(mails).toHaveLength(1);

    // Emptied: the incident ends quietly; filling again is a new incident, with its own alert.
    await deliveries.clearMessages();
    expect((await check())[0]).toEqual({ queue: deliveries.name, depth: 0 });
    expect(mails).toHaveLength(1);
    await deliveries.sendMessage(Buffer.from('{"deliveryId":"y"}').toString('base64'));
    const reopened = (await check())[0];
    expect(reopened).toMatchObject({ depth: 1, alert: 'sent' });
    expect(mails).toHaveLength(2);

    // The other queue alerts on its own; a failed send is retried by the next run, its error redacted.
    await details.create();
    await details.sendMessage(Buffer.from('{"tenantId":"t"}').toString('base64'));
    failNext = true;
    const failed = (await check())[1];
    expect(failed).toMatchObject({ depth: 1, alert: 'failed', error: expect.stringContaining('***') });
    expect(mails).toHaveLength(2);
    const record = await watch.ledger.get(details.name, String(failed?.incident));
    expect(record?.status).toBe('failed');
    expect(JSON.stringify([failed, record, lines])).not.toMatch(/hunter2|c2VjcmV0/);
    expect((await check())[1]).toMatchObject({ alert: 'sent', incident: failed?.incident });
    expect(mails).toHaveLength(3);
    expect(mails[2]).toContain(details.name);
    expect((await check())[1]).toMatchObject({ alert: 'already' });
    expect(mails).toHaveLength(3);
  });
});

describe('2. updates never go backwards', () => {
  const contactBody = (contactId: string, title: string) => ({
    tenantId: TENANT,
    contactId,
    name: 'Robin Order',
    email: null,
    phone: '+1-555-0199',
    title,
    surveyEligible: false,
    countryRegionId: null,
    surveyLanguageId: null,
    contactTypeId: 1,
    services: null,
  });

  test('a contact update queued before a newer one was delivered is superseded, not sent', async () => {
    const { fx, advance } = clockedFixture();
    const created = await post(fx, 'contacts', {
      tenantId: TENANT,
      name: 'Robin Order',
      email: `robin.${randomUUID().slice(0, 8)}@example.com`,
      title: 'Start',
      surveyEligible: false,
      countryRegionId: null,
      surveyLanguageId: null,
      contactTypeId: 1,
      services: null,
    });
    expect(created.status).toBe(200);
    const contactId = (created.body.result as { contactId: string }).contactId;
    const patches = () =>
      sandbox().requests.filter(
        (r) => r.method === 'PATCH' && r.path === `/contacts/${contactId}` && r.status === 200,
      );
    const title = () =>
      sandbox()
        .data.tenants.get(TENANT)
        ?.contacts.find((c) => c.contact.contactId === contactId)?.contact.title;

    const older = await postDuringOutage(
      fx,
      'contacts',
      contactBody(contactId, 'Older'),
      new Date(Date.now() - MINUTE),
    );
    const newer = await post(fx, 'contacts', contactBody(contactId, 'Newer'));
    expect(newer.status).toBe(200);
    expect(title()).toBe('Newer');

    // The older update's retry comes after the newer one was delivered: not sent, final.
    await retryNow(fx.deps, advance, older.deliveryId);
    expect(await runWorker(fx.deps)).toEqual(['superseded']);
    expect(title()).toBe('Newer');
    expect(patches()).toHaveLength(1);
    expect(await status(fx, older.deliveryId)).toEqual({
      status: 200,
      body: {
        deliveryId: older.deliveryId,
        status: 'superseded',
        attempts: 1,
        lastError: expect.stringMatching(
          /^superseded: an update of the same contact signed at .* was delivered first/,
        ),
      },
    });
    // One signed before the newer one that reaches the webhook only now: answered superseded, nothing sent.
    const signedEarlier = new Date(Date.now() - 2 * MINUTE);
    const late = await post(fx, 'contacts', contactBody(contactId, 'Oldest'), { at: signedEarlier });
    expect(late.status).toBe(200);
    expect(late.body).toEqual({
      status: 'superseded',
      deliveryId: late.deliveryId,
      message: expect.any(String),
    });
    const replay = await post(fx, 'contacts', contactBody(contactId, 'Oldest'), {
      at: signedEarlier,
      webhookId: late.webhookId,
    });
    expect(replay.body).toEqual(late.body);
    expect(headerOf(replay.answer, REPLAYED_HEADER)).toBe('true');
    expect(title()).toBe('Newer');
    expect(patches()).toHaveLength(1);

    // Final: the queue's repeats and recovery leave it alone.
    await fx.deps.queue.schedule(older.deliveryId, 0);
    expect(await runWorker(fx.deps)).toEqual(['skipped']);
    advance(60 * MINUTE);
    expect(await recoverStalled(fx.deps, recordingLog().log)).toBe(0);

    // A newer update still goes through; superseded counts as finished for the purge.
    const newest = await post(fx, 'contacts', contactBody(contactId, 'Newest'), {
      at: new Date(fx.deps.now()),
    });
    expect(newest.status).toBe(200);
    expect(title()).toBe('Newest');
    expect(await fx.deps.store.purgeExpired(new Date(fx.deps.now() + 8 * 24 * 60 * MINUTE))).toBe(5);
    expect(await fx.deps.store.get(older.deliveryId)).toBeUndefined();
    expect(await fx.deps.store.newestDelivered(`contact:${contactId}`)).toBe(0);
  });

  test('an entitlement record update queued before a newer one was delivered is superseded; creates are not ordered', async () => {
    const { fx, advance } = clockedFixture();
    const service = sandbox().data.tenants.get(TENANT)?.entitlements.get(2);
    const record = service?.records[0];
    if (!record) throw new Error('the sandbox() data changed: service 2 of the tenant has no record');
    const notes = () => service?.records.find((r) => r.serviceIntentId === record.serviceIntentId)?.notes;
    const update = (notes: string) => ({
      tenantId: TENANT,
      serviceId: 2,
      serviceIntentId: record.serviceIntentId.toUpperCase(),
      l1Id: record.l1.name,
      entitlementCount: record.entitlementCount,
      notes,
    });
    const older = await postDuringOutage(fx, 'entitlements', update('older'), new Date(Date.now() - MINUTE));
    expect((await post(fx, 'entitlements', update('newer'))).status).toBe(200);
    await retryNow(fx.deps, advance, older.deliveryId);
    expect(await runWorker(fx.deps)).toEqual(['superseded']);
    expect(notes()).toBe('newer');
    const sentOlder = sandbox().requests.filter(
      (r) => r.method === 'PATCH' && r.status === 200 && (r.body as { notes?: string })?.notes === 'older',
    );
    expect(sentOlder).toEqual([]);

    // Notes are creates: an older one queued behind a newer one is still delivered.
    const text = `unordered ${randomUUID()}`;
    const olderNote = await postDuringOutage(
      fx,
      'notes',
      { tenantId: TENANT, text: `${text} 1`, noteCategoryId: 1 },
      new Date(Date.now() - MINUTE),
    );
    expect((await post(fx, 'notes', { tenantId: TENANT, text: `${text} 2`, noteCategoryId: 1 })).status).toBe(
      200,
    );
    await retryNow(fx.deps, advance, olderNote.deliveryId);
    expect(await runWorker(fx.deps)).toEqual(['delivered']);
    expect(storedNotes(sandbox(), TENANT, `${text} 1`)).toHaveLength(1);
  });

  test('the OpenAPI document shows superseded as a delivery status and as an update answer', () => {
    const doc = JSON.stringify(openApiDocument());
    const schemas = (openApiDocument() as { components: { schemas: Record<string, unknown> } }).components
      .schemas;
    expect(JSON.stringify(schemas.DeliveryStatus)).toContain('superseded');
    expect(schemas.Superseded).toBeDefined();
    expect(doc).toContain('GET /api/crm/deliveries/<id>');
  });
});

describe('6. bounded bodies', () => {
  /** A body of `total` bytes that is produced only as it is read, counting what was read. */
  function streamedBody(total: number) {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const counter = { pulled: 0 };
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (counter.pulled >= total) return controller.close();
        counter.pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    return { stream, counter };
  }

  /** The request as the library builds it for a streamed body (its `nativeRequest`). */
  function streamedRequest(stream: ReadableStream<Uint8Array>, headers: Record<string, string>) {
    const nativeRequest = new Request('http://127.0.0.1:7071/api/crm/notes', {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { 'content-type': 'application/json', ...signedHeaders([randomSecret()], ''), ...headers },
    } as RequestInit);
    return new HttpRequest({ nativeRequest } as never);
  }
  const randomSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

  /** The same body as lib takes it: a plain request whose body is read as it is iterated. */
  function plainStreamedRequest(total: number, headers: Record<string, string>) {
    const counter = { pulled: 0 };
    async function* body() {
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      while (counter.pulled < total) {
        counter.pulled += chunk.byteLength;
        yield chunk;
      }
    }
    const request: PlainRequest = {
      method: 'POST',
      path: '/api/crm/notes',
      headers: { 'content-type': 'application/json', ...signedHeaders([randomSecret()], ''), ...headers },
      body: body(),
    };
    return { request, counter };
  }

  test('a webhook body is read no further than 5 MiB, whatever Content-Length says or without one: 413', async () => {
    const fx = crmFixture(connection, sandbox());
    // End to end: the function as registered, the library's request with a streamed body (the adapter
    // passes the stream through; lib reads it up to the limit and stops).
    const crmNotes = webhookFunction(fx.deps, 'notes');
    for (const headers of [{ 'content-length': '100' }, {}] as Record<string, string>[]) {
      const { stream, counter } = streamedBody(64 * 1024 * 1024);
      const answer = await crmNotes(streamedRequest(stream, headers), loggedContext().context);
      expect(answer.status).toBe(413);
      expect(bodyOf(answer)).toEqual({ message: expect.stringContaining('5 MiB') });
      expect(counter.pulled).toBeLessThanOrEqual(MAX_BODY_BYTES + 4 * 64 * 1024);
    }
    // Exactly at the limit is not too large (it goes on to the signature check).
    const { stream } = streamedBody(MAX_BODY_BYTES);
    expect((await crmNotes(streamedRequest(stream, {}), loggedContext().context)).status).toBe(401);

    // lib alone, with a plain request whose body is an async iterable: the same bound.
    for (const headers of [{ 'content-length': '100' }, {}] as Record<string, string>[]) {
      const { request, counter } = plainStreamedRequest(64 * 1024 * 1024, headers);
      const answer = await handleWebhook(fx.deps, 'notes', request, recordingLog().log);
      expect(answer.status).toBe(413);
      expect(bodyOf(answer)).toEqual({ message: expect.stringContaining('5 MiB') });
      expect(counter.pulled).toBeLessThanOrEqual(MAX_BODY_BYTES + 64 * 1024);
    }
    const atLimit = plainStreamedRequest(MAX_BODY_BYTES, {}).request;
    expect((await handleWebhook(fx.deps, 'notes', atLimit, recordingLog().log)).status).toBe(401);
  });

  test('GET /api/crm/deliveries/{id} refuses a body', async () => {
    const fx = crmFixture(connection, sandbox());
    const id = randomUUID();
    const crmDelivery = deliveryStatusFunction(fx.deps);
    const { context } = loggedContext('crmDelivery');
    for (const headers of [{ 'content-length': '12' }, { 'transfer-encoding': 'chunked' }] as Record<
      string,
      string
    >[]) {
      // End to end (the library's request, through the adapter) and lib alone (a plain request).
      const answer = await crmDelivery(deliveryStatusHttpRequest(id, fx.secrets, { headers }), context);
      expect(answer.status).toBe(413);
      const plain = await deliveryStatus(fx.deps, deliveryStatusRequest(id, fx.secrets, { headers }), id);
      expect(plain.status).toBe(413);
    }
    // A body announced by neither header is still found: reading its first byte passes the limit of 0.
    const withBody = { ...deliveryStatusRequest(id, fx.secrets), body: Buffer.from('{}') };
    expect((await deliveryStatus(fx.deps, withBody, id)).status).toBe(413);
    expect((await crmDelivery(deliveryStatusHttpRequest(id, fx.secrets), context)).status).toBe(404);
    expect((await deliveryStatus(fx.deps, deliveryStatusRequest(id, fx.secrets), id)).status).toBe(404);
  });
});

describe('7. the status request is bound to its path', () => {
  test('signed over "GET /api/crm/deliveries/<id>": accepted for that id, refused (401) for another', async () => {
    const fx = crmFixture(connection, sandbox());
    const first = await post(fx, 'notes', {
      tenantId: TENANT,
      text: `bound ${randomUUID()}`,
      noteCategoryId: 1,
    });
    const second = await post(fx, 'notes', {
      tenantId: TENANT,
      text: `other ${randomUUID()}`,
      noteCategoryId: 1,
    });
    const own = await deliveryStatus(
      fx.deps,
      deliveryStatusRequest(first.deliveryId, fx.secrets),
      first.deliveryId,
    );
    expect(own.status).toBe(200);
    expect(bodyOf(own)).toMatchObject({ deliveryId: first.deliveryId, status: 'delivered' });

    const borrowed = deliveryStatusRequest(second.deliveryId, fx.secrets, { signedFor: first.deliveryId });
    const refused = await deliveryStatus(fx.deps, borrowed, second.deliveryId);
    expect(refused.status).toBe(401);
    // Signed over an empty body (the old form) opens nothing either.
    const unbound: PlainRequest = {
      method: 'GET',
      path: `/api/crm/deliveries/${first.deliveryId}`,
      headers: signedHeaders(fx.secrets, ''),
      body: null,
    };
    expect((await deliveryStatus(fx.deps, unbound, first.deliveryId)).status).toBe(401);
  });
});

describe('12. errors are redacted before they reach a log', () => {
  test('the final record that cannot be written, and the alert that cannot be sent, log no secret', async () => {
    const { log, lines } = recordingLog();
    const pending = new PendingWrites([0, 0]);
    pending.start(
      randomUUID(),
      () =>
        Promise.reject(new Error('PUT https://acct.table.core.windows.net/x?sig=c2lnbmF0dXJl&se=1 failed')),
      log,
    );
    await pending.drain();
    expect(lines.join('\n')).toContain('could not be written');
    expect(lines.join('\n')).not.toContain('c2lnbmF0dXJl');

    // The alert of an exhausted delivery fails with a secret in its error.
    const { fx, advance } = clockedFixture({ maxAttempts: 1 });
    fx.deps.alerts = {
      transport: 'smtp',
      send: () => Promise.reject(new Error('auth failed for smtp://alerts:hunter2@mail.example.com')),
    };
    const queued = await postDuringOutage(fx, 'notes', {
      tenantId: TENANT,
      text: `x ${randomUUID()}`,
      noteCategoryId: 1,
    });
    await retryNow(fx.deps, advance, queued.deliveryId);
    const errors: string[] = [];
    expect(await runWorker(fx.deps, errors)).toEqual(['failed']);
    expect(errors.join('\n')).toContain('could not be sent');
    expect(errors.join('\n')).not.toContain('hunter2');
  });
});
