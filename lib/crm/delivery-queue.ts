import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { sendJsonMessage, sendTextMessage } from '../storage';

export const DELIVERY_QUEUE = 'crm-deliveries';
export const DELIVERY_POISON_QUEUE = `${DELIVERY_QUEUE}-poison`;

/** A queue message names the delivery only (the payload is in the table): far below the 64 KiB limit. */
export const deliveryMessage = z.object({ deliveryId: z.uuid() });
export type DeliveryMessage = z.infer<typeof deliveryMessage>;

/**
 * The `crm-deliveries` queue and its poison queue. Each retry is a new message made invisible for the
 * backoff (`visibilityTimeout`); the message being processed then completes. The host's own retries
 * (a fixed delay, host.json `maxDequeueCount` for every queue) are left for unexpected failures only.
 */
export class DeliveryQueue {
  constructor(
    readonly main: QueueClient,
    readonly poisonQueue: QueueClient,
  ) {}

  /** The delivery's next attempt, in `delaySeconds`. */
  async schedule(deliveryId: string, delaySeconds: number): Promise<void> {
    const message: DeliveryMessage = { deliveryId };
    await sendJsonMessage(this.main, message, {
      visibilityTimeout: Math.max(0, Math.round(delaySeconds)),
    });
  }

  /** Attempts exhausted (or a message we cannot read): parked in `crm-deliveries-poison` for an operator. */
  async poison(message: unknown): Promise<void> {
    const text = typeof message === 'string' ? message : JSON.stringify(message ?? null);
    await sendTextMessage(this.poisonQueue, text);
  }
}
