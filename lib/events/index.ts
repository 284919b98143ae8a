/** Referral and tenant changes pushed to the CRM as signed Standard Webhooks events. See docs/events.md. */
import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import type { AlertSender } from '../alerts/alert-sender';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { webhookKeys } from '../crm/signature';
import type { Log } from '../log';
import { TABLES } from '../sync/fpx-streams';
import { type DeliveryDeps, type Endpoint, EVENTS_POISON_QUEUE, EVENTS_QUEUE, EventsQueue } from './delivery';
import { OUTBOX_TABLE, Outbox } from './outbox';
import { Pacer } from './pacer';
import { outboxRecorder } from './recorder';
import { endpointId } from './rules';
import { sweepEvents } from './sweep';

export {
  deliverEventsMessage,
  type Endpoint,
  EVENTS_POISON_QUEUE,
  EVENTS_QUEUE,
  type EventsMessage,
  EventsQueue,
  LEASE_MS,
  type MessageOutcome,
} from './delivery';
export { OUTBOX_TABLE, Outbox, type StoredEvent, stateOf } from './outbox';
export { Pacer } from './pacer';
export { outboxRecorder, SUBJECT_TABLES } from './recorder';
export * from './rules';
export { type EventCounts, OUTBOX_RETENTION_DAYS, sweepEvents } from './sweep';

/** What the events need of the composition root's services. */
export interface EventServices {
  config: Pick<Config, 'events'>;
  table(name: string): TableClient;
  storage: { queue(name: string): QueueClient };
  alerts: AlertSender;
  clock: Clock;
}

export interface CrmEvents {
  endpoints: Endpoint[];
  /** The sync engine's hook (StreamDeps.recordWrites). */
  recordWrites: ReturnType<typeof outboxRecorder>;
  delivery: DeliveryDeps;
  sweep(log: Log): ReturnType<typeof sweepEvents>;
}

/** The endpoints of CRM_EVENTS_URL. */
function endpointsOf(urls: readonly string[]): Endpoint[] {
  return urls.map((url) => ({ id: endpointId(url), url, host: new URL(url).host }));
}

const built = new WeakMap<object, CrmEvents | undefined>();

/**
 * The CRM events of a process, built once per services object (the pacers keep their claimed slots);
 * undefined when CRM_EVENTS_URL is unset: nothing is recorded or sent.
 */
export function crmEvents(
  services: EventServices,
  overrides: Partial<DeliveryDeps> = {},
): CrmEvents | undefined {
  if (built.has(services)) return built.get(services);
  const { urls, secrets, perSecond } = services.config.events;
  let events: CrmEvents | undefined;
  if (urls.length > 0) {
    const outbox = new Outbox(services.table(OUTBOX_TABLE));
    const queue = new EventsQueue(
      services.storage.queue(EVENTS_QUEUE),
      services.storage.queue(EVENTS_POISON_QUEUE),
    );
    const endpoints = endpointsOf(urls);
    const pacers = new Map<string, Pacer>();
    const delivery: DeliveryDeps = {
      outbox,
      queue,
      endpoints,
      keys: webhookKeys(secrets),
      table: services.table,
      pacer: (id) => {
        let pacer = pacers.get(id);
        if (!pacer) {
          pacer = new Pacer(outbox.table, id, perSecond, services.clock, (line) => console.warn(line));
          pacers.set(id, pacer);
        }
        return pacer;
      },
      alerts: services.alerts,
      clock: services.clock,
      ...overrides,
    };
    events = {
      endpoints,
      // Overrides (tests) reach every part: the recorder and the sweep use the delivery's outbox and queue.
      recordWrites: outboxRecorder({
        outbox: delivery.outbox,
        queue: delivery.queue,
        table: services.table,
        clock: delivery.clock,
        // A message that could not be sent is not silent (the sweep sends its events later).
        log: (line) => console.warn(line),
      }),
      delivery,
      sweep: (log) =>
        sweepEvents(
          {
            outbox: delivery.outbox,
            queue: delivery.queue,
            endpoints,
            state: services.table(TABLES.syncState),
            table: services.table,
            now: () => delivery.clock.now(),
          },
          log,
        ),
    };
  }
  built.set(services, events);
  return events;
}
