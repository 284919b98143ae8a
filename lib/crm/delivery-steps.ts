import type { Log } from '../log';
import { safeErrorMessage, stableUuid } from '../redact';
import { inSpan, recordDeliveryFinal } from '../telemetry';
import { type Delivery, type DeliveryFields, DeliveryLeaseLost, FINAL_STATUSES } from './delivery-store';
import type { CrmDeps } from './deps';
import { type AttemptOutcome, attemptDelivery } from './fpx-attempt';
import type { WebhookInput } from './http-input';
import { claim, type Decision, type DeliveryEvent, decide, effectOf } from './lifecycle';
import { MAX_PACKED_BYTES, packJson } from './packed-json';
import type { CrmOperation, WebhookEndpoint } from './payloads';
import { orderTarget } from './update-order';

/**
 * What both delivery paths (the webhook's first attempt and the queue's retries) do with the lifecycle's
 * decisions (lifecycle.ts): read what a decision needs, apply its change on the row's ETag and its effects,
 * and make the attempt.
 */

/** The delivery id of a webhook-id: derived, so the id is claimed by inserting that one row. */
export function deliveryIdFor(webhookId: string): string {
  return stableUuid(`crm-webhook:${webhookId}`);
}

/** The row that claims a webhook-id: the request's identity, leased to this request for its first attempt. */
export function newDelivery(
  input: Pick<WebhookInput, 'webhookId' | 'operation' | 'fingerprint'> &
    Partial<Pick<WebhookInput, 'signedAt'>>,
  endpoint: WebhookEndpoint,
  deliveryId: string,
  now: number,
  leaseMs: number,
): DeliveryFields {
  return {
    deliveryId,
    webhookId: input.webhookId,
    endpoint,
    op: input.operation.op,
    tenantId: input.operation.tenantId,
    fingerprint: input.fingerprint,
    signedAt: input.signedAt ?? 0,
    target: orderTarget(input.operation),
    ...claim(now, leaseMs),
  };
}

/** `decide`, with the target's order read from the store when the decision asks for it. */
export async function decideWithOrder(
  deps: CrmDeps,
  delivery: Delivery,
  event: Extract<DeliveryEvent, { type: 'claimed' | 'message' }>,
): Promise<Decision> {
  const decision = decide(delivery, event, deps.policy);
  if (!effectOf(decision, 'readOrder')) return decision;
  const newestDelivered = await deps.store.newestDelivered(delivery.target);
  return decide(delivery, { ...event, newestDelivered }, deps.policy);
}

/** The decision on the attempt that just ended. */
export function decideAttempted(
  deps: CrmDeps,
  delivery: Delivery,
  outcome: AttemptOutcome,
  via: 'webhook' | 'queue',
): Decision {
  const event: DeliveryEvent = { type: 'attempted', now: deps.now(), outcome, via, jitter: Math.random() };
  return decide(delivery, event, deps.policy);
}

/**
 * Applies a decision: `schedule` and `recordDelivered` first, then the change on the row's ETag (with
 * FPX's answer, `result`, when given), then `poison` and `alert`. Returns the row as written, or undefined
 * when another attempt changed it meanwhile (the lease is lost: that attempt decides, nothing more is done).
 */
export async function apply(
  deps: CrmDeps,
  delivery: Delivery,
  decision: Decision,
  log: Log,
  result?: Buffer,
): Promise<Delivery | undefined> {
  for (const effect of decision.effects) {
    if (effect.type === 'schedule') await deps.queue.schedule(delivery.deliveryId, effect.delaySeconds);
    if (effect.type === 'recordDelivered') {
      await deps.store.recordDelivered(effect.target, effect.signedAt, delivery.deliveryId, deps.now());
    }
  }
  let written = delivery;
  if (decision.change) {
    try {
      written = await deps.store.update(delivery, decision.change, result);
    } catch (error) {
      if (error instanceof DeliveryLeaseLost) return undefined;
      throw error;
    }
    const status = decision.change.status;
    // The metric crm.deliveries counts the statuses a delivery ends in.
    if (status && (FINAL_STATUSES as readonly string[]).includes(status))
      recordDeliveryFinal(status, delivery.endpoint);
  }
  for (const effect of decision.effects) {
    if (effect.type === 'poison') await deps.queue.poison({ deliveryId: delivery.deliveryId });
    if (effect.type === 'alert') {
      log.error(`${effect.subject}: ${decision.change?.lastError ?? ''}`);
      try {
        await deps.alerts.send({ id: effect.id, subject: effect.subject, text: effect.text });
      } catch (error) {
        log.error(
          `The alert for delivery ${delivery.deliveryId} could not be sent: ${safeErrorMessage(error)}`,
        );
      }
    }
  }
  return written;
}

/**
 * One attempt under the lease, bounded in time. A contact created from Dataverse is linked to its FPX contact
 * before the outcome is recorded: should the link's write fail, the attempt throws, its lease runs out, and
 * whoever takes it over finds the contact in FPX (reconciliation) and links it then; nothing is created twice.
 */
export async function attempt(
  deps: CrmDeps,
  delivery: Delivery,
  operation: CrmOperation,
  endUserToken?: string,
): Promise<AttemptOutcome> {
  const attributes = {
    'crm.delivery.id': delivery.deliveryId,
    'crm.endpoint': delivery.endpoint,
    'crm.attempt': delivery.attempts + 1,
  };
  // A span per attempt (its FPX calls nest under it); the outcome is the delivery's status after it.
  return inSpan('crm delivery attempt', attributes, async (span) => {
    const outcome = await attemptDelivery(deps.fpx, operation, {
      endUserToken,
      unknownSince: delivery.unknownSince ? new Date(delivery.unknownSince) : undefined,
      reconcileSkewMs: deps.policy.reconcileSkewMs,
      signal: AbortSignal.timeout(deps.policy.attemptTimeoutMs),
    });
    if (outcome.kind === 'delivered' && operation.op === 'createContact' && operation.dataverseContactId) {
      await deps.onContactCreated?.(operation, outcome.result);
    }
    // The status the lifecycle gives the delivery after this outcome (queued, or failed when none are left;
    // the path, webhook or queue, changes the answer, not the status).
    const status = decideAttempted(deps, delivery, outcome, 'queue').change?.status ?? outcome.kind;
    span.setAttributes({
      'crm.attempt.outcome': outcome.kind,
      'crm.delivery.status': status,
      'crm.outcome_unknown': outcome.kind === 'unavailable' && outcome.outcomeUnknown,
    });
    return outcome;
  });
}

/**
 * Records a final outcome (delivered or rejected) with FPX's answer. A lost lease is logged, not thrown:
 * FPX has the request, and the other attempt will find it. A delivered update moves its target's order
 * forward first, so a failure here (retried) never leaves the delivery recorded and the order behind.
 */
export async function recordFinal(
  deps: CrmDeps,
  delivery: Delivery,
  decision: Decision,
  outcome: Extract<AttemptOutcome, { kind: 'delivered' | 'rejected' }>,
  log: Log,
): Promise<void> {
  let result: Buffer | undefined;
  let change = decision.change;
  if (outcome.kind === 'delivered') {
    result = await packJson(outcome.result);
    if (result.length > MAX_PACKED_BYTES) {
      result = await packJson(null);
      change = { ...change, lastError: "FPX's answer was too large to keep" };
    }
  }
  if (!(await apply(deps, delivery, { ...decision, change }, log, result))) {
    log.warn(
      `Delivery ${delivery.deliveryId}: ${outcome.kind}, but another attempt holds it now (lease lost)`,
    );
  }
}
