/**
 * FPX's limit: calls per minute per identifiable user (per IP without a user token).
 * A token bucket per caller refilling at perMinute/60 a second, holding max(2, ceil(perMinute/60)):
 * a client that paces itself evenly at the limit never waits, a burst does.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>();

  constructor(private perMinute: number) {}

  get limit(): number {
    return this.perMinute;
  }

  setLimit(perMinute: number): void {
    this.perMinute = perMinute;
    this.buckets.clear();
  }

  /** Takes one token for `caller`; undefined when allowed, else the whole seconds to wait. */
  take(caller: string, now = performance.now()): number | undefined {
    if (this.perMinute <= 0) return undefined;
    const perSecond = this.perMinute / 60;
    const capacity = Math.max(2, Math.ceil(perSecond));
    const bucket = this.buckets.get(caller) ?? { tokens: capacity, updatedAt: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) / 1000) * perSecond);
    bucket.updatedAt = now;
    this.buckets.set(caller, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
  }
}
