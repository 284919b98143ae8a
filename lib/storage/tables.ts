import type {
  GetTableEntityOptions,
  ListTableEntitiesOptions,
  TableClient,
  TableEntityResult,
  TransactionAction,
} from '@azure/data-tables';
import { isNotFound, isPreconditionFailed } from './errors';
import { once } from './once';

/** Creates a table if it does not exist yet (the SDK treats "already exists" as success). */
export async function ensureTable(client: TableClient): Promise<TableClient> {
  await client.createTable();
  return client;
}

const ensuredTables = new WeakMap<TableClient, Promise<void>>();

/**
 * Creates the table once per client and process, so a hot path does not pay a request for it each time;
 * concurrent first calls share one request, and a failed one is tried again by the next call.
 */
export function ensureTableOnce(client: TableClient): Promise<void> {
  return once(ensuredTables, client, () => client.createTable());
}

/** The entity, or undefined when it (or its table) does not exist. */
export async function getEntityOrUndefined<T extends object = Record<string, unknown>>(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  options?: GetTableEntityOptions,
): Promise<TableEntityResult<T> | undefined> {
  try {
    return await table.getEntity<T>(partitionKey, rowKey, options);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * The entities a query lists; none when the table does not exist yet (nothing was ever written to it).
 * With `maxPageSize`, pages of that size are asked for (a caller that stops early reads no more).
 */
export async function* listEntitiesOrNone<T extends object = Record<string, unknown>>(
  table: TableClient,
  options?: ListTableEntitiesOptions,
  maxPageSize?: number,
): AsyncGenerator<TableEntityResult<T>> {
  const listing = table.listEntities<T>(options);
  try {
    if (maxPageSize === undefined) yield* listing;
    else for await (const page of listing.byPage({ maxPageSize })) yield* page;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/**
 * Deletes the entity if it is still the version `etag` names (any version without one). One that is gone, or
 * was changed since, is left as it is: false.
 */
export async function deleteEntityIfUnchanged(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  etag: string | undefined,
): Promise<boolean> {
  try {
    await table.deleteEntity(partitionKey, rowKey, { etag });
    return true;
  } catch (error) {
    if (isNotFound(error) || isPreconditionFailed(error)) return false;
    throw error;
  }
}

/**
 * Deletes every entity the filter matches, in transactions of up to 100 per partition; returns how many. A
 * table that does not exist, or a batch whose entities are gone already, deletes nothing and fails nothing.
 */
export async function deleteEntities(table: TableClient, filter: string): Promise<number> {
  const byPartition = new Map<string, TransactionAction[]>();
  let deleted = 0;
  const flush = async (partitionKey: string) => {
    const batch = byPartition.get(partitionKey) ?? [];
    byPartition.set(partitionKey, []);
    if (batch.length === 0) return;
    try {
      await table.submitTransaction(batch);
      deleted += batch.length;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  };
  for await (const row of listEntitiesOrNone(table, {
    queryOptions: { filter, select: ['PartitionKey', 'RowKey'] },
  })) {
    const partitionKey = String(row.partitionKey);
    const batch = byPartition.get(partitionKey) ?? [];
    batch.push(['delete', { partitionKey, rowKey: String(row.rowKey) }]);
    byPartition.set(partitionKey, batch);
    if (batch.length === 100) await flush(partitionKey);
  }
  for (const partitionKey of byPartition.keys()) await flush(partitionKey);
  return deleted;
}
