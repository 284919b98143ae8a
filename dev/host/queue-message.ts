import { randomUUID } from 'node:crypto';
import type { RpcTypedData } from './core-types';
import type { InvocationInput } from './invocation';

/**
 * Storage queue messages as the Functions host hands them to a queue trigger: the host's default
 * `messageEncoding` is base64, so the text is decoded first; text that is not base64 is taken as is.
 * A message that is JSON reaches the handler parsed (the library parses string data), others as text.
 */

export interface QueueMessageView {
  messageId: string;
  popReceipt: string;
  /** The message text as stored (base64 normally). */
  messageText: string;
  dequeueCount: number;
  insertedOn?: Date;
  expiresOn?: Date;
  nextVisibleOn?: Date;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decoded bytes of a base64 message, or undefined when the text is not canonical base64. */
export function decodeBase64Message(text: string): Buffer | undefined {
  const compact = text.trim();
  if (compact.length === 0 || !BASE64.test(compact)) return undefined;
  const bytes = Buffer.from(compact, 'base64');
  return bytes.toString('base64') === compact ? bytes : undefined;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The trigger's data: decoded text (parsed later by the library if JSON), or bytes if not UTF-8. */
export function messageData(messageText: string): { data: RpcTypedData; text: string } {
  const bytes = decodeBase64Message(messageText);
  if (!bytes) return { data: { string: messageText }, text: messageText };
  if (!isUtf8(bytes)) return { data: { bytes }, text: messageText };
  const text = bytes.toString('utf8');
  return { data: { string: text }, text };
}

/** What a producer would enqueue for `value`: JSON for non-strings, base64 as the host expects. */
export function encodeQueueMessage(value: unknown): string {
  const text = typeof value === 'string' ? value : Buffer.isBuffer(value) ? undefined : JSON.stringify(value);
  return text === undefined
    ? (value as Buffer).toString('base64')
    : Buffer.from(text, 'utf8').toString('base64');
}

const json = (value: unknown): RpcTypedData => ({ json: JSON.stringify(value) });

export function queueInvocationInput(
  functionName: string,
  triggerBinding: string,
  message: QueueMessageView,
): InvocationInput {
  const { data, text } = messageData(message.messageText);
  const iso = (date: Date | undefined) => json(date ? date.toISOString() : null);
  return {
    inputData: [{ name: triggerBinding, data }],
    // The keys the Functions host sends for queue triggers; the library camel-cases them.
    triggerMetadata: {
      QueueTrigger: { string: text },
      DequeueCount: json(message.dequeueCount),
      Id: { string: message.messageId },
      PopReceipt: { string: message.popReceipt },
      InsertionTime: iso(message.insertedOn),
      ExpirationTime: iso(message.expiresOn),
      NextVisibleTime: iso(message.nextVisibleOn),
      sys: json({ MethodName: functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() }),
    },
  };
}

/** A message for a run that did not come from a queue (admin endpoint, `invoke`). */
export function syntheticMessage(value: unknown): QueueMessageView {
  const now = new Date();
  return {
    messageId: randomUUID(),
    popReceipt: 'local-invocation',
    messageText: encodeQueueMessage(value),
    dequeueCount: 1,
    insertedOn: now,
    expiresOn: new Date(now.getTime() + 7 * 24 * 3600 * 1000),
    nextVisibleOn: now,
  };
}
