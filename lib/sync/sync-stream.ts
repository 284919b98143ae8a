import { performance } from 'node:perf_hooks';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { safeErrorMessage } from '../redact';
import { ensureTableOnce } from '../storage';
import { traceSyncRun } from '../telemetry';
import { type AfterSubmit, BatchWriter } from './batch-writer';
import { contentHash } from './hash';
import { type KnownRow, readPartitionIndex } from './partition-index';
import { countTableRequests, type TableRequestCounts, withTableRequestCounts } from './request-counter';
import { type SyncRow, toRow } from './row';
import {
  RECORDED_COUNTS,
  type RecordedCounts,
  recordRunEnd,
  recordRunStart,
  type SyncResult,
  type SyncRunRecord,
} from './sync-state';
import { tableKeyProblem } from './table-key';

export interface SyncStreamOptions<T extends object> {
  /** The stream's name: its RowKey in FpxSyncState (`referrals`, `tenants`, …). */
  stream: string;
  /** The table the rows go to, e.g. FpxReferrals. Created on first use. */
  rows: TableClient;
  /** FpxSyncRuns: each run's row of history (the operations page's chart). */
  history?: TableClient;
  /** FpxSyncState, created on first use. Without it no state row is kept (per-tenant details sum into `details`). */
  state?: TableClient;
  /** The partition this listing covers completely: only its rows can be marked removed. */
  partitionKey: string;
  /** The item's RowKey, used exactly as returned (normalise ids before, e.g. in the FPX client). */
  rowKey: (item: T) => string;
  /** The listing, page by page, items already validated. */
  pages: AsyncIterable<T[]>;
  /** The FPX client's call counter; the run records how much it grew while the run lasted. */
  apiCalls?: () => number;
  /** Where the summary and progress lines go (the function passes `context.log`). */
  log?: (message: string) => void;
  /** Clock for the timestamps written (tests inject a fixed one). */
  now?: () => Date;
  /**
   * Why this run must mark nothing removed although its listing completed (e.g. the note categories could
   * not be read, so the listing may be partial). Recorded as `removalsSkipped` and in the summary line.
   */
  skipRemovals?: string;
  /** Told of each item written because it is new, changed or restored (e.g. to act on new referrals). */
  onWritten?: (item: T, change: 'created' | 'changed') => void;
  /**
   * Told of each transaction's row writes before it is submitted, and awaited (the CRM events' outbox,
   * lib/events): what it records is durable before the rows it describes are written. A failure fails the run.
   * What it returns runs once the transaction succeeded (the events' message: sent only for rows that landed).
   */
  beforeWrite?: (writes: RowWrite[]) => Promise<AfterSubmit | undefined>;
  /**
   * A listing too long for one invocation: asked between pages; once it says so, the run stops reading and
   * ends `partial` (nothing marked removed), with the keys it saw, for the next part.
   */
  shouldStop?: () => boolean;
  /** Keys earlier parts of this listing delivered: seen, as far as removals are concerned. */
  seenBefore?: ReadonlySet<string>;
  /** Items earlier parts delivered (duplicates included), for the check against FPX's count. */
  itemsBefore?: number;
  /** FPX's `count` of the whole listing, when it sent one: a complete listing must deliver that many items. */
  expectedCount?: () => number | undefined;
  /** A run may mark at most this share of the partition's rows removed (100: no limit). */
  maxRemovedPercent?: number;
  /** Told every `progressEveryPages` pages how far the listing got. */
  onProgress?: (progress: { pages: number; items: number; expectedCount?: number }) => void;
  /** Batch transactions outstanding at once. Default 4. */
  maxInFlight?: number;
  /** A progress line every so many pages. Default 10. */
  progressEveryPages?: number;
}

/** One row write, as `beforeWrite` hears of it. */
export interface RowWrite {
  rowKey: string;
  change: 'created' | 'changed' | 'removed';
  /** The row before the write (a new row has none). */
  previous?: { contentHash: string; lastChangedAt: string; removed: boolean };
  /** The whole row written; of a removal only the columns merged (`removedAt`, `lastChangedAt`). */
  row: SyncRow;
  contentHash: string;
}

/** An item the engine refuses; fails the run before anything is marked removed. */
export class SyncItemError extends Error {
  constructor(
    readonly stream: string,
    readonly itemIndex: number,
    problem: string,
  ) {
    super(`sync ${stream}: item ${itemIndex} ${problem}`);
    this.name = 'SyncItemError';
  }
}

/**
 * Keeps one partition of a table in step with a listing: new and changed items are written (whole rows,
 * replaced) in batch transactions while the pages arrive, unchanged ones are not touched, and once the
 * listing has completed the partition's rows it did not deliver get `removedAt`. If the listing or a write
 * fails, nothing is marked removed, the failure is recorded in FpxSyncState and rethrown.
 */
export async function syncStream<T extends object>(options: SyncStreamOptions<T>): Promise<SyncResult> {
  const { stream, rows, state, partitionKey } = options;
  const streamProblem = tableKeyProblem(stream);
  if (streamProblem) throw new Error(`sync: the stream name ${streamProblem}`);
  const partitionProblem = tableKeyProblem(partitionKey);
  if (partitionProblem) throw new Error(`sync ${stream}: the partition key ${partitionProblem}`);
  countTableRequests(rows);
  if (state) countTableRequests(state);
  return withTableRequestCounts((requests) => traceSyncRun(stream, () => runSync(options, requests)));
}

async function runSync<T extends object>(options: SyncStreamOptions<T>, requests: TableRequestCounts) {
  const { stream, rows, state, partitionKey } = options;
  const clock = options.now ?? (() => new Date());
  const timestamp = () => clock().toISOString();
  const log = options.log ?? (() => {});
  const progressEvery = Math.max(1, options.progressEveryPages ?? 10);
  const startedAt = performance.now();
  const runStartedAt = timestamp();
  const apiCallsAtStart = options.apiCalls?.() ?? 0;
  // Writes waiting for `beforeWrite`, by RowKey: handed over with the transaction that carries them.
  const writes = new Map<string, RowWrite>();
  const beforeWrite = options.beforeWrite;
  const beforeSubmit = beforeWrite
    ? (actions: TransactionAction[]) => {
        const batch: RowWrite[] = [];
        for (const action of actions) {
          const write = writes.get(action[1].rowKey);
          writes.delete(action[1].rowKey);
          if (write) batch.push(write);
        }
        return beforeWrite(batch);
      }
    : undefined;
  const writer = new BatchWriter(rows, partitionKey, Math.max(1, options.maxInFlight ?? 4), beforeSubmit);
  const previousOf = (row: KnownRow | undefined) =>
    row
      ? { contentHash: row.contentHash, lastChangedAt: row.lastChangedAt ?? '', removed: row.removed }
      : undefined;
  const counts = {
    seen: 0,
    created: 0,
    changed: 0,
    restored: 0,
    removed: 0,
    unchanged: 0,
    duplicates: 0,
    pages: 0,
    removalsWithheld: 0,
  };
  let removalsSkipped = '';
  let itemCount = 0;

  const result = (status: SyncResult['status']): SyncResult => ({
    stream,
    status,
    ...counts,
    removalsSkipped,
    items: itemCount,
    apiCalls: (options.apiCalls?.() ?? 0) - apiCallsAtStart,
    tableRequests: requests.reads + requests.writes,
    tableReads: requests.reads,
    tableWrites: requests.writes,
    transactions: writer.transactions,
    entityWrites: writer.entities,
    largestTransaction: writer.largestTransaction,
    durationMs: Math.round(performance.now() - startedAt),
  });
  /** The run's end in FpxSyncState (and FpxSyncRuns); nothing is kept without a state table. */
  const recordEnd = async (run: SyncResult, end: { lastError?: string; lastCompletedAt?: string } = {}) => {
    if (!state) return;
    const record: SyncRunRecord = {
      ...runRecord(run),
      lastStatus: run.status,
      lastError: end.lastError ?? '',
      ...(end.lastCompletedAt ? { lastCompletedAt: end.lastCompletedAt } : {}),
    };
    await recordRunEnd(state, stream, runStartedAt, record, options.history);
  };

  /** Decides what one item needs and queues its write. */
  const syncItem = async (known: Map<string, KnownRow>, item: T, itemIndex: number) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw new SyncItemError(stream, itemIndex, 'is not an object');
    }
    let rowKey: unknown;
    try {
      rowKey = options.rowKey(item);
    } catch (error) {
      throw new SyncItemError(stream, itemIndex, `has no row key: ${safeErrorMessage(error)}`);
    }
    const keyProblem = tableKeyProblem(rowKey);
    if (keyProblem || typeof rowKey !== 'string') {
      throw new SyncItemError(stream, itemIndex, `has an invalid row key: it ${keyProblem}`);
    }
    const row = known.get(rowKey);
    if (row?.seen) {
      counts.duplicates++;
      return;
    }
    counts.seen++;
    const hash = contentHash(item);
    if (row && !row.removed && row.contentHash === hash) {
      row.seen = true;
      counts.unchanged++;
      return;
    }
    const now = timestamp();
    const firstSeenAt = row?.firstSeenAt || now;
    let entity: ReturnType<typeof toRow>;
    try {
      entity = toRow(item, { partitionKey, rowKey, firstSeenAt, lastChangedAt: now, removedAt: null }, hash);
    } catch (error) {
      throw new SyncItemError(stream, itemIndex, `cannot be stored: ${safeErrorMessage(error)}`);
    }
    if (!row) {
      counts.created++;
    } else {
      counts.changed++;
      if (row.removed) counts.restored++;
    }
    options.onWritten?.(item, row ? 'changed' : 'created');
    if (beforeWrite) {
      writes.set(rowKey, {
        rowKey,
        change: row ? 'changed' : 'created',
        previous: previousOf(row),
        row: entity,
        contentHash: hash,
      });
    }
    // Only the flag and the hash are kept: the row's data leaves memory with its transaction.
    known.set(rowKey, { contentHash: hash, firstSeenAt, removed: false, seen: true, lastChangedAt: now });
    await writer.add(['upsert', entity, 'Replace']);
  };

  try {
    await ensureTableOnce(rows);
    if (state) {
      await ensureTableOnce(state);
      await recordRunStart(state, stream, runStartedAt);
    }
    const known = await readPartitionIndex(rows, partitionKey);
    let stopped = false;
    for await (const page of options.pages) {
      counts.pages++;
      if (!Array.isArray(page)) throw new Error(`sync ${stream}: page ${counts.pages} is not an array`);
      for (const item of page) await syncItem(known, item, itemCount++);
      if (counts.pages % progressEvery === 0) {
        log(
          `sync ${stream}: ${counts.pages} pages, ${itemCount} items so far ` +
            `(created ${counts.created}, changed ${counts.changed}, unchanged ${counts.unchanged})`,
        );
        options.onProgress?.({
          pages: counts.pages,
          items: itemCount,
          expectedCount: options.expectedCount?.(),
        });
      }
      if (options.shouldStop?.()) {
        stopped = true;
        break;
      }
    }
    if (stopped) {
      await writer.drain();
      const partial = result('partial');
      partial.seenKeys = [...known].filter(([, row]) => row.seen).map(([key]) => key);
      await recordEnd(partial);
      log(`${summary(partial)}; stopped to stay within the function timeout, continues in the next run`);
      return partial;
    }
    // The listing completed: whatever it did not deliver is gone from FPX. Keep the data, stamp the removal.
    // Unless the listing may be partial or looks wrong: then count what would go, and say why it did not.
    const gone = [...known].filter(
      ([key, row]) => !row.seen && !row.removed && !options.seenBefore?.has(key),
    );
    removalsSkipped = removalGuard(options, known, gone.length, (options.itemsBefore ?? 0) + itemCount);
    for (const [rowKey, row] of gone) {
      if (removalsSkipped) {
        counts.removalsWithheld++;
        continue;
      }
      const now = timestamp();
      counts.removed++;
      const merged = { partitionKey, rowKey, removedAt: now, lastChangedAt: now };
      if (beforeWrite) {
        writes.set(rowKey, {
          rowKey,
          change: 'removed',
          previous: previousOf(row),
          row: merged,
          contentHash: row.contentHash,
        });
      }
      await writer.add(['update', merged, 'Merge']);
    }
    await writer.drain();
  } catch (error) {
    // Rows already queued are correct data: write them (best effort) so the next run need not; never removals.
    await writer.drain().catch(() => undefined);
    await writer.settle();
    const failed = result('failed');
    try {
      await recordEnd(failed, { lastError: safeErrorMessage(error) });
    } catch (stateError) {
      log(`sync ${stream}: could not record the failure in FpxSyncState: ${safeErrorMessage(stateError)}`);
    }
    log(`${summary(failed)}; error: ${safeErrorMessage(error)}`);
    throw error;
  }
  const succeeded = result('succeeded');
  await recordEnd(succeeded, { lastCompletedAt: timestamp() });
  log(summary(succeeded));
  return succeeded;
}

/** A run may always mark this many rows removed, whatever the share (a tenant with three notes loses one). */
const ALWAYS_REMOVABLE = 10;

/**
 * Why this complete listing must mark nothing removed, or '': the caller says so, FPX's count disagrees
 * with the items delivered (a page lost or shifted), or it would remove more than the allowed share.
 */
function removalGuard<T extends object>(
  options: SyncStreamOptions<T>,
  known: Map<string, KnownRow>,
  removing: number,
  items: number,
): string {
  if (options.skipRemovals) return options.skipRemovals;
  if (removing === 0) return '';
  const expected = options.expectedCount?.();
  if (expected !== undefined && expected !== items) {
    return `the listing delivered ${items} items but FPX's count says ${expected}`;
  }
  const percent = options.maxRemovedPercent ?? 100;
  const present = [...known.values()].filter((row) => !row.removed).length;
  if (percent < 100 && removing > Math.max(ALWAYS_REMOVABLE, (present * percent) / 100)) {
    return `it would mark ${removing} of ${present} rows removed, more than SYNC_MAX_REMOVED_PERCENT (${percent}%)`;
  }
  return '';
}

/** The counts FpxSyncState keeps of a run. */
function runRecord(result: SyncResult): RecordedCounts {
  return Object.fromEntries(RECORDED_COUNTS.map((key) => [key, result[key]])) as RecordedCounts;
}

/** The run's one summary line. */
function summary(result: SyncResult): string {
  return (
    `sync ${result.stream} ${result.status}: seen ${result.seen}, created ${result.created}, ` +
    `changed ${result.changed} (restored ${result.restored}), removed ${result.removed}` +
    (result.removalsSkipped
      ? ` (removals skipped: ${result.removalsSkipped}; ${result.removalsWithheld} rows kept)`
      : '') +
    ', ' +
    `unchanged ${result.unchanged}, duplicates ${result.duplicates}; ${result.pages} pages, ` +
    `${result.apiCalls} API calls, ${result.tableRequests} table requests ` +
    `(${result.transactions} transactions, ${result.entityWrites} entities written); ${result.durationMs} ms`
  );
}
