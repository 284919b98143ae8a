import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import type { AlertSender } from '../alerts/alert-sender';
import type { Clock } from '../clock';
import { signWebhook } from '../crm/signature';
import type { Log } from '../log';
import { safeErrorMessage } from '../redact';
import { getEntityOrUndefined, sendJsonMessage, sendTextMessage } from '../storage';
import type { Outbox, StoredEvent } from './outbox';
import type { Pacer } from './pacer';
import { SUBJECT_TABLES } from './recorder';
import {
  EVENT_STREAMS,
  nextStep,
  outcomeOf,
  RETRY_SCHEDULE_SECONDS,
  retryDelaySeconds,
  rowHolds,
  type SendOutcome,
} from './rules';

export const EVENTS_QUEUE = 'crm-events';
export const EVENTS_POISON_QUEUE = `${EVENTS_QUEUE}-poison`;

/** How long an attempt holds an event: the send's timeout and room to record its outcome. */
export const LEASE_MS = 60_000;
/** A send gets this long for the CRM's answer. */
export const SEND_TIMEOUT_MS = 15_000;
/** Keys of one message handled at once (each paced per endpoint). */
const KEYS_AT_ONCE = 16;

/**
 * A `crm-events` message: keys of one subject whose oldest pending events should go out, to every enabled
 * endpoint or to the ones named (a retry concerns one endpoint). Names only: the events are in the outbox.
 */
export const eventsMessage = z.object({
  subject: z.enum(Object.keys(EVENT_STREAMS) as ['referral', 'tenant']),
  keys: z.array(z.string().min(1)).min(1).max(100),
  endpoints: z.array(z.string().regex(/^[0-9a-f]{8}$/)).optional(),
  /**
   * Of `keys`, those whose event is their create: nothing of the key can be older, so one point read finds
   * it (a first sync's thousands of creates need no range query each).
   */
  created: z.array(z.string().min(1)).max(100).optional(),
});
export type EventsMessage = z.infer<typeof eventsMessage>;

export interface Endpoint {
  id: string;
  url: string;
  /** What logs and alerts name: the host, never the whole URL (it may carry a token). */
  host: string;
}

/** The `crm-events` queue and its poison queue; a retry is a new message made invisible for its wait. */
export class EventsQueue {
  constructor(
    readonly main: QueueClient,
    readonly poisonQueue: QueueClient,
    /** Told of each message sent (tests replay a retry's message without waiting out its visibility). */
    private readonly onSend?: (message: EventsMessage, delaySeconds: number) => void,
  ) {}

  async send(message: EventsMessage, delaySeconds = 0): Promise<void> {
    await sendJsonMessage(this.main, message, { visibilityTimeout: Math.max(0, Math.ceil(delaySeconds)) });
    this.onSend?.(message, delaySeconds);
  }

  async poison(message: unknown): Promise<void> {
    await sendTextMessage(this.poisonQueue, typeof message === 'string' ? message : JSON.stringify(message));
  }
}

export interface DeliveryDeps {
  outbox: Outbox;
  queue: EventsQueue;
  endpoints: readonly Endpoint[];
  /** Signing keys of CRM_EVENTS_SECRET (several while it is rotated: one signature each). */
  keys: readonly Buffer[];
  pacer(endpoint: string): Pacer;
  /** The tables (FpxReferrals, FpxTenants): an event goes out only once its row is stored as it says. */
  table(name: string): TableClient;
  alerts: AlertSender;
  clock: Clock;
  fetch?: typeof fetch;
}

/** `unstored`: the oldest pending event's row write has not landed (yet); it stays pending. */
export type KeyOutcome = 'idle' | 'waiting' | 'busy' | 'retry' | 'disabled' | 'unstored';

/**
 * Endpoints known disabled in this process, by id, with when they became known (a tick): filled on a 410 and
 * from the stored `endpoint` rows, so the keys and messages already under way stop sending at once. A stored
 * read drops an id whose row is gone (enabled again) unless a 410 put it here after the read began.
 */
const disabledHere = new Map<string, number>();
let ticks = 0;

/** The disabled endpoints, read from the outbox into the process-wide set. */
async function readDisabled(outbox: Outbox): Promise<void> {
  const startedAt = ++ticks;
  const stored = await outbox.disabledEndpoints();
  for (const id of stored) if (!disabledHere.has(id)) disabledHere.set(id, startedAt);
  for (const [id, at] of disabledHere) if (!stored.has(id) && at < startedAt) disabledHere.delete(id);
}

/** Whether the event's row write landed: one point read of its FpxReferrals / FpxTenants row. */
export async function eventStored(
  table: (name: string) => TableClient,
  event: Pick<StoredEvent, 'subject' | 'key' | 'body'>,
): Promise<boolean> {
  const row = await getEntityOrUndefined<Record<string, unknown>>(
    table(SUBJECT_TABLES[event.subject]),
    event.subject,
    event.key,
  );
  const { data } = JSON.parse(event.body) as { data: Record<string, unknown> };
  return rowHolds(data, row);
}

export interface MessageOutcome {
  sent: number;
  failed: number;
  retries: number;
  invalid?: boolean;
}

/**
 * One `crm-events` message: for each key and endpoint, the key's pending events go out oldest first, one at
 * a time, each under a lease (so two messages for the same key never send at once) and at the endpoint's
 * pace. A failed send is retried on the Standard Webhooks schedule through a delayed message; after the last
 * one the event is given up (its state `failed`, a copy in `crm-events-poison`) and the key's next event goes.
 * A 410 disables the endpoint, with one alert.
 */
export async function deliverEventsMessage(
  deps: DeliveryDeps,
  message: unknown,
  log: Log,
): Promise<MessageOutcome> {
  const parsed = eventsMessage.safeParse(typeof message === 'string' ? safeJson(message) : message);
  const outcome: MessageOutcome = { sent: 0, failed: 0, retries: 0 };
  if (!parsed.success) {
    log.error('crm-events: a message that names no keys; moved to the poison queue');
    await deps.queue.poison(message);
    return { ...outcome, invalid: true };
  }
  if (deps.keys.length === 0) {
    // CRM_EVENTS_SECRET is an unresolved Key Vault reference: nothing can be signed. The host retries the
    // message; the events stay pending in the outbox and the sweep queues them again once it resolves.
    throw new Error('CRM events cannot be signed: CRM_EVENTS_SECRET is not available');
  }
  const { subject, keys, endpoints: only } = parsed.data;
  const created = new Set(parsed.data.created);
  await readDisabled(deps.outbox);
  const targets = deps.endpoints.filter((e) => !disabledHere.has(e.id) && (!only || only.includes(e.id)));
  const work = keys.flatMap((key) => targets.map((endpoint) => ({ key, endpoint })));
  let next = 0;
  // A key that fails (storage unreachable a moment) does not fail the others or the message: it is queued
  // again on its own, so the host never moves a message of healthy keys to the poison queue.
  const failed = new Map<string, Set<string>>();
  const worker = async () => {
    while (next < work.length) {
      const item = work[next++] as (typeof work)[number];
      try {
        await deliverKey(deps, subject, item.key, item.endpoint, outcome, log, created.has(item.key));
      } catch (error) {
        log.warn(
          `crm-events: ${subject} ${item.key} to ${item.endpoint.id}: ${safeErrorMessage(error)}; again in ${KEY_ERROR_RETRY_SECONDS} s`,
        );
        const endpoints = failed.get(item.key) ?? new Set<string>();
        failed.set(item.key, endpoints.add(item.endpoint.id));
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(KEYS_AT_ONCE * Math.max(1, targets.length), work.length) }, worker),
  );
  // Should this send fail too, the message fails and the host retries it whole (nothing is lost either way).
  for (const [key, endpoints] of failed) {
    await deps.queue.send({ subject, keys: [key], endpoints: [...endpoints] }, KEY_ERROR_RETRY_SECONDS);
  }
  return outcome;
}

/** A retry message this early (clock differences) is sent again for its due time rather than dropped. */
const EARLY_RETRY_MS = 10_000;

/** How long a key whose delivery threw waits before it is tried again. */
const KEY_ERROR_RETRY_SECONDS = 30;

/** Sends one key's pending events to one endpoint, oldest first, until none is left or one must wait. */
export async function deliverKey(
  deps: DeliveryDeps,
  subject: EventsMessage['subject'],
  key: string,
  endpoint: Endpoint,
  outcome: MessageOutcome,
  log: Log,
  /** The key's event in the message is its create: read by a point read (`<key>|`, the key's first row). */
  isCreate = false,
): Promise<KeyOutcome> {
  const ep = endpoint.id;
  for (let round = 0; round < 1000; round++) {
    const events =
      isCreate && round === 0
        ? await deps.outbox.eventAt(subject, key, '', ep)
        : await deps.outbox.eventsOf(subject, key, ep);
    const step = nextStep(events, deps.clock.now());
    if (step.action === 'idle') return 'idle';
    if (step.action === 'wait') {
      // Its retry's message is scheduled; a lost one is queued again by the sweep. A retry that arrives a
      // little early (instances' and storage's clocks differ) comes back when due instead of waiting for it.
      const early = step.at - deps.clock.now();
      if (early <= EARLY_RETRY_MS)
        await deps.queue.send({ subject, keys: [key], endpoints: [ep] }, early / 1000);
      return 'waiting';
    }
    if (step.action === 'busy') {
      // Another attempt holds the key: look again when its lease ends, in case it stops before this key's
      // newest event (recorded after it listed them) was sent.
      await deps.queue.send(
        { subject, keys: [key], endpoints: [ep] },
        (step.until - deps.clock.now()) / 1000 + 1,
      );
      return 'busy';
    }
    const event = step.event;
    // Its row write failed, or has not happened yet (a crash before it): the CRM must not hear of a change the
    // table does not hold. It stays pending: the next sync derives it again (its message follows the row
    // write), the sweep looks again, and one whose write never lands is purged after the retention.
    if (!(await eventStored(deps.table, event))) return 'unstored';
    if (disabledHere.has(ep)) return 'disabled';
    await deps.pacer(ep).wait();
    if (disabledHere.has(ep)) return 'disabled'; // A 410 elsewhere while this one waited for its slot.
    // Every attempt made, but the give-up did not complete (its poison send failed): give up, no extra attempt.
    const exhausted = (event.state.tries ?? 0) >= RETRY_SCHEDULE_SECONDS.length;
    const tries = (event.state.tries ?? 0) + (exhausted ? 0 : 1);
    const now = deps.clock.now();
    const leased = await deps.outbox.update(
      event,
      ep,
      { lease: new Date(now + LEASE_MS).toISOString(), tries },
      event.etag,
    );
    if (!leased) continue; // Changed since read (another attempt, or the sync again): read it again.
    const lastError = event.columns[`error_${ep}`];
    const sent: SendOutcome = exhausted
      ? { kind: 'failed', error: typeof lastError === 'string' && lastError ? lastError : 'unknown' }
      : await send(deps, event, endpoint);
    const at = new Date(deps.clock.now()).toISOString();
    if (sent.kind === 'sent') {
      await deps.outbox.update(event, ep, {
        done: event.eventId,
        result: 'sent',
        sentAt: at,
        lease: '',
        error: '',
      });
      outcome.sent++;
      // Nothing after it when listed: done, without another query. An event recorded since then came with
      // a message of its own, which found the key busy and looks again when this lease would have ended.
      if (!events.some((other) => other.rowKey > event.rowKey)) return 'idle';
      continue;
    }
    if (sent.kind === 'gone') {
      disabledHere.set(ep, ++ticks);
      await deps.outbox.update(event, ep, { lease: '', error: 'HTTP 410: endpoint disabled' });
      await disableEndpoint(deps, endpoint, event, log);
      return 'disabled';
    }
    const delay = retryDelaySeconds(tries);
    if (delay === undefined) {
      // The poison copy first: marked done only once it is there (a failed poison send fails the message, which
      // is retried; the event, still pending, is given up again after its lease).
      await deps.queue.poison({
        subject,
        key,
        eventId: event.eventId,
        type: event.type,
        endpoint: endpoint.host,
        attempts: tries,
        error: sent.error,
      });
      await deps.outbox.update(event, ep, {
        done: event.eventId,
        result: 'failed',
        lease: '',
        error: sent.error,
      });
      log.error(
        `CRM event ${event.eventId} (${event.type} ${key}) to ${endpoint.host}: given up after ${tries} attempts (${sent.error}); in ${EVENTS_POISON_QUEUE}`,
      );
      outcome.failed++;
      continue; // The key's next event is not held up for ever by one the CRM never took.
    }
    const nextAt = new Date(deps.clock.now() + delay * 1000).toISOString();
    await deps.outbox.update(event, ep, { next: nextAt, lease: '', error: sent.error });
    await deps.queue.send({ subject, keys: [key], endpoints: [ep] }, delay);
    log.warn(
      `CRM event ${event.eventId} (${event.type} ${key}) to ${endpoint.host}: attempt ${tries} of ${RETRY_SCHEDULE_SECONDS.length} failed (${sent.error}), retry in ${delay} s`,
    );
    outcome.retries++;
    return 'retry';
  }
  return 'busy';
}

/** POSTs the event, signed (Standard Webhooks: the stable event id, the attempt's time, one signature per key). */
async function send(deps: DeliveryDeps, event: StoredEvent, endpoint: Endpoint): Promise<SendOutcome> {
  const timestamp = Math.floor(deps.clock.now() / 1000);
  const signature = deps.keys.map((key) => signWebhook(key, event.eventId, timestamp, event.body)).join(' ');
  try {
    const response = await (deps.fetch ?? fetch)(endpoint.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': event.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature,
      },
      body: event.body,
      // A 3xx is an answer, not success: followed, a 301/302/303 would become a bodiless GET whose 2xx counted.
      redirect: 'manual',
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    await response.body?.cancel().catch(() => undefined);
    return outcomeOf(response.status);
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { kind: 'failed', error: cause ?? safeErrorMessage(error) };
  }
}

async function disableEndpoint(deps: DeliveryDeps, endpoint: Endpoint, event: StoredEvent, log: Log) {
  const now = new Date(deps.clock.now());
  if (!(await deps.outbox.disable(endpoint.id, endpoint.host, now))) return;
  log.error(
    `CRM events endpoint ${endpoint.host} (${endpoint.id}) answered 410 Gone: disabled, nothing more is sent to it`,
  );
  try {
    await deps.alerts.send({
      id: `crm-events/endpoint-gone/${endpoint.id}/${now.toISOString()}`,
      subject: `CRM events endpoint ${endpoint.host} disabled (410 Gone)`,
      text: [
        `The CRM events endpoint ${endpoint.host} (id ${endpoint.id}, one of CRM_EVENTS_URL) answered 410 Gone to`,
        `event ${event.eventId} (${event.type}) at ${now.toISOString()}. Standard Webhooks: 410 means "stop sending".`,
        '',
        'Nothing is sent to it any more; its events stay pending in the table CrmEventsOutbox.',
        `To send again: fix the endpoint, then delete the row PartitionKey "endpoint", RowKey "${endpoint.id}" of`,
        'CrmEventsOutbox; the next sweep (recoverCrmDeliveries, every 5 minutes) queues its pending events.',
      ].join('\n'),
    });
  } catch (error) {
    log.error(
      `CRM events endpoint ${endpoint.host}: the alert could not be sent: ${safeErrorMessage(error)}`,
    );
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
