/**
 * Issue 17, the production path: the Azure Monitor distro sends a pollReferrals run to Application Insights'
 * ingestion (`POST /v2.1/track`), here a local fake of it over HTTPS. Checks what lands in `dependencies` and
 * `customMetrics` under the names and dimensions the alert rules and the workbook (infra/) query.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { ensureDevCertificates } from '../dev/certs';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { queueClient } from '../lib/storage';
import { syncReferralsAndTheirTenants } from '../lib/sync';
import { observeGauges } from '../lib/telemetry';
import * as sdk from '../lib/telemetry/sdk';
import { startTelemetry, type Telemetry } from '../lib/telemetry/setup';
import { sandboxClient } from './support/fpx';
import { freshTables } from './support/storage';

interface Envelope {
  name: string;
  tags: Record<string, string>;
  data: { baseType: string; baseData: Record<string, unknown> & { properties?: Record<string, string> } };
}

let ingestion: Server;
const envelopes: Envelope[] = [];
let telemetry: Telemetry;
let sandbox: Sandbox;

beforeAll(async () => {
  const certs = ensureDevCertificates();
  // The ingestion endpoint's protocol: JSON envelopes (gzip), answered with what was accepted.
  ingestion = createServer({ cert: certs.server.certPem, key: certs.server.keyPem }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = (request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString(
        'utf8',
      );
      const items = request.url?.startsWith('/v2.1/track') ? (JSON.parse(text) as Envelope[]) : [];
      envelopes.push(...items);
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, errors: [] }));
    });
  });
  await new Promise<void>((resolve) => ingestion.listen(0, '127.0.0.1', resolve));
  const { port } = ingestion.address() as AddressInfo;
  const connectionString = `InstrumentationKey=${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)};IngestionEndpoint=https://127.0.0.1:${port}/`;
  telemetry = startTelemetry(
    { exporter: 'azureMonitor', connectionString, metricIntervalMs: 60_000 },
    undefined,
    () => ({
      ...sdk,
      startAzureMonitor: (settings) =>
        sdk.startAzureMonitor(settings, {
          tlsOptions: { ca: certs.ca.certPem },
          disableOfflineStorage: true,
        }),
    }),
  );
  sandbox = await startSandbox({ data: { tenants: 2, referrals: 3 }, rateLimitPerMinute: 0 });
});
afterAll(async () => {
  await telemetry?.shutdown();
  await sandbox?.close();
  await new Promise((resolve) => ingestion?.close(resolve));
});

const dependencies = () => envelopes.filter((e) => e.data.baseType === 'RemoteDependencyData');
const metric = (name: string) =>
  envelopes.filter(
    (e) =>
      e.data.baseType === 'MetricData' &&
      (e.data.baseData.metrics as Array<{ name: string }> | undefined)?.[0]?.name === name,
  );

test('a pollReferrals run: FPX calls are HTTP dependencies, the run a dependency with its counts, metrics in customMetrics', async () => {
  const queue = queueClient(inject('storageConnection'), `telemetry-ai-${randomBytes(4).toString('hex')}`);
  await syncReferralsAndTheirTenants({ fpx: sandboxClient(sandbox, 25), table: freshTables(), queue });
  observeGauges({ queueDepths: async () => [{ name: 'crm-deliveries-poison', depth: 1 }] });
  await telemetry.flush();

  const call = dependencies().find((e) => e.data.baseData.name === 'FPX GET /partnerReferrals');
  expect(call?.data.baseData).toMatchObject({
    type: 'Http',
    target: new URL(sandbox.url).host,
    resultCode: '200',
    success: true,
  });
  expect(call?.data.baseData.properties).toMatchObject({
    'url.template': '/partnerReferrals',
    'fpx.attempt': '1',
    'fpx.outcome': 'ok',
  });
  const run = dependencies().find((e) => e.data.baseData.name === 'sync referrals');
  // What the sync-failing rule reads (customDimensions are strings).
  expect(run?.data.baseData.properties).toMatchObject({
    'sync.stream': 'referrals',
    'sync.status': 'succeeded',
    'sync.per_tenant': 'false',
    'sync.created': '3',
  });
  expect(call?.tags['ai.operation.id']).toBe(run?.tags['ai.operation.id']);

  // What the poison-queue, 429 and workbook queries read: name, value (a sum), dimensions.
  const poison = metric('queue.depth').find(
    (e) => e.data.baseData.properties?.['queue.name'] === 'crm-deliveries-poison',
  );
  expect(poison?.data.baseData.properties?.['queue.poison']).toBe('true');
  const calls = metric('fpx.calls').find(
    (e) => e.data.baseData.properties?.['fpx.endpoint'] === '/partnerReferrals',
  );
  expect(calls?.data.baseData.properties?.['http.response.status_code']).toBe('200');
  expect(metric('sync.rows')[0]?.data.baseData.metrics).toMatchObject([{ name: 'sync.rows', value: 3 }]);
  expect(metric('certificate.days_left')).toHaveLength(1);
});
