/**
 * The arithmetic of the deployment's one FPX budget, kept pure so it is tested without storage.
 *
 * All instances share one record. Bulk work (listings, per-tenant details) claims blocks of slots on one
 * grid, one interval apart whoever claims them, never more than a few seconds ahead of now. An interactive
 * call (a webhook's delivery, the health probe) is sent at once and pushes the grid back by one slot, so it
 * waits for no bulk work yet stays inside the budget over time. What it borrows early is bounded: within
 * any `horizonMs` at most `headroom − 2` interactive calls are let through at once (their own cursor), and
 * the lanes hand out `effective` = budget − headroom calls a minute. So any 60-second window holds at most
 * the budget, with room left for clock skew and network jitter between instances.
 */

export interface BudgetRecord {
  /** The first free bulk slot (epoch ms); in the past means "free now". */
  bulkNextAt: number;
  /** The earliest an interactive call may go (epoch ms). */
  interactiveNextAt: number;
  /** FPX answered 429: nobody sends before this (epoch ms). */
  pausedUntil: number;
}

export const EMPTY_RECORD: BudgetRecord = { bulkNextAt: 0, interactiveNextAt: 0, pausedUntil: 0 };

/** A 429's Retry-After is honoured up to this long. */
export const MAX_PAUSE_MS = 10 * 60_000;
/** Bulk slots are claimed no further ahead than this, in blocks spanning at most `BLOCK_SPAN_MS`. */
const LEAD_MS = 1_000;
const BLOCK_SPAN_MS = 5_000;

export interface Lanes {
  perMinute: number;
  /** Calls a minute the grid hands out (below `perMinute`: the headroom). */
  effective: number;
  bulkIntervalMs: number;
  /** The least time between two interactive calls let through at once. */
  interactiveIntervalMs: number;
  /** How far ahead of now the bulk grid may be claimed. */
  leadMs: number;
  blockSpanMs: number;
}

/** `reserve`: calls a minute kept out of the grid besides the 2% (an instance's fallback share). */
export function lanes(perMinute: number, reserve = 0): Lanes {
  if (!(perMinute > 0)) throw new RangeError('perMinute must be positive');
  const headroom = Math.max(3, Math.ceil(perMinute * 0.02), Math.ceil(reserve));
  const effective = Math.max(perMinute / 4, perMinute - headroom);
  // An interactive call goes at most (lead + block span) before the grid slot it took; the interactive
  // cursor lets headroom − 2 such calls through in that time, so a window holds at most the budget.
  const early = LEAD_MS + BLOCK_SPAN_MS;
  return {
    perMinute,
    effective,
    bulkIntervalMs: 60_000 / effective,
    interactiveIntervalMs: early / Math.max(1, Math.floor(perMinute - effective) - 2),
    leadMs: LEAD_MS,
    blockSpanMs: BLOCK_SPAN_MS,
  };
}

/**
 * Up to `count` consecutive bulk slots from the first free one; none while the grid is claimed more than
 * `leadMs` ahead (then `retryAt` says when to ask again), so slots a dead instance held are lost for
 * seconds only, and an idle grid is never far in the future.
 */
export function claimBulk(
  record: BudgetRecord,
  now: number,
  count: number,
  l: Lanes,
): { record: BudgetRecord; slots: number[] } | { retryAt: number } {
  const start = Math.max(now, record.bulkNextAt, record.pausedUntil);
  if (start - now > l.leadMs) return { retryAt: start - l.leadMs };
  const slots = Array.from({ length: count }, (_, i) => start + i * l.bulkIntervalMs);
  return { record: { ...record, bulkNextAt: start + count * l.bulkIntervalMs }, slots };
}

/**
 * One slot for an interactive call: the next free bulk slot if that is the earliest (no bulk work), else
 * now (or after a pause or a burst), paid for by pushing the bulk grid back one slot.
 */
export function claimInteractive(
  record: BudgetRecord,
  now: number,
  l: Lanes,
): { record: BudgetRecord; slot: number } {
  const onGrid = Math.max(now, record.bulkNextAt, record.pausedUntil);
  const early = Math.max(now, record.interactiveNextAt, record.pausedUntil);
  if (onGrid <= early) {
    return { record: { ...record, bulkNextAt: onGrid + l.bulkIntervalMs }, slot: onGrid };
  }
  return {
    record: {
      ...record,
      interactiveNextAt: early + l.interactiveIntervalMs,
      bulkNextAt: record.bulkNextAt + l.bulkIntervalMs,
    },
    slot: early,
  };
}

/** A block big enough that a busy instance asks the store every few seconds, never more than it needs. */
export function blockSize(waiting: number, l: Lanes): number {
  const most = Math.max(1, Math.floor(l.blockSpanMs / l.bulkIntervalMs));
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
