import hostJsonFile from '../../host.json';

/** The host.json settings the app and the local host (dev/host) read, as the Functions host reads them. */
export interface HostJsonSettings {
  /** extensions.http.routePrefix */
  routePrefix?: string;
  /** extensions.queues.maxDequeueCount */
  maxDequeueCount?: number;
  /** extensions.queues.visibilityTimeout, in seconds */
  visibilityTimeoutSeconds?: number;
  /** extensions.queues.batchSize and newBatchThreshold */
  batchSize?: number;
  newBatchThreshold?: number;
}

/** The part of host.json's shape those settings come from. */
export interface HostJsonFile {
  extensions?: {
    http?: { routePrefix?: string };
    queues?: {
      maxDequeueCount?: number;
      visibilityTimeout?: string;
      batchSize?: number;
      newBatchThreshold?: number;
    };
  };
}

/** "hh:mm:ss" or "d.hh:mm:ss" (a .NET TimeSpan) in seconds. */
export function timeSpanSeconds(value: string): number | undefined {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(value.trim());
  if (!match) return undefined;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0', fraction = '0'] = match;
  return (
    ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 +
    Number(seconds) +
    Number(`0.${fraction}`)
  );
}

export function hostJsonSettings(json: HostJsonFile): HostJsonSettings {
  const http = json.extensions?.http;
  const queues = json.extensions?.queues;
  return {
    routePrefix: http?.routePrefix,
    maxDequeueCount: queues?.maxDequeueCount,
    visibilityTimeoutSeconds: queues?.visibilityTimeout
      ? timeSpanSeconds(queues.visibilityTimeout)
      : undefined,
    batchSize: queues?.batchSize,
    newBatchThreshold: queues?.newBatchThreshold,
  };
}

/** The app's host.json (deployed beside the bundle, which carries this copy of it). */
export const HOST_JSON: HostJsonSettings = hostJsonSettings(hostJsonFile);

/**
 * host.json queues.maxDequeueCount (the host's default, 5, when unset): the dequeue after which the host moves
 * a message that keeps failing to the queue's `-poison` queue.
 */
export const MAX_DEQUEUE_COUNT = HOST_JSON.maxDequeueCount ?? 5;
