/** Certificate expiry rules: days left, and which alert (if any) is due. Pure: the clock is passed in. */

const DAY_MS = 24 * 60 * 60 * 1000;

/** Whole days until `notAfter` (rounded down: 6.9 days left is 6); negative once expired. */
export function daysLeft(notAfter: Date, now: Date): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
}

export function isExpired(notAfter: Date, now: Date): boolean {
  return now.getTime() >= notAfter.getTime();
}

export type ExpiryAlert =
  /** `daysLeft` is at or below `threshold` (the most urgent threshold crossed). */
  | { kind: 'threshold'; key: string; threshold: number; daysLeft: number }
  /** Expired: one alert per UTC day, keyed `expired-YYYY-MM-DD`. */
  | { kind: 'expired'; key: string; daysLeft: number };

/**
 * The alert due for a certificate now, if any. Of several thresholds crossed at once only the most urgent
 * counts: the less urgent ones are moot, and since days left only shrink they never come due again.
 * Whether it was already sent is the ledger's business, by `key`.
 */
export function dueExpiryAlert(
  notAfter: Date,
  now: Date,
  thresholds: readonly number[],
): ExpiryAlert | undefined {
  const left = daysLeft(notAfter, now);
  if (isExpired(notAfter, now)) {
    return { kind: 'expired', key: `expired-${now.toISOString().slice(0, 10)}`, daysLeft: left };
  }
  const crossed = thresholds.filter((t) => left <= t);
  if (crossed.length === 0) return undefined;
  const threshold = Math.min(...crossed);
  return { kind: 'threshold', key: `threshold-${threshold}`, threshold, daysLeft: left };
}
