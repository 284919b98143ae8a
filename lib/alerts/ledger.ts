import type { TableClient } from '@azure/data-tables';
import { safeErrorMessage } from '../redact';
import { ensureTableOnce, getEntityOrUndefined, isConflict, isPreconditionFailed } from '../storage';

/** One alert's row: claimed before sending, so restarts, re-runs and other instances never send it twice. */
export interface AlertRecord {
  partitionKey: string;
  rowKey: string;
  /** `sending`: claimed, outcome not known yet; after the grace period the sender is taken for dead. */
  status: 'sending' | 'sent' | 'failed';
  claimedAt: string;
  attempts: number;
  sentAt?: string;
  transport?: string;
  lastError?: string;
  subject?: string;
}

export type AlertClaim =
  | { claimed: true; attempt: number }
  | { claimed: false; status: AlertRecord['status'] | 'taken' };

/** A claim still `sending` after this is taken over: its sender died mid-send (a duplicate beats a miss). */
const SENDING_GRACE_MS = 30 * 60_000;

/**
 * The table of alerts sent (e.g. FpxCertAlerts). `claim` is atomic: a row created with createEntity (or a
 * failed or abandoned row retaken with its ETag) belongs to exactly one caller. A send that failed is marked
 * `failed` and claimed again by the next run, as is one left `sending` beyond the grace period; a sent alert
 * is never claimed again.
 */
export class AlertLedger {
  constructor(private readonly table: TableClient) {}

  async claim(
    partitionKey: string,
    rowKey: string,
    details: Record<string, string | number> = {},
    now = new Date(),
  ): Promise<AlertClaim> {
    await ensureTableOnce(this.table);
    const claimedAt = now.toISOString();
    try {
      await this.table.createEntity({
        ...details,
        partitionKey,
        rowKey,
        status: 'sending',
        claimedAt,
        attempts: 1,
      });
      return { claimed: true, attempt: 1 };
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
    const existing = await this.table.getEntity<AlertRecord>(partitionKey, rowKey);
    const abandoned =
      existing.status === 'sending' && now.getTime() - Date.parse(existing.claimedAt) >= SENDING_GRACE_MS;
    if (existing.status !== 'failed' && !abandoned) return { claimed: false, status: existing.status };
    const attempt = (existing.attempts ?? 1) + 1;
    try {
      // The ETag makes the retake atomic: of two instances retrying the same alert, one wins.
      await this.table.updateEntity(
        { partitionKey, rowKey, status: 'sending', claimedAt, attempts: attempt },
        'Merge',
        { etag: existing.etag },
      );
      return { claimed: true, attempt };
    } catch (error) {
      if (isPreconditionFailed(error)) return { claimed: false, status: 'taken' };
      throw error;
    }
  }

  async markSent(partitionKey: string, rowKey: string, transport: string, now = new Date()): Promise<void> {
    await this.table.updateEntity(
      { partitionKey, rowKey, status: 'sent', sentAt: now.toISOString(), transport, lastError: '' },
      'Merge',
    );
  }

  async markFailed(partitionKey: string, rowKey: string, transport: string, error: unknown): Promise<void> {
    const message = safeErrorMessage(error).slice(0, 1000);
    await this.table.updateEntity(
      { partitionKey, rowKey, status: 'failed', transport, lastError: message },
      'Merge',
    );
  }

  async get(partitionKey: string, rowKey: string): Promise<AlertRecord | undefined> {
    await ensureTableOnce(this.table);
    return getEntityOrUndefined<AlertRecord>(this.table, partitionKey, rowKey);
  }
}
