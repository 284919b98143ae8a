/**
 * FPX calls and 429s in the last minute and hour, from the transport's running totals (`stats.calls`,
 * `stats.throttled`), which only count up. A sample of both every few seconds (an hour's worth kept) lets a
 * window be read as "now less the sample at its start". The totals are this process's own: so are the figures.
 */
export interface CallCounts {
  calls: number;
  throttled: number;
}

interface Sample extends CallCounts {
  at: number;
}

export interface WindowCounts extends CallCounts {
  /** The part of the window actually counted: less than asked for while the meter is younger than it. */
  countedMs: number;
}

const HOUR_MS = 3600_000;

export class CallMeter {
  private readonly samples: Sample[] = [];
  private timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly read: () => CallCounts,
    private readonly now: () => number = Date.now,
  ) {
    this.sample();
  }

  /** Samples every `everyMs` (default 5 s) on an unref'd timer: it never keeps the process alive. */
  start(everyMs = 5_000): this {
    if (!this.timer) {
      this.timer = setInterval(() => this.sample(), everyMs);
      this.timer.unref?.();
    }
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    const at = this.now();
    this.samples.push({ at, ...this.read() });
    // Keep one sample older than an hour, so the hour's window always has a start.
    while (this.samples.length > 2 && (this.samples[1] as Sample).at <= at - HOUR_MS) this.samples.shift();
  }

  /** Calls and 429s within the last `ms`, as far back as samples go. */
  window(ms: number): WindowCounts {
    const now = this.now();
    const current = this.read();
    const from = now - ms;
    // The newest sample at or before the window's start; else the oldest there is.
    let start = this.samples[0] as Sample;
    for (const sample of this.samples) {
      if (sample.at <= from) start = sample;
      else break;
    }
    return {
      calls: current.calls - start.calls,
      throttled: current.throttled - start.throttled,
      countedMs: Math.min(ms, now - start.at),
    };
  }
}
