import type { QueueClient } from '@azure/storage-queue';
import type { AlertMessage, AlertSender } from '../alerts/alert-sender';
import { IncidentTracker } from '../alerts/incident';
import { AlertLedger } from '../alerts/ledger';
import { MAX_DEQUEUE_COUNT } from '../config';
import type { Log } from '../log';
import { redactSecrets, safeErrorMessage } from '../redact';
import { decodeMessageText, queueDepth } from '../storage';
import type { CrmServices } from './deps';

/** Per poison queue: its open incident (row `incident`) and the alert sent per incident (row = incident id). */
export const QUEUE_ALERTS_TABLE = 'FpxQueueAlerts';
const SHOWN_MESSAGES = 5;
const SHOWN_CHARS = 300;

export interface PoisonWatch {
  queues: readonly QueueClient[];
  incidents: IncidentTracker;
  ledger: AlertLedger;
  alerts: AlertSender;
  now: () => number;
}

export interface PoisonQueueCheck {
  queue: string;
  depth: number;
  /** The open incident (its start time), while the queue holds messages. */
  incident?: string;
  /** This run's alert: `sent`; `already` sent (or being sent) for this incident; `failed` (retried next run). */
  alert?: 'sent' | 'already' | 'failed';
  error?: string;
}

export function poisonWatch(
  services: CrmServices,
  queueNames: readonly string[],
  now: () => number,
): PoisonWatch {
  const table = services.table(QUEUE_ALERTS_TABLE);
  return {
    queues: queueNames.map((name) => services.storage.queue(name)),
    incidents: new IncidentTracker(table),
    ledger: new AlertLedger(table),
    alerts: services.alerts,
    now,
  };
}

/**
 * Looks at each poison queue's depth: when it goes from empty to holding messages an incident opens and the
 * operators get one alert (claimed in the ledger first, so no run or instance sends it twice; a failed send
 * is retried by the next run). The incident closes once the queue is empty; filling again is a new one.
 * Each queue is checked on its own: one failing does not hide the other.
 */
export async function alertPoisonQueues(watch: PoisonWatch, log: Log): Promise<PoisonQueueCheck[]> {
  const checks: PoisonQueueCheck[] = [];
  for (const queue of watch.queues) {
    try {
      checks.push(await checkQueue(watch, queue, log));
    } catch (error) {
      const message = safeErrorMessage(error);
      log.error(`Poison queue ${queue.name}: not checked: ${message}`);
      checks.push({ queue: queue.name, depth: -1, error: message });
    }
  }
  return checks;
}

async function checkQueue(watch: PoisonWatch, queue: QueueClient, log: Log): Promise<PoisonQueueCheck> {
  const now = new Date(watch.now());
  const name = queue.name;
  const depth = await queueDepth(queue);
  if (depth === 0) {
    const closed = await watch.incidents.close(name, now);
    if (closed) log.log(`Poison queue ${name} is empty again: incident ${closed} closed`);
    return { queue: name, depth };
  }
  const { id } = await watch.incidents.open(name, now);
  const check: PoisonQueueCheck = { queue: name, depth, incident: id };
  // Claimed first: while the incident lasts, every later run stops here without peeking at the queue.
  const claim = await watch.ledger.claim(name, id, { subject: incidentSubject(name), depth }, now);
  if (!claim.claimed) return { ...check, alert: 'already' };
  const message = await incidentAlert(queue, depth, id);
  const transport = watch.alerts.transport;
  try {
    await watch.alerts.send(message);
  } catch (error) {
    await watch.ledger.markFailed(name, id, transport, error);
    const text = safeErrorMessage(error);
    log.error(`${message.subject}: the alert could not be sent (retried next run): ${text}`);
    return { ...check, alert: 'failed', error: text };
  }
  await watch.ledger.markSent(name, id, transport, now);
  log.warn(`${message.subject}: operators alerted via ${transport} (incident ${id})`);
  return { ...check, alert: 'sent' };
}

const incidentSubject = (queue: string) => `Messages in the poison queue ${queue}`;

async function incidentAlert(queue: QueueClient, depth: number, incident: string): Promise<AlertMessage> {
  const peeked = await queue.peekMessages({ numberOfMessages: SHOWN_MESSAGES });
  const shown = peeked.peekedMessageItems.map(
    (m) => `  ${m.insertedOn.toISOString()}  ${redactSecrets(decoded(m.messageText)).slice(0, SHOWN_CHARS)}`,
  );
  return {
    id: `poison-queue/${queue.name}/${incident}`,
    subject: incidentSubject(queue.name),
    text: [
      `The queue ${queue.name} holds ${depth} message(s) (first seen ${incident}).`,
      ``,
      `A message lands there when the Functions host failed to process it ${MAX_DEQUEUE_COUNT} times in a row (storage or`,
      `identity unavailable, a crash), or when a CRM delivery used all its attempts (alerted on its own).`,
      `Nothing takes it out again by itself: look at the cause, then requeue or delete the messages.`,
      `CRM deliveries left queued by a lost message are queued again by recoverCrmDeliveries.`,
      ``,
      `Oldest messages:`,
      ...shown,
      ``,
      `This incident is alerted once; another alert comes when the queue has been emptied and fills again.`,
    ].join('\n'),
  };
}

/** Messages are base64 JSON, as the host's queue trigger reads them; anything else is shown as it is. */
function decoded(text: string): string {
  const plain = decodeMessageText(text);
  return plain !== undefined && /^[\x20-\x7e]*$/.test(plain) ? plain : text;
}
