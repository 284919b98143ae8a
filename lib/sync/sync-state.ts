import type { TableClient } from '@azure/data-tables';

/** FpxSyncState: PartitionKey `sync`, RowKey the stream name. */
export const SYNC_STATE_PARTITION = 'sync';

export type SyncStatus = 'succeeded' | 'failed';

/** What a finished run records (merged into the stream's row, so `lastCompletedAt` survives a failure). */
export interface SyncRunRecord {
  lastStatus: SyncStatus;
  /** The failure's message; empty (our null) after a success. */
  lastError: string;
  /** Only written on success. */
  lastCompletedAt?: string;
  seen: number;
  created: number;
  changed: number;
  restored: number;
  removed: number;
  unchanged: number;
  duplicates: number;
  pages: number;
  apiCalls: number;
  tableRequests: number;
  entityWrites: number;
  durationMs: number;
}

export interface SyncStateRow extends Partial<SyncRunRecord> {
  partitionKey: string;
  rowKey: string;
  lastStartedAt?: string;
}

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
