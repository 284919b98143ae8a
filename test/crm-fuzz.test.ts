/**
 * Property: malformed webhooks — bad signatures and headers, or signed bodies that break the guide's
 * request tables — never get a 5xx, never reach FPX and never claim a webhook-id.
 */
import { randomUUID } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { MAX_BODY_BYTES, signWebhook, type WebhookEndpoint, webhookKeys } from '../lib/crm';
import { normalizeGuid } from '../lib/fpx';
import {
  type CrmFixture,
  crmFixture,
  loggedContext,
  newSecret,
  TENANT,
  webhookFunction,
} from './crm-support';

let sandbox: Sandbox;
let fx: CrmFixture;

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 2, referrals: 1 }, rateLimitPerMinute: 0 });
  fx = crmFixture(inject('storageConnection'), sandbox);
  await fx.deps.store.table.createTable();
});
afterAll(() => sandbox.close());

const GUID = '12345678-1234-1234-1234-123456789abc';
const VALID: Record<WebhookEndpoint, Record<string, unknown>> = {
  notes: { tenantId: TENANT, text: 'fuzz', noteCategoryId: 1 },
  contacts: {
    tenantId: TENANT,
    name: 'Fuzz',
    email: 'fuzz@example.com',
    title: null,
    surveyEligible: null,
    countryRegionId: GUID,
    surveyLanguageId: GUID,
    contactTypeId: 1,
    services: null,
  },
  entitlements: { tenantId: TENANT, serviceId: 2, l1Id: 'In Progress', entitlementCount: 1, notes: 'n' },
};

const notGuid = fc.string({ maxLength: 40 }).filter((s) => normalizeGuid(s) === undefined);
const notInteger = fc.oneof(
  fc.double({ noInteger: true }),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const notString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant({}),
  fc.array(fc.string(), { maxLength: 2 }),
);
const MISSING = Symbol('missing');

/** For each endpoint, fields and values each certainly invalid for it (MISSING: the field left out). */
const BREAKERS: Record<WebhookEndpoint, Record<string, fc.Arbitrary<unknown>>> = {
  notes: {
    tenantId: fc.oneof(notGuid, fc.constant(MISSING), fc.constant(null), fc.integer()),
    noteCategoryId: fc.oneof(notInteger, fc.integer({ max: 0 }), fc.constant(MISSING)),
    text: fc.oneof(notString, fc.constant(MISSING)),
  },
  contacts: {
    tenantId: fc.oneof(notGuid, fc.constant(MISSING)),
    name: fc.oneof(fc.constantFrom('', '   ', MISSING, null), notString),
    email: fc.oneof(fc.constantFrom('not-an-email', 'a@', MISSING), notString),
    contactTypeId: fc.oneof(notInteger, fc.constant(MISSING)),
    countryRegionId: fc.oneof(notGuid, fc.constant(MISSING)),
    surveyEligible: fc.oneof(fc.constantFrom('yes', 1, MISSING)),
    services: fc.oneof(fc.constantFrom('1', [1.5], ['a'], MISSING)),
    contactId: fc.oneof(
      notGuid.filter((s) => s !== ''),
      fc.integer(),
    ),
  },
  entitlements: {
    tenantId: fc.oneof(notGuid, fc.constant(MISSING)),
    serviceId: fc.oneof(notInteger, fc.integer({ max: -1 }), fc.constant(MISSING)),
    l1Id: fc.oneof(fc.constantFrom('', '  ', MISSING), notString),
    entitlementCount: fc.oneof(notInteger, fc.integer({ max: -1 }), fc.constant(MISSING)),
    notes: fc.oneof(notString, fc.constant(MISSING), fc.constant(null)),
    targetDate: fc.constantFrom('tomorrow', '2024-13-01T00:00:00Z', 5),
  },
};

const endpoint = fc.constantFrom<WebhookEndpoint>('notes', 'contacts', 'entitlements');

interface Case {
  endpoint: WebhookEndpoint;
  body: Buffer;
  /** Header values replacing the signed ones (a valid signature stays valid unless it is replaced). */
  headers: Record<string, string>;
  webhookId?: string;
  otherSecret?: boolean;
}

const utf8 = (text: string) => Buffer.from(text, 'utf8');

/** Signed, but the body breaks one or more fields, or is no JSON object at all, or not UTF-8. */
const badBody: fc.Arbitrary<Case> = endpoint.chain((name) =>
  fc.record({
    endpoint: fc.constant(name),
    body: fc.oneof(
      { weight: 4, arbitrary: brokenFields(name).map((o) => utf8(JSON.stringify(o))) },
      {
        weight: 1,
        arbitrary: fc
          .string()
          .filter((s) => !isJsonObject(s))
          .map(utf8),
      },
      {
        weight: 1,
        arbitrary: fc
          .jsonValue()
          .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
          .map((v) => utf8(JSON.stringify(v))),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from([0x7b, 0xff, ...b])) },
    ),
    headers: fc.constant({}),
  }),
);

function brokenFields(name: WebhookEndpoint) {
  const breakers = Object.entries(BREAKERS[name]);
  return fc
    .subarray(breakers, { minLength: 1 })
    .chain((chosen) => fc.tuple(...chosen.map(([field, value]) => value.map((v) => [field, v] as const))))
    .map((changes) => {
      const body: Record<string, unknown> = { ...VALID[name] };
      for (const [field, value] of changes) {
        if (value === MISSING) delete body[field];
        else body[field] = value;
      }
      return body;
    });
}

/** A valid body with wrong headers: signature, timestamp, id, content type, token, length. */
const badHeaders: fc.Arbitrary<Case> = endpoint.chain((name) =>
  fc.oneof(
    fc.record({
      endpoint: fc.constant(name),
      body: fc.constant(utf8(JSON.stringify(VALID[name]))),
      headers: fc.oneof(
        fc.record({ 'webhook-signature': fc.string().map((s) => `v1,${Buffer.from(s).toString('base64')}`) }),
        fc.record({
          'webhook-signature': fc.constantFrom('', 'v1,', 'v2,abc', 'v1a,xyz', 'v1,AAAA v1,BBBB'),
        }),
        fc.record({
          'webhook-timestamp': fc.oneof(
            fc.string(),
            fc.integer({ max: 1_000_000 }).map(String),
            fc.constantFrom('12abc', '-1', '1e9', String(Math.floor(Date.now() / 1000) + 3600)),
          ),
        }),
        fc.record({ 'webhook-id': fc.string() }),
        fc.record({
          'content-type': fc.constantFrom(
            'text/plain',
            'application/xml',
            'application/json; charset=latin1',
            'multipart/form-data',
          ),
        }),
        fc.record({ 'x-end-user-token': fc.constantFrom('two words', 'Bearer a b') }),
        fc.record({ 'content-length': fc.constant(String(MAX_BODY_BYTES + 1)) }),
      ),
    }),
    fc.record({
      endpoint: fc.constant(name),
      body: fc.constant(utf8(JSON.stringify(VALID[name]))),
      headers: fc.constant({}),
      webhookId: fc.oneof(
        fc.string({ minLength: 257, maxLength: 300 }),
        fc.constantFrom('has space', 'tab\tid', 'é'),
      ),
    }),
    fc.record({
      endpoint: fc.constant(name),
      body: fc.constant(utf8(JSON.stringify(VALID[name]))),
      headers: fc.constant({}),
      otherSecret: fc.constant(true),
    }),
  ),
);

function isJsonObject(text: string): boolean {
  try {
    const value = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Signs the exact bytes (also those that are not UTF-8), then applies the header overrides. */
function request(testCase: Case): HttpRequest {
  const webhookId = testCase.webhookId ?? `msg_${randomUUID()}`;
  const key = webhookKeys(testCase.otherSecret ? [newSecret()] : fx.secrets)[0] as Buffer;
  const timestamp = Math.floor(Date.now() / 1000);
  return new HttpRequest({
    method: 'POST',
    url: `http://127.0.0.1:7071/api/crm/${testCase.endpoint}`,
    headers: {
      'content-type': 'application/json',
      'webhook-id': webhookId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(key, webhookId, timestamp, testCase.body),
      ...testCase.headers,
    },
    body: { bytes: testCase.body },
  });
}

test('1,200 malformed webhooks: never a 5xx, never an FPX call, never a claimed id', async () => {
  const fpxCallsBefore = sandbox.requests.length;
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.oneof(badBody, badHeaders), async (testCase) => {
      // Through the function's adapter as the host calls it: the Functions library's request, its context.
      const answer = await webhookFunction(fx.deps, testCase.endpoint)(
        request(testCase),
        loggedContext().context,
      );
      const status = answer.status ?? 200;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      expect(Object.keys(answer.jsonBody as object)).toContain('message');
    }),
    { numRuns: 1_200 },
  );
  expect(sandbox.requests.length).toBe(fpxCallsBefore);
  const claimed = [];
  for await (const row of fx.deps.store.table.listEntities()) claimed.push(row);
  expect(claimed).toEqual([]);
  // Both families were exercised: validation (400) and authentication (401), besides 413/415.
  expect(statuses.get(400)).toBeGreaterThan(100);
  expect(statuses.get(401)).toBeGreaterThan(50);
  expect(statuses.get(413)).toBeGreaterThan(0);
  expect(statuses.get(415)).toBeGreaterThan(0);
});
