import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';

export const DELIVERY_QUEUE = 'crm-deliveries';
export const DELIVERY_POISON_QUEUE = `${DELIVERY_QUEUE}-poison`;

/** A queue message names the delivery only (the payload is in the table): far below the 64 KiB limit. */
export const deliveryMessage = z.object({ deliveryId: z.uuid() });
export type DeliveryMessage = z.infer<typeof deliveryMessage>;

/** Base64 JSON, as the Functions host's queue trigger reads it by default (`messageEncoding: base64`). */
export function encodeDeliveryMessage(message: DeliveryMessage): string {
  return Buffer.from(JSON.stringify(message), 'utf8').toString('base64');
}

/**
 * The `crm-deliveries` queue and its poison queue. Each retry is a new message made invisible for the
 * backoff (`visibilityTimeout`); the message being processed then completes. The host's own retries
 * (a fixed delay, `maxDequeueCount` 5 for every queue) are left for unexpected failures only.
 */
export class DeliveryQueue {
  private readonly ready = new Map<QueueClient, Promise<unknown>>();

  constructor(
    readonly main: QueueClient,
    readonly poisonQueue: QueueClient,
  ) {}

  /** The delivery's next attempt, in `delaySeconds`. */
  async schedule(deliveryId: string, delaySeconds: number): Promise<void> {
    await this.ensure(this.main);
    await this.main.sendMessage(encodeDeliveryMessage({ deliveryId }), {
      visibilityTimeout: Math.max(0, Math.round(delaySeconds)),
    });
  }

  /** Attempts exhausted (or a message we cannot read): parked in `crm-deliveries-poison` for an operator. */
  async poison(message: unknown): Promise<void> {
    await this.ensure(this.poisonQueue);
    const text = typeof message === 'string' ? message : JSON.stringify(message ?? null);
    await this.poisonQueue.sendMessage(Buffer.from(text, 'utf8').toString('base64'));
  }

  private async ensure(queue: QueueClient): Promise<void> {
    let ready = this.ready.get(queue);
    if (!ready) {
      ready = queue.createIfNotExists();
      ready.catch(() => this.ready.delete(queue));
      this.ready.set(queue, ready);
    }
    await ready;
  }
}
