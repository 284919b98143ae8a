import type { PlainResponse } from '../http';
import { delivered, failure, queued, rejected, superseded } from './answers';
import { retryDelaySeconds } from './backoff';
import { type DeliveryFields, FINAL_STATUSES, RETENTION_DAYS } from './delivery-store';
import type { DeliveryPolicy } from './deps';
import type { AttemptOutcome } from './fpx-attempt';
import type { FieldErrors } from './payloads';
import { isOrdered, supersededBy } from './update-order';

/**
 * The delivery lifecycle as one pure function: `decide(row, event, policy)` says how the row changes and
 * what else must happen. The storage code (delivery-steps, worker, webhook) reads the row, asks, and applies
 * the answer: the change on the row's ETag, the effects around it (see `Effect` for the order).
 *
 *   from                   event                          to                               effects
 *   (no row)               claim() (the insert)           processing, leased
 *   any                    repeat, another body           —                                answer 422
 *   processing, leased     repeat                         —                                answer 409
 *   processing, leased     message                        —                                schedule after the lease
 *   processing, lease out  repeat | message               processing, +1 attempt, unknown  (attempt)
 *   queued, due            message                        processing, leased               attempt
 *   queued | processing    claimed | message, newer sent  superseded                       answer 200 (webhook)
 *   not leased, none left  message                        failed                           poison, alert
 *   processing             attempted: delivered|rejected  delivered | rejected             answer 200 | 422
 *   processing             attempted: unavailable         queued (backoff) | failed        schedule, answer 202 |
 *                                                                                          poison, alert
 *   lease out | overdue    recover                        (queued: due now)                schedule now
 *   final                  message | repeat               —                                skip | replay
 *
 * `processing` holds a lease: nobody else attempts before `leaseUntil`. After it the attempt is presumed
 * dead; whoever takes it over counts its call (it may have reached FPX) and sets `unknownSince`.
 */

export type DeliveryRow = Pick<
  DeliveryFields,
  | 'deliveryId'
  | 'webhookId'
  | 'op'
  | 'tenantId'
  | 'fingerprint'
  | 'signedAt'
  | 'target'
  | 'status'
  | 'attempts'
  | 'createdAt'
  | 'leaseUntil'
  | 'attemptStartedAt'
  | 'unknownSince'
  | 'nextAttemptAt'
  | 'lastError'
  | 'answerStatus'
>;

export type DeliveryChange = Partial<DeliveryFields>;

export type LifecyclePolicy = Pick<
  DeliveryPolicy,
  'maxAttempts' | 'backoffSeconds' | 'leaseMs' | 'queuedGraceMs'
>;

/** `now`: epoch ms. `newestDelivered`: the signing time of the newest update of the row's target delivered. */
export type DeliveryEvent =
  /** The webhook-id's insert found the row: a repeat of the webhook (same id, `fingerprint` of its body). */
  | { type: 'repeat'; now: number; fingerprint: string }
  /** The webhook's request holds the lease (it inserted the row or took it over) and would attempt now. */
  | { type: 'claimed'; now: number; newestDelivered?: number }
  /** A message of `crm-deliveries`: the next attempt is due. */
  | { type: 'message'; now: number; newestDelivered?: number }
  /** The attempt under the lease is over. `jitter` in [0, 1) spreads the retry (see `retryDelaySeconds`). */
  | { type: 'attempted'; now: number; outcome: AttemptOutcome; via: 'webhook' | 'queue'; jitter: number }
  /** The recovery timer looks at it (its scan found it stalled). */
  | { type: 'recover'; now: number };

/**
 * What else must happen. `schedule` and `recordDelivered` come before the change is written (a retry's
 * message must exist even if the write fails; the target's order moves before the delivery says delivered);
 * `poison` and `alert` after it, only if the write held. The rest is the caller's next step.
 */
export type Effect =
  /** Call FPX now, under the lease the change takes. */
  | { type: 'attempt' }
  /** A message on `crm-deliveries`, visible in `delaySeconds`. */
  | { type: 'schedule'; delaySeconds: number }
  /** The target's order moves forward to this update (see update-order.ts). */
  | { type: 'recordDelivered'; target: string; signedAt: number }
  /** The delivery's message to `crm-deliveries-poison`. */
  | { type: 'poison' }
  | { type: 'alert'; id: string; subject: string; text: string }
  /** The webhook's answer to the CRM. */
  | { type: 'answer'; response: PlainResponse }
  /** The first answer again (rebuilt from the record and its stored result). */
  | { type: 'replay' }
  /** The decision needs the target's order: read `newestDelivered` and decide again with it. */
  | { type: 'readOrder' }
  /** Nothing to do. */
  | { type: 'skip'; reason: string };

export interface Decision {
  change?: DeliveryChange;
  effects: Effect[];
}

const DAY_MS = 24 * 3600_000;

export const iso = (ms: number) => new Date(ms).toISOString();

/** Timestamps every write sets: the retention clock restarts with each change. */
export function touched(now: number): Pick<DeliveryFields, 'updatedAt' | 'expiresAt'> {
  return { updatedAt: iso(now), expiresAt: iso(now + RETENTION_DAYS * DAY_MS) };
}

/**
 * The lifecycle part of the row that claims a webhook-id (inserted, so the claim is atomic): leased to this
 * request for its first attempt, which starts now.
 */
export function claim(now: number, leaseMs: number): Omit<DeliveryFields, keyof DeliveryIdentity> {
  return {
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

/** The fields a delivery keeps from its request. */
export type DeliveryIdentity = Pick<
  DeliveryFields,
  'deliveryId' | 'webhookId' | 'endpoint' | 'op' | 'tenantId' | 'fingerprint' | 'signedAt' | 'target'
>;

export function decide(row: DeliveryRow, event: DeliveryEvent, policy: LifecyclePolicy): Decision {
  switch (event.type) {
    case 'repeat':
      return onRepeat(row, event.fingerprint, event.now, policy);
    case 'claimed':
      return onClaimed(row, event.now, event.newestDelivered);
    case 'message':
      return onMessage(row, event.now, event.newestDelivered, policy);
    case 'attempted':
      return onAttempted(row, event, policy);
    case 'recover':
      return onRecover(row, event.now, policy);
  }
}

/** A repeat of the webhook-id: the first answer, 409 while it runs, or it takes over a dead attempt. */
function onRepeat(row: DeliveryRow, fingerprint: string, now: number, policy: LifecyclePolicy): Decision {
  if (row.fingerprint !== fingerprint) {
    const message = `webhook-id ${row.webhookId} was already used for a different request body`;
    return { effects: [{ type: 'answer', response: failure(422, message) }] };
  }
  // Answered before, or finished by the queue after the first request's instance died: the same answer again.
  if (row.answerStatus || isFinal(row)) return { effects: [{ type: 'replay' }] };
  if (leaseIsLive(row, now)) return { effects: [{ type: 'answer', response: inFlight(row.webhookId) }] };
  // The first request's instance stopped mid-attempt: its lease ran out, so this repeat finishes the job.
  return { change: takeLease(row, now, policy), effects: [] };
}

/** The webhook holds the lease: it attempts, unless a newer update of the same target was delivered first. */
function onClaimed(row: DeliveryRow, now: number, newestDelivered: number | undefined): Decision {
  if (isOrdered(row) && newestDelivered === undefined) return { effects: [{ type: 'readOrder' }] };
  const reason = supersededBy(row, newestDelivered ?? 0);
  if (!reason) return { effects: [{ type: 'attempt' }] };
  return {
    change: { ...supersede(reason, now), answerStatus: 200 },
    effects: [{ type: 'answer', response: superseded(row.deliveryId, reason) }],
  };
}

/** The next attempt is due: skip, wait for the lease, supersede, give up, or take the lease and attempt. */
function onMessage(
  row: DeliveryRow,
  now: number,
  newestDelivered: number | undefined,
  policy: LifecyclePolicy,
): Decision {
  if (isFinal(row)) return skip(`${row.status} already`);
  // Still leased by a running attempt: looked at again just after the lease ends.
  if (leaseIsLive(row, now)) {
    const delaySeconds = Math.ceil((Date.parse(row.leaseUntil) - now) / 1000) + 1;
    return { effects: [{ type: 'schedule', delaySeconds }] };
  }
  // A retry is already scheduled later (this message is a repeat, or from recovery): that message comes.
  if (row.status === 'queued' && row.nextAttemptAt && Date.parse(row.nextAttemptAt) > now + 1_000) {
    return skip('its retry is scheduled later');
  }
  if (isOrdered(row) && newestDelivered === undefined) return { effects: [{ type: 'readOrder' }] };
  const reason = supersededBy(row, newestDelivered ?? 0);
  if (reason) return { change: supersede(reason, now), effects: [] };
  if (row.attempts >= policy.maxAttempts) {
    return giveUp(row, row.attempts, row.lastError || 'no attempts left', now);
  }
  return { change: takeLease(row, now, policy), effects: [{ type: 'attempt' }] };
}

/** Records how the attempt ended; the webhook's first attempt also answers the CRM. */
function onAttempted(
  row: DeliveryRow,
  event: Extract<DeliveryEvent, { type: 'attempted' }>,
  policy: LifecyclePolicy,
): Decision {
  const { outcome, now } = event;
  const webhook = event.via === 'webhook';
  switch (outcome.kind) {
    case 'delivered': {
      const effects: Effect[] = [];
      if (isOrdered(row))
        effects.push({ type: 'recordDelivered', target: row.target, signedAt: row.signedAt });
      if (webhook) effects.push({ type: 'answer', response: delivered(row.deliveryId, outcome.result) });
      const change: DeliveryChange = {
        status: 'delivered',
        lastError: outcome.note ?? '',
        ...(webhook ? { answerStatus: 200 } : {}),
        ...completed(row, !outcome.found, now),
      };
      return { change, effects };
    }
    case 'rejected': {
      const change: DeliveryChange = {
        status: 'rejected',
        lastError: describeRejection(outcome.message, outcome.errors),
        rejectionMessage: outcome.message,
        rejectionErrors: JSON.stringify(outcome.errors),
        ...(webhook ? { answerStatus: 422 } : {}),
        ...completed(row, true, now),
      };
      const response = rejected(row.deliveryId, outcome.message, outcome.errors);
      return { change, effects: webhook ? [{ type: 'answer', response }] : [] };
    }
    case 'unavailable': {
      const attempts = attemptsAfter(row, outcome);
      // The webhook always queues (its 202): the queue gives up, when the message comes.
      if (!webhook && attempts >= policy.maxAttempts) return giveUp(row, attempts, outcome.error, now);
      const delaySeconds = retryDelaySeconds(
        attempts,
        policy.backoffSeconds,
        outcome.retryAfterMs,
        event.jitter,
      );
      const change: DeliveryChange = {
        status: 'queued',
        attempts,
        lastError: outcome.error,
        nextAttemptAt: iso(now + delaySeconds * 1000),
        unknownSince: outcome.outcomeUnknown
          ? earliest(row.unknownSince, row.attemptStartedAt)
          : row.unknownSince,
        ...(webhook ? { answerStatus: 202 } : {}),
        ...touched(now),
      };
      const effects: Effect[] = [{ type: 'schedule', delaySeconds }];
      if (webhook) effects.push({ type: 'answer', response: queued(row.deliveryId) });
      return { change, effects };
    }
  }
}

/**
 * A stalled delivery goes back on the queue: an attempt whose instance died before its outcome was on
 * record (the worker takes the lease over), or a queued one overdue by more than `queuedGraceMs` (its message
 * was lost). The queued one's next attempt becomes now, so the next run does not queue it again while it waits.
 */
function onRecover(row: DeliveryRow, now: number, policy: LifecyclePolicy): Decision {
  if (!isStalled(row, now, policy)) return skip('not stalled');
  const effects: Effect[] = [{ type: 'schedule', delaySeconds: 0 }];
  if (row.status !== 'queued') return { effects };
  return { change: { nextAttemptAt: iso(now), ...touched(now) }, effects };
}

/** The rule `DeliveryStore.stalled` scans for (there as a filter). */
export function isStalled(row: DeliveryRow, now: number, policy: LifecyclePolicy): boolean {
  if (row.status === 'processing') return Date.parse(row.leaseUntil) < now;
  if (row.status === 'queued') return Date.parse(row.nextAttemptAt) < now - policy.queuedGraceMs;
  return false;
}

export function isFinal(row: Pick<DeliveryRow, 'status'>): boolean {
  return FINAL_STATUSES.includes(row.status);
}

export function leaseIsLive(row: Pick<DeliveryRow, 'status' | 'leaseUntil'>, now: number): boolean {
  return row.status === 'processing' && Date.parse(row.leaseUntil) > now;
}

/**
 * The lease for one attempt. Taking over a dead attempt (still `processing`) counts its call, and its
 * outcome is unknown from when it started: a create is looked for in FPX before it is sent again.
 */
function takeLease(row: DeliveryRow, now: number, policy: LifecyclePolicy): DeliveryChange {
  const takeover = row.status === 'processing';
  return {
    status: 'processing',
    attempts: takeover ? row.attempts + 1 : row.attempts,
    leaseUntil: iso(now + policy.leaseMs),
    attemptStartedAt: iso(now),
    unknownSince:
      takeover && row.attemptStartedAt ? earliest(row.unknownSince, row.attemptStartedAt) : row.unknownSince,
    ...touched(now),
  };
}

/** Final, nothing sent: a newer update of the same target was delivered first. */
function supersede(reason: string, now: number): DeliveryChange {
  return { status: 'superseded', lastError: reason, completedAt: iso(now), ...touched(now) };
}

/** Attempts used up: `failed` with the last error, the message parked in the poison queue, an operator alert. */
function giveUp(row: DeliveryRow, attempts: number, lastError: string, now: number): Decision {
  const subject = `CRM delivery ${row.deliveryId} failed after ${attempts} attempts`;
  const text = [
    `A request from the CRM could not be delivered to FPX and was given up.`,
    ``,
    `Delivery:   ${row.deliveryId} (GET /api/crm/deliveries/${row.deliveryId})`,
    `Webhook id: ${row.webhookId}`,
    `Operation:  ${row.op} for tenant ${row.tenantId}`,
    `Attempts:   ${attempts}, first on ${row.createdAt}`,
    `Last error: ${lastError}`,
    ``,
    `The message is in the queue crm-deliveries-poison; the payload stays in the table CrmDeliveries.`,
  ].join('\n');
  return {
    change: { status: 'failed', attempts, lastError, completedAt: iso(now), ...touched(now) },
    effects: [{ type: 'poison' }, { type: 'alert', id: `crm-delivery/${row.deliveryId}`, subject, text }],
  };
}

/** A final outcome's common fields; `sent`: this attempt made an FPX call. */
function completed(row: DeliveryRow, sent: boolean, now: number): DeliveryChange {
  return { attempts: row.attempts + (sent ? 1 : 0), completedAt: iso(now), ...touched(now) };
}

/** Calls made once this attempt is over (one that never got a rate-limit slot sent nothing). */
function attemptsAfter(row: DeliveryRow, outcome: Extract<AttemptOutcome, { kind: 'unavailable' }>): number {
  return row.attempts + (outcome.notSent ? 0 : 1);
}

function earliest(a: string, b: string): string {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

function skip(reason: string): Decision {
  return { effects: [{ type: 'skip', reason }] };
}

/** 409: the webhook-id is being processed (its lease is live, or another attempt changed the row). */
export const inFlight = (webhookId: string) =>
  failure(409, `webhook-id ${webhookId} is still being processed; repeat it later for the answer`);

export function describeRejection(message: string, errors: FieldErrors): string {
  const fields = Object.entries(errors)
    .map(([field, reasons]) => `${field}: ${reasons.join('; ')}`)
    .join(', ');
  return `FPX rejected it: ${message}${fields ? ` (${fields})` : ''}`;
}

/** The first effect of `type`, if the decision has one. */
export function effectOf<T extends Effect['type']>(
  decision: Decision,
  type: T,
): Extract<Effect, { type: T }> | undefined {
  return decision.effects.find((effect): effect is Extract<Effect, { type: T }> => effect.type === type);
}
