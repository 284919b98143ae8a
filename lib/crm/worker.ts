import type { Log } from '../log';
import { deliveryMessage } from './delivery-queue';
import { apply, attempt, decideAttempted, decideWithOrder, recordFinal } from './delivery-steps';
import type { Delivery } from './delivery-store';
import type { CrmDeps } from './deps';
import { decide, effectOf } from './lifecycle';
import { unpackJson } from './packed-json';
import type { CrmOperation } from './payloads';

export type WorkerOutcome =
  | 'delivered'
  | 'rejected'
  | 'retry'
  | 'failed'
  /** An update older than one of the same target delivered meanwhile: not sent. */
  | 'superseded'
  /** Finished already, or another attempt holds it: nothing to do. */
  | 'skipped'
  /** Still leased by a running attempt: looked at again when the lease ends. */
  | 'deferred'
  | 'unknown-delivery'
  | 'invalid-message';

/**
 * One message of `crm-deliveries`: the next attempt of a queued delivery. Every way out completes the
 * message; a retry is a new message with the backoff as its visibility timeout. After the last attempt
 * the delivery is `failed`, the message goes to `crm-deliveries-poison` and the operators get an alert.
 * Queued deliveries go to FPX without the end user's token (it is never stored).
 */
export async function deliverQueuedRequest(
  deps: CrmDeps,
  message: unknown,
  log: Log,
): Promise<WorkerOutcome> {
  const parsed = deliveryMessage.safeParse(typeof message === 'string' ? safeJson(message) : message);
  if (!parsed.success) {
    log.error('crm-deliveries: a message that names no delivery; moved to the poison queue');
    await deps.queue.poison(message);
    return 'invalid-message';
  }
  const { deliveryId } = parsed.data;
  const found = await deps.store.get(deliveryId);
  if (!found) {
    log.warn(`Delivery ${deliveryId} is not in the table (purged?); message dropped`);
    return 'unknown-delivery';
  }
  const decision = await decideWithOrder(deps, found, { type: 'message', now: deps.now() });
  if (effectOf(decision, 'skip')) return 'skipped';
  const held = await apply(deps, found, decision, log);
  if (effectOf(decision, 'attempt')) return held ? attemptNow(deps, held, log) : 'skipped';
  switch (decision.change?.status) {
    case 'superseded':
      if (!held) {
        log.warn(`Delivery ${deliveryId}: superseded, but another attempt holds it now (lease lost)`);
        return 'skipped';
      }
      log.warn(`Delivery ${deliveryId} (webhook ${found.webhookId}): ${decision.change.lastError}`);
      return 'superseded';
    case 'failed':
      return 'failed';
    default:
      return 'deferred';
  }
}

/** The attempt under the lease just taken, and its outcome on record. */
async function attemptNow(deps: CrmDeps, delivery: Delivery, log: Log): Promise<WorkerOutcome> {
  const { deliveryId } = delivery;
  const operation = (await unpackJson(await deps.store.payload(delivery))) as CrmOperation;
  const outcome = await attempt(deps, delivery, operation);
  const decision = decideAttempted(deps, delivery, outcome, 'queue');
  switch (outcome.kind) {
    case 'delivered':
    case 'rejected':
      await recordFinal(deps, delivery, decision, outcome, log);
      if (outcome.kind === 'rejected')
        log.warn(`Delivery ${deliveryId}: FPX rejected it: ${outcome.message}`);
      else log.log(`Delivery ${deliveryId}: delivered on attempt ${delivery.attempts + 1}`);
      return outcome.kind;
    case 'unavailable': {
      const written = await apply(deps, delivery, decision, log);
      if (decision.change?.status === 'failed') return 'failed';
      if (!written) log.warn(`Delivery ${deliveryId}: another attempt holds it now (lease lost)`);
      const delay = effectOf(decision, 'schedule')?.delaySeconds;
      const attempts = decision.change?.attempts;
      log.warn(`Delivery ${deliveryId}: attempt ${attempts} failed, retry in ${delay} s: ${outcome.error}`);
      return 'retry';
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Hands every stalled delivery to the queue worker: an attempt whose instance died before its outcome was on
 * record (the worker takes the lease over and looks in FPX before sending again), and a queued delivery whose
 * retry is overdue by more than `queuedGraceMs` (its message was lost, e.g. moved to the poison queue by the
 * host's own retries while storage or identity was down). This, not a message per webhook, is what finishes
 * such a delivery when the CRM never repeats it. A duplicate message is harmless: the lease decides.
 * Returns how many were queued.
 */
export async function recoverStalled(deps: CrmDeps, log: Log): Promise<number> {
  let queued = 0;
  const now = deps.now();
  for await (const { deliveryId } of deps.store.stalled(new Date(now), deps.policy.queuedGraceMs)) {
    const delivery = await deps.store.get(deliveryId);
    if (!delivery) continue;
    const decision = decide(delivery, { type: 'recover', now }, deps.policy);
    if (effectOf(decision, 'skip')) continue;
    await apply(deps, delivery, decision, log);
    if (delivery.status === 'queued') {
      log.warn(`Delivery ${deliveryId}: queued, but its retry is long overdue (message lost); queued again`);
    } else {
      log.warn(
        `Delivery ${deliveryId}: its attempt stopped before recording an outcome; queued to finish it`,
      );
    }
    queued++;
  }
  return queued;
}
