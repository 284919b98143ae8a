import { TableServiceClient } from '@azure/data-tables';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { DEFAULT_ENTRY, loadApp } from '../dev/host/app-loader';
import { triggerBindingOf } from '../dev/host/function-info';
import { memoryLogger, startHost } from '../dev/host/host';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
import { HEALTH_TTL_MS, healthCheck, healthStatus } from '../functions/health';
import { buildServices, type Services } from '../functions/services';
import { loadConfig, SCHEDULE_DEFAULTS } from '../lib/config';
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
      ...sandboxSettings(sandbox),
      ...overrides,
    }),
  );
}

describe('GET /api/health, anonymous', () => {
  /** The services with a table client that counts the requests it sends to the real Azurite. */
  function counted(): { services: Services; storageCalls: () => number } {
    let calls = 0;
    const tableService = TableServiceClient.fromConnectionString(inject('storageConnection'), {
      allowInsecureConnection: true,
      additionalPolicies: [
        {
          position: 'perCall',
          policy: {
            name: 'count',
            sendRequest: (request, next) => {
              calls++;
              return next(request);
            },
          },
        },
      ],
    });
    return { services: { ...services(), tableService }, storageCalls: () => calls };
  }
  const probes = () => sandbox.requests.filter((r) => r.path === '/noteCategories').length;

  test('answers {status} only: 200 ok, 503 unavailable, nothing about why', async () => {
    expect(await healthStatus(services())).toEqual({ status: 200, jsonBody: { status: 'ok' } });
    sandbox.setOutage(true);
    try {
      expect(await healthStatus(services())).toEqual({ status: 503, jsonBody: { status: 'unavailable' } });
    } finally {
      sandbox.setOutage(false);
    }
  });

  test('costs one storage and one FPX call per 30 s, however many callers', async () => {
    const { services: shared, storageCalls } = counted();
    const t0 = Date.now();
    const fpxBefore = probes();
    const answers = await Promise.all(Array.from({ length: 20 }, () => healthStatus(shared, t0)));
    answers.push(await healthStatus(shared, t0 + HEALTH_TTL_MS - 1));
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200]));
    expect([storageCalls(), probes() - fpxBefore]).toEqual([1, 1]);

    // FPX goes down: strangers see it at the next check, not before.
    sandbox.setOutage(true);
    try {
      expect((await healthStatus(shared, t0 + HEALTH_TTL_MS - 1)).status).toBe(200);
      expect((await healthStatus(shared, t0 + HEALTH_TTL_MS)).status).toBe(503);
      expect([storageCalls(), probes() - fpxBefore]).toEqual([2, 2]);
    } finally {
      sandbox.setOutage(false);
    }
  });
});

test('the local host serves /api/health to anyone and /api/health/details without a key, as Core Tools does', async () => {
  const host = await startHost({
    port: 0,
    timers: false,
    queues: false,
    logger: memoryLogger(),
    settings: {
      ...SCHEDULE_DEFAULTS,
      AzureWebJobsStorage: inject('storageConnection'),
      ...sandboxSettings(sandbox),
    },
  });
  try {
    const health = await fetch(`${host.url}/api/health`);
    expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
    const details = await fetch(`${host.url}/api/health/details`);
    expect(details.status).toBe(200);
    expect(await details.json()).toMatchObject({
      status: 'ok',
      checks: { certificate: { thumbprint: sandbox.certs.client.thumbprint } },
    });
  } finally {
    await host.stop();
  }
  // In Azure the details need the function key; health stays anonymous.
  const registered = await loadApp(DEFAULT_ENTRY);
  const authLevel = (name: string) => {
    const fn = registered.functions.get(name);
    return fn && triggerBindingOf(fn)[1].authLevel;
  };
  expect([authLevel('health'), authLevel('healthDetails')]).toEqual(['anonymous', 'function']);
});

test('details: 200 when storage and FPX are reachable', async () => {
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
        'crm-events-poison': expect.any(Number),
      },
    },
  });
  // The FPX check went through mutual TLS with the configured certificate.
  expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(sandbox.certs.client.thumbprint);
});

test('details: FPX is probed at most once per 30 s, however often they are asked for', async () => {
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

test('details: 503 naming what is not reachable', async () => {
  // Storage where nothing listens, asked once (the SDKs' own retries would run into the check's 5-s limit).
  const nowhere =
    'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1';
  const unreachable: Services = {
    ...services({ AzureWebJobsStorage: nowhere }),
    tableService: TableServiceClient.fromConnectionString(nowhere, {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 0 },
    }),
    queueService: QueueServiceClient.fromConnectionString(nowhere, { retryOptions: { maxTries: 1 } }),
  };
  sandbox.setOutage(true);
  try {
    const response = await healthCheck(unreachable);
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

test("details report the poison queues' depths", async () => {
  // A storage account of its own: other suites may fill the development account's poison queues.
  const connection = inject('storageAccounts').health;
  const poison = queueClient(connection, 'fpx-tenant-details-poison');
  await poison.createIfNotExists();
  await poison.sendMessage(Buffer.from('{"tenantId":"x"}').toString('base64'));
  await poison.sendMessage(Buffer.from('{"tenantId":"y"}').toString('base64'));
  const response = await healthCheck(services({ AzureWebJobsStorage: connection }));
  expect(response.status).toBe(200);
  expect((response.jsonBody as { poisonQueues: unknown }).poisonQueues).toEqual({
    'fpx-tenant-details-poison': 2,
    'crm-deliveries-poison': 0,
    'crm-events-poison': 0,
  });
});
