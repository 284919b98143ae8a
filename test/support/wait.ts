/**
 * The one way a test waits: for a condition, polled at a short interval. Never for a fixed time for
 * something to expire (a lease, a backoff, a timeout): move the injected clock, or give the option that
 * shortens it.
 */

export interface WaitOptions {
  /** Give up after this long (default 20 s, inside vitest's 30-s test timeout). */
  timeoutMs?: number;
  /** Between two probes (default 20 ms). */
  intervalMs?: number;
  /** Added to the error when it times out, e.g. a child process's output so far. */
  detail?: () => string;
}

/**
 * Polls `probe` until it gives a value other than `undefined`, `null` or `false`, and returns that value.
 * A probe may be async; it is never called again before the previous call has settled. Throws
 * "Timed out waiting for <what>" once `timeoutMs` (or the number given instead of options) has passed.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions | number = {},
): Promise<T> {
  const {
    timeoutMs = 20_000,
    intervalMs = 20,
    detail,
  } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what} (${timeoutMs} ms)${detail ? `\n${detail()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
