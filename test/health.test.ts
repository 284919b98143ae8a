import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { startAzurite } from '../dev/azurite';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { healthCheck } from '../functions/health';
import { buildServices, type Services } from '../functions/services';
import { loadConfig } from '../lib/config';
import { queueClient } from '../lib/storage';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 5, referrals: 5 } });
});
afterAll(() => sandbox.close());

function services(overrides: Record<string, string> = {}): Services {
  return buildServices(
    loadConfig({
      AzureWebJobsStorage: inject('storageConnection'),
      FPX_BASE_URL: sandbox.url,
      FPX_CERT_PATH: sandbox.certs.client.pemPath,
      FPX_CA_PATH: sandbox.certs.ca.path,
      ...overrides,
    }),
  );
}

test('health answers 200 when storage and FPX are reachable', async () => {
  const response = await healthCheck(services());
  expect(response).toEqual({
    status: 200,
    jsonBody: {
      status: 'ok',
      checks: {
        storage: { ok: true },
        fpx: { ok: true, checkedAt: expect.any(String) },
        certificate: {
          ok: true,
          daysLeft: expect.any(Number),
          notAfter: sandbox.certs.client.notAfter.toISOString(),
          thumbprint: sandbox.certs.client.thumbprint,
        },
      },
      poisonQueues: {
        'fpx-tenant-details-poison': expect.any(Number),
        'crm-deliveries-poison': expect.any(Number),
      },
    },
  });
  // The FPX check went through mutual TLS with the configured certificate.
  expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(sandbox.certs.client.thumbprint);
});

test('FPX is probed at most once per 30 s, however often health is called', async () => {
  const shared = services();
  const probes = () => sandbox.requests.filter((r) => r.path === '/noteCategories').length;
  const before = probes();
  const answers = await Promise.all([healthCheck(shared), healthCheck(shared), healthCheck(shared)]);
  const again = await healthCheck(shared);
  expect([...answers, again].map((a) => a.status)).toEqual([200, 200, 200, 200]);
  expect(probes() - before).toBe(1);
  const checkedAt = (a: { jsonBody?: unknown }) =>
    (a.jsonBody as { checks: { fpx: { checkedAt: string } } }).checks.fpx.checkedAt;
  expect(new Set([...answers, again].map(checkedAt)).size).toBe(1);
});

test('health answers 503 naming what is not reachable', async () => {
  sandbox.setOutage(true);
  try {
    const response = await healthCheck(
      services({
        AzureWebJobsStorage:
          'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1',
      }),
    );
    expect(response.status).toBe(503);
    const body = response.jsonBody as {
      status: string;
      checks: Record<string, { ok: boolean; error?: string }>;
    };
    expect(body.status).toBe('unavailable');
    expect(body.checks.storage?.ok).toBe(false);
    expect(body.checks.fpx).toMatchObject({ ok: false });
    expect(body.checks.fpx?.error).toMatch(/503/);
  } finally {
    sandbox.setOutage(false);
  }
});

test("health reports the poison queues' depths", async () => {
  // Its own Azurite: other suites fill the shared one's poison queues.
  const azurite = await startAzurite();
  try {
    const poison = queueClient(azurite.connectionString, 'fpx-tenant-details-poison');
    await poison.createIfNotExists();
    await poison.sendMessage(Buffer.from('{"tenantId":"x"}').toString('base64'));
    await poison.sendMessage(Buffer.from('{"tenantId":"y"}').toString('base64'));
    const response = await healthCheck(services({ AzureWebJobsStorage: azurite.connectionString }));
    expect(response.status).toBe(200);
    expect((response.jsonBody as { poisonQueues: unknown }).poisonQueues).toEqual({
      'fpx-tenant-details-poison': 2,
      'crm-deliveries-poison': 0,
    });
  } finally {
    await azurite.stop();
  }
});
