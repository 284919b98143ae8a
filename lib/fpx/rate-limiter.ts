import { type Clock, systemClock } from '../clock';

/** Interactive calls (a webhook's delivery, the health probe) go ahead of bulk ones (listings, details). */
export type Priority = 'interactive' | 'bulk';

/** What the transport needs of a rate limit: this process's own, or the deployment's shared budget. */
export interface CallLimiter {
  /** The calls a minute it allows (the deployment's budget for a shared one). */
  readonly perMinute: number;
  /** Resolves when the caller may send one request. */
  acquire(signal?: AbortSignal, priority?: Priority): Promise<void>;
  /** FPX answered 429: holds every caller until `untilMs` (epoch ms). */
  pause(untilMs: number): void;
  readonly pausedForMs: number;
  /** Callers waiting for a slot. */
  readonly queued: number;
  /** About how long a call of this priority would wait for its slot now. */
  estimateWaitMs(priority: Priority): number;
}

/** A caller waiting for its slot (this limiter's or the shared budget's). */
export interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Queues a caller until the limiter lets it go; its signal's abort takes it out of the queue and rejects. */
export function enqueueWaiter<W extends Waiter>(queue: W[], waiter: W): void {
  const { signal } = waiter;
  if (signal) {
    waiter.onAbort = () => {
      const index = queue.indexOf(waiter);
      if (index >= 0) queue.splice(index, 1);
      waiter.reject(signal.reason);
    };
    signal.addEventListener('abort', waiter.onAbort, { once: true });
  }
  queue.push(waiter);
}

/**
 * A process's own limiter: hands out call slots evenly spaced at `perMinute` (a token bucket of capacity
 * one, so never a burst), interactive callers first, then first come first served. `pause` (FPX's 429
 * Retry-After) holds every caller, then they resume at the same even pace. Used alone when there is no
 * shared budget, and as the shared budget's fallback when storage cannot be reached.
 */
export class RateLimiter implements CallLimiter {
  private readonly intervalMs: number;
  private readonly waiters: Record<Priority, Waiter[]> = { interactive: [], bulk: [] };
  private nextSlotAt = 0;
  private pausedUntil = 0;
  private cancelTimer?: () => void;

  constructor(
    readonly perMinute: number,
    private readonly clock: Clock = systemClock,
  ) {
    if (!(perMinute > 0)) throw new RangeError('perMinute must be positive');
    this.intervalMs = 60_000 / perMinute;
  }

  acquire(signal?: AbortSignal, priority: Priority = 'bulk'): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      enqueueWaiter(this.waiters[priority], { resolve, reject, signal });
      this.pump();
    });
  }

  pause(untilMs: number): void {
    if (untilMs <= this.pausedUntil) return;
    this.pausedUntil = untilMs;
    this.pump();
  }

  get pausedForMs(): number {
    return Math.max(0, this.pausedUntil - this.clock.now());
  }

  get queued(): number {
    return this.waiters.interactive.length + this.waiters.bulk.length;
  }

  estimateWaitMs(priority: Priority): number {
    const ahead = this.waiters.interactive.length + (priority === 'bulk' ? this.waiters.bulk.length : 0);
    const nextSlot = Math.max(0, this.nextSlotAt - this.clock.now());
    return Math.max(this.pausedForMs, nextSlot) + ahead * this.intervalMs;
  }

  private pump(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    for (;;) {
      const waiter = this.waiters.interactive[0] ?? this.waiters.bulk[0];
      if (!waiter) return;
      const now = this.clock.now();
      const at = Math.max(this.nextSlotAt, this.pausedUntil);
      if (at > now) {
        this.cancelTimer = this.clock.setTimer(() => this.pump(), at - now);
        return;
      }
      // A timer that fired a little late keeps the schedule (no drift); after idle time the schedule restarts now.
      this.nextSlotAt = (now - at >= this.intervalMs ? now : at) + this.intervalMs;
      (this.waiters.interactive[0] === waiter ? this.waiters.interactive : this.waiters.bulk).shift();
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
  }
}
