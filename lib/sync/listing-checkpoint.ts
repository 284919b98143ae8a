import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';
import { deleteEntities, ensureTableOnce, getEntityOrUndefined, listEntitiesOrNone } from '../storage';
import { SYNC_STATE_PARTITION } from './sync-state';

/**
 * A listing too long for one invocation continues in the next: where to go on is kept in the stream's
 * FpxSyncState row, and the keys each part saw in FpxSyncCheckpoints (PartitionKey the stream), so that
 * removals, marked only once the listing is complete, count what every part delivered.
 */
export const CHECKPOINTS_TABLE = 'FpxSyncCheckpoints';

export interface Checkpoint {
  /** The page the next part reads first. */
  nextPage: number;
  /** Items the parts so far delivered (duplicates included). */
  itemsBefore: number;
  /** When the listing's first part started: names its key rows. */
  listingStartedAt: string;
  parts: number;
}

/** A checkpoint older than this is not continued: FPX has moved on, the listing starts again. */
const MAX_AGE_MS = 6 * 3600_000;
/** Keys per row: one string property holds 32K UTF-16 units. */
const KEY_CHARS_PER_ROW = 30_000;

export async function readCheckpoint(
  state: TableClient,
  stream: string,
  now: Date,
): Promise<Checkpoint | undefined> {
  const row = await getEntityOrUndefined(state, SYNC_STATE_PARTITION, stream);
  if (!row) return undefined;
  const nextPage = Number(row.resumePage ?? 0);
  const listingStartedAt = String(row.resumeListingStartedAt ?? '');
  if (!(nextPage > 1) || !listingStartedAt) return undefined;
  if (now.getTime() - Date.parse(listingStartedAt) > MAX_AGE_MS) return undefined;
  return {
    nextPage,
    itemsBefore: Number(row.resumeItems ?? 0),
    listingStartedAt,
    parts: Number(row.resumeParts ?? 0),
  };
}

/** Records where the next part goes on (`undefined`: the listing is complete, start from page 1). */
export async function writeCheckpoint(
  state: TableClient,
  stream: string,
  checkpoint: Checkpoint | undefined,
): Promise<void> {
  await state.upsertEntity(
    {
      partitionKey: SYNC_STATE_PARTITION,
      rowKey: stream,
      resumePage: checkpoint?.nextPage ?? 0,
      resumeItems: checkpoint?.itemsBefore ?? 0,
      resumeListingStartedAt: checkpoint?.listingStartedAt ?? '',
      resumeParts: checkpoint?.parts ?? 0,
    },
    'Merge',
  );
}

/** The keys one part saw, in rows of the stream's partition, written in batch transactions. */
export async function saveSeenKeys(
  table: TableClient,
  stream: string,
  checkpoint: Pick<Checkpoint, 'listingStartedAt' | 'parts'>,
  keys: readonly string[],
): Promise<void> {
  await ensureTableOnce(table);
  const rows: TransactionAction[] = [];
  let chunk: string[] = [];
  let chars = 0;
  const flush = () => {
    if (chunk.length === 0) return;
    const rowKey = `${checkpoint.listingStartedAt}-${String(checkpoint.parts).padStart(4, '0')}-${String(rows.length).padStart(5, '0')}`;
    rows.push(['upsert', { partitionKey: stream, rowKey, keys: JSON.stringify(chunk) }, 'Replace']);
    chunk = [];
    chars = 0;
  };
  for (const key of keys) {
    if (chars + key.length + 4 > KEY_CHARS_PER_ROW) flush();
    chunk.push(key);
    chars += key.length + 4;
  }
  flush();
  for (let i = 0; i < rows.length; i += 100) await table.submitTransaction(rows.slice(i, i + 100));
}

/** Every key the earlier parts of this listing saw. */
export async function readSeenKeys(
  table: TableClient,
  stream: string,
  listingStartedAt: string,
): Promise<Set<string>> {
  const keys = new Set<string>();
  const filter = odata`PartitionKey eq ${stream} and RowKey ge ${`${listingStartedAt}-`} and RowKey lt ${`${listingStartedAt}.`}`;
  for await (const row of listEntitiesOrNone<{ keys: string }>(table, {
    queryOptions: { filter, select: ['keys'] },
  })) {
    for (const key of JSON.parse(row.keys) as string[]) keys.add(key);
  }
  return keys;
}

/** The stream's key rows go once its listing is complete (or started again). */
export async function deleteSeenKeys(table: TableClient, stream: string): Promise<void> {
  await deleteEntities(table, odata`PartitionKey eq ${stream}`);
}
