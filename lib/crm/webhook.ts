import type { PlainRequest, PlainResponse } from '../http';
import type { Log } from '../log';
import { delivered, failure, queued, rejected, replayed, superseded } from './answers';
import { retryDelaySeconds } from './backoff';
import { MAX_BLOB_BYTES, packJson, unpackJson } from './blob';
import {
  attempt,
  attemptsAfter,
  deliveryIdFor,
  leaseIsLive,
  newDelivery,
  recordFinal,
  recordRetry,
  recordSuperseded,
  takeLease,
} from './delivery-steps';
import { type Delivery, FINAL_STATUSES } from './delivery-store';
import type { CrmDeps } from './deps';
import type { AttemptOutcome } from './fpx-attempt';
import { readWebhookRequest, type WebhookInput } from './http-input';
import type { WebhookEndpoint } from './payloads';
import { supersededReason } from './update-order';

/**
 * A CRM webhook: verify, validate, claim its webhook-id, hand it to FPX and answer with FPX's result —
 * or queue it (202) when FPX is unavailable. A repeated webhook-id gets the first answer again.
 * A final outcome is recorded right after answering (see PendingWrites); a queued one before the 202.
 * Should this instance die before the outcome is on record, the delivery is not lost: a repeat of the
 * webhook takes it over once the lease ends, and so does `recoverStalled` (a timer) if the CRM never
 * repeats it; either looks in FPX before sending again.
 */
export async function handleWebhook(
  deps: CrmDeps,
  endpoint: WebhookEndpoint,
  request: PlainRequest,
  log: Log,
): Promise<PlainResponse> {
  const read = await readWebhookRequest(request, endpoint, deps.keys, deps.now());
  if (!read.ok) return read.answer;
  const input = read.input;
  const deliveryId = deliveryIdFor(input.webhookId);

  const claim = await claimWebhook(deps, endpoint, deliveryId, input);
  if ('answer' in claim) return claim.answer;
  const delivery = claim.delivery;

  // An update signed before one of the same target that was delivered already: not sent (it would undo it).
  const reason = await supersededReason(deps, delivery);
  if (reason) {
    const recorded = await recordSuperseded(deps, delivery, reason, log, 200);
    return recorded ? superseded(deliveryId, reason) : inFlight(input.webhookId);
  }

  // Behind a long rate-limit wait (a 429's Retry-After, a burst): queue now rather than keep the CRM waiting.
  const wait = estimatedSlotWaitMs(deps);
  const outcome: AttemptOutcome =
    wait > deps.policy.httpMaxWaitMs
      ? {
          kind: 'unavailable',
          error: `FPX call slots are ${Math.ceil(wait / 1000)} s away`,
          outcomeUnknown: false,
          notSent: true,
        }
      : await attempt(deps, delivery, input.operation, input.endUserToken);

  switch (outcome.kind) {
    case 'delivered':
      deps.pending.start(deliveryId, () => recordFinal(deps, delivery, outcome, log, 200), log);
      log.log(`Delivery ${deliveryId} (webhook ${input.webhookId}): delivered to FPX`);
      return delivered(deliveryId, outcome.result);
    case 'rejected':
      deps.pending.start(deliveryId, () => recordFinal(deps, delivery, outcome, log, 422), log);
      log.warn(`Delivery ${deliveryId} (webhook ${input.webhookId}): FPX rejected it: ${outcome.message}`);
      return rejected(deliveryId, outcome.message, outcome.errors);
    case 'unavailable': {
      const delay = retryDelaySeconds(
        attemptsAfter(delivery, outcome),
        deps.policy.backoffSeconds,
        outcome.retryAfterMs,
      );
      await recordRetry(deps, delivery, outcome, delay, log, 202);
      log.warn(
        `Delivery ${deliveryId} (webhook ${input.webhookId}): queued, retry in ${delay} s: ${outcome.error}`,
      );
      return queued(deliveryId);
    }
  }
}

type Claim = { delivery: Delivery } | { answer: PlainResponse };

/** Claims the webhook-id, or explains why not: a replay, still in flight (409), or reused for another body (422). */
async function claimWebhook(
  deps: CrmDeps,
  endpoint: WebhookEndpoint,
  deliveryId: string,
  input: WebhookInput,
): Promise<Claim> {
  const now = deps.now();
  const payload = await packJson(input.operation);
  if (payload.length > MAX_BLOB_BYTES) {
    return { answer: failure(413, 'The payload is too large to store for delivery') };
  }
  const created = await deps.store.create(
    newDelivery(input, endpoint, deliveryId, now, deps.policy.leaseMs),
    payload,
  );
  if (created) return { delivery: created };

  await deps.pending.settled(deliveryId);
  const existing = await deps.store.get(deliveryId);
  if (!existing) return { answer: inFlight(input.webhookId) };
  if (existing.fingerprint !== input.fingerprint) {
    return {
      answer: failure(422, `webhook-id ${input.webhookId} was already used for a different request body`),
    };
  }
  // Answered before, or finished by the queue after the first request's instance died: the same answer again.
  if (existing.answerStatus || FINAL_STATUSES.includes(existing.status)) {
    return { answer: replayed(await storedAnswer(deps, existing)) };
  }
  if (leaseIsLive(existing, now)) return { answer: inFlight(input.webhookId) };
  // The first request's instance stopped mid-attempt: its lease ran out, so this repeat finishes the job.
  const taken = await takeLease(deps, existing);
  return taken ? { delivery: taken } : { answer: inFlight(input.webhookId) };
}

const inFlight = (webhookId: string) =>
  failure(409, `webhook-id ${webhookId} is still being processed; repeat it later for the answer`);

/** The first answer, rebuilt from the record (from its state, if the first request never got one). */
async function storedAnswer(deps: CrmDeps, delivery: Delivery): Promise<PlainResponse> {
  if (delivery.status === 'superseded' && delivery.answerStatus !== 202) {
    return superseded(delivery.deliveryId, delivery.lastError);
  }
  const status =
    delivery.answerStatus ||
    (delivery.status === 'delivered' ? 200 : delivery.status === 'rejected' ? 422 : 202);
  switch (status) {
    case 200: {
      const bytes = await deps.store.result(delivery);
      return delivered(delivery.deliveryId, bytes ? await unpackJson(bytes) : null);
    }
    case 422:
      return rejected(
        delivery.deliveryId,
        delivery.rejectionMessage,
        delivery.rejectionErrors ? JSON.parse(delivery.rejectionErrors) : {},
      );
    default:
      return queued(delivery.deliveryId);
  }
}

/** How long a call would wait for the shared rate limiter now. */
function estimatedSlotWaitMs(deps: CrmDeps): number {
  return deps.fpx.transport.limiter.estimateWaitMs('interactive');
}
