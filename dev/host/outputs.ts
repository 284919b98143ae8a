import type { QueueClient } from '@azure/storage-queue';
import type { RpcInvocationResponse, RpcTypedData } from './core-types';
import { connectionSettingName, resolveConnection } from './function-info';
import type { RegisteredFunction } from './functions-core';
import { encodeQueueMessage } from './queue-message';
import { resolveSettingReferences, type SettingSources } from './settings';

/**
 * Output bindings the local host carries out after a successful invocation, as the Functions host does
 * before it reports success. Storage queue outputs are supported (an array sends one message per
 * item); other output types are reported so that nothing is dropped silently.
 */

export type QueueClientFactory = (connection: string, queueName: string) => Promise<QueueClient>;

function outputValue(data: RpcTypedData | null | undefined): unknown {
  if (!data) return undefined;
  if (typeof data.string === 'string') return data.string;
  if (typeof data.json === 'string') return JSON.parse(data.json);
  if (data.bytes) return Buffer.from(data.bytes);
  if (typeof data.int === 'number') return data.int;
  if (typeof data.double === 'number') return data.double;
  return undefined;
}

export async function deliverOutputs(
  fn: RegisteredFunction,
  response: RpcInvocationResponse | undefined,
  sources: SettingSources,
  queues: QueueClientFactory,
  warn: (message: string) => void,
): Promise<void> {
  if (!response) return;
  const name = fn.metadata.name;
  for (const [bindingName, binding] of Object.entries(fn.metadata.bindings)) {
    if (binding.direction !== 'out' || binding.type?.toLowerCase() === 'http') continue;
    const data =
      bindingName === '$return'
        ? response.returnValue
        : response.outputData?.find((o) => o.name === bindingName)?.data;
    const value = outputValue(data);
    if (value === undefined || value === null) continue;
    if (binding.type?.toLowerCase() !== 'queue') {
      warn(
        `Function ${name}: output binding "${bindingName}" of type ${binding.type} is not emulated locally; its value was dropped`,
      );
      continue;
    }
    const queueName = resolveSettingReferences(
      String(binding.queueName ?? ''),
      sources,
      name,
      `output "${bindingName}" queue name`,
    ).toLowerCase();
    const connection = resolveConnection(
      connectionSettingName(typeof binding.connection === 'string' ? binding.connection : undefined),
      sources,
      name,
    );
    const client = await queues(connection, queueName);
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) await client.sendMessage(encodeQueueMessage(item));
  }
}
