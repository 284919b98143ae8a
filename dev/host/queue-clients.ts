import type { QueueClient } from '@azure/storage-queue';
import { queueClient } from '../../lib/storage';
import type { QueueClientFactory } from './outputs';

/**
 * Queue clients by connection and queue name, each queue created once if missing (the Functions host
 * creates trigger, poison and output queues on demand). Few retries: the poll loops retry themselves.
 */
export function queueClientCache(): QueueClientFactory {
  const clients = new Map<string, Promise<QueueClient>>();
  return (connection, queueName) => {
    const key = `${connection}\u0000${queueName}`;
    let client = clients.get(key);
    if (!client) {
      const created = queueClient(connection, queueName, {
        retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000, tryTimeoutInMs: 30_000 },
      });
      client = created.createIfNotExists().then(() => created);
      // A failed creation (storage down) is retried by the next caller.
      client.catch(() => clients.delete(key));
      clients.set(key, client);
    }
    return client;
  };
}
