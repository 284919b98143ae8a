import { performance } from 'node:perf_hooks';
import type { TableClient } from '@azure/data-tables';
import { type NamedRef, REFERENCE_LISTS, type ReferenceList } from '../fpx';
import { safeErrorMessage } from '../redact';
import { ensureTableOnce } from '../storage';
import { type StreamDeps, TABLES, timeOf } from './fpx-streams';
import {
  RECORDED_COUNTS,
  type RecordedCounts,
  recordRunEnd,
  recordRunStart,
  SYNC_RUNS_TABLE,
  type SyncResult,
} from './sync-state';
import { syncStream } from './sync-stream';

/** syncReferenceData's RowKey in FpxSyncState: one row for all the lists. */
export const REFERENCE_DATA_STREAM = 'referenceData';

export type ReferenceListOutcome =
  | { list: ReferenceList; result: SyncResult }
  | { list: ReferenceList; error: string };

export interface ReferenceDataResult extends RecordedCounts {
  stream: typeof REFERENCE_DATA_STREAM;
  status: 'succeeded' | 'failed';
  /** Each list's outcome, in REFERENCE_LISTS order. */
  lists: ReferenceListOutcome[];
  /** `list: error` of each failed list, `; ` between them; '' when none failed. */
  error: string;
}

/** A run in which at least one list failed: the others were synced (see `result`). */
export class ReferenceDataError extends Error {
  constructor(readonly result: ReferenceDataResult) {
    super(`sync ${REFERENCE_DATA_STREAM}: ${result.error}`);
    this.name = 'ReferenceDataError';
  }
}

/** Counts summed over the lists (the rest of RecordedCounts is the run's: reasons, FPX calls, duration). */
const SUMMED = [
  'seen',
  'created',
  'changed',
  'restored',
  'removed',
  'removalsWithheld',
  'unchanged',
  'duplicates',
  'pages',
  'tableRequests',
  'entityWrites',
] as const satisfies readonly (keyof RecordedCounts)[];

/**
 * syncReferenceData: every reference list (REFERENCE_LISTS) into FpxReferenceData, PartitionKey the list's
 * name, RowKey the item's id as FPX sends it, one syncStream per list (only changes are written). A list is
 * read whole before it is written, so an empty one is known in time to mark nothing removed: an empty
 * reference list is FPX failing, never the CRM's ids ceasing to exist. A failing list does not stop the
 * others; the run records one FpxSyncState row (`referenceData`) with the summed counts, and throws
 * ReferenceDataError at the end so the invocation shows as failed.
 */
export async function syncReferenceData(deps: StreamDeps): Promise<ReferenceDataResult> {
  const clock = timeOf(deps);
  const startedAt = performance.now();
  const rows = deps.table(TABLES.referenceData);
  const state = deps.table(TABLES.syncState);
  await ensureTableOnce(state);
  const runStartedAt = clock().toISOString();
  await recordRunStart(state, REFERENCE_DATA_STREAM, runStartedAt);

  let apiCalls = 0;
  const onAttempt = () => {
    apiCalls++;
  };
  const lists: ReferenceListOutcome[] = [];
  for (const list of Object.keys(REFERENCE_LISTS) as ReferenceList[]) {
    try {
      lists.push({ list, result: await syncList(deps, rows, list, onAttempt) });
    } catch (error) {
      lists.push({ list, error: safeErrorMessage(error) });
    }
  }

  const results = lists.flatMap((outcome) => ('result' in outcome ? [outcome.result] : []));
  const counts = Object.fromEntries(
    SUMMED.map((key) => [key, results.reduce((sum, result) => sum + result[key], 0)]),
  ) as Record<(typeof SUMMED)[number], number>;
  const each = (pick: (outcome: ReferenceListOutcome) => string | undefined) =>
    lists.flatMap((outcome) => (pick(outcome) ? [`${outcome.list}: ${pick(outcome)}`] : [])).join('; ');
  const error = each((o) => ('error' in o ? o.error : undefined));
  const result: ReferenceDataResult = {
    stream: REFERENCE_DATA_STREAM,
    status: error ? 'failed' : 'succeeded',
    ...counts,
    removalsSkipped: each((o) => ('result' in o ? o.result.removalsSkipped : undefined)),
    apiCalls,
    durationMs: Math.round(performance.now() - startedAt),
    lists,
    error,
  };
  const recorded = Object.fromEntries(RECORDED_COUNTS.map((key) => [key, result[key]])) as RecordedCounts;
  await recordRunEnd(
    state,
    REFERENCE_DATA_STREAM,
    runStartedAt,
    {
      ...recorded,
      lastStatus: result.status,
      lastError: error ? safeErrorMessage(error) : '',
      ...(error ? {} : { lastCompletedAt: clock().toISOString() }),
    },
    deps.table(SYNC_RUNS_TABLE),
  );
  deps.log?.(summary(result));
  if (error) throw new ReferenceDataError(result);
  return result;
}

/** One list: read every page, then sync it into its partition (no removals when it came back empty). */
async function syncList(
  deps: StreamDeps,
  rows: TableClient,
  list: ReferenceList,
  onAttempt: () => void,
): Promise<SyncResult> {
  let calls = 0;
  const counted = () => {
    calls++;
    onAttempt();
  };
  const pages: NamedRef[][] = [];
  const listing = deps.fpx.referencePages(list, { onAttempt: counted });
  for await (const page of listing.pages()) pages.push(page.items);
  const empty = pages.every((page) => page.length === 0);
  const result = await syncStream<NamedRef>({
    stream: `${REFERENCE_DATA_STREAM}.${list}`,
    rows,
    partitionKey: list,
    rowKey: (item) => {
      if (item.id === null || item.id === undefined || item.id === '') throw new Error('the item has no id');
      return String(item.id);
    },
    pages: (async function* () {
      yield* pages;
    })(),
    skipRemovals: empty ? `GET ${REFERENCE_LISTS[list]} came back empty` : undefined,
    maxRemovedPercent: deps.maxRemovedPercent,
    now: timeOf(deps),
  });
  return { ...result, apiCalls: calls };
}

/** The run's one log line. */
function summary(result: ReferenceDataResult): string {
  const synced = result.lists.length - result.lists.filter((o) => 'error' in o).length;
  return (
    `sync ${result.stream} ${result.status}: ${synced} of ${result.lists.length} lists; ` +
    `seen ${result.seen}, created ${result.created}, changed ${result.changed} ` +
    `(restored ${result.restored}), removed ${result.removed}` +
    (result.removalsSkipped
      ? ` (removals skipped: ${result.removalsSkipped}; ${result.removalsWithheld} rows kept)`
      : '') +
    `, unchanged ${result.unchanged}, duplicates ${result.duplicates}; ${result.pages} pages, ` +
    `${result.apiCalls} API calls, ${result.tableRequests} table requests ` +
    `(${result.entityWrites} entities written); ${result.durationMs} ms` +
    (result.error ? `; failed: ${result.error}` : '')
  );
}
