import type { QueueClient, QueueSendMessageOptions } from '@azure/storage-queue';
import { isNotFound } from './errors';
import { once } from './once';

const ensuredQueues = new WeakMap<QueueClient, Promise<void>>();

/**
 * Creates the queue once per client and process (a hot path need not pay a request for it each time);
 * concurrent first calls share one request, and a failed one is tried again by the next call.
 */
export function ensureQueueOnce(client: QueueClient): Promise<void> {
  return once(ensuredQueues, client, () => client.createIfNotExists());
}

/** Messages in the queue (approximate, as the service counts them); a queue not created yet holds none. */
export async function queueDepth(
  queue: QueueClient,
  options?: { abortSignal?: AbortSignal },
): Promise<number> {
  try {
    return (await queue.getProperties(options)).approximateMessagesCount ?? 0;
  } catch (error) {
    if (isNotFound(error)) return 0;
    throw error;
  }
}

/**
 * Queue messages are base64 of UTF-8 text: what the Functions host's queue trigger reads by default
 * (`messageEncoding: base64`).
 */
function encodeMessageText(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** The text a base64 message holds; undefined when the message is not base64. */
export function decodeMessageText(message: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(message)) return undefined;
  return Buffer.from(message, 'base64').toString('utf8');
}

/** Sends `text` as the host's trigger reads it (base64); the queue is created first, once per process. */
export async function sendTextMessage(
  queue: QueueClient,
  text: string,
  options?: QueueSendMessageOptions,
): Promise<void> {
  await ensureQueueOnce(queue);
  await queue.sendMessage(encodeMessageText(text), options);
}

/** Sends `value` as JSON, as the host's trigger reads it (base64); the queue is created first, once per process. */
export function sendJsonMessage(
  queue: QueueClient,
  value: unknown,
  options?: QueueSendMessageOptions,
): Promise<void> {
  return sendTextMessage(queue, JSON.stringify(value), options);
}

/** The JSON value a message (base64 of JSON) holds; throws when it holds none. */
export function parseJsonMessage(message: string): unknown {
  const text = decodeMessageText(message);
  if (text === undefined) throw new Error('The message is not base64');
  return JSON.parse(text);
}
