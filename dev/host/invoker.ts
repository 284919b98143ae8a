import { randomUUID } from 'node:crypto';
import type { RegisteredFunctionInfo } from './function-info';
import type { AppRegistration, RegisteredFunction } from './functions-core';
import { describeHttpAnswer, type HttpAnswer, httpAnswer } from './http-message';
import { type InvocationInput, type InvocationRun, runInvocation } from './invocation';
import type { HostLogger } from './logger';
import { deliverOutputs, type QueueClientFactory } from './outputs';
import type { SettingSources } from './settings';

export interface InvokerRun extends InvocationRun {
  /** For http triggers: the answer to write. */
  http?: HttpAnswer;
}

/**
 * Runs invocations for one host: output bindings, the one summary line per invocation, and the set of
 * invocations in flight so that stopping can wait for them.
 */
export class Invoker {
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly app: AppRegistration,
    private readonly logger: HostLogger,
    private readonly sources: SettingSources,
    private readonly queues: QueueClientFactory,
  ) {}

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  invoke(info: RegisteredFunctionInfo, input: InvocationInput, reason: string): Promise<InvokerRun> {
    const run = this.#invoke(info, input, reason);
    this.#inFlight.add(run);
    run.finally(() => this.#inFlight.delete(run)).catch(() => undefined);
    return run;
  }

  async #invoke(info: RegisteredFunctionInfo, input: InvocationInput, reason: string): Promise<InvokerRun> {
    const fn = this.registered(info.name);
    const invocationId = input.invocationId ?? randomUUID();
    this.line(
      'debug',
      `Executing 'Functions.${info.name}' (Reason='${reason}', Id=${invocationId})`,
      info.name,
      invocationId,
    );
    const run: InvokerRun = await runInvocation(this.app, fn, { ...input, invocationId }, this.logger);
    const { outcome } = run;
    if (outcome.outcome === 'Succeeded') {
      try {
        await deliverOutputs(fn, run.response, this.sources, this.queues, (message) =>
          this.line('warning', message),
        );
      } catch (error) {
        outcome.outcome = 'Failed';
        const e = error instanceof Error ? error : new Error(String(error));
        outcome.error = { name: e.name, message: `Output binding failed: ${e.message}`, stack: e.stack };
      }
    }
    if (info.trigger === 'http' && outcome.outcome === 'Succeeded') {
      run.http = httpAnswer(run.response?.returnValue);
      outcome.result = describeHttpAnswer(run.http);
    }
    const summary = `Executed 'Functions.${info.name}' (${outcome.outcome}, Id=${outcome.invocationId}, Duration=${outcome.durationMs}ms)`;
    if (outcome.error) {
      // The stack follows the summary line: it is what a developer needs to find the failure.
      const detail = outcome.error.stack?.split('\n').slice(1).join('\n');
      this.line(
        'error',
        `${summary}: ${outcome.error.message}${detail ? `\n${detail}` : ''}`,
        info.name,
        outcome.invocationId,
      );
    } else {
      this.line('information', summary, info.name, outcome.invocationId);
    }
    return run;
  }

  registered(name: string): RegisteredFunction {
    const fn = this.app.functions.get(name);
    if (!fn) throw new Error(`Function ${name} is not registered`);
    return fn;
  }

  /** Waits for invocations in flight, at most `timeoutMs`; returns how many were still running. */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#inFlight.size === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
    clearTimeout(timer);
    return this.#inFlight.size;
  }

  private line(
    level: 'debug' | 'information' | 'warning' | 'error',
    message: string,
    functionName?: string,
    invocationId?: string,
  ) {
    this.logger.log({ time: new Date(), level, category: 'host', message, functionName, invocationId });
  }
}
