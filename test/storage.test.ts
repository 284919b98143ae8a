import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TableServiceClientOptions } from '@azure/data-tables';
import type { StoragePipelineOptions } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createStorage, ensureTable, parseStorageSettings, type StorageSettings } from '../lib/storage';

const CLIENT_ID = '3f1d9a6e-8c2b-4d7f-a5e1-9b0c8d7e6f5a';
const run = randomBytes(4).toString('hex');

function settingsOf(env: Record<string, string>): StorageSettings {
  const result = parseStorageSettings(env);
  if (!result.ok) throw new Error(`unexpected problem with ${result.problem.setting}`);
  return result.settings;
}

describe('connection string form (Azurite)', () => {
  test('tables and queues round-trip through createStorage', async () => {
    const storage = createStorage(settingsOf({ AzureWebJobsStorage: inject('storageConnection') }));
    expect(storage.credential).toBeUndefined();

    const table = await ensureTable(storage.table(`StorageCheck${run}`));
    expect(storage.table(`StorageCheck${run}`)).toBe(table);
    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 'v' });
    expect((await table.getEntity<{ value: string }>('p', 'r')).value).toBe('v');
    await expect(storage.tableService.getProperties()).resolves.toBeDefined();

    const queue = storage.queue(`storage-check-${run}`);
    await queue.createIfNotExists();
    await queue.sendMessage('hello');
    const received = await queue.receiveMessages();
    expect(received.receivedMessageItems[0]?.messageText).toBe('hello');
    const names: string[] = [];
    for await (const item of storage.queueService.listQueues({ prefix: `storage-check-${run}` })) {
      names.push(item.name);
    }
    expect(names).toEqual([`storage-check-${run}`]);
  });
});

/**
 * The identity form, without Azure: a local stand-in for App Service's managed identity endpoint
 * (`IDENTITY_ENDPOINT` / `IDENTITY_HEADER`, which Azure Functions sets) hands out a token, and the storage
 * SDKs' own HTTP client hook records the requests instead of sending them to Azure.
 */
describe('identity-based form (managed identity)', () => {
  const TOKEN = `token-${run}`;
  const IDENTITY_HEADER = `header-${run}`;
  const tokenRequests: URL[] = [];
  let server: Server;
  const saved = {
    IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT,
    IDENTITY_HEADER: process.env.IDENTITY_HEADER,
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.headers['x-identity-header'] !== IDENTITY_HEADER) {
        res.writeHead(401).end();
        return;
      }
      tokenRequests.push(url);
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          access_token: TOKEN,
          expires_on: String(Math.floor(Date.now() / 1000) + 3600),
          resource: url.searchParams.get('resource'),
          token_type: 'Bearer',
          client_id: url.searchParams.get('client_id'),
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}/msi/token`;
    process.env.IDENTITY_HEADER = IDENTITY_HEADER;
  });

  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await new Promise((resolve) => server.close(resolve));
  });

  interface Sent {
    method: string;
    url: string;
    authorization?: string;
  }

  /** The Tables SDK's HTTP client hook (core-rest-pipeline): records, answers 204. */
  function tableHttpClient(sent: Sent[]): NonNullable<TableServiceClientOptions['httpClient']> {
    return {
      async sendRequest(request) {
        sent.push({
          method: request.method,
          url: request.url.split('?')[0] ?? '',
          authorization: request.headers.get('authorization'),
        });
        return { request, status: 204, headers: plainHeaders({ 'x-ms-request-id': run }) };
      },
    };
  }

  /** The Queue SDK's HTTP client hook (core-http-compat RequestPolicy): records, answers 201. */
  function queueHttpClient(sent: Sent[]): NonNullable<StoragePipelineOptions['httpClient']> {
    return {
      async sendRequest(request) {
        sent.push({
          method: request.method,
          url: request.url.split('?')[0] ?? '',
          authorization: request.headers.get('authorization'),
        });
        // The answer's headers: a collection of the SDK's own kind (the request's, emptied), the request id only.
        const headers = request.headers.clone();
        for (const { name } of headers.headersArray()) headers.remove(name);
        headers.set('x-ms-request-id', run);
        return { request, status: 201, headers };
      },
    };
  }

  test('builds a ManagedIdentityCredential for the user-assigned identity and clients on the service URLs', async () => {
    const sentToTables: Sent[] = [];
    const sentToQueues: Sent[] = [];
    const storage = createStorage(
      settingsOf({
        AzureWebJobsStorage__accountName: 'fpxdata',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: CLIENT_ID,
      }),
      {
        // Only the transport is replaced; credentials and URLs are what production builds.
        tableOptions: { httpClient: tableHttpClient(sentToTables), retryOptions: { maxRetries: 0 } },
        queueOptions: {
          httpClient: queueHttpClient(sentToQueues),
          retryOptions: { maxTries: 1 },
        },
      },
    );
    expect(storage.credential?.constructor.name).toBe('ManagedIdentityCredential');
    expect(storage.tableService.url).toBe('https://fpxdata.table.core.windows.net');
    expect(storage.queueService.url).toBe('https://fpxdata.queue.core.windows.net');
    expect(storage.table('FpxTenants').url).toBe('https://fpxdata.table.core.windows.net');
    expect(storage.table('FpxTenants').tableName).toBe('FpxTenants');
    expect(storage.queue('fpx-tenant-details').url).toBe(
      'https://fpxdata.queue.core.windows.net/fpx-tenant-details',
    );

    await storage.table('FpxTenants').createTable();
    await storage.queue('fpx-tenant-details').create();

    expect(sentToTables).toEqual([
      {
        method: 'POST',
        url: 'https://fpxdata.table.core.windows.net/Tables',
        authorization: `Bearer ${TOKEN}`,
      },
    ]);
    expect(sentToQueues).toEqual([
      {
        method: 'PUT',
        url: 'https://fpxdata.queue.core.windows.net/fpx-tenant-details',
        authorization: `Bearer ${TOKEN}`,
      },
    ]);
    // The token came from the managed identity endpoint, for Storage, for our user-assigned identity.
    expect(tokenRequests.length).toBeGreaterThanOrEqual(1);
    for (const request of tokenRequests) {
      expect(request.searchParams.get('resource')).toBe('https://storage.azure.com');
      expect(request.searchParams.get('client_id')).toBe(CLIENT_ID);
    }
  });

  test('without __credential the default chain is used, with the client id for its managed identity part', () => {
    const storage = createStorage(
      settingsOf({ AzureWebJobsStorage__accountName: 'fpxdata', AzureWebJobsStorage__clientId: CLIENT_ID }),
    );
    expect(storage.credential?.constructor.name).toBe('DefaultAzureCredential');
    expect(storage.tableService.url).toBe('https://fpxdata.table.core.windows.net');
  });

  test('one credential per storage, shared by every client (tokens are cached once)', () => {
    const storage = createStorage(
      settingsOf({
        AzureWebJobsStorage__tableServiceUri: 'https://fpxdata.table.core.windows.net',
        AzureWebJobsStorage__queueServiceUri: 'https://fpxdata.queue.core.windows.net',
        AzureWebJobsStorage__credential: 'managedidentity',
      }),
    );
    expect(storage.credential?.constructor.name).toBe('ManagedIdentityCredential');
    expect(storage.table('A')).toBe(storage.table('A'));
    expect(storage.queue('a')).toBe(storage.queue('a'));
    expect(storage.queue('a', { retryOptions: { maxTries: 2 } })).not.toBe(storage.queue('a'));
  });
});

/** The minimum of core-rest-pipeline's HttpHeaders the SDK reads from a response. */
function plainHeaders(values: Record<string, string>) {
  const map = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    get: (name: string) => map.get(name.toLowerCase()),
    has: (name: string) => map.has(name.toLowerCase()),
    set: (name: string, value: string | number | boolean) => void map.set(name.toLowerCase(), String(value)),
    delete: (name: string) => void map.delete(name.toLowerCase()),
    toJSON: () => Object.fromEntries(map),
    [Symbol.iterator]: () => map.entries(),
  };
}
