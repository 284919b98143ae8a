import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { expect, inject, test } from 'vitest';

test('Azurite from the global setup serves tables and queues', async () => {
  const connection = inject('storageConnection');
  const table = TableClient.fromConnectionString(connection, 'SetupCheck', { allowInsecureConnection: true });
  await table.createTable();
  await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 42 });
  expect((await table.getEntity<{ value: number }>('p', 'r')).value).toBe(42);

  const queue = new QueueClient(connection, 'setup-check');
  await queue.createIfNotExists();
  await queue.sendMessage('hello');
  const { receivedMessageItems } = await queue.receiveMessages();
  expect(receivedMessageItems[0]?.messageText).toBe('hello');
});
