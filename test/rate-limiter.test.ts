import { describe, expect, test } from 'vitest';
import { RateLimiter } from '../lib/fpx/rate-limiter';

// Only lower bounds on time: a limiter must never let calls through early; how late is the machine's business.
describe('RateLimiter', () => {
  test('spaces callers evenly instead of letting a burst through', async () => {
    const limiter = new RateLimiter(1200); // one slot per 50 ms
    const start = performance.now();
    const times = await Promise.all(
      Array.from({ length: 8 }, () => limiter.acquire().then(() => performance.now() - start)),
    );
    const sorted = [...times].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) {
      // A slot may fire up to 1 ms early (timer granularity); never a burst.
      expect(sorted[i]).toBeGreaterThanOrEqual(i * 50 - 2);
    }
  });

  test('serves callers first come, first served', async () => {
    const limiter = new RateLimiter(6000);
    const order: number[] = [];
    await Promise.all([1, 2, 3, 4].map((n) => limiter.acquire().then(() => order.push(n))));
    expect(order).toEqual([1, 2, 3, 4]);
  });

  test('pause holds every caller, then they resume at the even pace', async () => {
    const limiter = new RateLimiter(600); // 100 ms slots
    await limiter.acquire();
    const start = performance.now();
    limiter.pause(Date.now() + 300);
    const times = await Promise.all(
      [0, 1, 2].map(() => limiter.acquire().then(() => performance.now() - start)),
    );
    expect(Math.min(...times)).toBeGreaterThanOrEqual(298);
    expect(Math.max(...times)).toBeGreaterThanOrEqual(298 + 200 - 2);
  });

  test('an aborted waiter leaves the queue', async () => {
    const limiter = new RateLimiter(60); // one slot a second
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    expect(limiter.queued).toBe(0);
  });
});
