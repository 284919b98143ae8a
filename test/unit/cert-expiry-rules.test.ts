/** When a certificate's expiry alert is due: days left, thresholds, expired once per UTC day. */
import { describe, expect, test } from 'vitest';
import { daysLeft, dueExpiryAlert } from '../../lib/cert';

const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;
const THRESHOLDS = [30, 14, 7, 1];

describe('the rules', () => {
  const notAfter = new Date('2026-03-31T12:00:00Z');
  const at = (msBefore: number) => new Date(notAfter.getTime() - msBefore);

  test('days left round down and go negative once expired', () => {
    expect(daysLeft(notAfter, at(30 * DAY))).toBe(30);
    expect(daysLeft(notAfter, at(30 * DAY - 1))).toBe(29);
    expect(daysLeft(notAfter, at(HOUR))).toBe(0);
    expect(daysLeft(notAfter, at(-HOUR))).toBe(-1);
  });

  test('the most urgent threshold crossed is the one due; expired is due once per UTC day', () => {
    expect(dueExpiryAlert(notAfter, at(31 * DAY), THRESHOLDS)).toBeUndefined();
    expect(dueExpiryAlert(notAfter, at(30 * DAY), THRESHOLDS)).toMatchObject({
      key: 'threshold-30',
      daysLeft: 30,
    });
    expect(dueExpiryAlert(notAfter, at(15 * DAY), THRESHOLDS)).toMatchObject({ key: 'threshold-30' });
    expect(dueExpiryAlert(notAfter, at(5 * DAY), THRESHOLDS)).toMatchObject({
      key: 'threshold-7',
      threshold: 7,
    });
    expect(dueExpiryAlert(notAfter, at(HOUR), THRESHOLDS)).toMatchObject({ key: 'threshold-1', daysLeft: 0 });
    expect(dueExpiryAlert(notAfter, at(-HOUR), THRESHOLDS)).toEqual({
      kind: 'expired',
      key: 'expired-2026-03-31',
      daysLeft: -1,
    });
    expect(dueExpiryAlert(notAfter, at(-DAY), THRESHOLDS)).toMatchObject({ key: 'expired-2026-04-01' });
  });
});
