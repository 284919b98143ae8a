import { odata, type TableClient } from '@azure/data-tables';
import { safeErrorMessage } from '../redact';
import { deleteEntities, ensureTableOnce, getEntityOrUndefined, listEntitiesOrNone } from '../storage';

/** FpxSyncState: PartitionKey `sync`, RowKey the stream name. */
export const SYNC_STATE_PARTITION = 'sync';

export type SyncStatus = 'succeeded' | 'failed' | 'partial';

/** What one run of `syncStream` did; FpxSyncState keeps `RECORDED_COUNTS` of it. */
export interface SyncResult {
  stream: string;
  /** `partial`: stopped at `stopAt`; the listing continues in the next invocation. */
  status: SyncStatus;
  /** Items the listing delivered in this run, duplicates included. */
  items: number;
  /** Of a partial run: the keys it saw, for the parts after it. */
  seenKeys?: string[];
  /** Distinct rows the listing delivered. */
  seen: number;
  created: number;
  /** Rows rewritten because their content changed or they came back after a removal (restored). */
  changed: number;
  /** Of `changed`: rows that had `removedAt` and reappeared. */
  restored: number;
  removed: number;
  /** Why removals were not marked although the listing completed; '' when they were. */
  removalsSkipped: string;
  /** Rows that would have been marked removed had removals not been skipped. */
  removalsWithheld: number;
  unchanged: number;
  /** Items whose RowKey an earlier item of the same listing already had (the first one wins). */
  duplicates: number;
  pages: number;
  apiCalls: number;
  /** HTTP requests to Table Storage, retries included, up to (not including) the final state write. */
  tableRequests: number;
  tableReads: number;
  tableWrites: number;
  /** Batch transactions submitted successfully, and the entities they wrote. */
  transactions: number;
  entityWrites: number;
  largestTransaction: number;
  durationMs: number;
}

/** The run's counts FpxSyncState keeps (the rest of SyncResult is for the caller and the log). */
export const RECORDED_COUNTS = [
  'seen',
  'created',
  'changed',
  'restored',
  'removed',
  'removalsSkipped',
  'removalsWithheld',
  'unchanged',
  'duplicates',
  'pages',
  'apiCalls',
  'tableRequests',
  'entityWrites',
  'durationMs',
] as const satisfies readonly (keyof SyncResult)[];

export type RecordedCounts = Pick<SyncResult, (typeof RECORDED_COUNTS)[number]>;

/** What a finished run records (merged into the stream's row, so `lastCompletedAt` survives a failure). */
export type SyncRunRecord = RecordedCounts & {
  lastStatus: SyncStatus;
  /** The failure's message; empty (our null) after a success. */
  lastError: string;
  /** Only written on success. */
  lastCompletedAt?: string;
};

export type SyncStateRow = Partial<SyncRunRecord> & {
  partitionKey: string;
  rowKey: string;
  lastStartedAt?: string;
  /** When the last run ended, whatever its outcome (rows of runs before it was kept lack it). */
  lastEndedAt?: string;
  /** A running listing's progress (recordRunProgress); belongs to the current run when `progressAt` ≥ `lastStartedAt`. */
  progressPages?: number;
  progressItems?: number;
  progressExpectedCount?: number;
  progressAt?: string;
};

export async function recordRunStart(state: TableClient, stream: string, startedAt: string): Promise<void> {
  await state.upsertEntity(
    { partitionKey: SYNC_STATE_PARTITION, rowKey: stream, lastStartedAt: startedAt },
    'Merge',
  );
}

/**
 * The run's end: its counts, status and error merged into the stream's row (with `lastEndedAt`, set after a
 * failure too, so a reader can tell a running sync from a finished one), and one row of its own in
 * FpxSyncRuns for the history. The history row is best effort: a failure to write it is logged, never thrown.
 */
export async function recordRunEnd(
  state: TableClient,
  stream: string,
  /** As given to recordRunStart: the history row's start. */
  startedAt: string,
  record: SyncRunRecord,
  /** FpxSyncRuns; without it no history row is written. */
  history?: TableClient,
): Promise<void> {
  const endedAt = record.lastCompletedAt ?? new Date().toISOString();
  await state.upsertEntity(
    { partitionKey: SYNC_STATE_PARTITION, rowKey: stream, ...record, lastEndedAt: endedAt },
    'Merge',
  );
  if (!history) return;
  await recordSyncRun(history, {
    stream,
    startedAt,
    endedAt,
    status: record.lastStatus,
    error: record.lastError,
    durationMs: record.durationMs,
    seen: record.seen,
    created: record.created,
    changed: record.changed,
    removed: record.removed,
    apiCalls: record.apiCalls,
    pages: record.pages,
  });
}

/** How far a running listing got; the operations page shows it against FPX's `count`. */
export interface RunProgress {
  /** Pages this run (this part of a long listing) has read so far. */
  pages: number;
  /** Items those pages held. */
  items: number;
  /** FPX's `count` of the whole listing, when it sent one. */
  expectedCount?: number;
}

/**
 * A running sync's progress merged into its FpxSyncState row (`progressPages`, `progressItems`,
 * `progressExpectedCount`, `progressAt`): one small Merge, meant for every ten pages or so. Best effort:
 * a failed write is swallowed (false), since progress must never fail a sync.
 */
export async function recordRunProgress(
  state: TableClient,
  stream: string,
  progress: RunProgress,
  now = new Date(),
): Promise<boolean> {
  try {
    await state.upsertEntity(
      {
        partitionKey: SYNC_STATE_PARTITION,
        rowKey: stream,
        progressPages: progress.pages,
        progressItems: progress.items,
        // -1: FPX sent no count (Table Storage cannot hold null; '' would change the column's type).
        progressExpectedCount: progress.expectedCount ?? -1,
        progressAt: now.toISOString(),
      },
      'Merge',
    );
    return true;
  } catch {
    return false;
  }
}

/** The stream's state row, or undefined before its first run. */
export async function readSyncState(state: TableClient, stream: string): Promise<SyncStateRow | undefined> {
  return getEntityOrUndefined<SyncStateRow>(state, SYNC_STATE_PARTITION, stream);
}

/**
 * FpxSyncRuns: one row per run per stream, kept 30 days, for the operations page's history. PartitionKey the
 * stream; RowKey the run's start time inverted (`runRowKey`), so the newest runs come first and "the last
 * 20 runs" is one query of one partition.
 */
export const SYNC_RUNS_TABLE = 'FpxSyncRuns';
const SYNC_RUNS_RETENTION_DAYS = 30;

export interface SyncRun {
  stream: string;
  startedAt: string;
  endedAt: string;
  status: string;
  /** '' after a success. */
  error: string;
  durationMs: number;
  seen: number;
  created: number;
  changed: number;
  removed: number;
  apiCalls: number;
  pages?: number;
  /** Per-tenant details only: the fan-out's tenants that failed. */
  tenantsFailed?: number;
}

const DAY_MS = 24 * 3600_000;
/** Larger than any epoch millisecond count we will meet (year 2286), so inverted keys stay 13 digits. */
const MAX_KEY_MS = 9_999_999_999_999;
const MAX_RUN_ERROR_CHARS = 1_000;

/** The RowKey of a run: its start time inverted (13 digits), so a partition lists the newest run first. */
function runRowKey(startedAt: string | Date): string {
  const ms = typeof startedAt === 'string' ? Date.parse(startedAt) : startedAt.getTime();
  return String(MAX_KEY_MS - ms).padStart(13, '0');
}

/** Writes one run's row (Replace: whoever records the same run again writes the same row). Never throws. */
export async function recordSyncRun(runs: TableClient, run: SyncRun): Promise<boolean> {
  try {
    await ensureTableOnce(runs);
    await runs.upsertEntity(
      {
        partitionKey: run.stream,
        rowKey: runRowKey(run.startedAt),
        ...run,
        error: run.error.slice(0, MAX_RUN_ERROR_CHARS),
      },
      'Replace',
    );
    return true;
  } catch (error) {
    console.warn(
      `FpxSyncRuns: the ${run.stream} run of ${run.startedAt} was not recorded: ${safeErrorMessage(error)}`,
    );
    return false;
  }
}

/** The stream's last runs, newest first (one query of its partition). */
export async function readSyncRuns(runs: TableClient, stream: string, limit = 20): Promise<SyncRun[]> {
  const found: SyncRun[] = [];
  if (limit <= 0) return found;
  const rows = listEntitiesOrNone<SyncRun>(
    runs,
    { queryOptions: { filter: odata`PartitionKey eq ${stream}` } },
    limit,
  );
  for await (const row of rows) {
    found.push(stripRunMeta(row));
    if (found.length >= limit) break;
  }
  return found;
}

/** Deletes the runs that started more than 30 days before `now`; returns how many. Daily, by the purge timer. */
export async function purgeSyncRuns(runs: TableClient, now = new Date()): Promise<number> {
  const cutoff = runRowKey(new Date(now.getTime() - SYNC_RUNS_RETENTION_DAYS * DAY_MS));
  return deleteEntities(runs, odata`RowKey gt ${cutoff}`);
}

function stripRunMeta(
  row: SyncRun & { partitionKey?: string; rowKey?: string; etag?: string; timestamp?: string },
): SyncRun {
  const { partitionKey: _pk, rowKey: _rk, etag: _etag, timestamp: _ts, ...run } = row;
  return run;
}
