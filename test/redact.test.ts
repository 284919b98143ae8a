/** Errors that quote a secret reach no log: the functions' own error paths go through lib/redact. */
import { inspect } from 'node:util';
import { RestError, TableClient } from '@azure/data-tables';
import { app, InvocationContext, type StorageQueueHandler } from '@azure/functions';
import { afterAll, beforeAll, expect, inject, test, vi } from 'vitest';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
import { buildServices } from '../functions/services';
import { registerSyncTenantDetails } from '../functions/syncTenantDetails';
import { loadConfig } from '../lib/config';

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 2, referrals: 2 } });
});
afterAll(() => sandbox.close());

const SECRETS = ['SECRETsig0123', 'SECRETkey4567'];
/** What a storage or proxy error may quote: a SAS URL and an account key. */
const LEAK = `https://acct.table.core.windows.net/FpxSyncState?sv=2024-08-04&sig=${SECRETS[0]} (AccountKey=${SECRETS[1]};)`;

test('syncTenantDetails: a failure that cannot be recorded is logged without the secrets its error quotes', async () => {
  const services = buildServices(
    loadConfig({
      AzureWebJobsStorage: inject('storageConnection'),
      ...sandboxSettings(sandbox),
    }),
  );
  // Storage refuses every table request with an error quoting the request's SAS URL.
  const table = (name: string) =>
    TableClient.fromConnectionString(inject('storageConnection'), name, {
      allowInsecureConnection: true,
      additionalPolicies: [
        {
          position: 'perCall',
          policy: {
            name: 'storage-refuses',
            sendRequest: async () => {
              throw new RestError(`request to ${LEAK} failed`, { statusCode: 403 });
            },
          },
        },
      ],
    });
  // The handler as the function registers it (outside a Functions host, registering records nothing).
  let handler: StorageQueueHandler | undefined;
  const register = vi.spyOn(app, 'storageQueue').mockImplementation((_name, options) => {
    handler = options.handler;
  });
  try {
    registerSyncTenantDetails({ ...services, table });
  } finally {
    register.mockRestore();
  }

  const lines: string[] = [];
  const context = new InvocationContext({
    functionName: 'syncTenantDetails',
    // The last attempt: the one whose failure is recorded.
    triggerMetadata: { dequeueCount: 5 },
    logHandler: (level, ...args) => lines.push(`${level}: ${args.map((a) => inspect(a)).join(' ')}`),
  });
  const tenantId = String(sandbox.data.partnerTenants[0]?.tenantId);
  await expect(handler?.({ tenantId, runId: 'run-redact' }, context)).rejects.toThrow();

  const recorded = lines.find((line) => line.includes('could not record the failure'));
  expect(recorded).toMatch(/sig=\*\*\*.*AccountKey=\*\*\*/);
  for (const secret of SECRETS) expect(lines.join('\n')).not.toContain(secret);
});
