import type { TableClient } from '@azure/data-tables';
import type { SyncResult } from './sync-stream';

/** FpxSyncState: PartitionKey `sync`, RowKey the stream name. */
export const SYNC_STATE_PARTITION = 'sync';

export type SyncStatus = 'succeeded' | 'failed' | 'partial';

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
};

export async function recordRunStart(state: TableClient, stream: string, startedAt: string): Promise<void> {
  await state.upsertEntity(
    { partitionKey: SYNC_STATE_PARTITION, rowKey: stream, lastStartedAt: startedAt },
    'Merge',
  );
}

export async function recordRunEnd(state: TableClient, stream: string, record: SyncRunRecord): Promise<void> {
  await state.upsertEntity({ partitionKey: SYNC_STATE_PARTITION, rowKey: stream, ...record }, 'Merge');
}

/** The stream's state row, or undefined before its first run. */
export async function readSyncState(state: TableClient, stream: string): Promise<SyncStateRow | undefined> {
  try {
    return await state.getEntity<SyncStateRow>(SYNC_STATE_PARTITION, stream);
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

export { safeErrorMessage } from '../redact';
