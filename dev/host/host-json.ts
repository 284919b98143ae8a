import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The host.json settings the local host honours, read the way the Functions host reads them. */
export interface HostJsonSettings {
  routePrefix?: string;
  maxDequeueCount?: number;
  visibilityTimeoutSeconds?: number;
  batchSize?: number;
  newBatchThreshold?: number;
  maxPollingIntervalMs?: number;
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

export function readHostJson(projectRoot: string): HostJsonSettings {
  const file = path.join(projectRoot, 'host.json');
  if (!existsSync(file)) return {};
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    extensions?: {
      http?: { routePrefix?: string };
      queues?: {
        maxDequeueCount?: number;
        visibilityTimeout?: string;
        batchSize?: number;
        newBatchThreshold?: number;
        maxPollingInterval?: string | number;
      };
    };
  };
  const http = json.extensions?.http;
  const queues = json.extensions?.queues;
  const polling = queues?.maxPollingInterval;
  return {
    routePrefix: http?.routePrefix,
    maxDequeueCount: queues?.maxDequeueCount,
    visibilityTimeoutSeconds: queues?.visibilityTimeout
      ? timeSpanSeconds(queues.visibilityTimeout)
      : undefined,
    batchSize: queues?.batchSize,
    newBatchThreshold: queues?.newBatchThreshold,
    maxPollingIntervalMs:
      typeof polling === 'number'
        ? polling
        : polling
          ? (timeSpanSeconds(polling) ?? 0) * 1000 || undefined
          : undefined,
  };
}
