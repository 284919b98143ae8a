import { randomBytes } from 'node:crypto';
import { odata, type TableClient } from '@azure/data-tables';
import { inject } from 'vitest';
import { listEntitiesOrNone, tableClient } from '../../lib/storage';

/**
 * Fresh tables for one test in the run's one Azurite: each name gets a suffix of its own, so suites and
 * tests never see each other's rows. Returns a `table(name)` as the app's services have.
 */
export function freshTables(): (name: string) => TableClient {
  const suffix = randomBytes(4).toString('hex');
  const made = new Map<string, TableClient>();
  return (name) => {
    let client = made.get(name);
    if (!client) {
      client = tableClient(inject('storageConnection'), `${name}${suffix}`);
      made.set(name, client);
    }
    return client;
  };
}

/** Every row of one partition; none when the table does not exist yet. */
export async function partitionRows(
  table: TableClient,
  partition: string,
): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for await (const row of listEntitiesOrNone(table, {
    queryOptions: { filter: odata`PartitionKey eq ${partition}` },
  })) {
    rows.push(row);
  }
  return rows;
}
