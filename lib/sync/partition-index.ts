import { odata, type TableClient } from '@azure/data-tables';
import { isRemoved } from './row';

/** What a run needs to know about a row it may write: small, so 100,000 rows stay a few MB. */
export interface KnownRow {
  contentHash: string;
  firstSeenAt: string;
  removed: boolean;
  /** The row's `lastChangedAt`: the version a CRM event of its next change follows. */
  lastChangedAt?: string;
  /** Set once the current listing has delivered this row. */
  seen: boolean;
}

/** The columns the diff needs; everything else stays in the table. */
const INDEX_COLUMNS = ['rowKey', 'contentHash', 'removedAt', 'firstSeenAt', 'lastChangedAt'];

/** Reads the partition the listing covers, only the index columns, into a map by RowKey. */
export async function readPartitionIndex(
  table: TableClient,
  partitionKey: string,
): Promise<Map<string, KnownRow>> {
  const known = new Map<string, KnownRow>();
  const entities = table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: odata`PartitionKey eq ${partitionKey}`, select: INDEX_COLUMNS },
  });
  for await (const entity of entities) {
    if (entity.rowKey === undefined) continue;
    known.set(entity.rowKey, {
      contentHash: typeof entity.contentHash === 'string' ? entity.contentHash : '',
      firstSeenAt: typeof entity.firstSeenAt === 'string' ? entity.firstSeenAt : '',
      removed: isRemoved({ removedAt: entity.removedAt }),
      lastChangedAt: typeof entity.lastChangedAt === 'string' ? entity.lastChangedAt : '',
      seen: false,
    });
  }
  return known;
}
