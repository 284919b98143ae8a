/**
 * CRM events end to end: the real sync engine writes referral rows to Azurite, the outbox records each
 * change before its row, and the delivery sends it, signed, to real local receivers (dev/event-receiver.ts)
 * that verify the signature as the CRM would. Time is a MovableClock: retries come by moving it, not waiting.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TableClient } from '@azure/data-tables';
import { afterEach, describe, expect, inject, test } from 'vitest';
import { type EventReceiver, type ReceivedEvent, startEventReceiver } from '../dev/event-receiver';
import { LogAlertSender } from '../lib/alerts';
import {
  crmEvents,
  deliverEventsMessage,
  type EventsMessage,
  EventsQueue,
  LEASE_MS,
  OUTBOX_RETENTION_DAYS,
  OUTBOX_TABLE,
  RETRY_SCHEDULE_SECONDS,
  stateOf,
} from '../lib/events';
import { deliverKey, type MessageOutcome } from '../lib/events/delivery';
import { silentLog } from '../lib/log';
import { queueClient } from '../lib/storage';
import { type RowWrite, readSyncState, syncStream, TABLES } from '../lib/sync';
import { MovableClock } from './support/clock';
import { freshTables, partitionRows } from './support/storage';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

interface Referral {
  id: string;
  tenantId: string;
  tenantName: string;
  workloads: string[];
}
const referral = (n: number, name = `Contoso ${n}`): Referral => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  tenantId: `11111111-0000-4000-8000-${String(n).padStart(12, '0')}`,
  tenantName: name,
  workloads: ['Teams'],
});

const open: EventReceiver[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((receiver) => receiver.close()));
});

/** A world: tables, queues, receivers answering what `answers` says, and a way to run syncs and deliveries. */
async function world(answers: Array<(event: ReceivedEvent['event']) => number> = [() => 204]) {
  const clock = new MovableClock();
  const receivers = await Promise.all(
    answers.map((answer) =>
      startEventReceiver({
        secret: SECRET,
        port: 0,
        log: false,
        now: () => clock.now(),
        answer: (r) => answer(r.event),
      }),
    ),
  );
  open.push(...receivers);
  const table = freshTables();
  const suffix = randomBytes(4).toString('hex');
  const connection = inject('storageConnection');
  /** Messages as sent, with the clock time they become visible: replayed by `deliver`. */
  const messages: Array<{ message: EventsMessage; dueAt: number }> = [];
  const queue = new EventsQueue(
    queueClient(connection, `crm-events-${suffix}`),
    queueClient(connection, `crm-events-poison-${suffix}`),
    (message, delaySeconds) => messages.push({ message, dueAt: clock.now() + delaySeconds * 1000 }),
  );
  const alerts: string[] = [];
  let failQueue = false;
  let failPoison = false;
  const services = {
    config: { events: { urls: receivers.map((r) => r.url), secrets: [SECRET], perSecond: 1000 } },
    table,
    storage: { queue: (name: string) => queueClient(connection, `${name}-${suffix}`) },
    alerts: new LogAlertSender('tests', (line) => alerts.push(line)),
    clock,
  };
  const events = crmEvents(services, {
    queue: Object.assign(Object.create(queue) as EventsQueue, {
      send: (message: EventsMessage, delay?: number) => {
        if (failQueue) return Promise.reject(new Error('queue unreachable'));
        return queue.send(message, delay);
      },
      poison: (message: unknown) => {
        if (failPoison) return Promise.reject(new Error('poison queue unreachable'));
        return queue.poison(message);
      },
    }),
  });
  if (!events) throw new Error('events are configured');

  return {
    clock,
    receivers,
    table,
    queue,
    alerts,
    events,
    /** Messages sent and not yet delivered. */
    messages,
    failQueue: (fail: boolean) => {
      failQueue = fail;
    },
    failPoison: (fail: boolean) => {
      failPoison = fail;
    },
    /**
     * One referrals sync of `items`; `beforeWrite` may stand in for the outbox hook (a crash), `rows` for the
     * table (one whose transactions fail).
     */
    sync: (items: Referral[], beforeWrite?: (writes: RowWrite[]) => Promise<undefined>, rows?: TableClient) =>
      syncStream({
        stream: 'referrals',
        rows: rows ?? table(TABLES.referrals),
        state: table(TABLES.syncState),
        partitionKey: 'referral',
        rowKey: (item: Referral) => item.id,
        pages: (async function* () {
          yield items;
        })(),
        beforeWrite: beforeWrite ?? ((writes) => events.recordWrites('referral', writes)),
        now: () => new Date(clock.now()),
      }),
    /** Processes every message due now (and those they send that are due), as the queue trigger would. */
    deliver: async () => {
      for (;;) {
        const due = messages.filter((m) => m.dueAt <= clock.now());
        if (due.length === 0) return;
        for (const m of due) messages.splice(messages.indexOf(m), 1);
        for (const m of due) await deliverEventsMessage(events.delivery, m.message, silentLog);
      }
    },
    outbox: () => partitionRows(table(OUTBOX_TABLE), 'referral'),
  };
}

const summary = (received: ReceivedEvent[]) =>
  received.map((r) => `${r.event.type} ${String(r.event.data.tenantName)} ${r.status}`);

describe('CRM events', () => {
  test('create, update and removal: exactly one signed event each, in order, with the row as stored', async () => {
    const w = await world();
    await w.sync([referral(1), referral(2)]);
    await w.deliver();
    w.clock.advance(1000);
    await w.sync([referral(1, 'Contoso renamed'), referral(2)]);
    await w.deliver();
    await w.sync([referral(1, 'Contoso renamed'), referral(2)]); // nothing changed: no event
    await w.deliver();
    w.clock.advance(1000);
    await w.sync([referral(2)]);
    await w.deliver();

    const [receiver] = w.receivers;
    expect(receiver?.rejected).toBe(0);
    const ofOne = receiver?.events.filter((r) => r.event.data.id === referral(1).id) ?? [];
    expect(summary(ofOne)).toEqual([
      'referral.created Contoso 1 204',
      'referral.updated Contoso renamed 204',
      'referral.removed Contoso renamed 204',
    ]);
    expect(receiver?.events).toHaveLength(4);
    expect(new Set(receiver?.events.map((r) => r.webhookId)).size).toBe(4);
    const [created, updated, removed] = ofOne;
    expect(created?.event.data).toMatchObject({
      id: referral(1).id,
      workloads: '["Teams"]',
      removedAt: null,
    });
    expect(created?.event.data.firstSeenAt).toBe(created?.event.data.lastChangedAt);
    expect(created?.event.timestamp).toBe(created?.event.data.lastChangedAt);
    expect(updated?.event.data.firstSeenAt).toBe(created?.event.data.firstSeenAt);
    expect(removed?.event.data.removedAt).toEqual(expect.any(String));
    expect(removed?.event.data).not.toHaveProperty('contentHash');

    const swept = await w.events.sweep(silentLog);
    expect(swept.referral).toMatchObject({ sent: 4, pending: 0, failed: 0, requeued: 0 });
    expect(await readSyncState(w.table(TABLES.syncState), 'referrals')).toMatchObject({
      eventsSent: 4,
      eventsPending: 0,
      eventsFailed: 0,
    });
  });

  test('a key whose delivery throws goes again on its own, 30 s later; the other keys and the message go on', async () => {
    const w = await world();
    const outbox = w.events.delivery.outbox;
    const { eventAt, eventsOf } = outbox;
    let failures = 1;
    const flaky = (key: string) => {
      if (key === referral(1).id && failures-- > 0) throw new Error('storage unreachable a moment');
    };
    outbox.eventAt = (...args: Parameters<typeof eventAt>) => {
      flaky(args[1]);
      return eventAt.apply(outbox, args);
    };
    outbox.eventsOf = (...args: Parameters<typeof eventsOf>) => {
      flaky(args[1]);
      return eventsOf.apply(outbox, args);
    };
    await w.sync([referral(1), referral(2)]);
    await w.deliver();
    const [receiver] = w.receivers;
    expect(summary(receiver?.events ?? [])).toEqual(['referral.created Contoso 2 204']);
    expect(w.messages.map((m) => m.message)).toEqual([
      { subject: 'referral', keys: [referral(1).id], endpoints: [w.events.endpoints[0]?.id] },
    ]);
    // Due 30 s on (the test clock also runs in real time: a few ms have passed since the send).
    expect((w.messages[0]?.dueAt ?? 0) - w.clock.now()).toBeGreaterThan(29_000);
    w.clock.advance(30_000);
    await w.deliver();
    expect(summary(receiver?.events ?? [])).toEqual([
      'referral.created Contoso 2 204',
      'referral.created Contoso 1 204',
    ]);
  });

  test('tenants: tenant.created from FpxTenants, the row as stored', async () => {
    const w = await world();
    const tenant = { tenantId: '22222222-0000-4000-8000-000000000001', tpid: 7, name: 'Fabrikam' };
    await syncStream({
      stream: 'tenants',
      rows: w.table(TABLES.tenants),
      partitionKey: 'tenant',
      rowKey: (item: typeof tenant) => item.tenantId,
      pages: (async function* () {
        yield [tenant];
      })(),
      beforeWrite: (writes) => w.events.recordWrites('tenant', writes),
      now: () => new Date(w.clock.now()),
    });
    await w.deliver();
    expect(w.receivers[0]?.events.map((r) => r.event)).toEqual([
      expect.objectContaining({
        type: 'tenant.created',
        data: expect.objectContaining({ ...tenant, removedAt: null }),
      }),
    ]);
  });

  test('a receiver that answers 500 then 200 gets the event twice with the same webhook-id', async () => {
    let calls = 0;
    const w = await world([() => (++calls === 1 ? 500 : 200)]);
    await w.sync([referral(1)]);
    await w.deliver();
    expect(w.receivers[0]?.events.map((r) => r.status)).toEqual([500]);
    await w.deliver(); // the retry is not due yet
    expect(w.receivers[0]?.events).toHaveLength(1);
    w.clock.advance(RETRY_SCHEDULE_SECONDS[1] * 1000);
    await w.deliver();
    const received = w.receivers[0]?.events ?? [];
    expect(received.map((r) => r.status)).toEqual([500, 200]);
    expect(received[1]?.webhookId).toBe(received[0]?.webhookId);
    expect(received[1]?.timestamp).toBeGreaterThan(received[0]?.timestamp ?? Number.POSITIVE_INFINITY);
  });

  test('a retry message that arrives a little early (clocks differ) comes back when due, not after the sweep', async () => {
    let calls = 0;
    const w = await world([() => (++calls === 1 ? 500 : 200)]);
    await w.sync([referral(1)]);
    await w.deliver();
    const [retry] = w.messages.splice(0); // the 5 s retry, handed over 2 s early
    w.clock.advance(3_000);
    await deliverEventsMessage(w.events.delivery, retry?.message, silentLog);
    expect(w.receivers[0]?.events).toHaveLength(1);
    expect(w.messages.map((m) => m.message)).toEqual([retry?.message]);
    w.clock.advance(2_000);
    await w.deliver();
    expect(w.receivers[0]?.events.map((r) => r.status)).toEqual([500, 200]);
  });

  test('a crash after the outbox write, before the row write: nothing sent until the row is, then once', async () => {
    const w = await world();
    // The outbox is written, then the instance "dies" before its row transaction is submitted (the message
    // would have followed the row write).
    await expect(
      w.sync([referral(1)], async (writes) => {
        await w.events.recordWrites('referral', writes);
        throw new Error('instance stopped');
      }),
    ).rejects.toThrow('instance stopped');
    expect(await partitionRows(w.table(TABLES.referrals), 'referral')).toEqual([]);
    expect(w.messages).toEqual([]);
    // The sweep finds the event pending and queues its key; the sender finds no row: not sent, still pending.
    w.clock.advance(3 * 60_000);
    expect((await w.events.sweep(silentLog)).referral).toMatchObject({ pending: 1, requeued: 1 });
    await w.deliver();
    expect(w.receivers[0]?.events).toHaveLength(0);
    // The next sync derives the same change onto the same outbox row, writes the row, then sends it: once.
    await w.sync([referral(1)]);
    await w.deliver();
    await w.events.sweep(silentLog);
    await w.deliver();
    const [row] = await partitionRows(w.table(TABLES.referrals), 'referral');
    expect(await w.outbox()).toHaveLength(1);
    expect(w.receivers[0]?.events.map((r) => r.event.data.lastChangedAt)).toEqual([row?.lastChangedAt]);
  });

  test('a row transaction that fails: its events are neither queued nor sent, and purged after the retention', async () => {
    const w = await world();
    const refusing = Object.assign(Object.create(w.table(TABLES.referrals)) as TableClient, {
      submitTransaction: () => Promise.reject(new Error('transaction refused')),
    });
    await expect(w.sync([referral(1)], undefined, refusing)).rejects.toThrow('transaction refused');
    expect(await w.outbox()).toHaveLength(1);
    expect(w.messages).toEqual([]);
    w.clock.advance(3 * 60_000);
    expect((await w.events.sweep(silentLog)).referral).toMatchObject({ requeued: 1 });
    await w.deliver();
    expect(w.receivers[0]?.events).toHaveLength(0);
    const [orphan] = await w.events.delivery.outbox.eventsOf('referral', referral(1).id, '');
    w.clock.advance((OUTBOX_RETENTION_DAYS + 1) * 24 * 3600_000);
    expect((await w.events.sweep(silentLog)).referral).toMatchObject({ purged: 1 });
    expect(await w.outbox()).toEqual([]);
    // Deleted meanwhile (another sweep): not an error.
    expect(orphan && (await w.events.delivery.outbox.delete(orphan))).toBe(false);
  });

  test('two messages for the same key at once (a sweep duplicate): the lease lets one send', async () => {
    const w = await world();
    w.failQueue(true); // no message from the sync: the test sends its own two
    await w.sync([referral(1)]);
    w.failQueue(false);
    const message: EventsMessage = { subject: 'referral', keys: [referral(1).id] };
    await Promise.all([
      deliverEventsMessage(w.events.delivery, message, silentLog),
      deliverEventsMessage(w.events.delivery, message, silentLog),
      deliverEventsMessage(w.events.delivery, { ...message, created: message.keys }, silentLog),
    ]);
    w.clock.advance(2 * 60_000); // past any lease: a message that found the key busy looks again
    await w.deliver();
    expect(w.receivers[0]?.events.map((r) => r.event.type)).toEqual(['referral.created']);
    // A message that names no keys is parked, not retried.
    expect(await deliverEventsMessage(w.events.delivery, '{"subject":"referral"}', silentLog)).toMatchObject({
      invalid: true,
    });
  });

  test('a crash after the outbox write, before the message: the sweep sends it, once', async () => {
    const w = await world();
    w.failQueue(true);
    await w.sync([referral(1)]);
    w.failQueue(false);
    await w.deliver();
    expect(w.receivers[0]?.events).toHaveLength(0);
    expect((await w.events.sweep(silentLog)).referral).toMatchObject({ pending: 1, requeued: 0 }); // in grace
    w.clock.advance(3 * 60_000);
    expect((await w.events.sweep(silentLog)).referral).toMatchObject({ pending: 1, requeued: 1 });
    await w.deliver();
    await w.events.sweep(silentLog);
    await w.deliver();
    expect(w.receivers[0]?.events.map((r) => r.event.type)).toEqual(['referral.created']);
  });

  test('per key order under retries: the update waits for its create; other keys are not held up', async () => {
    let failFirst = true;
    const w = await world([
      (event) => {
        if (event.data.id !== referral(1).id || !failFirst) return 204;
        failFirst = false;
        return 503;
      },
    ]);
    await w.sync([referral(1)]);
    await w.deliver(); // the create of 1 fails, waits 5 s
    w.clock.advance(1000);
    await w.sync([referral(1, 'Contoso renamed'), referral(2)]);
    await w.deliver(); // 2 goes at once; the update of 1 waits behind its create
    expect(summary(w.receivers[0]?.events ?? [])).toEqual([
      'referral.created Contoso 1 503',
      'referral.created Contoso 2 204',
    ]);
    w.clock.advance(RETRY_SCHEDULE_SECONDS[1] * 1000);
    await w.deliver();
    expect(summary(w.receivers[0]?.events ?? [])).toEqual([
      'referral.created Contoso 1 503',
      'referral.created Contoso 2 204',
      'referral.created Contoso 1 204',
      'referral.updated Contoso renamed 204',
    ]);
  });

  test('410 disables that endpoint with one alert; the other endpoint keeps its own delivery', async () => {
    const w = await world([() => 410, () => 204]);
    await w.sync([referral(1)]);
    await w.deliver();
    await w.sync([referral(1), referral(2)]);
    await w.deliver();
    expect(w.receivers[0]?.events.map((r) => r.status)).toEqual([410]);
    expect(w.receivers[1]?.events.map((r) => r.event.type)).toEqual(['referral.created', 'referral.created']);
    expect(w.alerts).toHaveLength(1);
    expect(w.alerts[0]).toContain('disabled (410 Gone)');
    expect(w.alerts[0]).not.toContain('/events'); // the host only, never the URL
    const swept = await w.events.sweep(silentLog);
    expect(swept.referral).toMatchObject({ sent: 2, pending: 2, requeued: 0 });
  });

  test('after the last retry: crm-events-poison, the event given up, the key goes on', async () => {
    let failing = true;
    const w = await world([() => (failing ? 500 : 204)]);
    await w.sync([referral(1)]);
    await w.deliver();
    w.clock.advance(1000);
    await w.sync([referral(1, 'Contoso renamed')]);
    for (const wait of RETRY_SCHEDULE_SECONDS.slice(1)) {
      w.clock.advance(wait * 1000);
      await w.deliver();
    }
    const statuses = w.receivers[0]?.events.map((r) => `${r.event.type} ${r.status}`) ?? [];
    expect(statuses.slice(0, 8)).toEqual(Array(8).fill('referral.created 500'));
    const poisoned = await w.queue.poisonQueue.receiveMessages({ numberOfMessages: 5 });
    expect(poisoned.receivedMessageItems).toHaveLength(1);
    const parked = JSON.parse(
      Buffer.from(poisoned.receivedMessageItems[0]?.messageText ?? '', 'base64').toString(),
    );
    expect(parked).toMatchObject({ type: 'referral.created', attempts: 8, error: 'HTTP 500' });
    const [created] = await w.outbox();
    const endpoint = w.events.endpoints[0]?.id ?? '';
    expect(stateOf(created ?? {}, endpoint)).toMatchObject({ done: created?.eventId, tries: 8 });
    // The update is not held for ever behind a create the CRM never took: it goes next.
    expect(statuses[8]).toBe('referral.updated 500');
    failing = false;
    w.clock.advance(RETRY_SCHEDULE_SECONDS[1] * 1000);
    await w.deliver();
    expect(w.receivers[0]?.events.at(-1)).toMatchObject({ status: 204, event: { type: 'referral.updated' } });
    expect((await w.events.sweep(silentLog)).referral).toMatchObject({ sent: 1, failed: 1, pending: 0 });
  });
  test('a redirect is a failed attempt, retried; never followed (a 302 would become a bodiless GET)', async () => {
    const w = await world();
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.writeHead(req.method === 'POST' ? 302 : 200, { location: '/landing' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      w.events.delivery.fetch = (_url, init) => fetch(`http://127.0.0.1:${port}/`, init);
      await w.sync([referral(1)]);
      await w.deliver();
    } finally {
      server.close();
    }
    expect(requests).toEqual(['POST /']);
    const [event] = await w.outbox();
    const endpoint = w.events.endpoints[0]?.id ?? '';
    expect(stateOf(event ?? {}, endpoint)).toMatchObject({
      done: undefined,
      tries: 1,
      next: expect.any(String),
    });
    expect(event?.[`error_${endpoint}`]).toBe('HTTP 302');
  });

  test('after a 410, keys already under way send nothing more to that endpoint; deleting its row enables it', async () => {
    let gone = true;
    const w = await world([() => (gone ? 410 : 204)]);
    w.failQueue(true); // the test sends its own messages
    await w.sync([referral(1), referral(2)]);
    w.failQueue(false);
    const [endpoint] = w.events.endpoints;
    if (!endpoint) throw new Error('one endpoint');
    await deliverEventsMessage(w.events.delivery, { subject: 'referral', keys: [referral(1).id] }, silentLog);
    // Key 2 of a message that listed its targets before the 410 (a concurrent message, or its next key).
    const outcome: MessageOutcome = { sent: 0, failed: 0, retries: 0 };
    expect(
      await deliverKey(w.events.delivery, 'referral', referral(2).id, endpoint, outcome, silentLog),
    ).toBe('disabled');
    expect(w.receivers[0]?.events.map((r) => r.status)).toEqual([410]);
    // The operator fixes the endpoint and deletes its row: the next message sends again.
    gone = false;
    await w.table(OUTBOX_TABLE).deleteEntity('endpoint', endpoint.id);
    const message: EventsMessage = { subject: 'referral', keys: [referral(1).id, referral(2).id] };
    expect(await deliverEventsMessage(w.events.delivery, message, silentLog)).toMatchObject({ sent: 2 });
  });

  test('a give-up whose poison copy cannot be sent stays pending; the copy is there before it is done', async () => {
    const w = await world([() => 500]);
    w.failPoison(true);
    await w.sync([referral(1)]);
    await w.deliver();
    for (const wait of RETRY_SCHEDULE_SECONDS.slice(1, -1)) {
      w.clock.advance(wait * 1000);
      await w.deliver();
    }
    w.clock.advance((RETRY_SCHEDULE_SECONDS.at(-1) ?? 0) * 1000);
    await w.deliver(); // the failed give-up: that key goes again 30 s later, on its own message
    const endpoint = w.events.endpoints[0]?.id ?? '';
    const [event] = await w.outbox();
    expect(stateOf(event ?? {}, endpoint)).toMatchObject({ done: undefined, tries: 8 });
    await w.queue.poisonQueue.createIfNotExists();
    expect((await w.queue.poisonQueue.receiveMessages()).receivedMessageItems).toEqual([]);
    // The host's retry of the message, after the attempt's lease: given up again, now with its copy.
    w.failPoison(false);
    w.clock.advance(LEASE_MS);
    const message: EventsMessage = { subject: 'referral', keys: [referral(1).id] };
    expect(await deliverEventsMessage(w.events.delivery, message, silentLog)).toMatchObject({ failed: 1 });
    expect(w.receivers[0]?.events).toHaveLength(RETRY_SCHEDULE_SECONDS.length); // no ninth attempt
    const poisoned = (await w.queue.poisonQueue.receiveMessages()).receivedMessageItems;
    expect(poisoned).toHaveLength(1);
    expect(JSON.parse(Buffer.from(poisoned[0]?.messageText ?? '', 'base64').toString())).toMatchObject({
      attempts: RETRY_SCHEDULE_SECONDS.length,
    });
    const [given] = await w.outbox();
    expect(stateOf(given ?? {}, endpoint)).toMatchObject({ done: given?.eventId });
  });

  test('an event derived again onto its row (a new id) starts its retries afresh', async () => {
    const w = await world();
    const { outbox } = w.events.delivery;
    const endpoint = w.events.endpoints[0]?.id ?? '';
    const change = (contentHash: string) => ({
      key: 'r1',
      kind: 'created' as const,
      after: '',
      contentHash,
      row: { id: 'r1', lastChangedAt: new Date(w.clock.now()).toISOString(), removedAt: '' },
    });
    await outbox.record('referral', [change('a')], new Date(w.clock.now()));
    const [first] = await outbox.eventsOf('referral', 'r1', endpoint);
    if (!first) throw new Error('recorded');
    await outbox.update(first, endpoint, {
      tries: 3,
      next: new Date(w.clock.now() + 3600_000).toISOString(),
    });
    expect((await outbox.eventsOf('referral', 'r1', endpoint))[0]?.state).toMatchObject({ tries: 3 });
    await outbox.record('referral', [change('b')], new Date(w.clock.now()));
    const [again] = await outbox.eventsOf('referral', 'r1', endpoint);
    expect(again?.eventId).not.toBe(first.eventId);
    expect(again?.state).toEqual({ done: undefined, tries: 0, next: undefined, lease: undefined });
  });
});
