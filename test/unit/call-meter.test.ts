import { describe, expect, test } from 'vitest';
import { CallMeter } from '../../lib/ops';

describe('the call meter', () => {
  test('counts calls and 429s within a window from samples of running totals', () => {
    let now = 1_000_000;
    const totals = { calls: 0, throttled: 0 };
    const meter = new CallMeter(
      () => ({ ...totals }),
      () => now,
    );
    totals.calls = 5;
    expect(meter.window(60_000)).toEqual({ calls: 5, throttled: 0, countedMs: 0 });
    for (let i = 0; i < 24; i++) {
      now += 5_000;
      totals.calls += 10;
      if (i === 3) totals.throttled++;
      meter.sample();
    }
    // Two minutes in: the last minute holds 12 samples' worth of calls; the hour everything since the start.
    expect(meter.window(60_000)).toEqual({ calls: 120, throttled: 0, countedMs: 60_000 });
    expect(meter.window(3_600_000)).toEqual({ calls: 245, throttled: 1, countedMs: 120_000 });
  });
});
