/**
 * FPX's limit read the strictest way (FPX-NOTES #18): at most `perMinute` calls in any 60-second window,
 * counted per client certificate (every instance and function of the partner together). Only calls let
 * through count; the busiest window each caller reached is kept, so a benchmark can show it stayed within.
 */
export class SlidingWindowLimit {
  private readonly windows = new Map<string, { times: number[]; head: number; busiest: number }>();

  constructor(private perMinute: number) {}

  get limit(): number {
    return this.perMinute;
  }

  setLimit(perMinute: number): void {
    this.perMinute = perMinute;
    this.windows.clear();
  }

  /** Counts one call of `caller`; undefined when allowed, else the whole seconds until one is. */
  take(caller: string, now = performance.now()): number | undefined {
    if (this.perMinute <= 0) return undefined;
    let window = this.windows.get(caller);
    if (!window) {
      window = { times: [], head: 0, busiest: 0 };
      this.windows.set(caller, window);
    }
    while (window.head < window.times.length && (window.times[window.head] as number) <= now - 60_000) {
      window.head++;
    }
    if (window.head > 1024 && window.head * 2 > window.times.length) {
      window.times = window.times.slice(window.head);
      window.head = 0;
    }
    const inWindow = window.times.length - window.head;
    if (inWindow >= this.perMinute) {
      const oldest = window.times[window.head] as number;
      return Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000));
    }
    window.times.push(now);
    window.busiest = Math.max(window.busiest, inWindow + 1);
    return undefined;
  }

  /** The most calls let through in any 60-second window, per caller. */
  busiestWindows(): Record<string, number> {
    return Object.fromEntries([...this.windows].map(([caller, window]) => [caller, window.busiest]));
  }
}
