import { createHash } from 'node:crypto';
import { canonicalJson } from '../sync/hash';

/**
 * The pure rules of the CRM events (docs/events.md): which event a row write is, its stable id, its body,
 * the retry schedule, and which event of a key goes next to an endpoint.
 */

/** The listings that produce events, by their table partition: the event type's prefix. */
export const EVENT_STREAMS = { referral: 'referrals', tenant: 'tenants' } as const;
export type EventSubject = keyof typeof EVENT_STREAMS;

export type ChangeKind = 'created' | 'updated' | 'removed';
export type EventType = `${EventSubject}.${ChangeKind}`;

export const EVENT_TYPES: readonly EventType[] = (['referral', 'tenant'] as const).flatMap((subject) =>
  (['created', 'updated', 'removed'] as const).map((kind) => `${subject}.${kind}` as EventType),
);

/**
 * One write of the sync engine, as the outbox sees it: the row's key, what happened, the row as it will be
 * stored (a removal: as it is stored, with `removedAt` set), and the version it follows: the previous
 * `lastChangedAt`, '' for a new row. The previous version is what makes an event's id stable: until the row
 * write lands, every sync derives the same change from the same previous version.
 */
export interface RowChange {
  key: string;
  kind: ChangeKind;
  /** Previous `lastChangedAt` ('' for a new row). */
  after: string;
  /** The row's content hash after the change (a removal keeps the content). */
  contentHash: string;
  /** The row's columns after the change, as stored (system columns included). */
  row: Record<string, unknown>;
}

/** Standard Webhooks' recommended schedule: the wait before attempt 1, 2, … (seconds). */
export const RETRY_SCHEDULE_SECONDS = [
  0,
  5,
  5 * 60,
  30 * 60,
  2 * 3600,
  5 * 3600,
  10 * 3600,
  10 * 3600,
] as const;

/** Seconds to wait before the next attempt after `attemptsMade` failed ones; undefined: give up. */
export function retryDelaySeconds(attemptsMade: number): number | undefined {
  return attemptsMade >= 1 && attemptsMade < RETRY_SCHEDULE_SECONDS.length
    ? RETRY_SCHEDULE_SECONDS[attemptsMade]
    : undefined;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The event's `webhook-id`: `evt_` and a hash of the subject, key, previous version, kind and new content.
 * The same change derived again (a sync that crashed before its row write runs again) has the same id, so
 * the outbox upsert is a no-op and the CRM can drop a repeat; a new change never shares one.
 */
export function eventId(subject: EventSubject, change: Omit<RowChange, 'row'>): string {
  return `evt_${sha256(canonicalJson([subject, change.key, change.after, change.kind, change.contentHash])).slice(0, 40)}`;
}

/**
 * The outbox RowKey: the key, then the version the event follows. ISO times sort as they run and '' sorts
 * first, so a key's events list oldest first, and a re-derived change lands on its own earlier row.
 */
export function outboxRowKey(key: string, after: string): string {
  return `${key}|${after}`;
}

/** The key of an outbox RowKey (the version after the last `|` holds none). */
export function keyOfRowKey(rowKey: string): string {
  return rowKey.slice(0, rowKey.lastIndexOf('|'));
}

/** Columns of a stored row that are the table's, not the CRM's. */
const TABLE_COLUMNS = new Set(['partitionKey', 'rowKey', 'etag', 'timestamp', 'contentHash', 'odata.etag']);

/** The event's `data`: the row as stored, less the table's own columns; `removedAt` null while present. */
export function eventData(row: Record<string, unknown>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) if (!TABLE_COLUMNS.has(name)) data[name] = value;
  data.removedAt = typeof row.removedAt === 'string' && row.removedAt !== '' ? row.removedAt : null;
  return data;
}

export interface CrmEvent {
  type: EventType;
  /** When the sync found the change: the row's `lastChangedAt`. */
  timestamp: string;
  data: Record<string, unknown>;
}

/** The body the CRM receives. */
export function buildEvent(subject: EventSubject, change: RowChange): CrmEvent {
  const data = eventData(change.row);
  return {
    type: `${subject}.${change.kind}`,
    timestamp: typeof data.lastChangedAt === 'string' ? data.lastChangedAt : '',
    data,
  };
}

/**
 * Whether the stored row (undefined: none) holds the change an event describes, i.e. its row write landed:
 * the row is at the event's version (`lastChangedAt`, and `removedAt` alike: a removal is stored as removed),
 * or past it. Past it means a later change was written after this one: a change whose write never landed is
 * derived again from the same previous version, onto the same outbox row, so it cannot be followed by another.
 */
export function rowHolds(data: Record<string, unknown>, row: Record<string, unknown> | undefined): boolean {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  if (!row) return false;
  const stored = text(row.lastChangedAt);
  const version = text(data.lastChangedAt);
  if (stored === '' || version === '') return false;
  if (stored !== version) return stored > version;
  return text(row.removedAt) === text(data.removedAt);
}

/** An endpoint's short id (a column suffix): 8 hex digits of its URL's hash. The URL itself is never stored. */
export function endpointId(url: string): string {
  return sha256(url).slice(0, 8);
}

/** What the outbox keeps per event and endpoint (columns `<name>_<endpointId>`). */
export interface DeliveryState {
  /** The event id that reached the endpoint, or was given up on; the event is pending while it differs. */
  done?: string;
  /** Attempts made of this event. */
  tries?: number;
  /** No attempt before this (ISO): a retry's message is due then. */
  next?: string;
  /** An attempt holds the event until this (ISO). */
  lease?: string;
}

export interface OutboxEvent {
  rowKey: string;
  eventId: string;
  etag?: string;
  state: DeliveryState;
}

export type NextStep<E extends OutboxEvent> =
  /** Nothing pending for the endpoint. */
  | { action: 'idle' }
  /** An attempt elsewhere holds the oldest pending event until `until`. */
  | { action: 'busy'; until: number }
  /** The oldest pending event waits for its retry at `at`. */
  | { action: 'wait'; at: number }
  | { action: 'send'; event: E };

/**
 * Which event of one key goes next to one endpoint: the oldest whose delivery is not done. A later event of
 * the key never goes before it, whatever its own state: an update never overtakes the create.
 */
export function nextStep<E extends OutboxEvent>(events: readonly E[], nowMs: number): NextStep<E> {
  const oldest = [...events]
    .sort((a, b) => (a.rowKey < b.rowKey ? -1 : a.rowKey > b.rowKey ? 1 : 0))
    .find((event) => event.state.done !== event.eventId);
  if (!oldest) return { action: 'idle' };
  const lease = oldest.state.lease ? Date.parse(oldest.state.lease) : 0;
  if (lease > nowMs) return { action: 'busy', until: lease };
  const next = oldest.state.next ? Date.parse(oldest.state.next) : 0;
  if (next > nowMs) return { action: 'wait', at: next };
  return { action: 'send', event: oldest };
}

export type SendOutcome =
  | { kind: 'sent'; status: number }
  | { kind: 'gone' }
  | { kind: 'failed'; error: string };

/** 2xx: sent; 410: the endpoint is gone (disabled); anything else, or no answer: try again later. */
export function outcomeOf(status: number): SendOutcome {
  if (status >= 200 && status < 300) return { kind: 'sent', status };
  if (status === 410) return { kind: 'gone' };
  return { kind: 'failed', error: `HTTP ${status}` };
}
