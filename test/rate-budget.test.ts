import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { describe, expect, inject, test } from 'vitest';
import { ManualClock } from '../lib/clock';
import { busiestWindow } from '../lib/rate-budget/lanes';
import { SharedRateBudget } from '../lib/rate-budget/shared-budget';
import { TableBudgetStore } from '../lib/rate-budget/store';
import { tableClient } from '../lib/storage';
import { waitFor } from './support/wait';

/** One budget record per test, in the run's Azurite. */
function store() {
  return new TableBudgetStore(
    tableClient(inject('storageConnection'), `FpxRateBudget${randomBytes(4).toString('hex')}`),
  );
}

/** Moves the clock in small steps, letting each budget finish its store requests first. */
async function run(clock: ManualClock, budgets: SharedRateBudget[], ms: number, step = 10) {
  for (let t = 0; t < ms; t += step) {
    await Promise.all(budgets.map((b) => b.whenIdle()));
    await clock.advance(step);
  }
  await Promise.all(budgets.map((b) => b.whenIdle()));
}

function acquireMany(budget: SharedRateBudget, clock: ManualClock, count: number, priority?: 'interactive') {
  const times: number[] = [];
  const all = Array.from({ length: count }, () =>
    budget.acquire(undefined, priority).then(() => {
      times.push(clock.now());
    }),
  );
  return { times, done: Promise.all(all) };
}

describe('SharedRateBudget against Azurite', () => {
  test('two limiters share one budget: together never more than it in any window, and both get slots', async () => {
    const clock = new ManualClock();
    const shared = store();
    const a = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    const b = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    const fromA = acquireMany(a, clock, 80);
    const fromB = acquireMany(b, clock, 80);
    await run(clock, [a, b], 20_000);
    await Promise.all([fromA.done, fromB.done]);

    const all = [...fromA.times, ...fromB.times].sort((x, y) => x - y);
    const interval = a.lanes.bulkIntervalMs;
    for (let i = 1; i < all.length; i++) {
      expect((all[i] as number) - (all[i - 1] as number)).toBeGreaterThanOrEqual(interval - 0.01);
    }
    // 160 calls at the bulk lane's pace: the 60-second bound holds with room to spare, at any scale.
    expect(busiestWindow(all, 10_000)).toBeLessThanOrEqual(Math.ceil(10_000 / interval));
    // Few store requests: blocks, not a request per call.
    const requests = a.stats.storeRequests + b.stats.storeRequests;
    expect(requests / all.length).toBeLessThanOrEqual(0.35);
  });

  test('one instance working alone gets nearly all of the budget', async () => {
    const clock = new ManualClock();
    const alone = new SharedRateBudget(600, store(), { clock, fallbackPerMinute: 15 });
    const calls = acquireMany(alone, clock, 2_000);
    await run(clock, [alone], 60_000, 50);
    expect(calls.times.length).toBeGreaterThanOrEqual(0.9 * 600);
    expect(calls.times.length).toBeLessThanOrEqual(600);
    expect(alone.stats.storeRequests / calls.times.length).toBeLessThanOrEqual(0.1);
  });

  test('a 429 at one instance pauses the other at its next claim', async () => {
    const clock = new ManualClock();
    const shared = store();
    const a = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    const b = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    const first = acquireMany(a, clock, 1);
    await run(clock, [a], 10);
    await first.done;

    const pausedUntil = clock.now() + 5_000;
    a.pause(pausedUntil);
    await run(clock, [a], 10);
    const later = acquireMany(b, clock, 3);
    await run(clock, [a, b], 7_000);
    await later.done;
    expect(Math.min(...later.times)).toBeGreaterThanOrEqual(pausedUntil);
  });

  test('a holder that dies loses seconds of the budget, not a minute', async () => {
    const shared = store();
    // The dying instance has a clock of its own that stops with it: none of its timers fires again.
    const dyingClock = new ManualClock();
    const dying = new SharedRateBudget(600, shared, { clock: dyingClock, fallbackPerMinute: 15 });
    acquireMany(dying, dyingClock, 50);
    await run(dyingClock, [dying], 10);
    const clock = new ManualClock(dyingClock.now());
    const startedAt = clock.now();
    const survivor = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    const calls = acquireMany(survivor, clock, 1);
    await run(clock, [survivor], 10_000);
    await calls.done;
    // What it held: at most a block (3 s) and the lead (1 s) ahead.
    expect((calls.times[0] as number) - startedAt).toBeLessThanOrEqual(
      survivor.lanes.blockSpanMs + survivor.lanes.leadMs,
    );
  });

  test('an interactive call waits about one slot while bulk work saturates the budget', async () => {
    const clock = new ManualClock();
    const shared = store();
    const bulk = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    const other = new SharedRateBudget(600, shared, { clock, fallbackPerMinute: 15 });
    acquireMany(bulk, clock, 1_000);
    acquireMany(other, clock, 1_000);
    await run(clock, [bulk, other], 5_000);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const askedAt = clock.now();
      const call = acquireMany(other, clock, 1, 'interactive');
      await run(clock, [bulk, other], 2_000);
      await call.done;
      waits.push((call.times[0] as number) - askedAt);
    }
    waits.sort((x, y) => x - y);
    expect(waits[2]).toBeLessThanOrEqual(bulk.lanes.bulkIntervalMs);
  });

  test('storage down: a local share at the fallback pace, logged once', async () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    // Nothing listens on port 1: every store request fails at once (no retries).
    const down = new TableClient('http://127.0.0.1:1/devstoreaccount1', 'FpxRateBudget', {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 0 },
    });
    const budget = new SharedRateBudget(600, new TableBudgetStore(down), {
      clock,
      fallbackPerMinute: 60,
      log: (line) => lines.push(line),
    });
    const calls = acquireMany(budget, clock, 5);
    // Each failed store request takes real I/O: time moves on only once the budget has nothing in flight.
    await waitFor(
      'five calls at the fallback pace',
      async () => {
        await budget.whenIdle();
        await clock.advance(100);
        return calls.times.length >= 5;
      },
      { intervalMs: 1 },
    );
    await calls.done;
    expect(calls.times).toHaveLength(5);
    for (let i = 1; i < calls.times.length; i++) {
      expect((calls.times[i] as number) - (calls.times[i - 1] as number)).toBeGreaterThanOrEqual(1_000);
    }
    expect(lines.filter((line) => /cannot be reached/.test(line))).toHaveLength(1);
    expect(lines[0]).toMatch(/60 calls a minute/);
  });
});
