import type { Log } from '../log';
import { safeErrorMessage } from '../redact';
import { retryDelaySeconds } from './backoff';
import { unpackJson } from './blob';
import { deliveryMessage } from './delivery-queue';
import {
  attempt,
  attemptsAfter,
  iso,
  leaseIsLive,
  recordFinal,
  recordRetry,
  recordSuperseded,
  takeLease,
  touched,
} from './delivery-steps';
import { type Delivery, DeliveryLeaseLost, FINAL_STATUSES } from './delivery-store';
import type { CrmDeps } from './deps';
import type { CrmOperation } from './payloads';
import { supersededReason } from './update-order';

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
  if (FINAL_STATUSES.includes(found.status)) return 'skipped';
  const now = deps.now();
  if (leaseIsLive(found, now)) {
    const waitSeconds = Math.ceil((Date.parse(found.leaseUntil) - now) / 1000) + 1;
    await deps.queue.schedule(deliveryId, waitSeconds);
    return 'deferred';
  }
  // A retry is already scheduled later (this message is a repeat, or from recovery): that message comes.
  if (found.status === 'queued' && found.nextAttemptAt && Date.parse(found.nextAttemptAt) > now + 1_000) {
    return 'skipped';
  }
  const reason = await supersededReason(deps, found);
  if (reason) return (await recordSuperseded(deps, found, reason, log)) ? 'superseded' : 'skipped';
  if (found.attempts >= deps.policy.maxAttempts) {
    await exhaust(deps, found, found.lastError || 'no attempts left', log);
    return 'failed';
  }

  const delivery = await takeLease(deps, found);
  if (!delivery) return 'skipped';
  const operation = (await unpackJson(await deps.store.payload(delivery))) as CrmOperation;
  const outcome = await attempt(deps, delivery, operation);
  switch (outcome.kind) {
    case 'delivered':
    case 'rejected':
      await recordFinal(deps, delivery, outcome, log);
      if (outcome.kind === 'rejected')
        log.warn(`Delivery ${deliveryId}: FPX rejected it: ${outcome.message}`);
      else log.log(`Delivery ${deliveryId}: delivered on attempt ${delivery.attempts + 1}`);
      return outcome.kind;
    case 'unavailable': {
      const attempts = attemptsAfter(delivery, outcome);
      if (attempts >= deps.policy.maxAttempts) {
        await exhaust(deps, { ...delivery, attempts }, outcome.error, log);
        return 'failed';
      }
      const delay = retryDelaySeconds(attempts, deps.policy.backoffSeconds, outcome.retryAfterMs);
      await recordRetry(deps, delivery, outcome, delay, log);
      log.warn(`Delivery ${deliveryId}: attempt ${attempts} failed, retry in ${delay} s: ${outcome.error}`);
      return 'retry';
    }
  }
}

/** Attempts used up: `failed` with the last error, the message parked in the poison queue, an operator alert. */
async function exhaust(deps: CrmDeps, delivery: Delivery, lastError: string, log: Log): Promise<void> {
  const now = deps.now();
  try {
    await deps.store.update(delivery, {
      status: 'failed',
      attempts: delivery.attempts,
      lastError,
      completedAt: iso(now),
      ...touched(now),
    });
  } catch (error) {
    if (error instanceof DeliveryLeaseLost) return; // another attempt has it
    throw error;
  }
  await deps.queue.poison({ deliveryId: delivery.deliveryId });
  const subject = `CRM delivery ${delivery.deliveryId} failed after ${delivery.attempts} attempts`;
  log.error(`${subject}: ${lastError}`);
  try {
    await deps.alerts.send({
      id: `crm-delivery/${delivery.deliveryId}`,
      subject,
      text: [
        `A request from the CRM could not be delivered to FPX and was given up.`,
        ``,
        `Delivery:   ${delivery.deliveryId} (GET /api/crm/deliveries/${delivery.deliveryId})`,
        `Webhook id: ${delivery.webhookId}`,
        `Operation:  ${delivery.op} for tenant ${delivery.tenantId}`,
        `Attempts:   ${delivery.attempts}, first on ${delivery.createdAt}`,
        `Last error: ${lastError}`,
        ``,
        `The message is in the queue crm-deliveries-poison; the payload stays in the table CrmDeliveries.`,
      ].join('\n'),
    });
  } catch (error) {
    log.error(`The alert for delivery ${delivery.deliveryId} could not be sent: ${safeErrorMessage(error)}`);
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
  for await (const { deliveryId, status } of deps.store.stalled(new Date(now), deps.policy.queuedGraceMs)) {
    await deps.queue.schedule(deliveryId, 0);
    if (status === 'queued') {
      await markRequeued(deps, deliveryId, now);
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

/** The new message's time as the next attempt, so the next runs do not queue it again while it waits. */
async function markRequeued(deps: CrmDeps, deliveryId: string, now: number): Promise<void> {
  const delivery = await deps.store.get(deliveryId);
  if (delivery?.status !== 'queued') return;
  await deps.store.update(delivery, { nextAttemptAt: iso(now), ...touched(now) }).catch((error) => {
    if (!(error instanceof DeliveryLeaseLost)) throw error;
  });
}
