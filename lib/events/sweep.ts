import type { TableClient } from '@azure/data-tables';
import type { Log } from '../log';
import { ensureTableOnce } from '../storage';
import { SYNC_STATE_PARTITION } from '../sync/sync-state';
import { type Endpoint, type EventsQueue, eventStored } from './delivery';
import { type Outbox, type StoredEvent, stateOf } from './outbox';
import { EVENT_STREAMS, type EventSubject } from './rules';

/** A pending event with no attempt due for this long has lost its message: queued again. */
export const SWEEP_GRACE_MS = 2 * 60_000;
/** Events every endpoint is done with are deleted after this many days. */
export const OUTBOX_RETENTION_DAYS = 7;

/** Deliveries (event × endpoint) in the outbox: sent, given up (`failed`), still pending. */
export interface EventCounts {
  sent: number;
  pending: number;
  failed: number;
  /** Keys queued again by this sweep. */
  requeued: number;
  purged: number;
}

export interface SweepDeps {
  outbox: Outbox;
  queue: EventsQueue;
  endpoints: readonly Endpoint[];
  /** FpxSyncState: the counts go into the `referrals` and `tenants` rows. */
  state: TableClient;
  /** The rows' tables: a pending event past the retention whose row write never landed is purged. */
  table(name: string): TableClient;
  now(): number;
}

/**
 * Every 5 minutes (recoverCrmDeliveries): queues again the keys whose pending events have no attempt under
 * way and none due (a message lost, an instance gone mid-attempt), deletes events older than the retention
 * that every endpoint is done with or whose row write never landed, and records the counts in FpxSyncState
 * (`eventsSent`, `eventsPending`, `eventsFailed`). Disabled endpoints are counted, not queued.
 */
export async function sweepEvents(deps: SweepDeps, log: Log): Promise<Record<EventSubject, EventCounts>> {
  const now = deps.now();
  const disabled = await deps.outbox.disabledEndpoints();
  const result = {} as Record<EventSubject, EventCounts>;
  for (const subject of Object.keys(EVENT_STREAMS) as EventSubject[]) {
    const counts: EventCounts = { sent: 0, pending: 0, failed: 0, requeued: 0, purged: 0 };
    const stale = new Set<string>();
    for await (const event of deps.outbox.all(
      subject,
      deps.endpoints.map((e) => e.id),
    )) {
      let allDone = true;
      for (const endpoint of deps.endpoints) {
        const state = stateOf(event.columns, endpoint.id);
        if (state.done === event.eventId) {
          if (event.columns[`result_${endpoint.id}`] === 'failed') counts.failed++;
          else counts.sent++;
          continue;
        }
        allDone = false;
        counts.pending++;
        if (disabled.has(endpoint.id)) continue;
        if (state.lease && Date.parse(state.lease) > now) continue;
        const due = state.next ? Date.parse(state.next) : Date.parse(event.createdAt);
        if (!(due > now - SWEEP_GRACE_MS)) stale.add(event.key);
      }
      if (
        Date.parse(event.createdAt) < now - OUTBOX_RETENTION_DAYS * 24 * 3600_000 &&
        (allDone || !(await isStored(deps, event))) &&
        (await deps.outbox.delete(event))
      ) {
        counts.purged++;
      }
    }
    const keys = [...stale];
    for (let start = 0; start < keys.length; start += 100) {
      await deps.queue.send({ subject, keys: keys.slice(start, start + 100) });
    }
    counts.requeued = keys.length;
    if (keys.length > 0)
      log.warn(`CRM events: ${keys.length} ${subject} keys with stalled events queued again`);
    await ensureTableOnce(deps.state);
    await deps.state.upsertEntity(
      {
        partitionKey: SYNC_STATE_PARTITION,
        rowKey: EVENT_STREAMS[subject],
        eventsSent: counts.sent,
        eventsPending: counts.pending,
        eventsFailed: counts.failed,
        eventsCountedAt: new Date(now).toISOString(),
      },
      'Merge',
    );
    result[subject] = counts;
  }
  return result;
}

/** Whether an old pending event's row is stored as it says (its body is read for this alone). */
async function isStored(deps: SweepDeps, event: StoredEvent): Promise<boolean> {
  const whole = await deps.outbox.withBody(event);
  return whole === undefined || (await eventStored(deps.table, whole));
}
