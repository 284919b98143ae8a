import { randomBytes, randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import {
  type EntitlementRecord,
  emptyTenantDetails,
  type Sandbox,
  type SandboxData,
  startSandbox,
} from '../dev/sandbox';
import { type FpxClient, normalizeGuid } from '../lib/fpx';
import { queueClient } from '../lib/storage';
import {
  fanOutTenantDetails,
  readDetailsState,
  recordTenantOutcome,
  syncReferrals,
  syncReferralsAndTheirTenants,
  syncTenantDetails,
  syncTenantDetailsExclusively,
  syncTenants,
  TENANT_LEASES_TABLE,
  tenantDetailsMessage,
} from '../lib/sync';
import { sandboxClient } from './support/fpx';
import { freshTables, partitionRows } from './support/storage';
import { waitFor } from './support/wait';

/**
 * Issue 12, the FPX → tables side: the sandbox behaves as strictly as the guide allows (records name no
 * service; the unfiltered entitlements request answers everything or a 400) and the client still stores
 * what the CRM needs.
 */

let sandbox: Sandbox;
const clients: FpxClient[] = [];

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 8, referrals: 12, seed: 7 }, rateLimitPerMinute: 0 });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.transport.close()));
  await sandbox.close();
});

/** A new client each time: reference lists are cached per client, and these tests change them. */
function newFpx(): FpxClient {
  const fpx = sandboxClient(sandbox, 3, { retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 } });
  clients.push(fpx);
  return fpx;
}

const tables = freshTables;
const rows = partitionRows;

const canonical = (id: string) => normalizeGuid(id) as string;

/** A claimed tenant with records in at least two services. */
function tenantWithServices(data: SandboxData) {
  for (const tenant of data.partnerTenants) {
    const details = data.tenants.get(tenant.tenantId);
    const services = [...(details?.entitlements.values() ?? [])].filter((s) => s.records.length > 0);
    if (details && services.length >= 2) return { tenantId: canonical(tenant.tenantId), details, services };
  }
  throw new Error('sandbox data: no claimed tenant with records in two services');
}

function entitlementRequests(since: number) {
  const sent = sandbox.requests.slice(since);
  return {
    listings: sent.filter((r) => r.path.endsWith('/services/entitlements')),
    seats: sent.filter((r) => r.path.endsWith('/maxEntitlements')),
  };
}

describe('entitlement rows name their service', () => {
  const modes = [
    { unfiltered: 'reject', recordsNameService: false },
    { unfiltered: 'all', recordsNameService: false },
    { unfiltered: 'reject', recordsNameService: true },
  ] as const;

  for (const mode of modes) {
    test(`unfiltered → ${mode.unfiltered}, records ${mode.recordsNameService ? 'name' : 'do not name'} their service`, async () => {
      const saved = sandbox.data.entitlements;
      sandbox.data.entitlements = { ...mode };
      try {
        const table = tables();
        const fpx = newFpx();
        const { tenantId, services } = tenantWithServices(sandbox.data);
        const message = { tenantId, claimed: true, rfaIds: [] };
        const first = sandbox.requests.length;
        const run = await syncTenantDetails({ fpx, table }, message);
        const records = services.flatMap((s) => s.records);
        expect(run.entitlements).toMatchObject({ status: 'succeeded', created: records.length });

        const stored = await rows(table('FpxEntitlements'), tenantId);
        expect(stored).toHaveLength(records.length);
        for (const service of services) {
          for (const record of service.records) {
            const row = stored.find((r) => r.rowKey === canonical(record.serviceIntentId));
            expect(row).toMatchObject({
              serviceId: service.serviceId,
              maxEntitlements: service.maxEntitlements,
            });
          }
        }
        // Every request the client sent was filtered: none relies on what FPX does without `serviceIds`.
        const firstRun = entitlementRequests(first);
        expect(firstRun.listings.every((r) => (r.query.serviceIds ?? []).length > 0)).toBe(true);
        expect(firstRun.listings.every((r) => r.status === 200)).toBe(true);

        // Run again: the services that had records are read first, so nothing else is asked.
        const second = sandbox.requests.length;
        const again = await syncTenantDetails({ fpx, table }, message);
        expect(again.entitlements?.entityWrites).toBe(0);
        const secondRun = entitlementRequests(second);
        const perService = mode.recordsNameService ? 0 : services.length;
        expect(secondRun.listings).toHaveLength(1 + perService);
        expect(secondRun.seats).toHaveLength(services.length);
      } finally {
        sandbox.data.entitlements = saved;
      }
    });
  }

  test('a tenant without records costs one request; a record moved between services follows', async () => {
    const table = tables();
    const fpx = newFpx();
    const empty = randomUUID();
    sandbox.data.tenants.set(empty, emptyTenantDetails(empty, 'No Records Ltd'));
    try {
      const since = sandbox.requests.length;
      const run = await syncTenantDetails({ fpx, table }, { tenantId: empty, claimed: true, rfaIds: [] });
      expect(run.entitlements).toMatchObject({ status: 'succeeded', seen: 0 });
      expect(entitlementRequests(since).listings).toHaveLength(1);
      expect(entitlementRequests(since).seats).toHaveLength(0);
    } finally {
      sandbox.data.tenants.delete(empty);
    }

    const { tenantId, services } = tenantWithServices(sandbox.data);
    await syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: [] });
    const [from, to] = services as [(typeof services)[0], (typeof services)[0]];
    const moved = from.records.shift() as EntitlementRecord;
    to.records.push(moved);
    try {
      await syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: [] });
      const row = (await rows(table('FpxEntitlements'), tenantId)).find(
        (r) => r.rowKey === canonical(moved.serviceIntentId),
      );
      expect(row).toMatchObject({
        serviceId: to.serviceId,
        maxEntitlements: to.maxEntitlements,
        removedAt: '',
      });
    } finally {
      to.records.pop();
      from.records.unshift(moved);
    }
  });
});

describe('note categories that cannot be used remove nothing', () => {
  const cases = [
    { name: 'an empty /noteCategories', reason: /\/noteCategories is empty/, break: () => emptyCategories() },
    {
      name: 'an unreadable /noteCategories',
      reason: /\/noteCategories could not be read: .*500/,
      break: () => {
        sandbox.injectFault({ kind: '5xx', status: 500 }, { path: /^\/noteCategories$/ }, 2);
        return () => undefined;
      },
    },
  ];

  function emptyCategories() {
    const saved = sandbox.data.reference.noteCategories;
    sandbox.data.reference.noteCategories = [];
    return () => {
      sandbox.data.reference.noteCategories = saved;
    };
  }

  for (const c of cases) {
    test(`${c.name}: notes are read, none is marked removed, and the details row says why`, async () => {
      const table = tables();
      const tenant = sandbox.data.partnerTenants
        .map((t) => canonical(t.tenantId))
        .find((id) => (sandbox.data.tenants.get(id)?.notes.filter((n) => n.rfaId === null).length ?? 0) >= 2);
      if (!tenant) throw new Error('sandbox data: no tenant with two notes');
      const message = { tenantId: tenant, claimed: true, rfaIds: [], runId: 'run-categories' };
      await syncTenantDetails({ fpx: newFpx(), table }, message);
      const before = (await rows(table('FpxNotes'), tenant)).length;
      expect(before).toBeGreaterThanOrEqual(2);

      const restore = c.break();
      try {
        const run = await syncTenantDetails({ fpx: newFpx(), table }, message);
        expect(run.notes.status).toBe('succeeded');
        expect(run.notes.removed).toBe(0);
        expect(run.notes.removalsSkipped).toMatch(c.reason);
        // Only category 1 was read, so the notes of other categories would have gone: they are kept.
        expect(run.notes.removalsWithheld).toBeGreaterThan(0);
        const after = await rows(table('FpxNotes'), tenant);
        expect(after).toHaveLength(before);
        expect(after.every((r) => r.removedAt === '')).toBe(true);

        const state = table('FpxSyncState');
        const runs = table('FpxTenantDetailsRuns');
        await state.createTable();
        await fanOutRecord(state, runs, 'run-categories');
        await recordTenantOutcome(state, runs, { runId: 'run-categories', tenantId: tenant, result: run });
        const details = await readDetailsState(state);
        expect(details).toMatchObject({ lastStatus: 'succeeded', tenantsRemovalsSkipped: 1 });
        expect(details?.removalsSkipped).toMatch(c.reason);
        expect(details?.removalsSkipped).toMatch(/^notes: /);
      } finally {
        restore();
      }
    });
  }
});

/** A details run of one tenant on record, as fanOutTenantDetails starts it. */
async function fanOutRecord(state: TableClient, runs: TableClient, runId: string) {
  const { startDetailsRun } = await import('../lib/sync/details-state');
  await startDetailsRun(state, runs, {
    runId,
    enqueued: 1,
    claimed: 1,
    referralOnly: 0,
    departedTenants: 0,
    departedRows: 0,
    departedSkipped: '',
  });
}

describe('tenants that leave FPX', () => {
  test('a tenant in neither listing has its detail rows marked removed at the next fan-out', async () => {
    const table = tables();
    const fpx = newFpx();
    const queue = queueClient(inject('storageConnection'), `departed-${randomBytes(4).toString('hex')}`);
    const referred = new Set(sandbox.data.referrals.map((r) => canonical(r.tenantId)));
    const index = sandbox.data.partnerTenants.findIndex((t) => {
      const id = canonical(t.tenantId);
      const d = sandbox.data.tenants.get(id);
      return !referred.has(id) && (d?.contacts.length ?? 0) > 0 && (d?.notes.length ?? 0) > 0;
    });
    const leaving = sandbox.data.partnerTenants[index];
    const staying = sandbox.data.partnerTenants.find((_, i) => i !== index);
    if (!leaving || !staying) throw new Error('sandbox data: no claimed-only tenant with contacts and notes');
    const leavingId = canonical(leaving.tenantId);
    const stayingId = canonical(staying.tenantId);

    await syncTenants({ fpx, table });
    // Without a complete referral listing, a tenant missing from FpxReferrals proves nothing.
    const early = await fanOutTenantDetails({ table, queue }, 'run-early');
    expect(early).toMatchObject({ departedTenants: 0, departedSkipped: expect.stringMatching(/referral/) });
    await syncReferrals({ fpx, table });
    for (const tenantId of [leavingId, stayingId]) {
      await syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: [] });
    }
    const present = async (id: string) =>
      (
        await Promise.all(['FpxEntitlements', 'FpxContacts', 'FpxNotes'].map((t) => rows(table(t), id)))
      ).flat();
    const leavingRows = (await present(leavingId)).length;
    expect(leavingRows).toBeGreaterThan(0);

    sandbox.data.partnerTenants.splice(index, 1);
    try {
      await syncTenants({ fpx, table });
      const fanOut = await fanOutTenantDetails({ table, queue }, 'run-after');
      expect(fanOut).toMatchObject({ departedTenants: 1, departedRows: leavingRows, departedSkipped: '' });
      const gone = await present(leavingId);
      expect(gone.every((r) => typeof r.removedAt === 'string' && r.removedAt !== '')).toBe(true);
      expect((await present(stayingId)).every((r) => r.removedAt === '')).toBe(true);
      expect(await readDetailsState(table('FpxSyncState'))).toMatchObject({ departedTenants: 1 });

      // Marked once: the next fan-out finds nothing more to do.
      expect(await fanOutTenantDetails({ table, queue }, 'run-again')).toMatchObject({ departedTenants: 0 });
    } finally {
      sandbox.data.partnerTenants.splice(index, 0, leaving);
      await queue.delete();
    }
  });
});

describe('a new referral', () => {
  test("one pollReferrals run queues its tenant; that tenant's contacts and notes land with the rfaId", async () => {
    const table = tables();
    const fpx = newFpx();
    const queue = queueClient(inject('storageConnection'), `referral-${randomBytes(4).toString('hex')}`);
    await syncTenants({ fpx, table });
    const first = await syncReferralsAndTheirTenants({ fpx, table, queue });
    // The first run finds every referral new: each referred tenant once.
    expect(first.tenantDetailsQueued).toBe(
      new Set(sandbox.data.referrals.map((r) => canonical(r.tenantId))).size,
    );
    await queue.clearMessages();
    expect((await syncReferralsAndTheirTenants({ fpx, table, queue })).tenantDetailsQueued).toBe(0);

    // FPX offers a referral for a tenant nobody has seen, with a contact and a note under the referral.
    const tenantId = randomUUID();
    const rfaId = Math.max(...sandbox.data.referrals.map((r) => r.id)) + 1;
    const details = emptyTenantDetails(tenantId, 'Brand New Co');
    const template = [...sandbox.data.tenants.values()].flatMap((d) => d.contacts)[0]?.contact;
    const templateNote = [...sandbox.data.tenants.values()].flatMap((d) => d.notes)[0]?.note;
    if (!template || !templateNote) throw new Error('sandbox data: no contact or note to copy');
    details.contacts.push({ rfaId, contact: { ...template, contactId: randomUUID(), tenantId } });
    details.notes.push({ rfaId, note: { ...templateNote, text: 'First call booked' } });
    sandbox.data.tenants.set(tenantId, details);
    sandbox.data.referrals.push({
      id: rfaId,
      created: new Date().toISOString(),
      tenantId,
      tenantName: 'Brand New Co',
      tenantDomain: 'brandnew.example',
      workloads: [{ id: 101, name: 'Exchange Online', claimed: false }],
    });
    try {
      const run = await syncReferralsAndTheirTenants({ fpx, table, queue });
      expect(run).toMatchObject({ created: 1, tenantDetailsQueued: 1 });
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      expect(receivedMessageItems).toHaveLength(1);
      const message = tenantDetailsMessage.parse(
        JSON.parse(Buffer.from(receivedMessageItems[0]?.messageText ?? '', 'base64').toString('utf8')),
      );
      expect(message).toMatchObject({ tenantId, claimed: false, rfaIds: [String(rfaId)] });

      await syncTenantDetails({ fpx, table }, message);
      const contacts = await rows(table('FpxContacts'), tenantId);
      const notes = await rows(table('FpxNotes'), tenantId);
      expect(contacts.map((r) => r.rfaId)).toEqual([String(rfaId)]);
      expect(notes.map((r) => [r.text, r.rfaId])).toEqual([['First call booked', String(rfaId)]]);
    } finally {
      sandbox.data.referrals.pop();
      sandbox.data.tenants.delete(tenantId);
      await queue.delete();
    }
  });

  test('a bulk arrival (a first sync of many referrals) queues 500 tenants and leaves the rest to the fan-out', async () => {
    const big = await startSandbox({ data: { tenants: 2, referrals: 700, seed: 9 }, rateLimitPerMinute: 0 });
    const fpx = sandboxClient(big, 100);
    const queue = queueClient(inject('storageConnection'), `bulk-${randomBytes(4).toString('hex')}`);
    const lines: string[] = [];
    try {
      const run = await syncReferralsAndTheirTenants({
        fpx,
        table: tables(),
        queue,
        log: (l) => lines.push(l),
      });
      const referred = new Set(big.data.referrals.map((r) => canonical(r.tenantId))).size;
      expect(referred).toBeGreaterThan(500);
      expect(run).toMatchObject({ created: 700, tenantDetailsQueued: 500 });
      expect((await queue.getProperties()).approximateMessagesCount).toBe(500);
      expect(
        lines.some((l) => l.includes(`${referred} tenants of new or changed referrals: 500 queued now`)),
      ).toBe(true);
    } finally {
      await queue.delete();
      await fpx.transport.close();
      await big.close();
    }
  });

  test("a claimed tenant's rows read without an rfaId carry an empty rfaId", async () => {
    const table = tables();
    const tenant = sandbox.data.partnerTenants
      .map((t) => canonical(t.tenantId))
      .find((id) => sandbox.data.tenants.get(id)?.contacts.some((c) => c.rfaId === null));
    if (!tenant) throw new Error('sandbox data: no claimed tenant with its own contact');
    await syncTenantDetails({ fpx: newFpx(), table }, { tenantId: tenant, claimed: true, rfaIds: [] });
    const contacts = await rows(table('FpxContacts'), tenant);
    expect(contacts.length).toBeGreaterThan(0);
    expect(contacts.every((r) => r.rfaId === '')).toBe(true);
  });
});

describe('one sync per tenant at a time', () => {
  test('a second sync of a tenant being synced goes back on the queue; their writes never interleave', async () => {
    const table = tables();
    const fpx = newFpx();
    const queue = queueClient(inject('storageConnection'), `lease-${randomBytes(4).toString('hex')}`);
    const tenantId = canonical(sandbox.data.partnerTenants[0]?.tenantId as string);
    const message = { tenantId, claimed: true, rfaIds: [], runId: 'run-lease' };
    const deps = (holder: string) => ({ fpx, table, leases: table(TENANT_LEASES_TABLE), queue, holder });
    // The first sync is held inside FPX until the second has tried.
    sandbox.injectFault(
      { kind: 'slow', delayMs: 1_000 },
      { path: new RegExp(`/tenants/${tenantId}/contacts`) },
    );
    const first = syncTenantDetailsExclusively(deps('first'), message);
    await waitFor('the first sync inside FPX', () =>
      sandbox.requests.some((r) => r.path.includes(`${tenantId}/services`)),
    );
    const second = await syncTenantDetailsExclusively(deps('second'), message);
    expect(second).toEqual({ deferredSeconds: expect.any(Number) });
    expect('deferredSeconds' in second && second.deferredSeconds).toBeLessThanOrEqual(5);
    const done = await first;
    expect('result' in done && done.result.contacts.status).toBe('succeeded');
    // The deferred message waits, invisible, on the queue; the lease is free again for it.
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
    const third = await syncTenantDetailsExclusively(deps('third'), message);
    expect('result' in third).toBe(true);
    await queue.delete();
  });
});
