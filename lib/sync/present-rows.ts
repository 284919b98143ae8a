import { odata, type TableClient } from '@azure/data-tables';
import { listEntitiesOrNone } from '../storage';

/** Rows not marked removed; none when the table does not exist yet (that stream never ran). */
export async function* presentRows<T extends object>(
  table: TableClient,
  partition: string | undefined,
  select: string[],
  where = '',
) {
  const inPartition = partition === undefined ? '' : odata`PartitionKey eq ${partition} and `;
  yield* listEntitiesOrNone<T>(table, {
    queryOptions: { filter: `${inPartition}removedAt eq ''${where ? ` and ${where}` : ''}`, select },
  });
}
