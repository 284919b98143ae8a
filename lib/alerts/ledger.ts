import type { TableClient } from '@azure/data-tables';
import { ensureTable } from '../storage';
import { redactSecrets } from './alert-sender';

/** One alert's row: claimed before sending, so restarts, re-runs and other instances never send it twice. */
export interface AlertRecord {
  partitionKey: string;
  rowKey: string;
  /** `sending`: claimed, outcome not known yet (or the process died mid-send: never resent). */
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

/**
 * The table of alerts sent (e.g. FpxCertAlerts). `claim` is atomic: a row created with createEntity (or a
 * failed row retaken with its ETag) belongs to exactly one caller. A send that failed is marked `failed`
 * and claimed again by the next run; a sent or in-progress alert is never claimed again.
 */
export class AlertLedger {
  private ready?: Promise<unknown>;

  constructor(private readonly table: TableClient) {}

  async claim(
    partitionKey: string,
    rowKey: string,
    details: Record<string, string | number> = {},
    now = new Date(),
  ): Promise<AlertClaim> {
    await this.ensure();
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
      if (statusOf(error) !== 409) throw error;
    }
    const existing = await this.table.getEntity<AlertRecord>(partitionKey, rowKey);
    if (existing.status !== 'failed') return { claimed: false, status: existing.status };
    const attempt = (existing.attempts ?? 1) + 1;
    try {
      // The ETag makes the retake atomic: of two instances retrying the same failed alert, one wins.
      await this.table.updateEntity(
        { partitionKey, rowKey, status: 'sending', claimedAt, attempts: attempt },
        'Merge',
        { etag: existing.etag },
      );
      return { claimed: true, attempt };
    } catch (error) {
      if (statusOf(error) === 412) return { claimed: false, status: 'taken' };
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
    const message = redactSecrets((error as Error)?.message ?? String(error)).slice(0, 1000);
    await this.table.updateEntity(
      { partitionKey, rowKey, status: 'failed', transport, lastError: message },
      'Merge',
    );
  }

  async get(partitionKey: string, rowKey: string): Promise<AlertRecord | undefined> {
    await this.ensure();
    try {
      return await this.table.getEntity<AlertRecord>(partitionKey, rowKey);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  private ensure(): Promise<unknown> {
    this.ready ??= ensureTable(this.table).catch((error) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number })?.statusCode;
}
