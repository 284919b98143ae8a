import type { QueueClient } from '@azure/storage-queue';
import { safeErrorMessage } from '../redact';
import { type StreamDeps, syncReferrals } from './fpx-streams';
import type { SyncResult } from './sync-state';
import { enqueueTenantDetails, TENANT_DETAILS_QUEUE, tenantMessages } from './tenant-details';

export type ReferralSyncResult = SyncResult & {
  /** Tenants of new or changed referrals put on `fpx-tenant-details` by this run. */
  tenantDetailsQueued: number;
};

/**
 * pollReferrals: the referrals, then, in the same run, the details of every tenant that a new, changed or
 * restored referral names, so a new referral's contacts and notes are in the tables minutes after it
 * appears, not after the next hourly fan-out of pollTenants.
 */
export async function syncReferralsAndTheirTenants(
  deps: StreamDeps & { queue: QueueClient },
): Promise<ReferralSyncResult> {
  const tenants = new Set<string>();
  let result: SyncResult;
  try {
    result = await syncReferrals(deps, (referral) => tenants.add(referral.tenantId));
  } catch (error) {
    // The rows written before the failure are in the table and will not count as new again: read them now.
    await enqueueFor(deps, tenants).catch((enqueueError: unknown) =>
      deps.log?.(`referral tenants not queued: ${safeErrorMessage(enqueueError)}`),
    );
    throw error;
  }
  return { ...result, tenantDetailsQueued: await enqueueFor(deps, tenants) };
}

/**
 * A run that finds more new tenants than this (a partner's first sync, a bulk import in FPX) queues this
 * many and leaves the rest to pollTenants' fan-out, which reads every referral's tenant anyway: memory and
 * the run's length stay bounded.
 */
const MAX_TENANTS_AT_ONCE = 500;

async function enqueueFor(deps: StreamDeps & { queue: QueueClient }, tenants: Set<string>): Promise<number> {
  if (tenants.size === 0) return 0;
  const now = new Set([...tenants].slice(0, MAX_TENANTS_AT_ONCE));
  if (now.size < tenants.size) {
    deps.log?.(
      `${tenants.size} tenants of new or changed referrals: ${now.size} queued now, the rest with pollTenants' next fan-out`,
    );
  }
  const messages = await tenantMessages(deps.table, undefined, now);
  await enqueueTenantDetails(deps.queue, messages);
  deps.log?.(`${messages.length} tenants of new or changed referrals onto ${TENANT_DETAILS_QUEUE}`);
  return messages.length;
}
