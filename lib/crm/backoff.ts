/** A queue message may stay invisible at most 7 days; our retries stay far below. */
export const MAX_BACKOFF_SECONDS = 3600;

/**
 * Seconds to wait before attempt `failedAttempts + 1`: exponential from `baseSeconds` (base, 2·base,
 * 4·base, …, capped at an hour) with "equal jitter" — at least half the step, so retries after an outage
 * spread out without ever coming back almost at once — and never before FPX's Retry-After (itself capped
 * at the hour). `jitter` in [0, 1) picks the point between half and all of the step.
 */
export function retryDelaySeconds(
  failedAttempts: number,
  baseSeconds: number,
  retryAfterMs = 0,
  jitter = Math.random(),
): number {
  const step = Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 2 ** Math.max(0, failedAttempts - 1));
  const jittered = step / 2 + jitter * (step / 2);
  return Math.min(MAX_BACKOFF_SECONDS, Math.max(1, Math.ceil(jittered), Math.ceil(retryAfterMs / 1000)));
}
