/**
 * Issue 17: what the app exports over OTLP/HTTP (JSON) to the local receiver, for one pollReferrals run and CRM
 * webhooks against Azurite and the sandbox. The SDK is registered globally for this file only: shut down and
 * unregistered after it, so the other suites of the shared worker run without telemetry.
 */
import { randomBytes, randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../dev/otlp-receiver';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { QUEUES, queueStatuses } from '../lib/ops/status';
import { queueClient } from '../lib/storage';
import { syncReferralsAndTheirTenants } from '../lib/sync';
import { observeGauges } from '../lib/telemetry';
import * as sdk from '../lib/telemetry/sdk';
import { startTelemetry, type Telemetry } from '../lib/telemetry/setup';
import {
  bodyOf,
  type CrmFixture,
  contactPayload,
  crmFixture,
  loggedContext,
  TENANT,
  webhookFunction,
  webhookHttpRequest,
} from './crm-support';
import { sandboxClient } from './support/fpx';
import { freshTables } from './support/storage';

const GUID = /[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}/i;

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let sandbox: Sandbox;
let fx: CrmFixture;
const previousEndpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  // The exporters read the standard variable, as in a deployment.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  telemetry = startTelemetry(
    { exporter: 'otlp', endpoint: receiver.url, metricIntervalMs: 60_000 },
    undefined,
    () => sdk,
  );
  sandbox = await startSandbox({ data: { tenants: 4, referrals: 4 }, rateLimitPerMinute: 0 });
  fx = crmFixture(inject('storageConnection'), sandbox);
});
afterAll(async () => {
  await telemetry?.shutdown();
  if (previousEndpoint === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = previousEndpoint;
  await receiver?.close();
  await sandbox?.close();
});

const fpxSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.name.startsWith('FPX '));
const point = (metric: string, attributes: Record<string, unknown>) =>
  receiver.points.filter(
    (p) => p.metric === metric && Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  );

describe('one pollReferrals run', () => {
  test('FPX calls are client spans under the sync span, with templates, status, attempt, wait and outcome', async () => {
    receiver.clear();
    // FPX throttles the first page once: that request is retried, and counted as a 429.
    sandbox.injectFault({ kind: '429', retryAfter: '0' }, { method: 'GET', path: /^\/partnerReferrals/ });
    const table = freshTables();
    const queue = queueClient(inject('storageConnection'), `telemetry-${randomBytes(4).toString('hex')}`);
    const run = await syncReferralsAndTheirTenants({ fpx: sandboxClient(sandbox, 2), table, queue });
    await telemetry.flush();

    const sync = receiver.spans.find((s) => s.name === 'sync referrals');
    expect(sync?.attributes).toMatchObject({
      'sync.stream': 'referrals',
      'sync.status': 'succeeded',
      'sync.created': 4,
      'sync.changed': 0,
      'sync.removed': 0,
      'sync.pages': 2,
      'sync.api_calls': run.apiCalls,
    });
    const calls = fpxSpans(receiver.spans);
    // Two pages, the first one sent twice.
    expect(calls.map((s) => [s.attributes['fpx.attempt'], s.attributes['fpx.outcome']])).toEqual([
      [1, 'retried'],
      [2, 'ok'],
      [1, 'ok'],
    ]);
    for (const span of calls) {
      expect(span.name).toBe('FPX GET /partnerReferrals');
      expect(span.kind).toBe(3); // client: an Application Insights dependency
      expect(span.parentSpanId).toBe(sync?.spanId);
      expect(span.traceId).toBe(sync?.traceId);
      expect(span.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.template': '/partnerReferrals',
        'server.address': new URL(sandbox.url).host,
      });
      expect(span.attributes['fpx.rate_wait_ms']).toEqual(expect.any(Number));
    }
    expect(calls.map((s) => s.attributes['http.response.status_code'])).toEqual([429, 200, 200]);
    expect(calls[0]?.status).toBe(2);

    expect(
      point('fpx.calls', { 'fpx.endpoint': '/partnerReferrals', 'http.response.status_code': 200 })[0]?.value,
    ).toBe(2);
    expect(point('fpx.throttled', { 'fpx.endpoint': '/partnerReferrals' })[0]?.value).toBe(1);
    expect(point('fpx.rate_wait', { 'fpx.endpoint': '/partnerReferrals' })[0]?.count).toBe(3);
    expect(point('sync.rows', { 'sync.stream': 'referrals', 'sync.change': 'created' })[0]?.value).toBe(4);
    expect(point('sync.runs', { 'sync.stream': 'referrals', 'sync.status': 'succeeded' })[0]?.value).toBe(1);
    // The certificate gauge: the client certificate every call used (the sandbox's is valid for a while).
    expect(point('certificate.days_left', {})[0]?.value).toBeGreaterThan(14);
  });

  test("each export reads every queue's depth, poison queues marked", async () => {
    receiver.clear();
    observeGauges({
      queueDepths: () => queueStatuses((name) => queueClient(inject('storageConnection'), name)),
    });
    await telemetry.flush();
    observeGauges({});
    const depths = point('queue.depth', {});
    expect(depths.map((p) => p.attributes['queue.name']).sort()).toEqual(QUEUES.map((q) => q.name).sort());
    for (const p of depths) {
      expect(p.value).toBeGreaterThanOrEqual(0);
      expect(p.attributes['queue.poison']).toBe(String(p.attributes['queue.name']).endsWith('-poison'));
    }
  });
});

describe('CRM webhooks', () => {
  test('a note: one delivery attempt span with its FPX call under it; nothing secret or personal in any attribute', async () => {
    receiver.clear();
    const text = `Private note ${randomUUID()}`;
    const email = `pat.${randomUUID().slice(0, 8)}@example.com`;
    const { context } = loggedContext();
    const note = await webhookFunction(fx.deps, 'notes')(
      webhookHttpRequest('notes', JSON.stringify({ tenantId: TENANT, text, noteCategoryId: 2 }), {
        secrets: fx.secrets,
      }),
      context,
    );
    expect(note.status).toBe(200);
    const contact = await webhookFunction(fx.deps, 'contacts')(
      webhookHttpRequest('contacts', JSON.stringify(contactPayload(email)), { secrets: fx.secrets }),
      loggedContext('crmContacts').context,
    );
    expect(contact.status).toBe(200);
    await fx.deps.pending.drain();
    await telemetry.flush();

    const deliveryId = bodyOf(note).deliveryId;
    const attempt = receiver.spans.find(
      (s) => s.name === 'crm delivery attempt' && s.attributes['crm.delivery.id'] === deliveryId,
    );
    expect(attempt?.attributes).toMatchObject({
      'crm.endpoint': 'notes',
      'crm.attempt': 1,
      'crm.attempt.outcome': 'delivered',
      'crm.delivery.status': 'delivered',
    });
    const perWebhook = receiver.spans.filter((s) => s.traceId === attempt?.traceId);
    expect(perWebhook.map((s) => s.name).sort()).toEqual([
      'FPX POST /tenants/{tenantId}/notes',
      'crm delivery attempt',
    ]);
    const post = fpxSpans(perWebhook)[0];
    expect(post?.parentSpanId).toBe(attempt?.spanId);
    expect(post?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.template': '/tenants/{tenantId}/notes',
      'fpx.attempt': 1,
      'fpx.outcome': 'ok',
    });
    expect(post?.attributes['http.response.status_code']).toBeGreaterThanOrEqual(200);
    expect(
      point('crm.deliveries', { 'crm.delivery.status': 'delivered', 'crm.endpoint': 'notes' })[0]?.value,
    ).toBe(1);
    expect(
      point('crm.deliveries', { 'crm.delivery.status': 'delivered', 'crm.endpoint': 'contacts' })[0]?.value,
    ).toBe(1);

    // Nothing secret or personal anywhere in what was exported (spans, metrics, resources).
    const exported = receiver.allText();
    const secret = fx.secrets[0] as string;
    // The key's own lines (client.pem holds the certificate first, then the key).
    const privateKey = sandbox.certs.client.keyPem
      .split('\n')
      .filter((line) => line && !line.startsWith('-----'));
    for (const forbidden of [secret, secret.slice(6, 30), text, email, ...privateKey.slice(1, 4)]) {
      expect(exported).not.toContain(forbidden);
    }
    for (const span of receiver.spans) {
      expect(String(span.attributes['url.template'] ?? '')).not.toMatch(GUID);
    }
  });
});
