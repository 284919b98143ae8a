import type { TableClient } from '@azure/data-tables';
import { SYNC_STATE_PARTITION, safeErrorMessage } from './sync-state';
import type { FanOutResult, TenantDetailsResult } from './tenant-details';

/** FpxSyncState's `details` row: the last fan-out's counts, summed as tenants finish, and the tenants that failed. */
export const DETAILS_STREAM = 'details';
const MAX_FAILED_LISTED = 200;
const MAX_CONFLICT_RETRIES = 25;

export interface DetailsRow {
  partitionKey: string;
  rowKey: string;
  runId: string;
  lastStartedAt: string;
  lastCompletedAt?: string;
  lastStatus: 'running' | 'succeeded' | 'failed';
  lastError: string;
  enqueued: number;
  tenantsSucceeded: number;
  tenantsFailed: number;
  /** JSON array of `{tenantId, error}`, at most 200. */
  failedTenants: string;
  seen: number;
  created: number;
  changed: number;
  removed: number;
  apiCalls: number;
}

export async function startDetailsRun(
  state: TableClient,
  fanOut: FanOutResult,
  now = new Date(),
): Promise<void> {
  const row: DetailsRow = {
    partitionKey: SYNC_STATE_PARTITION,
    rowKey: DETAILS_STREAM,
    runId: fanOut.runId,
    lastStartedAt: now.toISOString(),
    lastStatus: fanOut.enqueued === 0 ? 'succeeded' : 'running',
    lastError: '',
    enqueued: fanOut.enqueued,
    tenantsSucceeded: 0,
    tenantsFailed: 0,
    failedTenants: '[]',
    seen: 0,
    created: 0,
    changed: 0,
    removed: 0,
    apiCalls: 0,
  };
  await state.upsertEntity(row, 'Replace');
}

export interface TenantOutcome {
  runId?: string;
  tenantId: string;
  result?: TenantDetailsResult;
  error?: unknown;
}

/**
 * Adds one tenant's final outcome to the `details` row. Many instances finish tenants at once,
 * so the row is updated with its ETag and re-read on a conflict.
 */
export async function recordTenantOutcome(
  state: TableClient,
  outcome: TenantOutcome,
  now = new Date(),
): Promise<void> {
  for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
    let row: DetailsRow & { etag: string };
    try {
      row = await state.getEntity<DetailsRow>(SYNC_STATE_PARTITION, DETAILS_STREAM);
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return; // no fan-out recorded: nothing to add to
      throw error;
    }
    // A late message of an older fan-out does not count towards the current one.
    if (outcome.runId && row.runId !== outcome.runId) return;
    const {
      etag,
      timestamp: _timestamp,
      ...stored
    } = row as DetailsRow & { etag: string; timestamp?: string };
    const next: DetailsRow = { ...stored };
    if (outcome.error === undefined && outcome.result) {
      const { entitlements, contacts, notes } = outcome.result;
      next.tenantsSucceeded++;
      for (const part of [entitlements, contacts, notes]) {
        next.seen += part.seen;
        next.created += part.created;
        next.changed += part.changed;
        next.removed += part.removed;
      }
      next.apiCalls += outcome.result.apiCalls;
    } else {
      next.tenantsFailed++;
      const failed = JSON.parse(row.failedTenants || '[]') as Array<{ tenantId: string; error: string }>;
      if (failed.length < MAX_FAILED_LISTED)
        failed.push({ tenantId: outcome.tenantId, error: safeErrorMessage(outcome.error).slice(0, 300) });
      next.failedTenants = JSON.stringify(failed);
      next.lastError = safeErrorMessage(outcome.error);
    }
    if (next.tenantsSucceeded + next.tenantsFailed >= next.enqueued) {
      next.lastCompletedAt = now.toISOString();
      next.lastStatus = next.tenantsFailed > 0 ? 'failed' : 'succeeded';
    }
    try {
      await state.updateEntity(next, 'Replace', { etag });
      return;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 412) throw error;
    }
  }
  throw new Error(`FpxSyncState ${DETAILS_STREAM}: too many concurrent updates`);
}

/** The `details` row, or undefined before the first fan-out. */
export async function readDetailsState(state: TableClient): Promise<DetailsRow | undefined> {
  try {
    return await state.getEntity<DetailsRow>(SYNC_STATE_PARTITION, DETAILS_STREAM);
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}
