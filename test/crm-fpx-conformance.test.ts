/**
 * The CRM → FPX write path as the guide has it rather than as the sandbox is kind (issue 12, FPX-NOTES
 * #13, #14, #16, #17): a 5xx answering a write may come after FPX applied it; 403 is final, 401 depends on
 * the end user's token; creates for a referral go and are looked for under its rfaId; a repeated removal is
 * delivered; dates go to FPX as written. Real handlers, Azurite, and the sandbox over mutual TLS.
 */

import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { issueClientCertificate } from '../dev/certs';
import { type CertificateSource, FileCertificateSource, parseClientCertificate } from '../lib/cert';
import { type CrmDeps, deliveryStatus, openApiDocument, type WebhookEndpoint } from '../lib/crm';
import { FpxClient, type FpxError, FpxTransport } from '../lib/fpx';
import {
  bodyOf,
  type CrmFixture,
  crmFixture,
  deliveryStatusRequest,
  noteCreates,
  postWebhook,
  storedNotes,
  suiteSandbox,
  TENANT,
  workerOutcomes,
} from './crm-support';
import { sandboxClient } from './support/fpx';

const sandbox = suiteSandbox();
const connection = inject('storageConnection');
const open: FpxTransport[] = [];

afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
});

const TOKEN = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTciLCJuYW1lIjoiUmlsZXkgUmVmdXNlZCJ9.';

const post = (
  fx: CrmFixture,
  endpoint: WebhookEndpoint,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) => postWebhook(fx, endpoint, body, { headers });

/** `GET /api/crm/deliveries/{id}`, signed, as the CRM asks it. */
async function delivery(fx: CrmFixture, deliveryId: string) {
  await fx.deps.pending.drain();
  return bodyOf(await deliveryStatus(fx.deps, deliveryStatusRequest(deliveryId, fx.secrets), deliveryId));
}

/** Messages waiting in the fixture's delivery queue (created on first use: none yet is 0). */
async function queuedMessages(deps: CrmDeps): Promise<number> {
  if (!(await deps.queue.main.exists())) return 0;
  return (await deps.queue.main.getProperties()).approximateMessagesCount ?? 0;
}

const since = (count: number) => sandbox().requests.slice(count);

const contactBody = (tenantId: string, email: string, extra: Record<string, unknown> = {}) => ({
  tenantId,
  name: 'Robin Unknown',
  email,
  title: null,
  surveyEligible: null,
  countryRegionId: null,
  surveyLanguageId: null,
  contactTypeId: 1,
  services: null,
  ...extra,
});

const contactsWith = (tenantId: string, email: string) =>
  (sandbox().data.tenants.get(tenantId)?.contacts ?? []).filter((entry) => entry.contact.email === email);

describe('a 5xx answering a create that FPX applied', () => {
  test('a note and a contact answered 500/502 after being applied exist once in FPX and are delivered', async () => {
    const fx = crmFixture(connection, sandbox());
    const text = `applied then 500 ${randomUUID()}`;
    sandbox().injectFault({ kind: 'applyThen5xx', status: 500 }, { method: 'POST', path: /\/notes$/ });
    const note = await post(fx, 'notes', { tenantId: TENANT, text, noteCategoryId: 3 });
    expect(note.status).toBe(202);
    // FPX has it already: the 500 did not mean "not applied".
    expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
    expect((await fx.deps.store.get(note.deliveryId))?.unknownSince).not.toBe('');

    const email = `applied.${randomUUID().slice(0, 8)}@example.com`;
    sandbox().injectFault({ kind: 'applyThen5xx', status: 502 }, { method: 'POST', path: /\/contacts$/ });
    const contact = await post(fx, 'contacts', contactBody(TENANT, email));
    expect(contact.status).toBe(202);

    expect(await workerOutcomes(fx.deps, 2)).toEqual(['delivered', 'delivered']);
    expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
    expect(noteCreates(sandbox(), text).map((r) => [r.status, r.fault])).toEqual([[500, 'applyThen5xx']]);
    expect(contactsWith(TENANT, email)).toHaveLength(1);
    expect(
      sandbox().requests.filter(
        (r) => r.method === 'POST' && (r.body as { email?: string })?.email === email,
      ),
    ).toHaveLength(1);

    // One call reached FPX for each; finding its create is not a second one.
    expect(await delivery(fx, note.deliveryId)).toMatchObject({
      status: 'delivered',
      attempts: 1,
      lastError: expect.stringContaining('found in FPX'),
      result: { text },
    });
    expect(await delivery(fx, contact.deliveryId)).toMatchObject({
      status: 'delivered',
      attempts: 1,
      result: { email },
    });
  });

  test('a note and a contact for a referral (rfaId) are created under it, and found under it after a 500', async () => {
    const fx = crmFixture(connection, sandbox());
    const referral = sandbox().data.referrals[0];
    if (!referral) throw new Error('the sandbox() data changed: no referral');
    const { tenantId } = referral;
    const rfaId = String(referral.id);
    const text = `referral note ${randomUUID()}`;
    const email = `referral.${randomUUID().slice(0, 8)}@example.com`;
    const before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'applyThen5xx', status: 500 }, { method: 'POST', path: /\/notes$/ });
    sandbox().injectFault({ kind: 'applyThen5xx', status: 503 }, { method: 'POST', path: /\/contacts$/ });
    // The id as digits in one, as an integer in the other: FPX's referral ids come either way.
    const note = await post(fx, 'notes', { tenantId, rfaId, text, noteCategoryId: 1 });
    const contact = await post(fx, 'contacts', contactBody(tenantId, email, { rfaId: referral.id }));
    expect([note.status, contact.status]).toEqual([202, 202]);
    expect(await workerOutcomes(fx.deps, 2)).toEqual(['delivered', 'delivered']);

    const details = sandbox().data.tenants.get(tenantId);
    const notes = details?.notes.filter((entry) => entry.note.text === text) ?? [];
    expect(notes.map((entry) => entry.rfaId)).toEqual([referral.id]);
    expect(contactsWith(tenantId, email).map((entry) => entry.rfaId)).toEqual([referral.id]);
    // Each create went out once, with ?rfaId=; each look-up asked under the same rfaId and found it there.
    const calls = since(before);
    const creates = calls.filter((r) => r.method === 'POST');
    expect(creates.map((r) => r.query.rfaId)).toEqual([[rfaId], [rfaId]]);
    const lookups = calls.filter((r) => r.method === 'GET');
    expect(lookups.length).toBeGreaterThanOrEqual(2);
    expect(lookups.every((r) => r.query.rfaId?.[0] === rfaId)).toBe(true);
    expect(await delivery(fx, note.deliveryId)).toMatchObject({ status: 'delivered', result: { text } });
    expect(await delivery(fx, contact.deliveryId)).toMatchObject({ status: 'delivered', result: { email } });
  });

  test('the transport: a 5xx or a timeout answering a POST or PATCH is an unknown outcome; on a GET it is not', async () => {
    const fpx = sandboxClient(sandbox(), 25);
    open.push(fpx.transport);
    const failure = (call: Promise<unknown>) => call.then(() => undefined).catch((e) => e as FpxError);

    sandbox().injectFault({ kind: 'applyThen5xx', status: 504 }, { method: 'POST', path: /\/notes$/ });
    const note = { text: `504 ${randomUUID()}`, noteCategoryId: 1 };
    expect(await failure(fpx.createNote(TENANT, note))).toMatchObject({ status: 504, outcomeUnknown: true });
    expect(storedNotes(sandbox(), TENANT, note.text)).toHaveLength(1);

    const { service, record } = serviceWithRecords();
    sandbox().injectFault({ kind: 'applyThen5xx', status: 503 }, { method: 'PATCH' });
    const same = {
      serviceIntentId: record.serviceIntentId,
      l1Id: record.l1.id,
      entitlementCount: record.entitlementCount,
      notes: record.notes ?? '',
    };
    expect(await failure(fpx.updateEntitlement(TENANT, service.serviceId, same))).toMatchObject({
      status: 503,
      outcomeUnknown: true,
    });

    // The delivery attempt's own time limit (AbortSignal.timeout) ends a create that FPX is still working on.
    sandbox().injectFault({ kind: 'slow', delayMs: 1_000 }, { method: 'POST', path: /\/notes$/ });
    const slow = fpx.createNote(
      TENANT,
      { text: `slow ${randomUUID()}`, noteCategoryId: 1 },
      {
        signal: AbortSignal.timeout(200),
      },
    );
    expect(await failure(slow)).toMatchObject({ kind: 'timeout', outcomeUnknown: true });

    sandbox().injectFault({ kind: '5xx', status: 500 }, { method: 'GET', path: /^\/timezones$/ });
    expect(await failure(fpx.referenceList('timezones', { maxAttempts: 1 }))).toMatchObject({
      status: 500,
      outcomeUnknown: false,
    });
  });

  test('a referral note whose 500 came before FPX acted is looked for under the rfaId and the tenant, then sent', async () => {
    const fx = crmFixture(connection, sandbox());
    const text = `not applied ${randomUUID()}`;
    sandbox().injectFault({ kind: '5xx', status: 500 }, { method: 'POST', path: /\/notes$/ });
    const note = await post(fx, 'notes', { tenantId: TENANT, rfaId: 1, text, noteCategoryId: 2 });
    expect(note.status).toBe(202);
    const before = sandbox().requests.length;
    expect(await workerOutcomes(fx.deps, 1)).toEqual(['delivered']);
    const calls = since(before);
    const lookups = calls.filter((r) => r.method === 'GET').map((r) => r.query.rfaId?.[0] ?? 'none');
    expect(lookups).toContain('1');
    expect(lookups).toContain('none');
    expect(calls.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([200]);
    expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
  });
});

describe('401 and 403 answering a write', () => {
  test('403: rejected (422 with FPX message) after exactly one FPX call, nothing queued', async () => {
    const fx = crmFixture(connection, sandbox());
    const text = `forbidden ${randomUUID()}`;
    const before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'refused', status: 403 }, { method: 'POST', path: /\/notes$/ });
    const answer = await post(fx, 'notes', { tenantId: TENANT, text, noteCategoryId: 1 });
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ status: 'rejected', message: expect.stringContaining('403') });
    expect(answer.body.message).toContain('Simulated 403');
    expect(since(before).map((r) => [r.method, r.status])).toEqual([['POST', 403]]);
    expect(await delivery(fx, answer.deliveryId)).toMatchObject({ status: 'rejected', attempts: 1 });
    expect(await queuedMessages(fx.deps)).toBe(0);
  });

  test("401 to a request with the end user's token: rejected, not queued, sent once and never without it", async () => {
    const fx = crmFixture(connection, sandbox());
    const text = `user refused ${randomUUID()}`;
    const before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'refused', status: 401 }, { method: 'POST', path: /\/notes$/ });
    const answer = await post(
      fx,
      'notes',
      { tenantId: TENANT, text, noteCategoryId: 1 },
      { 'X-End-User-Token': TOKEN },
    );
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ status: 'rejected', message: expect.stringContaining('401') });
    const calls = since(before);
    expect(calls.map((r) => [r.method, r.status, r.authorization])).toEqual([
      ['POST', 401, `Bearer ${TOKEN}`],
    ]);
    expect(await delivery(fx, answer.deliveryId)).toMatchObject({ status: 'rejected', attempts: 1 });
    expect(await queuedMessages(fx.deps)).toBe(0);
    expect(answer.lines.join('\n')).not.toContain(TOKEN.slice(0, 20));
  });

  test('401 without a token is the certificate: queued, and delivered once FPX takes it', async () => {
    const fx = crmFixture(connection, sandbox());
    const text = `certificate refused ${randomUUID()}`;
    const before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'refused', status: 401 }, { method: 'POST', path: /\/notes$/ });
    const answer = await post(fx, 'notes', { tenantId: TENANT, text, noteCategoryId: 1 });
    expect(answer.status).toBe(202);
    expect(await workerOutcomes(fx.deps, 1)).toEqual(['delivered']);
    // The refusal came before FPX read the body: the retry sends it (a 401 is no unknown outcome).
    expect(since(before).map((r) => [r.method, r.status])).toEqual([
      ['POST', 401],
      ['POST', 200],
    ]);
    expect(storedNotes(sandbox(), TENANT, text)).toHaveLength(1);
    expect(await delivery(fx, answer.deliveryId)).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  test('the transport: a 403 and a 401 with a token are not resent; a 401 without one is, with a renewed certificate', async () => {
    const path = /\/notes$/;
    const tenant = sandbox().data.referrals[0]?.tenantId ?? TENANT;
    const rotating = async () => {
      const first = await new FileCertificateSource(sandbox().certs.client.pemPath).current();
      const issued = issueClientCertificate(sandbox().certs.ca, { commonName: `renewed-${randomUUID()}` });
      const renewed = parseClientCertificate(`${issued.certPem}\n${issued.keyPem}`, 'renewed');
      let now = first;
      const state = { refreshes: 0, first, renewed };
      const source: CertificateSource = {
        description: 'rotating test source',
        current: async () => now,
        refresh: async () => {
          state.refreshes++;
          now = renewed;
          return now;
        },
      };
      const transport = new FpxTransport({
        baseUrl: sandbox().url,
        certificates: source,
        caPem: sandbox().certs.ca.certPem,
        rateLimitPerMinute: 60_000,
      });
      open.push(transport);
      return { fpx: new FpxClient(transport, 25), state };
    };
    const note = (text: string) => ({ text, noteCategoryId: 1 });

    const forbidden = await rotating();
    let before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'refused', status: 403 }, { method: 'POST', path });
    const refused = (await forbidden.fpx.createNote(tenant, note('403')).catch((e) => e)) as FpxError;
    expect(refused).toMatchObject({ status: 403, outcomeUnknown: false, transient: false });
    expect(since(before)).toHaveLength(1);
    expect(forbidden.state.refreshes).toBe(0);

    const user = await rotating();
    before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'refused', status: 401 }, { method: 'POST', path });
    await expect(
      user.fpx.createNote(tenant, note('401 user'), { endUserToken: TOKEN }),
    ).rejects.toMatchObject({ status: 401 });
    expect(since(before)).toHaveLength(1);
    expect(user.state.refreshes).toBe(0);

    const certificate = await rotating();
    before = sandbox().requests.length;
    sandbox().injectFault({ kind: 'refused', status: 401 }, { method: 'POST', path });
    await certificate.fpx.createNote(tenant, note('401 certificate'));
    expect(since(before).map((r) => [r.status, r.clientCertThumbprint])).toEqual([
      [401, certificate.state.first.thumbprint],
      [200, certificate.state.renewed.thumbprint],
    ]);
    expect(certificate.state.refreshes).toBe(1);
  });
});

/** A service of the test tenant, one of its records with seats, and an L1 status none of its records uses. */
function serviceWithRecords() {
  const details = sandbox().data.tenants.get(TENANT);
  const seated = (s: { records: Array<{ entitlementCount: number }> }) =>
    s.records.find((r) => r.entitlementCount > 0);
  const service = [...(details?.entitlements.values() ?? [])].find(seated);
  const record = service?.records.find((r) => r.entitlementCount > 0);
  if (!service || !record)
    throw new Error('the sandbox() data changed: the tenant has no entitlement record');
  const used = new Set(service.records.flatMap((r) => [r.l1.id.toLowerCase(), r.l1.name.toLowerCase()]));
  const free = sandbox().data.reference.l1Statuses.find(
    (s) => !used.has(s.id.toLowerCase()) && !used.has(s.name.toLowerCase()),
  );
  if (!free) throw new Error('the sandbox() data changed: no unused L1 status');
  return { service, record, free };
}

describe('entitlements', () => {
  test('a repeated removal is delivered ("already removed"); a removal refused for another reason is rejected', async () => {
    const fx = crmFixture(connection, sandbox());
    const { service, record, free } = serviceWithRecords();
    // A record of 0 seats, which a removal may take away without breaking the service's sum.
    const spareId = randomUUID();
    service.records.push({
      ...record,
      serviceIntentId: spareId,
      id: randomUUID(),
      l1: { ...free },
      name: free.name,
      entitlementCount: 0,
      notes: 'spare',
    });
    const removal = {
      tenantId: TENANT,
      serviceId: service.serviceId,
      serviceIntentId: spareId.toUpperCase(),
      l1Id: free.id,
      entitlementCount: 0,
      notes: 'removed',
    };
    const patchPath = new RegExp(`/services/${service.serviceId}/entitlements$`);
    const before = sandbox().requests.length;

    // Applied, then a 500: the retry's removal is refused (no such record), and that means it is done.
    sandbox().injectFault({ kind: 'applyThen5xx', status: 500 }, { method: 'PATCH', path: patchPath });
    const first = await post(fx, 'entitlements', removal);
    expect(first.status).toBe(202);
    expect(service.records.some((r) => r.serviceIntentId === spareId)).toBe(false);
    expect(await workerOutcomes(fx.deps, 1)).toEqual(['delivered']);
    const state = await delivery(fx, first.deliveryId);
    expect(state).toMatchObject({
      status: 'delivered',
      attempts: 2,
      lastError: expect.stringContaining('already removed'),
    });
    expect((state.result as Array<{ serviceIntentId: string }>).map((r) => r.serviceIntentId)).toEqual(
      service.records.map((r) => r.serviceIntentId),
    );
    const calls = since(before);
    expect(calls.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([500, 400]);
    expect(calls.filter((r) => r.method === 'GET').map((r) => r.query.serviceIds)).toEqual([
      [String(service.serviceId)],
    ]);

    // The CRM sends the removal again: 200 at once. A real FPX may answer 404 instead of 400: the same.
    const again = await post(fx, 'entitlements', removal);
    expect(again).toMatchObject({ status: 200, body: { status: 'delivered' } });
    sandbox().injectFault({ kind: 'refused', status: 404 }, { method: 'PATCH', path: patchPath });
    expect((await post(fx, 'entitlements', removal)).status).toBe(200);
    expect(await delivery(fx, again.deliveryId)).toMatchObject({
      status: 'delivered',
      lastError: expect.stringContaining('already removed'),
    });

    // The record is there, and removing it would break the sum of seats: FPX's refusal stands.
    const refused = await post(fx, 'entitlements', {
      ...removal,
      serviceIntentId: record.serviceIntentId,
      l1Id: record.l1.id,
    });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({
      status: 'rejected',
      errors: { EntitlementCount: expect.any(Array) },
    });
    expect(await delivery(fx, refused.deliveryId)).toMatchObject({ status: 'rejected' });
    expect(service.records.some((r) => r.serviceIntentId === record.serviceIntentId)).toBe(true);
  });

  test('targetDate and nextActionDate: a date and a date-time both reach FPX as written', async () => {
    const fx = crmFixture(connection, sandbox());
    const { service, record } = serviceWithRecords();
    const update = {
      tenantId: TENANT,
      serviceId: service.serviceId,
      serviceIntentId: record.serviceIntentId,
      l1Id: record.l1.id,
      entitlementCount: record.entitlementCount,
      notes: 'dates as written',
    };
    for (const dates of [
      { targetDate: '2025-03-01', nextActionDate: '2025-02-15T09:30:00+01:00' },
      { targetDate: '2025-04-30T00:00:00Z', nextActionDate: '2025-04-01' },
      { targetDate: '2025-05-02T08:00:00.000', nextActionDate: null },
    ]) {
      const before = sandbox().requests.length;
      const answer = await post(fx, 'entitlements', { ...update, ...dates });
      expect({ dates, status: answer.status }).toEqual({ dates, status: 200 });
      const [patch] = since(before);
      expect(patch?.body).toMatchObject(dates);
      const stored = service.records.find((r) => r.serviceIntentId === record.serviceIntentId);
      expect(stored).toMatchObject(dates);
    }

    const before = sandbox().requests.length;
    const invalid = await post(fx, 'entitlements', {
      ...update,
      targetDate: '2025-02-30',
      nextActionDate: 'next week',
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors).toEqual({
      targetDate: ['expected a date (YYYY-MM-DD) or an ISO 8601 date-time'],
      nextActionDate: ['expected a date (YYYY-MM-DD) or an ISO 8601 date-time'],
    });
    expect(since(before)).toHaveLength(0);
  });
});

describe('the payloads', () => {
  test('rfaId must be a referral id; the OpenAPI document has it, and both date forms', async () => {
    const fx = crmFixture(connection, sandbox());
    for (const rfaId of ['R-12', -3, 1.5, '']) {
      const answer = await post(fx, 'notes', { tenantId: TENANT, rfaId, text: 'x', noteCategoryId: 1 });
      expect({ rfaId, status: answer.status, errors: answer.body.errors }).toEqual({
        rfaId,
        status: 400,
        errors: { rfaId: ["expected FPX's referral id (an integer or a string of digits)"] },
      });
    }
    const doc = openApiDocument();
    const request = (path: string) =>
      JSON.stringify(
        valueAt(doc, ['paths', path, 'post', 'requestBody', 'content', 'application/json', 'schema']),
      );
    expect(request('/api/crm/notes')).toContain('"rfaId"');
    expect(request('/api/crm/contacts')).toContain('"rfaId"');
    expect(request('/api/crm/entitlements')).toContain('"format":"date"');
  });
});

/** What a JSON document holds at a path of keys (undefined where it has nothing). */
function valueAt(value: unknown, keys: string[]): unknown {
  let at = value;
  for (const key of keys) at = at !== null && typeof at === 'object' ? Reflect.get(at, key) : undefined;
  return at;
}
