import { loadApp, PROJECT_ROOT, sealApp } from './app-loader';
import { describeFunction, type RegisteredFunctionInfo, resolveConnection } from './function-info';
import {
  type AppRegistration,
  addCoreLogSink,
  currentProgrammingModel,
  installFunctionsCore,
} from './functions-core';
import { emitLog } from './invocation';
import { Invoker, type InvokerRun } from './invoker';
import { type HostLogger, hostLine } from './logger';
import { manualInvocationInput } from './manual-input';
import { queueClientCache } from './queue-clients';
import { QueueListener, type QueueListenerOptions } from './queues';
import { parseSchedule, type Schedule } from './schedule';
import { applySettingsToEnv, type SettingSources, type Settings } from './settings';
import { TimerRunner } from './timers';

export interface RuntimeOptions {
  entry?: string;
  /** App settings for `%NAME%` references and process.env (default process.env); no defaults are added. */
  settings?: Settings;
  logger: HostLogger;
  queue: QueueListenerOptions;
  /** Used to build URLs of manual HTTP runs. */
  origin: string;
  routePrefix: string;
  /** Directory given to appStart hooks (`functionAppDirectory`). */
  appDirectory?: string;
}

export class UnknownFunctionError extends Error {
  constructor(
    readonly functionName: string,
    readonly known: string[],
  ) {
    super(`Unknown function "${functionName}". Known functions: ${known.join(', ') || '(none)'}`);
    this.name = 'UnknownFunctionError';
  }
}

/**
 * The app as the local host runs it: loaded registrations, their resolved triggers, and the machinery
 * to invoke them. The HTTP server (host.ts) and `invoke` are built on it.
 */
export class HostRuntime {
  readonly functions: RegisteredFunctionInfo[] = [];
  /**
   * Functions in error, not registered, as Azure treats them: a trigger that could not be resolved (a missing
   * `%SETTING%`, a bad schedule, a missing connection). The other functions run.
   */
  readonly problems = new Map<string, Error>();
  readonly timers = new Map<string, TimerRunner>();
  readonly queueListeners: QueueListener[] = [];
  readonly invoker: Invoker;
  readonly sources: SettingSources;
  readonly #queues = queueClientCache();
  readonly #restoreEnv: () => void;
  #started = false;
  /** Origin for URLs of manual HTTP runs (the server's once it listens). */
  origin: string;

  private constructor(
    readonly app: AppRegistration,
    private readonly options: RuntimeOptions,
    restoreEnv: () => void,
  ) {
    this.#restoreEnv = restoreEnv;
    this.origin = options.origin;
    this.sources = { settings: options.settings ?? process.env };
    this.invoker = new Invoker(app, options.logger, this.sources, this.#queues);
    for (const fn of app.functions.values()) {
      try {
        const info = describeFunction(fn, this.sources);
        if (info.trigger === 'timer') this.timers.set(info.name, this.#timerRunner(info));
        if (info.trigger === 'queue') this.queueListeners.push(this.#queueListener(info));
        this.functions.push(info);
      } catch (error) {
        this.problems.set(fn.metadata.name, error as Error);
      }
    }
  }

  /** Puts the settings in process.env, loads the entry (once per process) and resolves every trigger. */
  static async create(options: RuntimeOptions): Promise<HostRuntime> {
    installFunctionsCore();
    const restoreEnv = options.settings ? applySettingsToEnv(options.settings) : () => undefined;
    try {
      const app = await loadApp(options.entry);
      addCoreLogSink((level, category, message) =>
        emitLog(app, options.logger, { level, category, message }),
      );
      return new HostRuntime(app, options, restoreEnv);
    } catch (error) {
      restoreEnv();
      throw error;
    }
  }

  #timerRunner(info: RegisteredFunctionInfo): TimerRunner {
    let schedule: Schedule;
    try {
      schedule = parseSchedule(info.schedule ?? '');
    } catch (error) {
      throw new Error(`Function ${info.name}: ${(error as Error).message}`);
    }
    return new TimerRunner(info, schedule, this.invoker, this.options.logger);
  }

  #queueListener(info: RegisteredFunctionInfo): QueueListener {
    const connection = resolveConnection(info.connection ?? 'AzureWebJobsStorage', this.sources, info.name);
    const queueName = info.queueName ?? '';
    return new QueueListener(
      info,
      () => this.#queues(connection, queueName),
      () => this.#queues(connection, `${queueName}-poison`),
      this.invoker,
      this.options.logger,
      this.options.queue,
    );
  }

  get logger(): HostLogger {
    return this.options.logger;
  }

  find(name: string): RegisteredFunctionInfo | undefined {
    return (
      this.functions.find((f) => f.name === name) ??
      this.functions.find((f) => f.name.toLowerCase() === name.toLowerCase())
    );
  }

  /** Why function `name` is in error (not registered), if it is. */
  problem(name: string): Error | undefined {
    return [...this.problems].find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
  }

  /** Every registered name, including functions whose triggers could not be resolved. */
  get registeredNames(): string[] {
    return [...this.app.functions.keys()];
  }

  /** Runs appStart hooks (once per runtime) and closes registration, as the worker does after startup. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const app = this.app;
    await runHooks(app, 'appStart', {
      get hookData() {
        return app.appLevelOnlyHookData;
      },
      get appHookData() {
        return app.appHookData;
      },
      functionAppDirectory: this.options.appDirectory ?? PROJECT_ROOT,
    });
    sealApp(app);
    // The worker asks the model for its capabilities once started; this also locks `app.setup()`.
    const model = currentProgrammingModel();
    const capabilities = model?.getCapabilities ? await model.getCapabilities({}) : {};
    if (capabilities.HttpUri) {
      throw new Error(
        'HTTP streaming (app.setup({ enableHttpStream: true })) is not supported by the local host',
      );
    }
    for (const fn of this.functions) {
      if (app.functions.get(fn.name)?.metadata.retryOptions) {
        hostLine(
          this.options.logger,
          'warning',
          `Function ${fn.name}: its retry policy is not emulated by the local host`,
        );
      }
      if (fn.trigger === 'other') {
        hostLine(
          this.options.logger,
          'warning',
          `Function ${fn.name}: ${fn.triggerType} is not run by the local host`,
        );
      }
    }
  }

  /** A manual run: timers take their singleton lock (never past due unless asked), others run at once. */
  invoke(
    name: string,
    input?: unknown,
    reason = 'This function was programmatically called via the host APIs.',
  ): Promise<InvokerRun> {
    const info = this.find(name);
    if (!info)
      return Promise.reject(this.problem(name) ?? new UnknownFunctionError(name, this.registeredNames));
    const timer = this.timers.get(info.name);
    if (timer) {
      const isPastDue =
        typeof input === 'object' && input !== null && (input as { isPastDue?: unknown }).isPastDue === true;
      return timer.runManually(reason, isPastDue);
    }
    try {
      return this.invoker.invoke(
        info,
        manualInvocationInput(info, input, this.origin, this.options.routePrefix),
        reason,
      );
    } catch (error) {
      // InputError: the input does not fit the trigger (no invocation happened).
      return Promise.reject(error);
    }
  }

  startTimers(): void {
    for (const timer of this.timers.values()) timer.start();
  }

  startQueues(): void {
    for (const listener of this.queueListeners) listener.start();
  }

  /** Stops timers and polling, waits (bounded) for invocations, runs appTerminate hooks. */
  async stop(timeoutMs: number): Promise<void> {
    for (const timer of this.timers.values()) timer.stop();
    // One grace period for everything in flight, not one for the queue messages and then another.
    const deadline = Date.now() + timeoutMs;
    await Promise.all(this.queueListeners.map((l) => l.stop(timeoutMs)));
    const still = await this.invoker.drain(Math.max(0, deadline - Date.now()));
    if (still > 0)
      hostLine(this.options.logger, 'warning', `Stopped with ${still} invocation(s) still running`);
    const app = this.app;
    if (this.#started) {
      try {
        await runHooks(app, 'appTerminate', {
          get hookData() {
            return app.appLevelOnlyHookData;
          },
          get appHookData() {
            return app.appHookData;
          },
        });
      } catch (error) {
        hostLine(this.options.logger, 'error', `An appTerminate hook failed: ${(error as Error).message}`);
      }
    }
    this.#restoreEnv();
  }
}

async function runHooks(app: AppRegistration, name: string, context: object): Promise<void> {
  for (const callback of [...(app.hooks.get(name) ?? [])]) {
    await (callback as (ctx: object) => unknown)(context);
  }
}
