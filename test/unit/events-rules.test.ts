import { describe, expect, test } from 'vitest';
import { stateOf } from '../../lib/events/outbox';
import {
  buildEvent,
  EVENT_TYPES,
  endpointId,
  eventId,
  keyOfRowKey,
  nextStep,
  type OutboxEvent,
  outboxRowKey,
  outcomeOf,
  RETRY_SCHEDULE_SECONDS,
  type RowChange,
  retryDelaySeconds,
  rowHolds,
} from '../../lib/events/rules';

const change = (over: Partial<RowChange> = {}): RowChange => ({
  key: 'r1',
  kind: 'updated',
  after: '2026-01-01T00:00:00.000Z',
  contentHash: 'abc',
  row: {
    partitionKey: 'referral',
    rowKey: 'r1',
    id: 'r1',
    tenantName: 'Contoso',
    firstSeenAt: '2025-12-01T00:00:00.000Z',
    lastChangedAt: '2026-01-02T00:00:00.000Z',
    removedAt: '',
    contentHash: 'abc',
  },
  ...over,
});

describe('retry schedule (Standard Webhooks)', () => {
  test('immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then give up', () => {
    expect(RETRY_SCHEDULE_SECONDS).toEqual([0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect([1, 2, 3, 4, 5, 6, 7].map(retryDelaySeconds)).toEqual([5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect(retryDelaySeconds(8)).toBeUndefined();
    expect(retryDelaySeconds(0)).toBeUndefined();
  });

  test('2xx is success, 410 disables, anything else is retried', () => {
    expect(outcomeOf(200)).toEqual({ kind: 'sent', status: 200 });
    expect(outcomeOf(204).kind).toBe('sent');
    expect(outcomeOf(410)).toEqual({ kind: 'gone' });
    for (const status of [301, 400, 401, 404, 429, 500, 503]) expect(outcomeOf(status).kind).toBe('failed');
  });
});

describe('event ids', () => {
  test('the same change derived again has the same id; any difference gives another', () => {
    const id = eventId('referral', change());
    expect(id).toMatch(/^evt_[0-9a-f]{40}$/);
    expect(eventId('referral', change({ row: {} }))).toBe(id);
    expect(eventId('referral', change({ contentHash: 'abd' }))).not.toBe(id);
    expect(eventId('referral', change({ after: '2026-01-01T00:00:01.000Z' }))).not.toBe(id);
    expect(eventId('referral', change({ kind: 'removed' }))).not.toBe(id);
    expect(eventId('tenant', change())).not.toBe(id);
    // A -> B -> A: the return to A follows another version, so it is a new event.
    expect(eventId('referral', change({ key: 'r2' }))).not.toBe(id);
  });

  test("outbox RowKeys sort a key's events oldest first; the key is read back whole", () => {
    const keys = [
      outboxRowKey('r1', '2026-01-02T00:00:00.000Z'),
      outboxRowKey('r1', ''),
      outboxRowKey('r1', '2026-01-01T00:00:00.000Z'),
    ];
    expect([...keys].sort()).toEqual([keys[1], keys[2], keys[0]]);
    expect(keyOfRowKey(outboxRowKey('a|b', '2026-01-01T00:00:00.000Z'))).toBe('a|b');
  });
});

describe('event body', () => {
  test('type, the change time and the row as stored without the table columns; removedAt null while present', () => {
    expect(buildEvent('referral', change())).toEqual({
      type: 'referral.updated',
      timestamp: '2026-01-02T00:00:00.000Z',
      data: {
        id: 'r1',
        tenantName: 'Contoso',
        firstSeenAt: '2025-12-01T00:00:00.000Z',
        lastChangedAt: '2026-01-02T00:00:00.000Z',
        removedAt: null,
      },
    });
    const removed = buildEvent(
      'tenant',
      change({ kind: 'removed', row: { ...change().row, removedAt: '2026-01-03T00:00:00.000Z' } }),
    );
    expect(removed.type).toBe('tenant.removed');
    expect(removed.data.removedAt).toBe('2026-01-03T00:00:00.000Z');
    expect(EVENT_TYPES).toEqual([
      'referral.created',
      'referral.updated',
      'referral.removed',
      'tenant.created',
      'tenant.updated',
      'tenant.removed',
    ]);
  });

  test('endpoint ids are short, stable and do not reveal the URL', () => {
    const id = endpointId('https://crm.example.com/hooks?token=secret');
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(endpointId('https://crm.example.com/hooks?token=secret')).toBe(id);
    expect(endpointId('https://crm.example.com/other')).not.toBe(id);
  });
});

describe('which event of a key goes next', () => {
  const NOW = Date.parse('2026-01-01T12:00:00.000Z');
  const event = (rowKey: string, state: OutboxEvent['state'] = {}): OutboxEvent => ({
    rowKey,
    eventId: `id-${rowKey}`,
    state,
  });

  test('the oldest not done, whatever order the rows come in', () => {
    const create = event('k|');
    const update = event('k|2026-01-01T00:00:00.000Z');
    expect(nextStep([update, create], NOW)).toEqual({ action: 'send', event: create });
    expect(nextStep([update, event('k|', { done: 'id-k|' })], NOW)).toEqual({
      action: 'send',
      event: update,
    });
    expect(nextStep([event('k|', { done: 'id-k|' })], NOW)).toEqual({ action: 'idle' });
    expect(nextStep([], NOW)).toEqual({ action: 'idle' });
  });

  test('an update never overtakes its create: a create waiting for its retry holds the key', () => {
    const at = NOW + 5000;
    const create = event('k|', { next: new Date(at).toISOString(), tries: 1 });
    expect(nextStep([create, event('k|2026-01-01T00:00:00.000Z')], NOW)).toEqual({ action: 'wait', at });
    expect(nextStep([create, event('k|2026-01-01T00:00:00.000Z')], at)).toEqual({
      action: 'send',
      event: create,
    });
  });

  test('an attempt under lease holds the key until the lease ends', () => {
    const until = NOW + 60_000;
    expect(nextStep([event('k|', { lease: new Date(until).toISOString() })], NOW)).toEqual({
      action: 'busy',
      until,
    });
    expect(nextStep([event('k|', { lease: new Date(NOW - 1).toISOString() })], NOW).action).toBe('send');
  });

  test('a re-derived event (new id on the same row) is pending again', () => {
    expect(nextStep([event('k|', { done: 'an-older-id' })], NOW).action).toBe('send');
  });
});

describe("an endpoint's delivery state", () => {
  const columns = {
    eventId: 'evt_new',
    done_ep: 'evt_old',
    tries_ep: 5,
    next_ep: '2026-01-01T14:00:00.000Z',
    lease_ep: '2026-01-01T12:01:00.000Z',
    event_ep: 'evt_old',
  };

  test('tries and the retry time belong to the event they were counted for; the lease holds the key', () => {
    expect(stateOf({ ...columns, event_ep: 'evt_new' }, 'ep')).toEqual({
      done: 'evt_old',
      tries: 5,
      next: '2026-01-01T14:00:00.000Z',
      lease: '2026-01-01T12:01:00.000Z',
    });
    // Derived again onto the row (a new id): a fresh schedule, not the one of the event it replaced.
    expect(stateOf(columns, 'ep')).toEqual({
      done: 'evt_old',
      tries: 0,
      next: undefined,
      lease: '2026-01-01T12:01:00.000Z',
    });
    expect(stateOf({ eventId: 'evt_new' }, 'ep')).toEqual({ tries: 0 });
  });
});

describe('an event goes out only once its row is stored as it says', () => {
  const T1 = '2026-01-01T10:00:00.000Z';
  const T2 = '2026-01-01T11:00:00.000Z';
  const created = { id: 'r1', lastChangedAt: T1, removedAt: null };
  const removal = { id: 'r1', lastChangedAt: T2, removedAt: T2 };

  test('the row at the event version, or past it (a later change was written after it)', () => {
    expect(rowHolds(created, { lastChangedAt: T1, removedAt: '' })).toBe(true);
    expect(rowHolds(created, { lastChangedAt: T2, removedAt: '' })).toBe(true);
    expect(rowHolds(removal, { lastChangedAt: T2, removedAt: T2 })).toBe(true);
  });

  test('no row, a row behind the event, or a removal not stored as removed: its write never landed', () => {
    expect(rowHolds(created, undefined)).toBe(false);
    expect(rowHolds({ ...created, lastChangedAt: T2 }, { lastChangedAt: T1, removedAt: '' })).toBe(false);
    expect(rowHolds(removal, { lastChangedAt: T1, removedAt: '' })).toBe(false);
    expect(rowHolds(removal, { lastChangedAt: T2, removedAt: '' })).toBe(false);
    expect(rowHolds(created, { removedAt: '' })).toBe(false);
  });
});
