import { describe, expect, test } from 'vitest';
import {
  busiestWindow,
  claimBulk,
  claimInteractive,
  EMPTY_RECORD,
  lanes,
  MAX_PAUSE_MS,
  pauseUntil,
} from '../../lib/rate-budget/lanes';

describe('lanes (pure)', () => {
  test('three instances claiming blocks and interactive calls, faster than allowed: no 60-s window over the budget', () => {
    for (const perMinute of [60, 600, 1200]) {
      const l = lanes(perMinute);
      let record = EMPTY_RECORD;
      const times: number[] = [];
      for (let now = 1_000_000; now < 1_000_000 + 5 * 60_000; now += 50) {
        for (let instance = 0; instance < 3; instance++) {
          const bulk = claimBulk(record, now, 7, l);
          if ('slots' in bulk) {
            record = bulk.record;
            times.push(...bulk.slots);
          }
        }
        // An interactive call every 50 ms: far more than the budget; they are held to a burst at a time.
        const one = claimInteractive(record, now, l);
        record = one.record;
        times.push(one.slot);
      }
      expect(busiestWindow(times)).toBeLessThanOrEqual(perMinute);
      expect(busiestWindow(times)).toBeGreaterThanOrEqual(0.9 * perMinute);
    }
  });

  test('the grid is claimed at most a second ahead; an interactive call goes now and pushes it back one slot', () => {
    const l = lanes(600);
    const first = claimBulk(EMPTY_RECORD, 5_000, 5, l);
    if (!('slots' in first)) throw new Error('expected slots');
    expect(first.slots[0]).toBe(5_000);
    const ahead = { ...EMPTY_RECORD, bulkNextAt: 25_000 };
    expect(claimBulk(ahead, 5_000, 5, l)).toEqual({ retryAt: 25_000 - l.leadMs });
    const now = claimInteractive(ahead, 5_000, l);
    expect(now.slot).toBe(5_000);
    expect(now.record.bulkNextAt).toBe(25_000 + l.bulkIntervalMs);
    const idle = claimInteractive(EMPTY_RECORD, 5_000, l);
    expect(idle.record.bulkNextAt).toBe(5_000 + l.bulkIntervalMs);
  });

  test('a pause holds both lanes; Retry-After is capped at 10 minutes', () => {
    const l = lanes(600);
    const paused = { ...EMPTY_RECORD, pausedUntil: 9_000 };
    expect(claimBulk(paused, 8_500, 2, l)).toMatchObject({ slots: [9_000, 9_000 + l.bulkIntervalMs] });
    expect(claimInteractive(paused, 1_000, l).slot).toBe(9_000);
    expect(pauseUntil(0, 3_600_000)).toEqual({ until: MAX_PAUSE_MS, capped: true });
    expect(pauseUntil(0, 2_000)).toEqual({ until: 2_000, capped: false });
  });

  test('headroom: the grid hands out less than the budget, and a fallback share more', () => {
    expect(lanes(600).effective).toBe(588);
    expect(lanes(600, 15).effective).toBe(585);
    expect(lanes(1200).effective).toBe(1176);
  });
});
