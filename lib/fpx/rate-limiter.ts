interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * One per process, shared by every FPX caller: hands out call slots evenly spaced at
 * `perMinute` (a token bucket of capacity one, so never a burst), first come first served.
 * `pause` (FPX's 429 Retry-After) holds every caller, then they resume at the same even pace.
 */
export class RateLimiter {
  private readonly intervalMs: number;
  private readonly waiters: Waiter[] = [];
  private nextSlotAt = 0;
  private pausedUntil = 0;
  private timer?: NodeJS.Timeout;

  constructor(readonly perMinute: number) {
    if (!(perMinute > 0)) throw new RangeError('perMinute must be positive');
    this.intervalMs = 60_000 / perMinute;
  }

  /** Resolves when the caller may send one request. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Holds every caller until `untilMs` (epoch ms). */
  pause(untilMs: number): void {
    if (untilMs <= this.pausedUntil) return;
    this.pausedUntil = untilMs;
    this.pump();
  }

  get pausedForMs(): number {
    return Math.max(0, this.pausedUntil - Date.now());
  }

  get queued(): number {
    return this.waiters.length;
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.waiters.length > 0) {
      const now = Date.now();
      const at = Math.max(this.nextSlotAt, this.pausedUntil);
      if (at > now) {
        this.timer = setTimeout(() => this.pump(), at - now);
        return;
      }
      // A timer that fired a little late keeps the schedule (no drift); after idle time the schedule restarts now.
      this.nextSlotAt = (now - at >= this.intervalMs ? now : at) + this.intervalMs;
      const waiter = this.waiters.shift() as Waiter;
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
  }
}
