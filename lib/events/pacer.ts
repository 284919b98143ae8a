import type { TableClient } from '@azure/data-tables';
import { type Clock, sleep } from '../clock';
import { safeErrorMessage } from '../redact';
import { ensureTableOnce, getEntityOrUndefined, isConflict, isPreconditionFailed } from '../storage';

const PACE_PARTITION = 'pace';
/** Each claim takes this share of a second's slots, so a busy endpoint costs ~2 storage requests per 200 ms. */
const BLOCK_SECONDS = 0.2;
/** A claimed slot not used this long after its time is dropped: sending it late would crowd the next ones. */
const LATE_MS = 500;
const MAX_CONFLICTS = 8;

/**
 * At most `perSecond` sends a second to one endpoint, across every instance: the next free slot lives in one
 * row (`pace` / endpoint id) of the outbox table, and each instance claims blocks of slots ahead on its ETag.
 * Deliberately not lib/rate-budget: that is FPX's one budget (429 pauses, interactive lanes), and CRM events
 * must neither spend it nor wait for it. While the row cannot be written, an instance paces on its own.
 */
export class Pacer {
  private slots: number[] = [];
  private claiming?: Promise<void>;
  private readonly intervalMs: number;
  /** Store requests made (the benchmark's figure). */
  storeRequests = 0;

  constructor(
    private readonly table: TableClient,
    private readonly endpoint: string,
    readonly perSecond: number,
    private readonly clock: Clock,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    this.intervalMs = 1000 / perSecond;
  }

  /** Resolves at this caller's slot. */
  async wait(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      while (this.slots.length && (this.slots[0] as number) < now - LATE_MS) this.slots.shift();
      const slot = this.slots.shift();
      if (slot !== undefined) {
        if (slot > now) await sleep(this.clock, slot - now);
        return;
      }
      this.claiming ??= this.claim().finally(() => {
        this.claiming = undefined;
      });
      await this.claiming;
    }
  }

  private async claim(): Promise<void> {
    const count = Math.max(1, Math.round(this.perSecond * BLOCK_SECONDS));
    try {
      await ensureTableOnce(this.table);
      for (let conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
        this.storeRequests++;
        const row = await getEntityOrUndefined<{ nextSlotMs?: number }>(
          this.table,
          PACE_PARTITION,
          this.endpoint,
        );
        const now = this.clock.now();
        const start = Math.max(now, Number(row?.nextSlotMs ?? 0));
        const entity = {
          partitionKey: PACE_PARTITION,
          rowKey: this.endpoint,
          nextSlotMs: start + count * this.intervalMs,
        };
        try {
          this.storeRequests++;
          if (row?.etag) await this.table.updateEntity(entity, 'Replace', { etag: row.etag });
          else await this.table.createEntity(entity);
        } catch (error) {
          if (isPreconditionFailed(error) || isConflict(error)) continue;
          throw error;
        }
        this.slots.push(...Array.from({ length: count }, (_, i) => start + i * this.intervalMs));
        return;
      }
      throw new Error(`${MAX_CONFLICTS} conflicting claims in a row`);
    } catch (error) {
      // Paced by this instance alone until the row answers again: late rather than never.
      this.log(
        `CRM events: the shared pace of endpoint ${this.endpoint} failed, pacing alone: ${safeErrorMessage(error)}`,
      );
      const now = this.clock.now();
      this.slots.push(...Array.from({ length: count }, (_, i) => now + i * this.intervalMs));
    }
  }
}
