import { odata, type TableClient } from '@azure/data-tables';
import {
  ensureTableOnce,
  getEntityOrUndefined,
  isConflict,
  isNotFound,
  isPreconditionFailed,
  listEntitiesOrNone,
} from '../storage';
import { BatchWriter } from '../sync/batch-writer';
import { joinColumn, MAX_COLUMN_CHARS } from '../sync/row';
import {
  buildEvent,
  type DeliveryState,
  type EventSubject,
  eventId,
  keyOfRowKey,
  type OutboxEvent,
  outboxRowKey,
  type RowChange,
} from './rules';

/**
 * CrmEventsOutbox: one row per event, PartitionKey the subject (`referral`, `tenant`), RowKey
 * `<key>|<previous lastChangedAt>` (rules.ts), holding the event's id, type and body, and per endpoint its
 * delivery state in columns `<name>_<endpointId>`. Partition `endpoint`: the endpoints a 410 disabled.
 * Partition `pace`: the next free send slot per endpoint (pacer.ts).
 */
export const OUTBOX_TABLE = 'CrmEventsOutbox';
export const ENDPOINT_PARTITION = 'endpoint';

export interface StoredEvent extends OutboxEvent {
  subject: EventSubject;
  key: string;
  type: string;
  /** The JSON body the CRM receives. */
  body: string;
  createdAt: string;
  /** Every column, for the other endpoints' states (the sweep). */
  columns: Record<string, unknown>;
}

/**
 * The delivery state of one endpoint, read from an outbox row. Its tries and retry time belong to the event
 * named in `event_<endpoint>`: an event derived again onto the row (a new id) starts afresh, not on the
 * schedule of the one it replaced. The lease stays: it holds the key whatever event the attempt sends.
 */
export function stateOf(columns: Record<string, unknown>, endpoint: string): DeliveryState {
  const text = (name: string) => {
    const value = columns[`${name}_${endpoint}`];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const tries = columns[`tries_${endpoint}`];
  const ours = text('event') === columns.eventId;
  return {
    done: text('done'),
    tries: ours && typeof tries === 'number' ? tries : 0,
    next: ours ? text('next') : undefined,
    lease: text('lease'),
  };
}

/** The per-endpoint state columns (`<name>_<endpoint id>`) stateColumns writes. */
const STATE_NAMES = ['tries', 'next', 'lease', 'done', 'result', 'error', 'sentAt', 'event'] as const;

/** Columns that set an endpoint's state (a Merge of these changes nothing else). */
export function stateColumns(
  endpoint: string,
  state: Partial<DeliveryState> & { result?: string; error?: string; sentAt?: string; event?: string },
): Record<string, string | number> {
  const columns: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(state)) {
    if (value !== undefined) columns[`${name}_${endpoint}`] = value;
  }
  return columns;
}

function toStored(entity: Record<string, unknown>, endpoint: string): StoredEvent {
  const rowKey = String(entity.rowKey);
  return {
    subject: String(entity.partitionKey) as EventSubject,
    rowKey,
    key: keyOfRowKey(rowKey),
    eventId: String(entity.eventId),
    type: String(entity.type),
    body: joinColumn(entity, 'body') ?? '',
    createdAt: String(entity.createdAt ?? ''),
    etag: typeof entity.etag === 'string' ? entity.etag : undefined,
    state: stateOf(entity, endpoint),
    columns: entity,
  };
}

/** The body in columns of at most MAX_COLUMN_CHARS: `body`, `body_1`, … (read back with joinColumn). */
function bodyColumns(body: string): Record<string, string> {
  const columns: Record<string, string> = {};
  for (let start = 0, part = 0; start < body.length || part === 0; start += MAX_COLUMN_CHARS, part++) {
    columns[part === 0 ? 'body' : `body_${part}`] = body.slice(start, start + MAX_COLUMN_CHARS);
  }
  return columns;
}

export class Outbox {
  constructor(readonly table: TableClient) {}

  /**
   * Records the changes of one transaction of row writes, before they are written: one Merge upsert per
   * event, in batch transactions of the subject's partition. Merge, not Replace: a change derived again
   * (same id) leaves its delivery state as it is, so what was sent is not sent again.
   */
  async record(subject: EventSubject, changes: readonly RowChange[], now: Date): Promise<void> {
    if (changes.length === 0) return;
    await ensureTableOnce(this.table);
    const writer = new BatchWriter(this.table, subject, 1);
    for (const change of changes) {
      const event = buildEvent(subject, change);
      await writer.add([
        'upsert',
        {
          partitionKey: subject,
          rowKey: outboxRowKey(change.key, change.after),
          eventId: eventId(subject, change),
          type: event.type,
          createdAt: now.toISOString(),
          ...bodyColumns(JSON.stringify(event)),
        },
        'Merge',
      ]);
    }
    await writer.drain();
  }

  /** The events of one key, oldest first, with `endpoint`'s delivery state. */
  async eventsOf(subject: EventSubject, key: string, endpoint: string): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    const from = `${key}|`;
    const rows = listEntitiesOrNone<Record<string, unknown>>(this.table, {
      queryOptions: {
        filter: odata`PartitionKey eq ${subject} and RowKey ge ${from} and RowKey lt ${`${key}|~`}`,
      },
    });
    for await (const row of rows) {
      // A key that itself holds `|` shares the range's prefix: only this key's rows count.
      if (keyOfRowKey(String(row.rowKey)) === key) events.push(toStored(row, endpoint));
    }
    return events;
  }

  /** One event by its key and the version it follows (a point read), or none. */
  async eventAt(subject: EventSubject, key: string, after: string, endpoint: string): Promise<StoredEvent[]> {
    const row = await getEntityOrUndefined<Record<string, unknown>>(
      this.table,
      subject,
      outboxRowKey(key, after),
    );
    return row ? [toStored(row, endpoint)] : [];
  }

  /**
   * Every event of a subject with the endpoints' states but not its body (the sweep reads the whole partition
   * every 5 minutes: thousands of rows after a first sync, kept 7 days). `body` is '' here: `withBody` reads it.
   */
  async *all(subject: EventSubject, endpoints: readonly string[]): AsyncGenerator<StoredEvent> {
    const select = [
      'partitionKey',
      'rowKey',
      'eventId',
      'type',
      'createdAt',
      ...endpoints.flatMap((endpoint) => STATE_NAMES.map((name) => `${name}_${endpoint}`)),
    ];
    const rows = listEntitiesOrNone<Record<string, unknown>>(this.table, {
      queryOptions: { filter: odata`PartitionKey eq ${subject}`, select },
    });
    for await (const row of rows) yield toStored(row, '');
  }

  /** The event read whole (its body too); undefined once it is gone. */
  async withBody(event: StoredEvent): Promise<StoredEvent | undefined> {
    const row = await getEntityOrUndefined<Record<string, unknown>>(this.table, event.subject, event.rowKey);
    return row ? toStored(row, '') : undefined;
  }

  /** Sets an endpoint's state; with `etag`, only if the row is unchanged (false when it changed). */
  async update(
    event: StoredEvent,
    endpoint: string,
    state: Parameters<typeof stateColumns>[1],
    etag?: string,
  ): Promise<boolean> {
    try {
      await this.table.updateEntity(
        // Names the event the state is of (stateOf): a row derived again since keeps none of it.
        {
          partitionKey: event.subject,
          rowKey: event.rowKey,
          ...stateColumns(endpoint, { ...state, event: event.eventId }),
        },
        'Merge',
        etag ? { etag } : undefined,
      );
      return true;
    } catch (error) {
      if (isPreconditionFailed(error)) return false;
      throw error;
    }
  }

  /** Deletes an event; one already deleted, or changed since it was read (re-derived), is left alone. */
  async delete(event: StoredEvent): Promise<boolean> {
    try {
      await this.table.deleteEntity(
        event.subject,
        event.rowKey,
        event.etag ? { etag: event.etag } : undefined,
      );
      return true;
    } catch (error) {
      if (isNotFound(error) || isPreconditionFailed(error)) return false;
      throw error;
    }
  }

  /** The endpoints a 410 disabled, by id. */
  async disabledEndpoints(): Promise<Set<string>> {
    const disabled = new Set<string>();
    const rows = listEntitiesOrNone<Record<string, unknown>>(this.table, {
      queryOptions: {
        filter: odata`PartitionKey eq ${ENDPOINT_PARTITION}`,
        select: ['RowKey', 'disabledAt'],
      },
    });
    for await (const row of rows) if (row.disabledAt) disabled.add(String(row.rowKey));
    return disabled;
  }

  /**
   * Disables an endpoint (its host only is kept, never the URL). True only for the call that disabled it
   * (create-once), so one alert goes out however many instances met the 410. Deleting the row enables it again.
   */
  async disable(endpoint: string, host: string, now: Date): Promise<boolean> {
    await ensureTableOnce(this.table);
    try {
      await this.table.createEntity({
        partitionKey: ENDPOINT_PARTITION,
        rowKey: endpoint,
        host,
        disabledAt: now.toISOString(),
      });
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }
}
