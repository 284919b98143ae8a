import { odata, type TableClient } from '@azure/data-tables';
import { safeErrorMessage } from '../redact';
import { deleteEntities, ensureTableOnce, getEntityOrUndefined, listEntitiesOrNone } from '../storage';
import { recordSyncRun, SYNC_STATE_PARTITION } from './sync-state';
import type { FanOutResult, TenantDetailsResult } from './tenant-details';

/** FpxSyncState's `details` row: the last fan-out's counts and the tenants that failed. */
export const DETAILS_STREAM = 'details';
/** One row per tenant and fan-out (PartitionKey the run id): written without contention, summed at the end. */
export const DETAILS_RUNS_TABLE = 'FpxTenantDetailsRuns';
const MAX_FAILED_LISTED = 200;

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
  /** Tenants in neither listing whose detail rows this fan-out marked removed, and the rows. */
  departedTenants: number;
  departedRows: number;
  /** Why departed tenants were not looked for ('' when they were). */
  departedSkipped: string;
  /** Tenants whose listings kept rows they would have removed, and the first reason. */
  tenantsRemovalsSkipped: number;
  removalsSkipped: string;
}

export interface TenantRunRow {
  partitionKey: string;
  rowKey: string;
  ok: boolean;
  seen: number;
  created: number;
  changed: number;
  removed: number;
  apiCalls: number;
  error: string;
  /** Why some of this tenant's listings marked nothing removed ('' when all did). */
  removalsSkipped: string;
}

/** The `details` row of a fan-out that has just started: no tenant done yet. */
export function newDetailsRow(fanOut: FanOutResult, now: Date): DetailsRow {
  return {
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
    departedTenants: fanOut.departedTenants,
    departedRows: fanOut.departedRows,
    departedSkipped: fanOut.departedSkipped,
    tenantsRemovalsSkipped: 0,
    removalsSkipped: '',
  };
}

/** A new fan-out: the `details` row starts over, and the previous run's tenant rows go. */
export async function startDetailsRun(
  state: TableClient,
  runs: TableClient,
  fanOut: FanOutResult,
  now = new Date(),
): Promise<void> {
  const previous = await readDetailsState(state);
  const row = newDetailsRow(fanOut, now);
  await state.upsertEntity(row, 'Replace');
  if (previous?.runId && previous.runId !== fanOut.runId) await deleteRun(runs, previous.runId);
}

export interface TenantOutcome {
  runId?: string;
  tenantId: string;
  result?: TenantDetailsResult;
  error?: unknown;
}

/**
 * Records one tenant's final outcome in its own row (no two writers share a row), then, once every
 * tenant of the fan-out has one, writes their sum into the `details` row. Whoever completes the set
 * writes the same sum, so a repeat or a race changes nothing.
 */
export async function recordTenantOutcome(
  state: TableClient,
  runs: TableClient,
  outcome: TenantOutcome,
  now = new Date(),
  /** FpxSyncRuns: the completed fan-out's row of history (none without it). */
  history?: TableClient,
): Promise<void> {
  const { runId } = outcome;
  if (!runId) return;
  const details = await readDetailsState(state);
  if (!countsToward(details, runId)) return;
  await ensureTableOnce(runs);
  await runs.upsertEntity(tenantRunRow({ ...outcome, runId }), 'Replace');

  // Counted on the keys alone (every tenant does this); the rows are read in full once, by the last.
  if ((await listRun(runs, runId, ['RowKey'])).length < details.enqueued) return;
  const complete = completeRun(details, await listRun(runs, runId), now);
  if (!complete) return;
  await state.upsertEntity(complete, 'Replace');
  // The fan-out's row in FpxSyncRuns (best effort; the same row again when two tenants complete the set).
  if (!history) return;
  await recordSyncRun(history, {
    stream: DETAILS_STREAM,
    startedAt: complete.lastStartedAt,
    endedAt: now.toISOString(),
    status: complete.lastStatus,
    error: complete.lastError,
    durationMs: Math.max(0, now.getTime() - Date.parse(complete.lastStartedAt)),
    seen: complete.seen,
    created: complete.created,
    changed: complete.changed,
    removed: complete.removed,
    apiCalls: complete.apiCalls,
    tenantsFailed: complete.tenantsFailed,
  });
}

/** Whether a tenant's outcome of fan-out `runId` counts: a late message of an older fan-out does not. */
export function countsToward(details: DetailsRow | undefined, runId: string): details is DetailsRow {
  return details?.runId === runId;
}

/** A tenant's row in its fan-out: what its listings saw and wrote, or why it failed. */
export function tenantRunRow(outcome: TenantOutcome & { runId: string }): TenantRunRow {
  const parts = outcome.result
    ? [outcome.result.entitlements, outcome.result.contacts, outcome.result.notes].filter(
        (part): part is NonNullable<typeof part> => part !== undefined,
      )
    : [];
  const sum = (key: 'seen' | 'created' | 'changed' | 'removed') => parts.reduce((n, p) => n + p[key], 0);
  return {
    partitionKey: outcome.runId,
    rowKey: outcome.tenantId,
    ok: outcome.error === undefined && outcome.result !== undefined,
    seen: sum('seen'),
    created: sum('created'),
    changed: sum('changed'),
    removed: sum('removed'),
    apiCalls: outcome.result?.apiCalls ?? 0,
    error: outcome.error === undefined ? '' : safeErrorMessage(outcome.error).slice(0, 300),
    removalsSkipped: parts
      .filter((part) => part.removalsSkipped)
      .map((part) => `${part.stream.slice(outcome.tenantId.length + 1)}: ${part.removalsSkipped}`)
      .join('; ')
      .slice(0, 500),
  };
}

/**
 * The `details` row once the fan-out is complete (every tenant it enqueued has its row): the sums, and the
 * tenants that failed (at most 200 listed). Undefined while tenants are missing. Rows of another fan-out
 * do not count.
 */
export function completeRun(
  details: DetailsRow,
  tenants: readonly TenantRunRow[],
  now: Date,
): DetailsRow | undefined {
  const finished = tenants.filter((r) => r.partitionKey === details.runId);
  if (finished.length < details.enqueued) return undefined;
  const failed = finished.filter((r) => !r.ok);
  const total = (key: 'seen' | 'created' | 'changed' | 'removed' | 'apiCalls') =>
    finished.reduce((n, r) => n + Number(r[key] ?? 0), 0);
  return {
    ...stripMeta(details),
    lastCompletedAt: now.toISOString(),
    lastStatus: failed.length > 0 ? 'failed' : 'succeeded',
    lastError: failed[0]?.error ?? '',
    tenantsSucceeded: finished.length - failed.length,
    tenantsFailed: failed.length,
    failedTenants: JSON.stringify(
      failed.slice(0, MAX_FAILED_LISTED).map((r) => ({ tenantId: r.rowKey, error: r.error })),
    ),
    seen: total('seen'),
    created: total('created'),
    changed: total('changed'),
    removed: total('removed'),
    apiCalls: total('apiCalls'),
    tenantsRemovalsSkipped: finished.filter((r) => r.removalsSkipped).length,
    removalsSkipped: finished.find((r) => r.removalsSkipped)?.removalsSkipped ?? '',
  };
}

/** The `details` row, or undefined before the first fan-out. */
export async function readDetailsState(state: TableClient): Promise<DetailsRow | undefined> {
  const row = await getEntityOrUndefined<DetailsRow>(state, SYNC_STATE_PARTITION, DETAILS_STREAM);
  return row && stripMeta(row);
}

async function listRun(runs: TableClient, runId: string, select?: string[]): Promise<TenantRunRow[]> {
  const rows: TenantRunRow[] = [];
  for await (const r of listEntitiesOrNone<TenantRunRow>(runs, {
    queryOptions: { filter: odata`PartitionKey eq ${runId}`, select },
  })) {
    rows.push(r);
  }
  return rows;
}

function stripMeta<T extends object>(entity: T): T {
  const { etag: _etag, timestamp: _timestamp, ...rest } = entity as T & { etag?: string; timestamp?: string };
  return rest as T;
}

async function deleteRun(runs: TableClient, runId: string): Promise<void> {
  await deleteEntities(runs, odata`PartitionKey eq ${runId}`);
}
