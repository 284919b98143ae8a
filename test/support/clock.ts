import type { Clock } from '../../lib/clock';

/**
 * Real time plus however far the test has moved it on: what is stamped keeps its real order (Azurite and the
 * sandbox stamp real time too), and a lease, a backoff or a grace period passes by `advance`, not by waiting.
 * For code that takes a `Clock`, or a `now()` (`now: () => clock.now()`); timers fire at their time on this
 * clock, whichever comes first: real time catching up, or `advance`.
 */
export class MovableClock implements Clock {
  private offsetMs = 0;
  private timers = new Set<{ at: number; fire: () => void }>();

  now(): number {
    return Date.now() + this.offsetMs;
  }

  setTimer(callback: () => void, ms: number): () => void {
    const timer = {
      at: this.now() + Math.max(0, ms),
      fire: () => {
        cancel();
        callback();
      },
    };
    const real = setTimeout(timer.fire, Math.max(0, ms));
    const cancel = () => {
      clearTimeout(real);
      this.timers.delete(timer);
    };
    this.timers.add(timer);
    return cancel;
  }

  /** Moves time on by `ms`, firing the timers that fall due. */
  advance(ms: number): void {
    this.offsetMs += ms;
    const now = this.now();
    for (const timer of [...this.timers].sort((a, b) => a.at - b.at)) {
      if (timer.at <= now) timer.fire();
    }
  }

  /** Moves time on to `at` (epoch ms), if it is not there yet. */
  advanceTo(at: number): void {
    const ms = at - this.now();
    if (ms > 0) this.advance(ms);
  }
}
