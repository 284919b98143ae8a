import { odata, type TableClient } from '@azure/data-tables';

/** Rows not marked removed; none when the table does not exist yet (that stream never ran). */
export async function* presentRows<T extends object>(
  table: TableClient,
  partition: string | undefined,
  select: string[],
  where = '',
) {
  const inPartition = partition === undefined ? '' : odata`PartitionKey eq ${partition} and `;
  try {
    yield* table.listEntities<T>({
      queryOptions: { filter: `${inPartition}removedAt eq ''${where ? ` and ${where}` : ''}`, select },
    });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
}
