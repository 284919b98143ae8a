import type { QueueClient } from '@azure/storage-queue';
import { QUEUES } from '../ops/status';
import { queueDepth } from '../storage';

/**
 * The depth of every queue the operations page shows (the work queues and their poison queues), for the
 * `queue.depth` gauge; a queue that cannot be read within 5 s is -1. Never throws.
 */
export function readQueueDepths(
  queue: (name: string) => QueueClient,
): Promise<{ name: string; depth: number }[]> {
  return Promise.all(
    QUEUES.map(async ({ name }) => ({
      name,
      depth: await queueDepth(queue(name), { abortSignal: AbortSignal.timeout(5_000) }).catch(() => -1),
    })),
  );
}
