import type { AddressInfo } from 'node:net';
import { DEFAULT_ENTRY } from './app-loader';
import type { RegisteredFunctionInfo } from './function-info';
import { createHostServer } from './http-server';
import type { InvocationOutcome } from './invocation';
import { consoleLogger, type HostLogger, hostLine } from './logger';
import { HostRuntime } from './runtime';
import type { Settings } from './settings';

// What `npm start` needs besides startHost: settings as Core Tools reads them, loggers.
export { DEFAULT_ENTRY, PROJECT_ROOT } from './app-loader';
export type { RegisteredFunctionInfo } from './function-info';
export type { InvocationOutcome } from './invocation';
export { consoleLogger, type HostLogger, type LogEntry, type LogLevel, memoryLogger } from './logger';
export { currentSettings, readLocalSettings, SettingError } from './settings';

export interface HostOptions {
  /** Module that registers the app's functions (default: functions/index.ts of the project). */
  entry?: string;
  /** Default 7071; 0 picks a free port. */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  hostname?: string;
  /**
   * App settings for `%NAME%` references and process.env (default process.env). The host adds no defaults:
   * a function whose `%NAME%` is unset is in error and not registered, as in Azure.
   */
  settings?: Settings;
  /** host.json extensions.http.routePrefix (default "api"). */
  routePrefix?: string;
  /** Queue polling interval, doubled while the queue is empty (default 100..2000 ms). */
  queuePollIntervalMs?: { min: number; max: number };
  /** host.json queues.maxDequeueCount (default 5). */
  maxDequeueCount?: number;
  /** host.json queues.visibilityTimeout in seconds: delay before a failed message is retried (default 0). */
  visibilityTimeoutSeconds?: number;
  /** host.json queues.batchSize (default 8) and newBatchThreshold (default batchSize / 2). */
  batchSize?: number;
  newBatchThreshold?: number;
  /** Run timers on their schedule (default true). */
  timers?: boolean;
  /** Poll queues (default true). */
  queues?: boolean;
  /** Serve HTTP (default true); without it `url` is empty and only `invoke` runs functions. */
  http?: boolean;
  /** How long `stop()` waits for invocations in flight (default 10 s). */
  stopTimeoutMs?: number;
  /** Directory handed to appStart hooks (default: the project root). */
  appDirectory?: string;
  logger?: HostLogger;
}

export interface RunningHost {
  /** http://127.0.0.1:<port> (no trailing slash); empty when `http: false`. */
  url: string;
  port: number;
  /** Every function the app registered and the host serves, in registration order. */
  functions: RegisteredFunctionInfo[];
  /**
   * Functions in error, by name: registered by the app but not served (e.g. a `%SETTING%` that is unset),
   * with the error naming the cause. Empty when every function runs.
   */
  errors: ReadonlyMap<string, Error>;
  /** Runs one function now, as the admin endpoint does, and resolves with its outcome. */
  invoke(name: string, input?: unknown): Promise<InvocationOutcome>;
  stop(): Promise<void>;
}

function listen(
  server: ReturnType<typeof createHostServer>,
  port: number,
  hostname: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, hostname, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Starts the local Azure Functions host: loads the app entry with our `@azure/functions-core`,
 * runs appStart hooks, and serves exactly what the app registered (HTTP routes, timers, queues).
 * A function with a `%SETTING%` that cannot be resolved is in error, as in Azure: it is not registered, an
 * error naming the setting is logged (and kept in `errors`), and the other functions run.
 */
export async function startHost(options: HostOptions = {}): Promise<RunningHost> {
  const logger = options.logger ?? consoleLogger();
  const routePrefix = (options.routePrefix ?? 'api').replace(/^\/+|\/+$/g, '');
  const hostname = options.hostname ?? '127.0.0.1';
  let origin = `http://${hostname}:${options.port ?? 7071}`;
  const batchSize = options.batchSize ?? 8;
  const runtime = await HostRuntime.create({
    entry: options.entry ?? DEFAULT_ENTRY,
    settings: options.settings,
    logger,
    origin: origin,
    routePrefix,
    appDirectory: options.appDirectory,
    queue: {
      batchSize,
      newBatchThreshold: options.newBatchThreshold ?? Math.floor(batchSize / 2),
      pollIntervalMs: options.queuePollIntervalMs ?? { min: 100, max: 2000 },
      maxDequeueCount: options.maxDequeueCount ?? 5,
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 0,
      leaseSeconds: 60,
    },
  });
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  // As Azure: a function whose trigger cannot be resolved is in error and not registered; the others run.
  for (const [name, error] of runtime.problems) {
    hostLine(logger, 'error', `The '${name}' function is in error and was not registered: ${error.message}`);
  }

  try {
    await runtime.start();
  } catch (error) {
    await runtime.stop(0);
    throw error;
  }
  let server: ReturnType<typeof createHostServer> | undefined;
  let port = 0;
  if (options.http !== false) {
    server = createHostServer(runtime, routePrefix, () => origin);
    try {
      port = await listen(server, options.port ?? 7071, hostname);
    } catch (error) {
      await runtime.stop(0);
      throw error;
    }
    origin = `http://${hostname}:${port}`;
    runtime.origin = origin;
  }
  if (options.timers !== false) runtime.startTimers();
  if (options.queues !== false) runtime.startQueues();

  const url = server ? origin : '';
  const functions = runtime.functions.map((f) =>
    f.trigger === 'http' && url
      ? { ...f, url: `${url}/${[routePrefix, f.route].filter(Boolean).join('/')}` }
      : { ...f },
  );
  for (const f of functions) {
    const what = f.url
      ? `[${f.methods?.join(',')}] ${f.url}`
      : f.schedule
        ? `timer ${f.schedule}`
        : f.queueName
          ? `queue ${f.queueName}`
          : f.triggerType;
    hostLine(logger, 'information', `Function ${f.name}: ${what}`);
  }
  if (url) hostLine(logger, 'information', `Host started on ${url}`);

  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    functions,
    errors: new Map(runtime.problems),
    invoke: async (name, input) => (await runtime.invoke(name, input)).outcome,
    stop() {
      stopping ??= (async () => {
        const closed = server
          ? new Promise<void>((resolve) => server.close(() => resolve()))
          : Promise.resolve();
        // Idle keep-alive connections would hold close() open.
        server?.closeIdleConnections();
        await runtime.stop(stopTimeoutMs);
        server?.closeAllConnections();
        await closed;
        hostLine(logger, 'information', 'Host stopped');
      })();
      return stopping;
    },
  };
}
