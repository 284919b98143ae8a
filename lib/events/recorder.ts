import type { TableClient } from '@azure/data-tables';
import type { Clock } from '../clock';
import { safeErrorMessage } from '../redact';
import type { AfterSubmit } from '../sync/batch-writer';
import { TABLES } from '../sync/fpx-streams';
import type { RowWrite } from '../sync/sync-stream';
import type { EventsQueue } from './delivery';
import type { Outbox } from './outbox';
import { type ChangeKind, EVENT_STREAMS, type EventSubject, type RowChange } from './rules';

/** The table each subject's rows live in. */
export const SUBJECT_TABLES: Record<EventSubject, string> = {
  referral: TABLES.referrals,
  tenant: TABLES.tenants,
};

const KINDS: Record<RowWrite['change'], ChangeKind> = {
  created: 'created',
  changed: 'updated',
  removed: 'removed',
};

export interface RecorderDeps {
  outbox: Outbox;
  queue: EventsQueue;
  table(name: string): TableClient;
  clock: Clock;
  log?: (message: string) => void;
}

/**
 * The sync engine's `beforeWrite` for referrals and tenants: each transaction's row writes become events in
 * the outbox first, then the rows are written, and only once they are (the returned step) one `crm-events`
 * message names their keys: the CRM never hears of a change whose row write failed. A crash before the rows
 * land loses nothing: the next sync derives the same changes, with the same ids, onto the same outbox rows.
 * A crash between the rows and the message, or a message that could not be sent: the sweep queues them.
 */
export function outboxRecorder(deps: RecorderDeps) {
  return async (partitionKey: string, writes: RowWrite[]): Promise<AfterSubmit | undefined> => {
    if (!Object.hasOwn(EVENT_STREAMS, partitionKey) || writes.length === 0) return undefined;
    const subject = partitionKey as EventSubject;
    const rows = deps.table(SUBJECT_TABLES[subject]);
    const changes = await Promise.all(writes.map((write) => toChange(rows, partitionKey, write)));
    await deps.outbox.record(subject, changes, new Date(deps.clock.now()));
    return async () => {
      try {
        const created = changes.filter((change) => change.kind === 'created').map((change) => change.key);
        await deps.queue.send({
          subject,
          keys: changes.map((change) => change.key),
          ...(created.length > 0 ? { created } : {}),
        });
      } catch (error) {
        deps.log?.(
          `CRM events: ${changes.length} ${subject} events recorded but not queued (the sweep queues them): ${safeErrorMessage(error)}`,
        );
      }
    };
  };
}

/** A removal merges two columns: the event carries the whole row, read as stored. */
async function toChange(rows: TableClient, partitionKey: string, write: RowWrite): Promise<RowChange> {
  const row =
    write.change === 'removed'
      ? { ...(await rows.getEntity<Record<string, unknown>>(partitionKey, write.rowKey)), ...write.row }
      : write.row;
  return {
    key: write.rowKey,
    kind: KINDS[write.change],
    after: write.previous?.lastChangedAt ?? '',
    contentHash: write.contentHash,
    row,
  };
}
