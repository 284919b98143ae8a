import type { Log } from '../log';
import { stableUuid } from '../redact';
import { MAX_BLOB_BYTES, packJson } from './blob';
import { type Delivery, type DeliveryFields, DeliveryLeaseLost, RETENTION_DAYS } from './delivery-store';
import type { CrmDeps } from './deps';
import { type AttemptOutcome, attemptDelivery } from './fpx-attempt';
import type { WebhookInput } from './http-input';
import type { CrmOperation, FieldErrors, WebhookEndpoint } from './payloads';
import { orderTarget } from './update-order';

/**
 * The steps both delivery paths share (the webhook's first attempt and the queue's retries): take the
 * lease, attempt, and record the outcome on the delivery row.
 */

const DAY_MS = 24 * 3600_000;

/** The delivery id of a webhook-id: derived, so the id is claimed by inserting that one row. */
export function deliveryIdFor(webhookId: string): string {
  return stableUuid(`crm-webhook:${webhookId}`);
}

export const iso = (ms: number) => new Date(ms).toISOString();

/** Timestamps every write sets: the retention clock restarts with each change. */
export function touched(now: number): Pick<DeliveryFields, 'updatedAt' | 'expiresAt'> {
  return { updatedAt: iso(now), expiresAt: iso(now + RETENTION_DAYS * DAY_MS) };
}

/** The row that claims a webhook-id: leased to this request for its first attempt, which starts now. */
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
    status: 'processing',
    attempts: 0,
    createdAt: iso(now),
    leaseUntil: iso(now + leaseMs),
    attemptStartedAt: iso(now),
    unknownSince: '',
    nextAttemptAt: '',
    completedAt: '',
    lastError: '',
    answerStatus: 0,
    rejectionMessage: '',
    rejectionErrors: '',
    ...touched(now),
  };
}

/** A lease ran out mid-attempt (a crashed or stalled instance): its call may have reached FPX. */
export function unknownSinceAfterTakeover(delivery: Delivery): string {
  if (delivery.status !== 'processing' || !delivery.attemptStartedAt) return delivery.unknownSince;
  return earliest(delivery.unknownSince, delivery.attemptStartedAt);
}

export function earliest(a: string, b: string): string {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

/**
 * Takes the lease for one attempt (ETag-conditional); undefined when another attempt got there first.
 * Taking over a dead attempt counts it: its call may have reached FPX.
 */
export async function takeLease(deps: CrmDeps, delivery: Delivery): Promise<Delivery | undefined> {
  const now = deps.now();
  try {
    return await deps.store.update(delivery, {
      status: 'processing',
      attempts: delivery.status === 'processing' ? delivery.attempts + 1 : delivery.attempts,
      leaseUntil: iso(now + deps.policy.leaseMs),
      attemptStartedAt: iso(now),
      unknownSince: unknownSinceAfterTakeover(delivery),
      ...touched(now),
    });
  } catch (error) {
    if (error instanceof DeliveryLeaseLost) return undefined;
    throw error;
  }
}

export function leaseIsLive(delivery: Delivery, now: number): boolean {
  return delivery.status === 'processing' && Date.parse(delivery.leaseUntil) > now;
}

/** One attempt under the lease, bounded in time. */
export function attempt(
  deps: CrmDeps,
  delivery: Delivery,
  operation: CrmOperation,
  endUserToken?: string,
): Promise<AttemptOutcome> {
  return attemptDelivery(deps.fpx, operation, {
    endUserToken,
    unknownSince: delivery.unknownSince ? new Date(delivery.unknownSince) : undefined,
    reconcileSkewMs: deps.policy.reconcileSkewMs,
    signal: AbortSignal.timeout(deps.policy.attemptTimeoutMs),
  });
}

/**
 * Records a final outcome (delivered or rejected). `answerStatus` is set when this is the first answer to
 * the CRM (the webhook path), so a repeat of the webhook-id gets it again. A lost lease is logged, not
 * thrown: FPX has the request, and the other attempt will find it. A delivered update moves its target's
 * order forward first, so a failure here (retried) never leaves the delivery recorded and the order behind.
 */
export async function recordFinal(
  deps: CrmDeps,
  delivery: Delivery,
  outcome: Extract<AttemptOutcome, { kind: 'delivered' | 'rejected' }>,
  log: Log,
  answerStatus?: 200 | 422,
): Promise<void> {
  const now = deps.now();
  const sent = outcome.kind === 'rejected' || !outcome.found;
  const common = { attempts: delivery.attempts + (sent ? 1 : 0), completedAt: iso(now), ...touched(now) };
  try {
    if (outcome.kind === 'delivered') {
      if (delivery.target && delivery.signedAt) {
        await deps.store.recordDelivered(delivery.target, delivery.signedAt, delivery.deliveryId, now);
      }
      let result = await packJson(outcome.result);
      let note = outcome.note ?? '';
      if (result.length > MAX_BLOB_BYTES) {
        result = await packJson(null);
        note = "FPX's answer was too large to keep";
      }
      await deps.store.update(
        delivery,
        { status: 'delivered', lastError: note, ...(answerStatus ? { answerStatus } : {}), ...common },
        result,
      );
    } else {
      await deps.store.update(delivery, {
        status: 'rejected',
        lastError: describeRejection(outcome.message, outcome.errors),
        rejectionMessage: outcome.message,
        rejectionErrors: JSON.stringify(outcome.errors),
        ...(answerStatus ? { answerStatus } : {}),
        ...common,
      });
    }
  } catch (error) {
    if (!(error instanceof DeliveryLeaseLost)) throw error;
    log.warn(
      `Delivery ${delivery.deliveryId}: ${outcome.kind}, but another attempt holds it now (lease lost)`,
    );
  }
}

/**
 * A newer update of the same target was delivered first: final, nothing sent. False when another attempt
 * changed the row meanwhile (it decides).
 */
export async function recordSuperseded(
  deps: CrmDeps,
  delivery: Delivery,
  reason: string,
  log: Log,
  answerStatus?: 200,
): Promise<boolean> {
  const now = deps.now();
  try {
    await deps.store.update(delivery, {
      status: 'superseded',
      lastError: reason,
      completedAt: iso(now),
      ...(answerStatus ? { answerStatus } : {}),
      ...touched(now),
    });
  } catch (error) {
    if (!(error instanceof DeliveryLeaseLost)) throw error;
    log.warn(`Delivery ${delivery.deliveryId}: superseded, but another attempt holds it now (lease lost)`);
    return false;
  }
  log.warn(`Delivery ${delivery.deliveryId} (webhook ${delivery.webhookId}): ${reason}`);
  return true;
}

/** FPX is unavailable: the next attempt goes on the queue after the backoff, then the row says queued. */
export async function recordRetry(
  deps: CrmDeps,
  delivery: Delivery,
  outcome: Extract<AttemptOutcome, { kind: 'unavailable' }>,
  delaySeconds: number,
  log: Log,
  answerStatus?: 202,
): Promise<void> {
  const now = deps.now();
  // Enqueued first: if the row write fails, the message still comes and finds the lease expired.
  await deps.queue.schedule(delivery.deliveryId, delaySeconds);
  try {
    await deps.store.update(delivery, {
      status: 'queued',
      attempts: attemptsAfter(delivery, outcome),
      lastError: outcome.error,
      nextAttemptAt: iso(now + delaySeconds * 1000),
      unknownSince: outcome.outcomeUnknown
        ? earliest(delivery.unknownSince, delivery.attemptStartedAt)
        : delivery.unknownSince,
      ...(answerStatus ? { answerStatus } : {}),
      ...touched(now),
    });
  } catch (error) {
    if (!(error instanceof DeliveryLeaseLost)) throw error;
    log.warn(`Delivery ${delivery.deliveryId}: another attempt holds it now (lease lost)`);
  }
}

/** Calls made once this attempt is over (one that never got a rate-limit slot sent nothing). */
export function attemptsAfter(delivery: Delivery, outcome: AttemptOutcome): number {
  return delivery.attempts + (outcome.kind === 'unavailable' && outcome.notSent ? 0 : 1);
}

export function describeRejection(message: string, errors: FieldErrors): string {
  const fields = Object.entries(errors)
    .map(([field, reasons]) => `${field}: ${reasons.join('; ')}`)
    .join(', ');
  return `FPX rejected it: ${message}${fields ? ` (${fields})` : ''}`;
}
