/**
 * The arithmetic of the deployment's one FPX budget, kept pure so it is tested without storage.
 *
 * All instances share one record with two cursors. Bulk work (listings, per-tenant details) claims blocks
 * of slots on the bulk lane; interactive calls (webhook deliveries, the health probe) claim one slot at a
 * time from whichever lane is free first. Slots on a lane are at least one interval apart whoever claims
 * them, so any 60-second window holds at most `effective` calls plus one a lane: `effective` leaves
 * headroom for that and for clock skew and network jitter between instances.
 */

export type { Priority } from '../fpx/rate-limiter';

export interface BudgetRecord {
  /** The first free slot of each lane (epoch ms); a cursor in the past means "free now". */
  bulkNextAt: number;
  interactiveNextAt: number;
  /** FPX answered 429: nobody sends before this (epoch ms). */
  pausedUntil: number;
}

export const EMPTY_RECORD: BudgetRecord = { bulkNextAt: 0, interactiveNextAt: 0, pausedUntil: 0 };

/** The share of the budget only interactive calls may use: a webhook never waits behind a fan-out. */
export const INTERACTIVE_SHARE = 0.05;
/** A 429's Retry-After is honoured up to this long. */
export const MAX_PAUSE_MS = 10 * 60_000;

export interface Lanes {
  perMinute: number;
  /** Calls a minute the lanes hand out together (below `perMinute`: the headroom). */
  effective: number;
  bulkIntervalMs: number;
  interactiveIntervalMs: number;
}

/** `reserve`: calls a minute kept out of the lanes besides the 2% (an instance's fallback share). */
export function lanes(perMinute: number, reserve = 0): Lanes {
  if (!(perMinute > 0)) throw new RangeError('perMinute must be positive');
  const headroom = Math.max(3, Math.ceil(perMinute * 0.02), Math.ceil(reserve));
  const effective = Math.max(perMinute / 4, perMinute - headroom);
  return {
    perMinute,
    effective,
    bulkIntervalMs: 60_000 / (effective * (1 - INTERACTIVE_SHARE)),
    interactiveIntervalMs: 60_000 / (effective * INTERACTIVE_SHARE),
  };
}

/** `count` consecutive bulk slots from the first free one. */
export function claimBulk(
  record: BudgetRecord,
  now: number,
  count: number,
  l: Lanes,
): { record: BudgetRecord; slots: number[] } {
  const start = Math.max(now, record.bulkNextAt, record.pausedUntil);
  const slots = Array.from({ length: count }, (_, i) => start + i * l.bulkIntervalMs);
  return { record: { ...record, bulkNextAt: start + count * l.bulkIntervalMs }, slots };
}

/** One slot for an interactive call: the earlier of the two lanes (the bulk lane is free when no bulk runs). */
export function claimInteractive(
  record: BudgetRecord,
  now: number,
  l: Lanes,
): { record: BudgetRecord; slot: number } {
  const bulkAt = Math.max(now, record.bulkNextAt, record.pausedUntil);
  const interactiveAt = Math.max(now, record.interactiveNextAt, record.pausedUntil);
  if (bulkAt <= interactiveAt) {
    return { record: { ...record, bulkNextAt: bulkAt + l.bulkIntervalMs }, slot: bulkAt };
  }
  return {
    record: { ...record, interactiveNextAt: interactiveAt + l.interactiveIntervalMs },
    slot: interactiveAt,
  };
}

/** A block big enough that a busy instance asks the store about once every few seconds, never more than it needs. */
export function blockSize(waiting: number, l: Lanes, spanMs = 3_000): number {
  const most = Math.max(1, Math.floor(spanMs / l.bulkIntervalMs));
  return Math.min(most, Math.max(1, waiting * 4));
}

/** The longest a 429 may pause everyone, and whether it was cut to that. */
export function pauseUntil(now: number, retryAfterMs: number): { until: number; capped: boolean } {
  const capped = retryAfterMs > MAX_PAUSE_MS;
  return { until: now + Math.min(retryAfterMs, MAX_PAUSE_MS), capped };
}

/** The most calls any window of `windowMs` holds among `times` (sorted or not): what FPX would count. */
export function busiestWindow(times: readonly number[], windowMs = 60_000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}
