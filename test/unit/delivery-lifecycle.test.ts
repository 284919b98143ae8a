/** The CRM delivery lifecycle as a pure function: every transition, without storage, FPX or a clock. */
import { describe, expect, test } from 'vitest';
import { delivered, failure, queued, rejected, superseded } from '../../lib/crm/answers';
import { MAX_BACKOFF_SECONDS } from '../../lib/crm/backoff';
import type { AttemptOutcome } from '../../lib/crm/fpx-attempt';
import {
  claim,
  type Decision,
  type DeliveryEvent,
  type DeliveryRow,
  decide,
  type LifecyclePolicy,
} from '../../lib/crm/lifecycle';

const T0 = Date.UTC(2026, 0, 1, 12);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const iso = (ms: number) => new Date(ms).toISOString();
const ID = '5f0c7a34-8a59-4f3e-9c65-5b1a8c8f1d2e';

const policy: LifecyclePolicy = {
  maxAttempts: 3,
  backoffSeconds: 30,
  leaseMs: 2 * MINUTE,
  queuedGraceMs: 10 * MINUTE,
};

/** A note claimed at T0 by the webhook, its first attempt running. */
function row(overrides: Partial<DeliveryRow> = {}): DeliveryRow {
  return {
    deliveryId: ID,
    webhookId: 'msg_1',
    op: 'createNote',
    tenantId: 'tenant-1',
    fingerprint: 'fp-1',
    signedAt: 0,
    target: '',
    ...claim(T0, policy.leaseMs),
    ...overrides,
  };
}

/** An update of contact c-1 signed at `signedAt` (Unix seconds). */
const update = (signedAt: number, overrides: Partial<DeliveryRow> = {}) =>
  row({ op: 'updateContact', target: 'contact:c-1', signedAt, ...overrides });

/** Queued after a failed first attempt, its retry due at `nextAttemptAt`. */
const queuedRow = (nextAttemptAt: number, overrides: Partial<DeliveryRow> = {}) =>
  row({
    status: 'queued',
    attempts: 1,
    nextAttemptAt: iso(nextAttemptAt),
    lastError: 'FPX 503',
    ...overrides,
  });

const unavailable = (
  extra: Partial<Extract<AttemptOutcome, { kind: 'unavailable' }>> = {},
): AttemptOutcome => ({
  kind: 'unavailable',
  error: 'FPX answered 503',
  outcomeUnknown: false,
  ...extra,
});

const attempted = (
  outcome: AttemptOutcome,
  via: 'webhook' | 'queue',
  now = T0 + SECOND,
  jitter = 0,
): DeliveryEvent => ({ type: 'attempted', now, outcome, via, jitter });

const types = (decision: Decision) => decision.effects.map((effect) => effect.type);

describe('claim', () => {
  test('a new row is processing, leased to its first attempt, which starts now', () => {
    expect(claim(T0, policy.leaseMs)).toMatchObject({
      status: 'processing',
      attempts: 0,
      createdAt: iso(T0),
      leaseUntil: iso(T0 + 2 * MINUTE),
      attemptStartedAt: iso(T0),
      unknownSince: '',
      answerStatus: 0,
      updatedAt: iso(T0),
      expiresAt: iso(T0 + 7 * 24 * 60 * MINUTE),
    });
  });

  test('the claim holder attempts; a superseded update is answered 200 and not sent', () => {
    expect(decide(row(), { type: 'claimed', now: T0 }, policy)).toEqual({ effects: [{ type: 'attempt' }] });
    const late = update(1_000);
    expect(decide(late, { type: 'claimed', now: T0 }, policy)).toEqual({ effects: [{ type: 'readOrder' }] });
    expect(decide(late, { type: 'claimed', now: T0, newestDelivered: 1_000 }, policy).effects).toEqual([
      { type: 'attempt' },
    ]);
    const decision = decide(late, { type: 'claimed', now: T0, newestDelivered: 1_001 }, policy);
    const reason = decision.change?.lastError ?? '';
    expect(reason).toMatch(/^superseded: an update of the same contact signed at .* was delivered first/);
    expect(decision).toEqual({
      change: expect.objectContaining({ status: 'superseded', answerStatus: 200, completedAt: iso(T0) }),
      effects: [{ type: 'answer', response: superseded(ID, reason) }],
    });
  });
});

describe('repeat of the webhook-id', () => {
  test('a live lease answers 409', () => {
    expect(decide(row(), { type: 'repeat', now: T0 + MINUTE, fingerprint: 'fp-1' }, policy)).toEqual({
      effects: [
        {
          type: 'answer',
          response: failure(409, 'webhook-id msg_1 is still being processed; repeat it later for the answer'),
        },
      ],
    });
  });

  test('another body answers 422; an answered or final row is replayed', () => {
    const other = decide(row(), { type: 'repeat', now: T0, fingerprint: 'fp-2' }, policy);
    expect(other.effects).toEqual([
      {
        type: 'answer',
        response: failure(422, 'webhook-id msg_1 was already used for a different request body'),
      },
    ]);
    const answered = queuedRow(T0 + MINUTE, { answerStatus: 202 });
    expect(decide(answered, { type: 'repeat', now: T0, fingerprint: 'fp-1' }, policy)).toEqual({
      effects: [{ type: 'replay' }],
    });
    for (const status of ['delivered', 'rejected', 'failed', 'superseded'] as const) {
      expect(
        types(decide(row({ status }), { type: 'repeat', now: T0, fingerprint: 'fp-1' }, policy)),
      ).toEqual(['replay']);
    }
  });

  test('a dead lease is taken over: the dead attempt counts, its outcome is unknown from its start', () => {
    const now = T0 + 3 * MINUTE;
    expect(decide(row(), { type: 'repeat', now, fingerprint: 'fp-1' }, policy)).toEqual({
      change: expect.objectContaining({
        status: 'processing',
        attempts: 1,
        leaseUntil: iso(now + 2 * MINUTE),
        attemptStartedAt: iso(now),
        unknownSince: iso(T0),
      }),
      effects: [],
    });
  });
});

describe('message of crm-deliveries', () => {
  test('a live lease defers the message until just after it', () => {
    expect(decide(row(), { type: 'message', now: T0 + 90 * SECOND }, policy)).toEqual({
      effects: [{ type: 'schedule', delaySeconds: 31 }],
    });
  });

  test('a dead lease is taken over: counted, unknownSince set, and attempted', () => {
    const now = T0 + 3 * MINUTE;
    const decision = decide(
      row({ attempts: 1, unknownSince: iso(T0 - MINUTE) }),
      { type: 'message', now },
      policy,
    );
    expect(decision).toEqual({
      change: expect.objectContaining({ status: 'processing', attempts: 2, unknownSince: iso(T0 - MINUTE) }),
      effects: [{ type: 'attempt' }],
    });
  });

  test('a queued row takes the lease without counting an attempt', () => {
    const now = T0 + MINUTE;
    expect(decide(queuedRow(now), { type: 'message', now }, policy)).toEqual({
      change: expect.objectContaining({
        status: 'processing',
        attempts: 1,
        leaseUntil: iso(now + 2 * MINUTE),
        unknownSince: '',
      }),
      effects: [{ type: 'attempt' }],
    });
  });

  test('a repeated message for a final row is skipped, and so is one before its retry is due', () => {
    for (const status of ['delivered', 'rejected', 'failed', 'superseded'] as const) {
      expect(types(decide(row({ status }), { type: 'message', now: T0 }, policy))).toEqual(['skip']);
    }
    expect(types(decide(queuedRow(T0 + MINUTE), { type: 'message', now: T0 }, policy))).toEqual(['skip']);
    // Within a second of it counts as due.
    expect(types(decide(queuedRow(T0 + SECOND), { type: 'message', now: T0 }, policy))).toEqual(['attempt']);
  });

  test('attempts used up: failed, the message to poison, an operator alert', () => {
    const decision = decide(queuedRow(T0, { attempts: 3 }), { type: 'message', now: T0 }, policy);
    expect(decision.change).toMatchObject({ status: 'failed', attempts: 3, lastError: 'FPX 503' });
    expect(decision.effects).toEqual([
      { type: 'poison' },
      {
        type: 'alert',
        id: `crm-delivery/${ID}`,
        subject: `CRM delivery ${ID} failed after 3 attempts`,
        text: expect.stringContaining('Operation:  createNote for tenant tenant-1'),
      },
    ]);
  });

  test('superseded is final, nothing sent; the order is read only when needed', () => {
    const late = queuedRow(T0, { op: 'updateContact', target: 'contact:c-1', signedAt: 1_000 });
    expect(decide(late, { type: 'message', now: T0 }, policy).effects).toEqual([{ type: 'readOrder' }]);
    const decision = decide(late, { type: 'message', now: T0, newestDelivered: 2_000 }, policy);
    expect(decision).toEqual({
      change: expect.objectContaining({ status: 'superseded', completedAt: iso(T0) }),
      effects: [],
    });
    expect(decision.change).not.toHaveProperty('answerStatus');
    // Superseded before its attempts are counted out.
    const exhausted = { ...late, attempts: 3 };
    expect(
      decide(exhausted, { type: 'message', now: T0, newestDelivered: 2_000 }, policy).change?.status,
    ).toBe('superseded');
    // Final: a later message is skipped.
    expect(types(decide({ ...late, status: 'superseded' }, { type: 'message', now: T0 }, policy))).toEqual([
      'skip',
    ]);
  });
});

describe('attempted', () => {
  test('delivered is final; the webhook answers 200; an ordered update moves its order forward', () => {
    const outcome: AttemptOutcome = { kind: 'delivered', result: { id: 7 } };
    const decision = decide(update(1_000), attempted(outcome, 'webhook'), policy);
    expect(decision.change).toMatchObject({
      status: 'delivered',
      attempts: 1,
      answerStatus: 200,
      lastError: '',
      completedAt: iso(T0 + SECOND),
    });
    expect(decision.effects).toEqual([
      { type: 'recordDelivered', target: 'contact:c-1', signedAt: 1_000 },
      { type: 'answer', response: delivered(ID, { id: 7 }) },
    ]);
    // From the queue: no answer; found in FPX (an earlier call's create): this attempt sent nothing.
    const found = decide(
      row({ attempts: 1 }),
      attempted({ kind: 'delivered', result: null, note: 'found', found: true }, 'queue'),
      policy,
    );
    expect(found).toEqual({
      change: expect.objectContaining({ status: 'delivered', attempts: 1, lastError: 'found' }),
      effects: [],
    });
    expect(found.change).not.toHaveProperty('answerStatus');
  });

  test('rejected is final, with the reasons; the webhook answers 422', () => {
    const outcome: AttemptOutcome = { kind: 'rejected', message: 'bad', errors: { Email: ['invalid'] } };
    expect(decide(row(), attempted(outcome, 'webhook'), policy)).toEqual({
      change: expect.objectContaining({
        status: 'rejected',
        attempts: 1,
        answerStatus: 422,
        lastError: 'FPX rejected it: bad (Email: invalid)',
        rejectionMessage: 'bad',
        rejectionErrors: '{"Email":["invalid"]}',
      }),
      effects: [{ type: 'answer', response: rejected(ID, 'bad', { Email: ['invalid'] }) }],
    });
  });

  test('unavailable: queued with the backoff, the message scheduled; the webhook answers 202', () => {
    const now = T0 + SECOND;
    const decision = decide(row(), attempted(unavailable(), 'webhook', now, 0), policy);
    // First retry: between half and all of 30 s.
    expect(decision).toEqual({
      change: expect.objectContaining({
        status: 'queued',
        attempts: 1,
        answerStatus: 202,
        lastError: 'FPX answered 503',
        nextAttemptAt: iso(now + 15 * SECOND),
        unknownSince: '',
      }),
      effects: [
        { type: 'schedule', delaySeconds: 15 },
        { type: 'answer', response: queued(ID) },
      ],
    });
    // The second call failed: a 60 s step, the jitter picks up to all of it.
    const later = decide(row({ attempts: 1 }), attempted(unavailable(), 'webhook', now, 0.999), policy);
    expect(later.effects[0]).toEqual({ type: 'schedule', delaySeconds: 60 });
  });

  test('Retry-After is respected and capped at the hour; a call that found no slot does not count', () => {
    const later = decide(row(), attempted(unavailable({ retryAfterMs: 300_000 }), 'queue'), policy);
    expect(later.effects).toEqual([{ type: 'schedule', delaySeconds: 300 }]);
    const capped = decide(row(), attempted(unavailable({ retryAfterMs: 10 * 3600_000 }), 'queue'), policy);
    expect(capped.effects).toEqual([{ type: 'schedule', delaySeconds: MAX_BACKOFF_SECONDS }]);
    const notSent = decide(row({ attempts: 1 }), attempted(unavailable({ notSent: true }), 'queue'), policy);
    expect(notSent.change).toMatchObject({ status: 'queued', attempts: 1 });
  });

  test('unknownSince: set from the attempt on an unknown outcome, kept on a known one', () => {
    const start = T0 + 5 * MINUTE;
    const running = row({ attemptStartedAt: iso(start) });
    const unknown = decide(running, attempted(unavailable({ outcomeUnknown: true }), 'queue'), policy);
    expect(unknown.change?.unknownSince).toBe(iso(start));
    const earlier = row({ attemptStartedAt: iso(start), unknownSince: iso(T0) });
    expect(
      decide(earlier, attempted(unavailable({ outcomeUnknown: true }), 'queue'), policy).change?.unknownSince,
    ).toBe(iso(T0));
    expect(decide(earlier, attempted(unavailable(), 'queue'), policy).change?.unknownSince).toBe(iso(T0));
  });

  test('attempts used up on the queue: failed + poison + alert; the webhook still queues', () => {
    const last = row({ attempts: 2, lastError: 'old' });
    const decision = decide(last, attempted(unavailable(), 'queue'), policy);
    expect(decision.change).toMatchObject({ status: 'failed', attempts: 3, lastError: 'FPX answered 503' });
    expect(types(decision)).toEqual(['poison', 'alert']);
    expect(decide(last, attempted(unavailable(), 'webhook'), policy).change?.status).toBe('queued');
  });
});

describe('recover', () => {
  test('a queued row overdue by the grace period is queued again, due now', () => {
    const now = T0 + 11 * MINUTE;
    expect(decide(queuedRow(T0), { type: 'recover', now }, policy)).toEqual({
      change: expect.objectContaining({ nextAttemptAt: iso(now) }),
      effects: [{ type: 'schedule', delaySeconds: 0 }],
    });
    expect(types(decide(queuedRow(T0), { type: 'recover', now: T0 + 9 * MINUTE }, policy))).toEqual(['skip']);
  });

  test('a processing row whose lease ran out is queued; a live one is left alone', () => {
    expect(decide(row(), { type: 'recover', now: T0 + 3 * MINUTE }, policy)).toEqual({
      effects: [{ type: 'schedule', delaySeconds: 0 }],
    });
    expect(types(decide(row(), { type: 'recover', now: T0 + MINUTE }, policy))).toEqual(['skip']);
    expect(
      types(decide(row({ status: 'delivered' }), { type: 'recover', now: T0 + 3 * MINUTE }, policy)),
    ).toEqual(['skip']);
  });
});
