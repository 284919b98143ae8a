import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import type { Clock } from '../clock';
import { markDepartedTenants, tenantsWithDetails } from './departed';
import { DETAILS_RUNS_TABLE, startDetailsRun } from './details-state';
import { TABLES, timeOf } from './fpx-streams';
import { readSyncState } from './sync-state';
import { enqueueTenantDetails, type FanOutResult, tenantMessages } from './tenant-details';

/**
 * After a successful pollTenants run: one message per tenant, claimed (FpxTenants) or referred
 * (FpxReferrals, with their rfaIds), each tenant once per run, onto `fpx-tenant-details`; the run is
 * recorded in FpxSyncState's `details` row first. Tenants in neither listing get their detail rows marked
 * removed.
 */
export async function fanOutTenantDetails(
  deps: { table(name: string): TableClient; queue: QueueClient; now?: () => Date; clock?: Clock },
  runId: string,
): Promise<FanOutResult> {
  // Detail partitions are read before the listings' tables: a tenant whose referral arrives meanwhile is
  // then in both, never taken for departed.
  const referrals = await readSyncState(deps.table(TABLES.syncState), 'referrals').catch(() => undefined);
  const detailTenants = referrals?.lastCompletedAt ? await tenantsWithDetails(deps.table) : undefined;
  const messages = await tenantMessages(deps.table, runId);
  const referralOnly = messages.filter((m) => !m.claimed).length;
  const queued = new Set(messages.map((m) => m.tenantId));
  const departed = detailTenants
    ? await markDepartedTenants(
        deps.table,
        [...detailTenants].filter((id) => !queued.has(id)),
        timeOf(deps)().toISOString(),
      )
    : { tenants: 0, rows: 0 };
  const result: FanOutResult = {
    runId,
    enqueued: messages.length,
    claimed: messages.length - referralOnly,
    referralOnly,
    departedTenants: departed.tenants,
    departedRows: departed.rows,
    departedSkipped: detailTenants
      ? ''
      : 'no complete referral listing yet (pollReferrals has not succeeded)',
  };
  // The run is on record before its first message can be taken, so every tenant's outcome counts towards it.
  await startDetailsRun(deps.table(TABLES.syncState), deps.table(DETAILS_RUNS_TABLE), result, timeOf(deps)());
  await enqueueTenantDetails(deps.queue, messages);
  return result;
}
