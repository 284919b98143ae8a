import { type Clock, systemClock } from '../clock';
import {
  type CallLimiter,
  enqueueWaiter,
  type Priority,
  type Waiter as QueuedCaller,
  RateLimiter,
} from '../fpx/rate-limiter';
import { safeErrorMessage } from '../redact';
import {
  type BudgetRecord,
  blockSize,
  claimBulk,
  claimInteractive,
  type Lanes,
  lanes,
  pauseUntil,
} from './lanes';
import type { BudgetStore } from './store';

export interface SharedBudgetOptions {
  clock?: Clock;
  log?: (message: string) => void;
  /** Calls a minute this instance allows itself while the store cannot be reached (budget ÷ instance cap). */
  fallbackPerMinute: number;
  /** How long to stay on the fallback before asking the store again. Default 30 s. */
  fallbackForMs?: number;
}

interface Waiter extends QueuedCaller {
  /** An interactive waiter's own slot (epoch ms), once claimed. */
  slot?: number;
}

/** How long after a conflicting write the record is read before each claim. */
const CONTENDED_MS = 30_000;
/** A slot used later than this after its time is dropped: late sends would crowd the next window. */
const LATE_MS = 250;

/**
 * The deployment's one FPX budget, shared by every instance through one Table Storage record (see
 * lanes.ts). Bulk callers are served from blocks of slots this instance claims ahead; interactive callers
 * get a slot of their own from whichever lane is free first, or this instance's next bulk slot if it is
 * due within one interval. A 429 is written to the record, so every instance pauses at its next claim.
 * When the store fails, a local limiter at `fallbackPerMinute` takes over for a while (logged once).
 */
export class SharedRateBudget implements CallLimiter {
  readonly perMinute: number;
  readonly lanes: Lanes;
  /** Store requests made, and FPX call slots handed out (for the benchmark's ratio). */
  readonly stats = { storeRequests: 0, interactiveStoreRequests: 0, slotsClaimed: 0, fallbacks: 0 };
  private readonly clock: Clock;
  private readonly log: (message: string) => void;
  private readonly waiters: Record<Priority, Waiter[]> = { interactive: [], bulk: [] };
  private slots: number[] = [];
  private pausedUntil = 0;
  private pendingPause = 0;
  private cached?: { record: BudgetRecord; etag?: string };
  private storeOp?: Promise<void>;
  /** The bulk grid was claimed too far ahead: no bulk claim before this. */
  private bulkRetryAt = 0;
  private lastConflictAt = Number.NEGATIVE_INFINITY;
  private fallback?: { until: number; limiter: RateLimiter };
  /** The store failed and has not answered since: logged once, when it starts. */
  private unreachable = false;
  private cancelTimer?: () => void;

  constructor(
    perMinute: number,
    private readonly store: BudgetStore,
    private readonly options: SharedBudgetOptions,
  ) {
    this.perMinute = perMinute;
    // The headroom covers an instance on its fallback share while the others still reach the store.
    this.lanes = lanes(perMinute, options.fallbackPerMinute);
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? ((message) => console.warn(message));
  }

  acquire(signal?: AbortSignal, priority: Priority = 'bulk'): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const fallback = this.activeFallback();
    if (fallback) return fallback.acquire(signal, priority);
    return new Promise<void>((resolve, reject) => {
      enqueueWaiter(this.waiters[priority], { resolve, reject, signal });
      this.pump();
    });
  }

  pause(untilMs: number): void {
    const now = this.clock.now();
    const { until, capped } = pauseUntil(now, untilMs - now);
    if (capped)
      this.log(
        `FPX asked to wait ${Math.round((untilMs - now) / 1000)} s; pausing for the maximum, ${Math.round((until - now) / 1000)} s`,
      );
    this.fallback?.limiter.pause(until);
    if (until <= this.pausedUntil) return;
    this.pausedUntil = until;
    this.pendingPause = Math.max(this.pendingPause, until);
    this.pump();
  }

  get pausedForMs(): number {
    return Math.max(0, this.pausedUntil - this.clock.now());
  }

  get queued(): number {
    return this.waiters.interactive.length + this.waiters.bulk.length + (this.fallback?.limiter.queued ?? 0);
  }

  estimateWaitMs(priority: Priority): number {
    const fallback = this.activeFallback();
    if (fallback) return fallback.estimateWaitMs(priority);
    const now = this.clock.now();
    const paused = this.pausedForMs;
    if (priority === 'interactive')
      return paused + this.waiters.interactive.length * this.lanes.interactiveIntervalMs;
    const ahead = this.waiters.bulk.length - this.slots.length;
    const lastSlot = this.slots.at(-1) ?? now;
    return Math.max(paused, lastSlot - now) + Math.max(0, ahead) * this.lanes.bulkIntervalMs;
  }

  /** Resolves once no store request is in flight (tests move their clock only then). */
  async whenIdle(): Promise<void> {
    while (this.storeOp) await this.storeOp;
  }

  private get storeBusy(): boolean {
    return this.storeOp !== undefined;
  }

  private activeFallback(): RateLimiter | undefined {
    if (!this.fallback) return undefined;
    if (this.clock.now() < this.fallback.until) return this.fallback.limiter;
    return undefined;
  }

  private pump(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const now = this.clock.now();
    const fallback = this.activeFallback();
    if (fallback) {
      // Everyone waiting goes through the local share until the store is asked again.
      for (const priority of ['interactive', 'bulk'] as const) {
        for (const waiter of this.waiters[priority].splice(0)) {
          if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
          fallback.acquire(waiter.signal, priority).then(waiter.resolve, waiter.reject);
        }
      }
      return;
    }
    if (this.pendingPause && !this.storeBusy) this.writePause();
    if (this.pausedUntil > now) {
      this.slots = this.slots.filter((slot) => slot >= this.pausedUntil);
      this.cancelTimer = this.clock.setTimer(() => this.pump(), this.pausedUntil - now);
      return;
    }
    while (this.slots.length && (this.slots[0] as number) < now - LATE_MS) this.slots.shift();

    const interactive = this.waiters.interactive;
    for (const waiter of [...interactive]) {
      if (waiter.slot !== undefined && waiter.slot <= now) this.release(interactive, waiter);
    }
    // Own bulk slots that are due: an interactive caller without a slot of its own first, then bulk callers.
    while (this.slots.length && (this.slots[0] as number) <= now) {
      const waiter = interactive.find((w) => w.slot === undefined) ?? this.waiters.bulk[0];
      if (!waiter) break;
      this.slots.shift();
      this.release(
        waiter.slot === undefined && interactive.includes(waiter) ? interactive : this.waiters.bulk,
        waiter,
      );
    }

    const unplaced = interactive.find((w) => w.slot === undefined);
    const nextOwn = this.slots[0];
    const ownSoon = nextOwn !== undefined && nextOwn - now <= this.lanes.bulkIntervalMs;
    if (!this.storeBusy && unplaced && !ownSoon) {
      this.claim('interactive', (record, at) => {
        const out = claimInteractive(record, at, this.lanes);
        return { record: out.record, apply: () => this.placeInteractive(out.slot) };
      });
    } else if (!this.storeBusy && this.waiters.bulk.length > 0 && this.bulkRetryAt <= now) {
      const size = blockSize(this.waiters.bulk.length, this.lanes);
      const future = this.slots.filter((slot) => slot > now).length;
      if (future < Math.ceil(size / 2)) {
        this.claim('bulk', (record, at) => {
          const out = claimBulk(record, at, size, this.lanes);
          if ('retryAt' in out) return out;
          return {
            record: out.record,
            apply: () => {
              this.slots.push(...out.slots);
              this.slots.sort((a, b) => a - b);
            },
          };
        });
      }
    }

    const next = Math.min(
      this.slots[0] ?? Number.POSITIVE_INFINITY,
      this.waiters.bulk.length > 0 && this.bulkRetryAt > now ? this.bulkRetryAt : Number.POSITIVE_INFINITY,
      ...interactive.map((w) => w.slot ?? Number.POSITIVE_INFINITY),
    );
    if (Number.isFinite(next) && this.queued > 0) {
      this.cancelTimer = this.clock.setTimer(() => this.pump(), Math.max(0, next - now));
    }
  }

  private release(queue: Waiter[], waiter: Waiter): void {
    const index = queue.indexOf(waiter);
    if (index >= 0) queue.splice(index, 1);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.stats.slotsClaimed++;
    waiter.resolve();
  }

  private placeInteractive(slot: number): void {
    const waiter = this.waiters.interactive.find((w) => w.slot === undefined);
    // The caller gave up meanwhile: the slot goes to a bulk caller rather than to waste.
    if (waiter) waiter.slot = slot;
    else this.slots.push(slot);
    this.slots.sort((a, b) => a - b);
  }

  private writePause(): void {
    const until = this.pendingPause;
    this.pendingPause = 0;
    this.claim('pause', (record) => ({
      record: { ...record, pausedUntil: Math.max(record.pausedUntil, until) },
      apply: () => undefined,
    }));
  }

  /**
   * One read-modify-write of the record, conditional on its version: with the version this instance last
   * saw first (one request when nobody else wrote), then read afresh on a conflict.
   */
  private claim(
    purpose: 'interactive' | 'bulk' | 'pause',
    change: (
      record: BudgetRecord,
      now: number,
    ) => { record: BudgetRecord; apply: () => void } | { retryAt: number },
  ): void {
    // What this instance last saw can only be behind: if even that says the grid is taken, wait, asking nothing.
    if (this.cached) {
      const early = change(this.cached.record, this.clock.now());
      if ('retryAt' in early) {
        this.retryBulkAt(early.retryAt);
        return; // the caller (pump) sets its timer for then
      }
    }
    // While other instances claim too, the version last seen is likely stale: read first (one request when
    // the grid turns out to be taken, instead of a failed write and a read).
    if (this.clock.now() - this.lastConflictAt < CONTENDED_MS) this.cached = undefined;
    this.storeOp = (async () => {
      try {
        for (let attempt = 0; attempt < 5; attempt++) {
          let fresh = false;
          if (!this.cached) {
            this.countRequest(purpose);
            this.cached = await this.store.read();
            fresh = true;
            if (this.cached.record.pausedUntil > this.pausedUntil)
              this.pausedUntil = this.cached.record.pausedUntil;
          }
          const decided = change(this.cached.record, this.clock.now());
          if ('retryAt' in decided) {
            // The grid is claimed far ahead: by what this instance last saw, or by what is there now?
            if (!fresh) {
              this.cached = undefined;
              continue;
            }
            this.retryBulkAt(decided.retryAt);
            return;
          }
          const { record, apply } = decided;
          this.countRequest(purpose);
          const etag = await this.store.write(record, this.cached.etag);
          if (etag) {
            this.cached = { record, etag };
            if (this.unreachable) {
              this.unreachable = false;
              this.log('The shared FPX rate budget is reachable again');
            }
            if (record.pausedUntil > this.pausedUntil) this.pausedUntil = record.pausedUntil;
            apply();
            return;
          }
          this.lastConflictAt = this.clock.now();
          this.cached = undefined;
        }
        // Five conflicts in a row: many instances claiming at once; the next pump tries again.
      } catch (error) {
        this.cached = undefined;
        this.enterFallback(error);
      } finally {
        this.storeOp = undefined;
        this.pump();
      }
    })();
  }

  /**
   * Instances waiting for the same moment would race, and the one that wrote last would win every time: a
   * random delay (within the lead, so the grid never runs dry) makes the turns fair.
   */
  private retryBulkAt(at: number): void {
    this.bulkRetryAt = at + Math.random() * 0.5 * this.lanes.leadMs;
  }

  private countRequest(purpose: 'interactive' | 'bulk' | 'pause'): void {
    this.stats.storeRequests++;
    if (purpose === 'interactive') this.stats.interactiveStoreRequests++;
  }

  private enterFallback(error: unknown): void {
    this.stats.fallbacks++;
    const forMs = this.options.fallbackForMs ?? 30_000;
    if (!this.unreachable) {
      this.unreachable = true;
      this.log(
        `The shared FPX rate budget cannot be reached (${safeErrorMessage(error)}); this instance allows itself ` +
          `${this.options.fallbackPerMinute} calls a minute until it can`,
      );
    }
    const limiter = this.fallback?.limiter ?? new RateLimiter(this.options.fallbackPerMinute, this.clock);
    if (this.pausedUntil > this.clock.now()) limiter.pause(this.pausedUntil);
    this.fallback = { until: this.clock.now() + forMs, limiter };
    // Slots already claimed stay valid, but are simpler to give up than to mix with the fallback's pace.
    this.slots = [];
  }
}
