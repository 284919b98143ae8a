import type { PlainRequest, PlainResponse } from '../http';
import type { Log } from '../log';
import { delivered, failure, ignored, queued, rejected, replayed, superseded } from './answers';
import {
  apply,
  attempt,
  decideAttempted,
  decideWithOrder,
  deliveryIdFor,
  newDelivery,
  recordFinal,
} from './delivery-steps';
import type { Delivery } from './delivery-store';
import type { CrmDeps } from './deps';
import type { AttemptOutcome } from './fpx-attempt';
import { readWebhookRequest, type WebhookInput } from './http-input';
import { type Decision, decide, effectOf, inFlight } from './lifecycle';
import { MAX_PACKED_BYTES, packJson, unpackJson } from './packed-json';
import type { WebhookEndpoint } from './payloads';

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
  return deliverWebhookInput(deps, endpoint, read.input, log);
}

/**
 * A verified, validated request (a CRM webhook, or a Dataverse event turned into one): claim its id, hand it
 * to FPX and answer with FPX's result, or queue it (202). A repeated id gets the first answer again.
 */
export async function deliverWebhookInput(
  deps: CrmDeps,
  endpoint: WebhookEndpoint,
  input: WebhookInput,
  log: Log,
): Promise<PlainResponse> {
  const deliveryId = deliveryIdFor(input.webhookId);

  const claim = await claimWebhook(deps, endpoint, deliveryId, input, log);
  if ('answer' in claim) return claim.answer;
  const delivery = claim.delivery;

  // An update signed before one of the same target that was delivered already: not sent (it would undo it).
  const ready = await decideWithOrder(deps, delivery, { type: 'claimed', now: deps.now() });
  const answer = effectOf(ready, 'answer');
  if (answer) {
    if (!(await apply(deps, delivery, ready, log))) {
      log.warn(`Delivery ${deliveryId}: superseded, but another attempt holds it now (lease lost)`);
      return inFlight(input.webhookId);
    }
    log.warn(`Delivery ${deliveryId} (webhook ${input.webhookId}): ${ready.change?.lastError}`);
    return answer.response;
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

  const decision = decideAttempted(deps, delivery, outcome, 'webhook');
  const where = `Delivery ${deliveryId} (webhook ${input.webhookId})`;
  switch (outcome.kind) {
    case 'delivered':
      deps.pending.start(deliveryId, () => recordFinal(deps, delivery, decision, outcome, log), log);
      log.log(`${where}: delivered to FPX`);
      break;
    case 'rejected':
      deps.pending.start(deliveryId, () => recordFinal(deps, delivery, decision, outcome, log), log);
      log.warn(`${where}: FPX rejected it: ${outcome.message}`);
      break;
    case 'unavailable': {
      if (!(await apply(deps, delivery, decision, log))) {
        log.warn(`Delivery ${deliveryId}: another attempt holds it now (lease lost)`);
      }
      const delay = effectOf(decision, 'schedule')?.delaySeconds;
      log.warn(`${where}: queued, retry in ${delay} s: ${outcome.error}`);
      break;
    }
  }
  return answerOf(decision);
}

/** The answer a decision on the webhook's attempt gives the CRM. */
function answerOf(decision: Decision): PlainResponse {
  const answer = effectOf(decision, 'answer');
  if (!answer) throw new Error('The decision on the webhook has no answer');
  return answer.response;
}

type Claim = { delivery: Delivery } | { answer: PlainResponse };

/** Claims the webhook-id, or explains why not: a replay, still in flight (409), or reused for another body (422). */
async function claimWebhook(
  deps: CrmDeps,
  endpoint: WebhookEndpoint,
  deliveryId: string,
  input: WebhookInput,
  log: Log,
): Promise<Claim> {
  const payload = await packJson(input.operation);
  if (payload.length > MAX_PACKED_BYTES) {
    return { answer: failure(413, 'The payload is too large to store for delivery') };
  }
  const row = newDelivery(input, endpoint, deliveryId, deps.now(), deps.policy.leaseMs);
  const created = await deps.store.create(row, payload);
  if (created) return { delivery: created };

  const repeat = await repeatOf(deps, deliveryId, input.fingerprint);
  if (!repeat) return { answer: inFlight(input.webhookId) };
  if ('answer' in repeat) return repeat;
  const taken = await apply(deps, repeat.existing, repeat.decision, log);
  return taken ? { delivery: taken } : { answer: inFlight(input.webhookId) };
}

export type Repeat =
  | { answer: PlainResponse; existing: Delivery }
  | { existing: Delivery; decision: Decision }
  | undefined;

/**
 * What a repeat of an id already claimed gets: the first answer again (a replay), 409 while it runs, 422 for
 * another body; or, when its attempt died (lease out), the decision that takes it over. undefined: no row.
 */
export async function repeatOf(deps: CrmDeps, deliveryId: string, fingerprint: string): Promise<Repeat> {
  await deps.pending.settled(deliveryId);
  const existing = await deps.store.get(deliveryId);
  if (!existing) return undefined;
  const decision = decide(existing, { type: 'repeat', now: deps.now(), fingerprint }, deps.policy);
  const answer = effectOf(decision, 'answer');
  if (answer) return { answer: answer.response, existing };
  if (effectOf(decision, 'replay')) {
    return { answer: replayed(await storedAnswer(deps, existing)), existing };
  }
  return { existing, decision };
}

/** The first answer, rebuilt from the record (from its state, if the first request never got one). */
async function storedAnswer(deps: CrmDeps, delivery: Delivery): Promise<PlainResponse> {
  if (delivery.status === 'ignored') return ignored(delivery.deliveryId, delivery.lastError);
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
