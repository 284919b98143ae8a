import type { RegisteredFunctionInfo } from './function-info';
import type { InvocationInput } from './invocation';
import type { Invoker, InvokerRun } from './invoker';
import { type HostLogger, hostLine } from './logger';
import type { Schedule } from './schedule';

/** A run that starts this much after its due time is past due (a missed occurrence, as in Azure). */
export const PAST_DUE_TOLERANCE_MS = 1000;
// setTimeout cannot wait longer than 2^31-1 ms; longer waits are re-armed.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface TimerStatus {
  isPastDue: boolean;
  last?: Date;
  next: Date;
}

/** The timer trigger's data as the Functions host sends it; the library camel-cases it. */
export function timerInvocationInput(info: RegisteredFunctionInfo, status: TimerStatus): InvocationInput {
  const timer = {
    Schedule: { AdjustForDST: true },
    ScheduleStatus: {
      // The host's "no previous run" is DateTime.MinValue.
      Last: status.last ? status.last.toISOString() : '0001-01-01T00:00:00',
      Next: status.next.toISOString(),
      LastUpdated: new Date().toISOString(),
    },
    IsPastDue: status.isPastDue,
  };
  return {
    inputData: [{ name: info.triggerBinding, data: { json: JSON.stringify(timer) } }],
    triggerMetadata: {},
  };
}

/**
 * Runs one timer function on its schedule with a singleton lock, as Azure's timer listener holds one:
 * an occurrence that falls due while a run is going is skipped (and logged); manual runs wait for
 * the lock instead.
 */
export class TimerRunner {
  #timeout?: NodeJS.Timeout;
  #stopped = false;
  #lock: Promise<unknown> = Promise.resolve();
  /** Runs holding or waiting for the lock. */
  #pending = 0;
  #lastDue?: Date;

  constructor(
    readonly info: RegisteredFunctionInfo,
    private readonly schedule: Schedule,
    private readonly invoker: Invoker,
    private readonly logger: HostLogger,
  ) {}

  start(): void {
    const now = new Date();
    this.#lastDue = this.schedule.previous(now);
    if (this.info.runOnStartup) {
      void this.#runLocked({ isPastDue: false, due: now }, 'Timer fired at startup (runOnStartup)').catch(
        () => undefined,
      );
    }
    this.#arm(now);
    hostLine(this.logger, 'debug', `Timer ${this.info.name}: next run at ${this.nextDue?.toISOString()}`);
  }

  nextDue?: Date;

  #arm(after: Date): void {
    if (this.#stopped) return;
    const due = this.schedule.next(after);
    this.nextDue = due;
    const wait = () => {
      const remaining = due.getTime() - Date.now();
      if (remaining > 0) {
        this.#timeout = setTimeout(wait, Math.min(remaining, MAX_TIMEOUT_MS));
        return;
      }
      this.#onDue(due);
    };
    wait();
  }

  #onDue(due: Date): void {
    if (this.#stopped) return;
    const now = Date.now();
    if (this.#pending > 0) {
      hostLine(
        this.logger,
        'warning',
        `Timer ${this.info.name}: skipped the run due at ${due.toISOString()} because the previous run is still in progress (singleton lock)`,
      );
    } else {
      const isPastDue = now - due.getTime() > PAST_DUE_TOLERANCE_MS;
      void this.#runLocked({ isPastDue, due }, 'Timer fired').catch(() => undefined);
    }
    // Occurrences missed while the process slept are folded into the run above, not replayed.
    this.#arm(new Date(Math.max(now, due.getTime())));
  }

  /** A manual run (admin endpoint, RunningHost.invoke): waits for a run in progress, never past due. */
  runManually(
    reason = 'This function was programmatically called via the host APIs.',
    isPastDue = false,
  ): Promise<InvokerRun> {
    return this.#runLocked({ isPastDue, due: new Date() }, reason);
  }

  #runLocked(run: { isPastDue: boolean; due: Date }, reason: string): Promise<InvokerRun> {
    this.#pending++;
    const result = this.#lock.then(async () => {
      try {
        const status: TimerStatus = {
          isPastDue: run.isPastDue,
          last: this.#lastDue,
          next: this.schedule.next(new Date(Math.max(Date.now(), run.due.getTime()))),
        };
        this.#lastDue = run.due;
        return await this.invoker.invoke(this.info, timerInvocationInput(this.info, status), reason);
      } finally {
        this.#pending--;
      }
    });
    this.#lock = result.catch(() => undefined);
    return result;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timeout);
  }
}
