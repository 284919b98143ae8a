import type { QueueClient } from '@azure/storage-queue';
import { QUEUES } from '../ops/status';
import { queueDepth } from '../storage';
import { recordQueueDepths } from './index';

/**
 * Reads the depth of every queue the operations page shows (the work queues and their poison queues) for the
 * `queue.depth` gauge. A queue that cannot be read keeps its last sample; this never throws.
 */
export async function sampleQueueDepths(queue: (name: string) => QueueClient): Promise<void> {
  const depths = await Promise.all(
    QUEUES.map(async ({ name }) => ({
      name,
      depth: await queueDepth(queue(name), { abortSignal: AbortSignal.timeout(5_000) }).catch(() => -1),
    })),
  );
  recordQueueDepths(depths);
}
