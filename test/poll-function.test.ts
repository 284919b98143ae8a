import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { DEFAULT_ENTRY } from '../dev/host/host';
import { invokeFunction } from '../dev/invoke';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
import { tableClient } from '../lib/storage';
import { readSyncState } from '../lib/sync';

let sandbox: Sandbox;
let settings: Record<string, string>;

// The real entry on the run's Azurite: invokeFunction polls no queue, and only this suite writes the
// contract's tables there (the others use tables of their own names).
beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 12, referrals: 30 }, rateLimitPerMinute: 0 });
  settings = {
    AzureWebJobsStorage: inject('storageConnection'),
    ...sandboxSettings(sandbox),
    FPX_PAGE_SIZE: '7',
  };
});
afterAll(async () => {
  await sandbox.close();
});

// The real composition root, run the way `npm run invoke -- pollReferrals` runs it.
test('pollReferrals and pollTenants succeed through the real entry; a failed sync fails the invocation', async () => {
  const referrals = await invokeFunction(DEFAULT_ENTRY, 'pollReferrals', undefined, settings);
  expect(referrals.outcome).toBe('Succeeded');
  expect(referrals.result).toMatchObject({ stream: 'referrals', status: 'succeeded', seen: 30, apiCalls: 5 });

  const tenants = await invokeFunction(DEFAULT_ENTRY, 'pollTenants', undefined, settings);
  expect(tenants.result).toMatchObject({
    sync: { stream: 'tenants', status: 'succeeded', seen: 12, apiCalls: 2 },
    // Every claimed and every referred tenant goes onto fpx-tenant-details.
    fanOut: { claimed: 12 },
  });

  // FPX refuses the listing (a 403 is final: no retries to wait out; an outage's retries are the transport's,
  // tested in fpx-client.test.ts).
  sandbox.injectFault({ kind: 'refused', status: 403 }, { method: 'GET', path: /^\/partnerReferrals$/ });
  const failed = await invokeFunction(DEFAULT_ENTRY, 'pollReferrals', undefined, settings);
  expect(failed.outcome).toBe('Failed');
  expect(failed.error?.message).toMatch(/403/);
  const state = await readSyncState(
    tableClient(settings.AzureWebJobsStorage as string, 'FpxSyncState'),
    'referrals',
  );
  expect(state).toMatchObject({ lastStatus: 'failed' });
});
