/**
 * The webhook functions end to end through the Functions library's own HttpRequest/InvocationContext and
 * functions/http-adapter.ts (as crmNotes, crmContacts, crmEntitlements and crmDelivery register them), against real
 * Azurite and the FPX sandbox over mutual TLS: every answer of the contract's table, replay, concurrency,
 * secret rotation, the end-user token, and a crashed instance's claim taken over.
 */
import { randomUUID } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import { beforeAll, describe, expect, inject, test } from 'vitest';
import {
  type CrmOperation,
  deliveryIdFor,
  MAX_BODY_BYTES,
  REPLAYED_HEADER,
  type WebhookEndpoint,
} from '../lib/crm';
import { newDelivery } from '../lib/crm/delivery-steps';
import { fingerprintOf } from '../lib/crm/http-input';
import { packJson } from '../lib/crm/packed-json';
import {
  bodyOf,
  type CrmFixture,
  contactPayload,
  crmFixture,
  deliveryStatusFunction,
  deliveryStatusHttpRequest,
  headerOf,
  loggedContext,
  newSecret,
  noteCreates,
  storedNotes,
  suiteSandbox,
  TENANT,
  webhookFunction,
  webhookHttpRequest,
} from './crm-support';

let fx: CrmFixture;
const sandbox = suiteSandbox();
const connection = inject('storageConnection');

beforeAll(() => {
  fx = crmFixture(connection, sandbox());
});

const note = (text: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ tenantId: TENANT, text, noteCategoryId: 2, ...extra });

async function post(
  endpoint: WebhookEndpoint,
  body: string,
  options: { webhookId?: string; headers?: Record<string, string>; secrets?: string[] } = {},
) {
  const { context, lines } = loggedContext();
  const request = webhookHttpRequest(endpoint, body, { secrets: options.secrets ?? fx.secrets, ...options });
  const answer = await webhookFunction(fx.deps, endpoint)(request, context);
  return { answer, body: bodyOf(answer), lines };
}

async function status(deliveryId: string, secrets = fx.secrets) {
  const answer = await deliveryStatusFunction(fx.deps)(
    deliveryStatusHttpRequest(deliveryId, secrets),
    loggedContext('crmDelivery').context,
  );
  return { status: answer.status, body: bodyOf(answer) };
}

describe('200 delivered', () => {
  test('a note reaches FPX with the end user token; a replay gives the same answer and no second call', async () => {
    const text = `note ${randomUUID()}`;
    const webhookId = `msg_${randomUUID()}`;
    const token = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEiLCJuYW1lIjoiUGF0IExlZSJ9.';
    const first = await post('notes', note(text), {
      webhookId,
      headers: { 'X-End-User-Token': `Bearer ${token}` },
    });
    expect(first.answer.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'delivered', deliveryId: deliveryIdFor(webhookId) });
    expect(first.body.result).toMatchObject({ text, author: 'Pat Lee', noteCategory: { id: 2 } });
    expect(noteCreates(sandbox(), text)).toHaveLength(1);
    expect(noteCreates(sandbox(), text)[0]?.authorization).toBe(`Bearer ${token}`);

    const again = await post('notes', note(text), { webhookId });
    expect(again.answer.status).toBe(200);
    expect(headerOf(again.answer, REPLAYED_HEADER)).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(noteCreates(sandbox(), text)).toHaveLength(1);

    // The token is neither logged nor stored.
    expect([...first.lines, ...again.lines].join('\n')).not.toContain(token.slice(0, 20));
    await fx.deps.pending.drain();
    const rows = [];
    for await (const row of fx.deps.store.table.listEntities()) rows.push(row);
    expect(JSON.stringify(rows)).not.toContain(token.slice(0, 20));

    const state = await status(deliveryIdFor(webhookId));
    expect(state).toEqual({
      status: 200,
      body: {
        deliveryId: deliveryIdFor(webhookId),
        status: 'delivered',
        attempts: 1,
        result: first.body.result,
      },
    });
  });

  test('contacts: created without contactId, updated (PATCH) with it; entitlements: PATCHed', async () => {
    const email = `pat.${randomUUID().slice(0, 8)}@example.com`;
    const contact = contactPayload(email, TENANT.replaceAll('-', '').toUpperCase());
    const created = await post('contacts', JSON.stringify(contact));
    expect(created.answer.status).toBe(200);
    const result = created.body.result as { contactId: string; email: string };
    expect(result.email).toBe(email);

    const updated = await post(
      'contacts',
      JSON.stringify({ ...contact, contactId: result.contactId, phone: '+1-555-0100', title: 'CIO' }),
    );
    expect(updated.answer.status).toBe(200);
    expect(updated.body.result).toMatchObject({
      contactId: result.contactId,
      title: 'CIO',
      phone: '+1-555-0100',
    });
    expect(
      sandbox().requests.filter((r) => r.method === 'PATCH' && r.path === `/contacts/${result.contactId}`),
    ).toHaveLength(1);

    const records = sandbox().data.tenants.get(TENANT)?.entitlements.get(2)?.records ?? [];
    const record = records[0];
    expect(record).toBeDefined();
    const entitlement = await post(
      'entitlements',
      JSON.stringify({
        tenantId: TENANT,
        serviceId: 2,
        serviceIntentId: record?.serviceIntentId,
        l1Id: record?.l1.name,
        entitlementCount: record?.entitlementCount,
        notes: 'Updated from the CRM',
      }),
    );
    expect(entitlement.answer.status).toBe(200);
    expect(entitlement.body.result).toEqual(
      expect.arrayContaining([expect.objectContaining({ notes: 'Updated from the CRM' })]),
    );
  });

  test('a note of 1,048,576 characters fits, and its replay carries it whole', async () => {
    const text = 'é'.repeat(1_048_576);
    const webhookId = `msg_${randomUUID()}`;
    const first = await post('notes', note(text), { webhookId });
    expect(first.answer.status).toBe(200);
    const again = await post('notes', note(text), { webhookId });
    expect(headerOf(again.answer, REPLAYED_HEADER)).toBe('true');
    expect((again.body.result as { text: string }).text).toBe(text);
    expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);

    // Random CJK text barely compresses: payload and answer spill over several rows of one partition.
    const random = Array.from({ length: 1_048_576 }, () =>
      String.fromCharCode(0x4e00 + Math.floor(Math.random() * 20_000)),
    ).join('');
    const bigId = `msg_${randomUUID()}`;
    expect((await post('notes', note(random), { webhookId: bigId })).answer.status).toBe(200);
    const bigReplay = await post('notes', note(random), { webhookId: bigId });
    expect(headerOf(bigReplay.answer, REPLAYED_HEADER)).toBe('true');
    expect((bigReplay.body.result as { text: string }).text).toBe(random);
    const stored = await fx.deps.store.get(deliveryIdFor(bigId));
    expect(stored && JSON.parse(JSON.stringify(stored.row)).payloadChunks).toBeGreaterThan(4 + 11);

    const tooLong = await post('notes', note(`${text}x`));
    expect(tooLong.answer.status).toBe(400);
    expect(tooLong.body.errors).toHaveProperty('text');
  });
});

describe('idempotency', () => {
  test('two identical webhooks at once: one FPX call, the other 409 while it runs', async () => {
    const text = `concurrent ${randomUUID()}`;
    const webhookId = `msg_${randomUUID()}`;
    sandbox().injectFault({ kind: 'slow', delayMs: 400 }, { method: 'POST', path: /\/notes$/ });
    const answers = await Promise.all([
      post('notes', note(text), { webhookId }),
      post('notes', note(text), { webhookId }),
    ]);
    expect(answers.map((a) => a.answer.status).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.answer.status === 409)?.body).toEqual({ message: expect.any(String) });
    expect(noteCreates(sandbox(), text)).toHaveLength(1);
    const later = await post('notes', note(text), { webhookId });
    expect(later.answer.status).toBe(200);
    expect(headerOf(later.answer, REPLAYED_HEADER)).toBe('true');
  });

  test('the same webhook-id with another body is refused with 422, without an FPX call', async () => {
    const webhookId = `msg_${randomUUID()}`;
    const text = `first ${randomUUID()}`;
    expect((await post('notes', note(text), { webhookId })).answer.status).toBe(200);
    const reused = await post('notes', note(`${text} changed`), { webhookId });
    expect(reused.answer.status).toBe(422);
    expect(reused.body).toEqual({ message: expect.stringContaining('different request body') });
    expect(noteCreates(sandbox(), `${text} changed`)).toHaveLength(0);
  });

  test('a claim left by a crashed instance is taken over after its lease, and what it created is found', async () => {
    for (const createdBeforeCrash of [true, false]) {
      const webhookId = `msg_${randomUUID()}`;
      const text = `crashed ${randomUUID()}`;
      const body = note(text);
      // The crashed instance claimed the id 3 minutes ago (the lease is 2) and may have sent the note.
      const operation: CrmOperation = {
        op: 'createNote',
        tenantId: TENANT,
        note: { text, noteCategoryId: 2 },
      };
      const claim = newDelivery(
        { webhookId, operation, fingerprint: fingerprintOf('notes', Buffer.from(body)) },
        'notes',
        deliveryIdFor(webhookId),
        Date.now() - 3 * 60_000,
        fx.deps.policy.leaseMs,
      );
      expect(await fx.deps.store.create(claim, await packJson(operation))).toBeDefined();
      if (createdBeforeCrash) await fx.deps.fpx.createNote(TENANT, { text, noteCategoryId: 2 });

      const repeat = await post('notes', body, { webhookId });
      expect(repeat.answer.status).toBe(200);
      expect(repeat.body.result).toMatchObject({ text });
      expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
    }
  });

  test('a repeat while the first still holds its lease gets 409', async () => {
    const webhookId = `msg_${randomUUID()}`;
    const body = note(`leased ${randomUUID()}`);
    const operation: CrmOperation = {
      op: 'createNote',
      tenantId: TENANT,
      note: { text: 'x', noteCategoryId: 2 },
    };
    const claim = newDelivery(
      { webhookId, operation, fingerprint: fingerprintOf('notes', Buffer.from(body)) },
      'notes',
      deliveryIdFor(webhookId),
      Date.now(),
      fx.deps.policy.leaseMs,
    );
    await fx.deps.store.create(claim, await packJson(operation));
    expect((await post('notes', body, { webhookId })).answer.status).toBe(409);
  });
});

describe('422 rejected, 202 queued', () => {
  test("FPX's 400 comes back as 422 with its field errors, and is replayed", async () => {
    const webhookId = `msg_${randomUUID()}`;
    const first = await post('notes', note('bad category', { noteCategoryId: 99 }), { webhookId });
    expect(first.answer.status).toBe(422);
    expect(first.body).toMatchObject({
      status: 'rejected',
      deliveryId: deliveryIdFor(webhookId),
      message: expect.any(String),
      errors: { NoteCategoryId: [expect.stringContaining('99')] },
    });
    const again = await post('notes', note('bad category', { noteCategoryId: 99 }), { webhookId });
    expect(again.answer.status).toBe(422);
    expect(headerOf(again.answer, REPLAYED_HEADER)).toBe('true');
    expect(again.body).toEqual(first.body);
    expect((await status(deliveryIdFor(webhookId))).body).toMatchObject({
      status: 'rejected',
      attempts: 1,
      lastError: expect.stringContaining('NoteCategoryId'),
    });
  });

  test('FPX unavailable: 202 queued; the delivery endpoint says queued with the error', async () => {
    const webhookId = `msg_${randomUUID()}`;
    sandbox().injectFault({ kind: '5xx', status: 503 }, { method: 'POST', path: /\/notes$/ });
    const queuedBody = note(`queued ${randomUUID()}`);
    const queued = await post('notes', queuedBody, { webhookId });
    expect(queued.answer.status).toBe(202);
    expect(queued.body).toEqual({ status: 'queued', deliveryId: deliveryIdFor(webhookId) });
    expect(await status(deliveryIdFor(webhookId))).toEqual({
      status: 200,
      body: {
        deliveryId: deliveryIdFor(webhookId),
        status: 'queued',
        attempts: 1,
        lastError: expect.stringContaining('503'),
      },
    });
    const replay = await post('notes', queuedBody, { webhookId });
    expect(replay.answer.status).toBe(202);
    expect(headerOf(replay.answer, REPLAYED_HEADER)).toBe('true');
    expect((await post('notes', note('another body'), { webhookId })).answer.status).toBe(422);
  });
});

test('retention: finished deliveries are purged once expiresAt has passed, queued ones kept', async () => {
  const delivered = `msg_${randomUUID()}`;
  expect(
    (await post('notes', note(`kept a week ${randomUUID()}`), { webhookId: delivered })).answer.status,
  ).toBe(200);
  const queued = `msg_${randomUUID()}`;
  sandbox().injectFault({ kind: '5xx' }, { method: 'POST', path: /\/notes$/ });
  expect((await post('notes', note(`waiting ${randomUUID()}`), { webhookId: queued })).answer.status).toBe(
    202,
  );
  await fx.deps.pending.drain();

  const record = await fx.deps.store.get(deliveryIdFor(delivered));
  const expiresAt = Date.parse(record?.expiresAt ?? '');
  expect(expiresAt - Date.now()).toBeGreaterThan(7 * 24 * 3600_000 - 60_000);
  expect(await fx.deps.store.purgeExpired(new Date())).toBe(0);
  expect(await fx.deps.store.purgeExpired(new Date(expiresAt + 1000))).toBeGreaterThanOrEqual(1);
  expect(await fx.deps.store.get(deliveryIdFor(delivered))).toBeUndefined();
  expect(await fx.deps.store.get(deliveryIdFor(queued))).toMatchObject({ status: 'queued' });
});

describe('refused before anything happens', () => {
  test('401: missing, wrong, stale or future signature; nothing stored, no FPX call', async () => {
    const before = sandbox().requests.length;
    const body = note('unsigned');
    const missing = await webhookFunction(fx.deps, 'notes')(
      new HttpRequest({
        method: 'POST',
        url: 'http://x/api/crm/notes',
        headers: { 'content-type': 'application/json' },
        body: { string: body },
      }),
      loggedContext().context,
    );
    expect(missing.status).toBe(401);
    expect(bodyOf(missing)).toEqual({ message: expect.stringMatching(/Missing/) });
    const webhookId = `msg_${randomUUID()}`;
    expect((await post('notes', body, { webhookId, secrets: [newSecret()] })).answer.status).toBe(401);
    const stale = webhookHttpRequest('notes', body, {
      secrets: fx.secrets,
      webhookId,
      at: new Date(Date.now() - 6 * 60_000),
    });
    expect((await webhookFunction(fx.deps, 'notes')(stale, loggedContext().context)).status).toBe(401);
    const future = webhookHttpRequest('notes', body, {
      secrets: fx.secrets,
      webhookId,
      at: new Date(Date.now() + 6 * 60_000),
    });
    expect((await webhookFunction(fx.deps, 'notes')(future, loggedContext().context)).status).toBe(401);
    const tampered = webhookHttpRequest('notes', body, { secrets: fx.secrets, webhookId });
    const changed = new HttpRequest({
      method: 'POST',
      url: 'http://x/api/crm/notes',
      headers: Object.fromEntries(tampered.headers),
      body: { string: note('tampered') },
    });
    expect((await webhookFunction(fx.deps, 'notes')(changed, loggedContext().context)).status).toBe(401);
    expect(sandbox().requests.length).toBe(before);
    expect(await fx.deps.store.get(deliveryIdFor(webhookId))).toBeUndefined();
  });

  test('rotation: the old and the new secret are both accepted, each alone or together', async () => {
    const [oldSecret, newer] = [newSecret(), newSecret()];
    const rotating = crmFixture(connection, sandbox(), {}, [oldSecret, newer]);
    for (const secrets of [[oldSecret], [newer], [newSecret(), newer]]) {
      const request = webhookHttpRequest('notes', note(`rotation ${randomUUID()}`), { secrets });
      expect((await webhookFunction(rotating.deps, 'notes')(request, loggedContext().context)).status).toBe(
        200,
      );
    }
  });

  test('400 with field errors, 413 over 5 MiB, 415 not JSON, 503 without a secret', async () => {
    const invalid = await post('notes', JSON.stringify({ tenantId: 'nope', text: 5 }));
    expect(invalid.answer.status).toBe(400);
    expect(invalid.body).toEqual({
      message: expect.any(String),
      errors: {
        tenantId: [expect.stringContaining('GUID')],
        text: [expect.any(String)],
        noteCategoryId: [expect.any(String)],
      },
    });
    expect((await post('notes', '{"tenantId":')).body).toMatchObject({
      errors: { body: [expect.any(String)] },
    });

    const huge = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    expect((await post('notes', huge.toString())).answer.status).toBe(413);
    const xml = await post('notes', note('x'), { headers: { 'content-type': 'application/xml' } });
    expect(xml.answer.status).toBe(415);
    expect(xml.body).toEqual({ message: expect.any(String) });

    const unconfigured = { ...fx.deps, keys: [] };
    const answer = await webhookFunction(unconfigured, 'notes')(
      webhookHttpRequest('notes', note('x'), { secrets: fx.secrets }),
      loggedContext().context,
    );
    expect(answer.status).toBe(503);
  });

  test('the delivery endpoint: 401 unsigned, 404 unknown', async () => {
    const unsigned = await deliveryStatusFunction(fx.deps)(
      new HttpRequest({ method: 'GET', url: 'http://x/api/crm/deliveries/x', params: { id: randomUUID() } }),
      loggedContext('crmDelivery').context,
    );
    expect(unsigned.status).toBe(401);
    expect((await status(randomUUID())).status).toBe(404);
    expect((await status('not-a-uuid')).status).toBe(404);
  });
});
