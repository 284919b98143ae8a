import type { QueueClient } from '@azure/storage-queue';
import { type CrmDeps, type Delivery, RETENTION_DAYS } from '../crm';
import { DeliveryLeaseLost } from '../crm/delivery-store';
import { safeErrorMessage } from '../redact';
import { ensureQueueOnce, isNotFound, parseJsonMessage, queueDepth } from '../storage';
import { QUEUES } from './status';

/**
 * The operators' two repairs: a delivery back on `crm-deliveries`, and a poison queue's messages back on
 * their queue. Both hand the work to the normal workers, so every rule of theirs still applies (a delivery
 * whose outcome was unknown is looked for in FPX before it is sent again; an update older than one already
 * delivered is superseded, not sent).
 */

const DAY_MS = 24 * 3600_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ActionResult {
  /** HTTP status to answer with. */
  status: number;
  ok: boolean;
  message: string;
  [detail: string]: unknown;
}

/**
 * POST /api/ops/deliveries/{id}/retry. What it does by status:
 * - `failed` (attempts used up): back to `queued` with a fresh attempts budget — `attempts` returns to 0,
 *   so it gets CRM_DELIVERY_MAX_ATTEMPTS more FPX calls with the usual backoff, as a new webhook would —
 *   and `lastError` says how many it had; `unknownSince` is kept, so a create that may have reached FPX
 *   is looked for there before it is sent again. Then one message on `crm-deliveries`, due now.
 * - `queued` (e.g. its message went to the poison queue) or `processing` with its lease run out: due now,
 *   one message on `crm-deliveries`; the worker takes over a dead attempt as it always does.
 * - `processing` under a live lease: 409, an attempt is running.
 * - `delivered`, `rejected`, `superseded`: 409, nothing to retry (a rejected one would be rejected again:
 *   the CRM must send corrected data).
 * If the message cannot be sent after the row was updated, recoverCrmDeliveries queues it within minutes.
 */
export async function retryDelivery(deps: CrmDeps, id: string): Promise<ActionResult> {
  const deliveryId = id.toLowerCase();
  if (!UUID.test(deliveryId)) return { status: 404, ok: false, message: `No delivery ${id}` };
  const delivery = await deps.store.get(deliveryId);
  if (!delivery) return { status: 404, ok: false, message: `No delivery ${deliveryId}` };
  const now = deps.now();
  const iso = (ms: number) => new Date(ms).toISOString();

  switch (delivery.status) {
    case 'delivered':
    case 'rejected':
    case 'superseded':
    case 'ignored':
      return {
        status: 409,
        ok: false,
        message: `Delivery ${deliveryId} is ${delivery.status}: there is nothing to retry`,
        deliveryId,
        deliveryStatus: delivery.status,
      };
    case 'processing':
      if (Date.parse(delivery.leaseUntil) > now) {
        return {
          status: 409,
          ok: false,
          message: `Delivery ${deliveryId} is being attempted now (until ${delivery.leaseUntil}); look again then`,
          deliveryId,
          deliveryStatus: delivery.status,
        };
      }
      break;
    case 'failed':
      try {
        await reopen(deps, delivery, now);
      } catch (error) {
        if (error instanceof DeliveryLeaseLost) {
          return { status: 409, ok: false, message: `Delivery ${deliveryId} changed meanwhile; try again` };
        }
        throw error;
      }
      break;
    case 'queued':
      try {
        await deps.store.update(delivery, {
          nextAttemptAt: iso(now),
          updatedAt: iso(now),
          expiresAt: iso(now + RETENTION_DAYS * DAY_MS),
        });
      } catch (error) {
        if (!(error instanceof DeliveryLeaseLost)) throw error;
        // Another attempt moved it meanwhile: the message below is harmless, the lease decides.
      }
      break;
  }
  await deps.queue.schedule(deliveryId, 0);
  return {
    status: 202,
    ok: true,
    message: `Delivery ${deliveryId} is queued again${delivery.status === 'failed' ? ` with a fresh budget of ${deps.policy.maxAttempts} attempts` : ''}`,
    deliveryId,
    previousStatus: delivery.status,
    previousAttempts: delivery.attempts,
  };
}

/** A failed delivery queued again, due now, with its attempts budget reset (see retryDelivery). */
async function reopen(deps: CrmDeps, delivery: Delivery, now: number): Promise<void> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const before = delivery.lastError ? `; last error: ${delivery.lastError}` : '';
  await deps.store.update(delivery, {
    status: 'queued',
    attempts: 0,
    nextAttemptAt: iso(now),
    completedAt: '',
    leaseUntil: '',
    attemptStartedAt: '',
    lastError: `retried by an operator at ${iso(now)} after ${delivery.attempts} attempts${before}`,
    updatedAt: iso(now),
    expiresAt: iso(now + RETENTION_DAYS * DAY_MS),
  });
}

export interface RequeueDeps {
  queue(name: string): QueueClient;
  crm: CrmDeps;
  now?: () => number;
}

/** At most this long per request: the rest stays for the next click (`remaining` says how many). */
const REQUEUE_TIME_BUDGET_MS = 60_000;
const BATCH = 32;
/** Received messages stay hidden this long while being moved; if the move stops, they come back. */
const MOVE_VISIBILITY_SECONDS = 120;

/**
 * POST /api/ops/queues/{queue}/requeue: the messages of `fpx-tenant-details-poison` or `crm-deliveries-poison`
 * go back to their queue as they are (same text), each sent before it is deleted from the poison queue (a
 * crash in between repeats one message, which the workers take in their stride). A `crm-deliveries-poison`
 * message names a delivery: a `failed` one is queued again first, as Retry does (else the worker would skip
 * it as finished). Any other queue name: 400, naming it.
 */
export async function requeuePoison(deps: RequeueDeps, queueName: string): Promise<ActionResult> {
  const spec = QUEUES.find((q) => q.name === queueName && q.requeueTo);
  if (!spec?.requeueTo) {
    const allowed = QUEUES.filter((q) => q.requeueTo).map((q) => q.name);
    return {
      status: 400,
      ok: false,
      message: `Queue ${JSON.stringify(queueName)} cannot be requeued: only ${allowed.join(' and ')} can`,
    };
  }
  const poison = deps.queue(spec.name);
  const target = deps.queue(spec.requeueTo);
  const clock = deps.now ?? Date.now;
  const stopAt = clock() + REQUEUE_TIME_BUDGET_MS;
  let moved = 0;
  let reopened = 0;
  // What is there now, no more: a message the worker poisons again at once is not chased round in circles.
  const limit = await depth(poison);
  try {
    await ensureQueueOnce(target);
    while (moved < limit) {
      const received = await poison.receiveMessages({
        numberOfMessages: Math.min(BATCH, limit - moved),
        visibilityTimeout: MOVE_VISIBILITY_SECONDS,
      });
      if (received.receivedMessageItems.length === 0) break;
      for (const message of received.receivedMessageItems) {
        if (
          spec.name.startsWith('crm-deliveries') &&
          (await reopenNamedDelivery(deps.crm, message.messageText))
        ) {
          reopened++;
        }
        await target.sendMessage(message.messageText);
        await poison.deleteMessage(message.messageId, message.popReceipt);
        moved++;
      }
      if (clock() >= stopAt) break;
    }
  } catch (error) {
    if (!isNotFound(error)) {
      return {
        status: 500,
        ok: false,
        message: `Requeue of ${spec.name} stopped after ${moved} messages: ${safeErrorMessage(error)}`,
        queue: spec.name,
        moved,
        reopened,
      };
    }
  }
  const remaining = await depth(poison);
  return {
    status: 200,
    ok: true,
    message:
      `${moved} message${moved === 1 ? '' : 's'} moved from ${spec.name} to ${spec.requeueTo}` +
      (reopened ? ` (${reopened} failed deliver${reopened === 1 ? 'y' : 'ies'} queued again)` : '') +
      (remaining > 0 ? `; ${remaining} left, requeue again` : ''),
    queue: spec.name,
    to: spec.requeueTo,
    moved,
    reopened,
    remaining,
  };
}

/** A poison message naming a failed delivery: reopen it. True when it did. */
async function reopenNamedDelivery(deps: CrmDeps, messageText: string): Promise<boolean> {
  let deliveryId: unknown;
  try {
    deliveryId = (parseJsonMessage(messageText) as { deliveryId?: unknown } | null)?.deliveryId;
  } catch {
    return false;
  }
  if (typeof deliveryId !== 'string' || !UUID.test(deliveryId)) return false;
  const delivery = await deps.store.get(deliveryId.toLowerCase());
  if (delivery?.status !== 'failed') return false;
  try {
    await reopen(deps, delivery, deps.now());
    return true;
  } catch (error) {
    if (error instanceof DeliveryLeaseLost) return false;
    throw error;
  }
}

/** Messages in the queue; 0 when it cannot be read either (the requeue then moves nothing). */
function depth(queue: QueueClient): Promise<number> {
  return queueDepth(queue).catch(() => 0);
}
