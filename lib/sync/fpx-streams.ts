import type { TableClient } from '@azure/data-tables';
import type { FpxClient, PagedList, Referral } from '../fpx';
import { type SyncResult, syncStream } from './sync-stream';

/** The contract's table names (ARCHITECTURE.md, "Tables the CRM side reads"). */
export const TABLES = {
  referrals: 'FpxReferrals',
  tenants: 'FpxTenants',
  entitlements: 'FpxEntitlements',
  contacts: 'FpxContacts',
  notes: 'FpxNotes',
  syncState: 'FpxSyncState',
  referenceData: 'FpxReferenceData',
} as const;

export interface StreamDeps {
  fpx: FpxClient;
  table(name: string): TableClient;
  log?: (message: string) => void;
  now?: () => Date;
}

/** A listing's pages as arrays of items, counting every FPX request the listing sends (retries included). */
export function countedPages<T>(list: (onAttempt: () => void) => PagedList<T>) {
  let calls = 0;
  const paged = list(() => {
    calls++;
  });
  return {
    apiCalls: () => calls,
    pages: (async function* () {
      for await (const page of paged.pages()) yield page.items;
    })(),
  };
}

/**
 * pollReferrals: FPX's referrals into FpxReferrals (partition `referral`, RowKey the referral id).
 * `onWritten` hears of each new, changed or restored referral.
 */
export function syncReferrals(
  deps: StreamDeps,
  onWritten?: (referral: Referral) => void,
): Promise<SyncResult> {
  const listing = countedPages((onAttempt) => deps.fpx.partnerReferrals({ onAttempt }));
  return syncStream({
    stream: 'referrals',
    rows: deps.table(TABLES.referrals),
    state: deps.table(TABLES.syncState),
    partitionKey: 'referral',
    rowKey: (referral) => referral.id,
    ...listing,
    onWritten,
    log: deps.log,
    now: deps.now,
  });
}

/** pollTenants: FPX's partner tenants into FpxTenants (partition `tenant`, RowKey the tenant id). */
export function syncTenants(deps: StreamDeps): Promise<SyncResult> {
  const listing = countedPages((onAttempt) => deps.fpx.partnerTenants({ onAttempt }));
  return syncStream({
    stream: 'tenants',
    rows: deps.table(TABLES.tenants),
    state: deps.table(TABLES.syncState),
    partitionKey: 'tenant',
    rowKey: (tenant) => tenant.tenantId,
    ...listing,
    log: deps.log,
    now: deps.now,
  });
}
