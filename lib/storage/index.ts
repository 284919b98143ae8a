import { TableClient } from '@azure/data-tables';
import { QueueClient, type StoragePipelineOptions } from '@azure/storage-queue';

/**
 * Table and queue clients from the AzureWebJobsStorage connection string.
 * Azurite speaks plain http on loopback, which the Table SDK refuses unless told.
 */
export function isInsecureEndpoint(connection: string): boolean {
  return /UseDevelopmentStorage=true/i.test(connection) || /Endpoint=http:\/\//i.test(connection);
}

export function tableClient(connection: string, table: string): TableClient {
  return TableClient.fromConnectionString(connection, table, {
    allowInsecureConnection: isInsecureEndpoint(connection),
  });
}

export function queueClient(
  connection: string,
  queue: string,
  options?: StoragePipelineOptions,
): QueueClient {
  return new QueueClient(connection, queue, options);
}

/** Creates a table if it does not exist yet (the SDK treats "already exists" as success). */
export async function ensureTable(client: TableClient): Promise<TableClient> {
  await client.createTable();
  return client;
}
