import { describe, expect, test } from 'vitest';
import { ManualClock } from '../../lib/clock';
import { RateLimiter } from '../../lib/fpx/rate-limiter';

/** A process's own limiter, on a clock the test moves: exact slot times, no sleeping. */
function timed(limiter: RateLimiter, clock: ManualClock, count: number, priority?: 'interactive') {
  const times: number[] = [];
  const done = Promise.all(
    Array.from({ length: count }, () =>
      limiter.acquire(undefined, priority).then(() => times.push(clock.now())),
    ),
  );
  return { times, done };
}

describe('RateLimiter', () => {
  test('spaces callers evenly instead of letting a burst through', async () => {
    const clock = new ManualClock();
    const start = clock.now();
    const calls = timed(new RateLimiter(1200, clock), clock, 8); // one slot per 50 ms
    await clock.advance(1_000);
    await calls.done;
    expect(calls.times.map((t) => t - start)).toEqual([0, 50, 100, 150, 200, 250, 300, 350]);
  });

  test('serves interactive callers first, then first come, first served', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(600, clock);
    const order: string[] = [];
    const waits = [
      limiter.acquire().then(() => order.push('bulk 1')),
      limiter.acquire().then(() => order.push('bulk 2')),
      limiter.acquire(undefined, 'interactive').then(() => order.push('interactive')),
      limiter.acquire().then(() => order.push('bulk 3')),
    ];
    await clock.advance(1_000);
    await Promise.all(waits);
    // bulk 1 took the free slot at once; the interactive caller goes before those still waiting.
    expect(order).toEqual(['bulk 1', 'interactive', 'bulk 2', 'bulk 3']);
  });

  test('pause holds every caller, then they resume at the even pace', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(600, clock); // 100 ms slots
    await limiter.acquire();
    const start = clock.now();
    limiter.pause(start + 300);
    const calls = timed(limiter, clock, 3);
    await clock.advance(1_000);
    await calls.done;
    expect(calls.times.map((t) => t - start)).toEqual([300, 400, 500]);
    expect(limiter.pausedForMs).toBe(0);
  });

  test('an aborted waiter leaves the queue', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(60, clock); // one slot a second
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    expect(limiter.queued).toBe(0);
  });

  test('estimates the wait of a new caller by its priority', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(600, clock);
    await limiter.acquire();
    void limiter.acquire();
    void limiter.acquire();
    expect(limiter.estimateWaitMs('bulk')).toBe(100 + 2 * 100);
    expect(limiter.estimateWaitMs('interactive')).toBe(100);
    await clock.advance(1_000);
  });
});
