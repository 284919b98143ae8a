import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { DEFAULT_ENTRY, type RunningHost, startHost } from '../dev/host/host';
import { memoryLogger } from '../dev/host/logger';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
import { SCHEDULE_DEFAULTS } from '../lib/config';
import { type FpxClient, normalizeGuid } from '../lib/fpx';
import { queueClient, tableClient } from '../lib/storage';
import {
  fanOutTenantDetails,
  readDetailsState,
  syncReferrals,
  syncTenantDetails,
  syncTenants,
  TENANT_DETAILS_QUEUE,
} from '../lib/sync';
import { sandboxClient } from './support/fpx';
import { freshTables, partitionRows } from './support/storage';
import { waitFor } from './support/wait';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let sandbox: Sandbox;
let fpx: FpxClient;

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 6, referrals: 10, seed: 5 }, rateLimitPerMinute: 0 });
  fpx = sandboxClient(sandbox, 3, { retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
});
afterAll(async () => {
  await fpx.transport.close();
  await sandbox.close();
});

const tables = freshTables;
const rows = partitionRows;

const canonical = (id: string) => normalizeGuid(id) as string;

describe('fan-out', () => {
  test('one message per tenant, claimed and referred, each once per run, base64 JSON', async () => {
    const table = tables();
    await syncTenants({ fpx, table });
    await syncReferrals({ fpx, table });
    const queue = queueClient(inject('storageConnection'), `details-${randomBytes(4).toString('hex')}`);
    const fanOut = await fanOutTenantDetails({ table, queue }, 'run-1');

    const claimed = new Set(sandbox.data.partnerTenants.map((t) => canonical(t.tenantId)));
    const referred = new Map<string, string[]>();
    for (const r of sandbox.data.referrals) {
      const id = canonical(r.tenantId);
      referred.set(id, [...(referred.get(id) ?? []), String(r.id)]);
    }
    const expected = new Set([...claimed, ...referred.keys()]);
    expect(fanOut).toMatchObject({ enqueued: expected.size, claimed: claimed.size, runId: 'run-1' });

    const messages: Array<{ tenantId: string; claimed: boolean; rfaIds: string[]; runId: string }> = [];
    for (;;) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      if (receivedMessageItems.length === 0) break;
      for (const m of receivedMessageItems) {
        messages.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
        expect(m.messageText.length).toBeLessThan(2_048);
      }
    }
    expect(messages).toHaveLength(expected.size);
    expect(new Set(messages.map((m) => m.tenantId))).toEqual(expected);
    for (const m of messages) {
      expect(m.claimed).toBe(claimed.has(m.tenantId));
      expect(m.rfaIds.sort()).toEqual((referred.get(m.tenantId) ?? []).sort());
      expect(m.runId).toBe('run-1');
    }
    await queue.delete();
  });
});

describe('syncTenantDetails', () => {
  test('details land in the three tables, normalised; an unchanged re-run writes nothing', async () => {
    const table = tables();
    const tenant =
      sandbox.data.partnerTenants.find((t) => !GUID.test(t.tenantId)) ?? sandbox.data.partnerTenants[1];
    if (!tenant) throw new Error('no tenant');
    const tenantId = canonical(tenant.tenantId);
    const details = sandbox.data.tenants.get(tenantId);
    if (!details) throw new Error('no details');
    const referrals = sandbox.data.referrals
      .filter((r) => canonical(r.tenantId) === tenantId)
      .map((r) => String(r.id));

    const first = await syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: referrals });
    const records = [...details.entitlements.values()].flatMap((s) => s.records);
    expect(first.entitlements).toMatchObject({ status: 'succeeded', created: records.length });
    expect(first.contacts.created).toBe(new Set(details.contacts.map((c) => c.contact.contactId)).size);
    expect(first.notes.created).toBe(details.notes.length);

    const entitlementRows = await rows(table('FpxEntitlements'), tenantId);
    expect(entitlementRows.map((r) => r.rowKey).sort()).toEqual(
      records.map((r) => canonical(r.serviceIntentId)).sort(),
    );
    const contactRows = await rows(table('FpxContacts'), tenantId);
    expect(contactRows.every((r) => GUID.test(String(r.rowKey)))).toBe(true);
    expect(contactRows.every((r) => r.tenantId === '' || r.tenantId === tenantId)).toBe(true);
    const noteRows = await rows(table('FpxNotes'), tenantId);
    expect(noteRows).toHaveLength(details.notes.length);
    for (const row of noteRows) {
      expect(row.rowKey).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.parse(String(row.noteCategory))).toHaveProperty('id');
      expect(row).toHaveProperty('text');
      expect(row).toHaveProperty('created');
    }

    const again = await syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: referrals });
    expect(
      (again.entitlements?.entityWrites ?? 0) + again.contacts.entityWrites + again.notes.entityWrites,
    ).toBe(0);
  });

  test('a note or contact removed in FPX is marked removed for that tenant only', async () => {
    const table = tables();
    const withData = sandbox.data.partnerTenants
      .map((t) => canonical(t.tenantId))
      .filter((id) => {
        const d = sandbox.data.tenants.get(id);
        return d?.contacts.some((c) => c.rfaId === null) && d.notes.some((n) => n.rfaId === null);
      });
    const [a, b] = withData;
    if (!a || !b) throw new Error('sandbox data: need two tenants with contacts and notes');
    await syncTenantDetails({ fpx, table }, { tenantId: a, claimed: true, rfaIds: [] });
    await syncTenantDetails({ fpx, table }, { tenantId: b, claimed: true, rfaIds: [] });

    const details = sandbox.data.tenants.get(a);
    if (!details) throw new Error('no details');
    const contactIndex = details.contacts.findIndex((c) => c.rfaId === null);
    const noteIndex = details.notes.findIndex((n) => n.rfaId === null);
    const [contact] = details.contacts.splice(contactIndex, 1);
    const [note] = details.notes.splice(noteIndex, 1);
    try {
      const runA = await syncTenantDetails({ fpx, table }, { tenantId: a, claimed: true, rfaIds: [] });
      const runB = await syncTenantDetails({ fpx, table }, { tenantId: b, claimed: true, rfaIds: [] });
      expect(runA.contacts.removed).toBe(1);
      expect(runA.notes.removed).toBe(1);
      expect(runB.contacts.removed + runB.notes.removed).toBe(0);
      const removedContacts = (await rows(table('FpxContacts'), a)).filter((r) => r.removedAt !== '');
      expect(removedContacts.map((r) => r.rowKey)).toEqual([canonical(String(contact?.contact.contactId))]);
      const removedNotes = (await rows(table('FpxNotes'), a)).filter((r) => r.removedAt !== '');
      expect(removedNotes.map((r) => r.text)).toEqual([note?.note.text]);
      expect((await rows(table('FpxContacts'), b)).every((r) => r.removedAt === '')).toBe(true);
    } finally {
      if (contact) details.contacts.splice(contactIndex, 0, contact);
      if (note) details.notes.splice(noteIndex, 0, note);
    }
  });

  test('a referred-only tenant whose entitlements FPX refuses: that listing is skipped, no record is marked removed', async () => {
    const table = tables();
    const withRecords = [...sandbox.data.tenants.entries()].find(([, d]) =>
      [...d.entitlements.values()].some((s) => s.records.length > 0),
    );
    if (!withRecords) throw new Error('sandbox data: need a tenant with entitlement records');
    const [tenantId, details] = withRecords;
    const recordCount = [...details.entitlements.values()].flatMap((s) => s.records).length;
    const rfaIds = details.contacts.flatMap((c) => (c.rfaId === null ? [] : [String(c.rfaId)]));
    await syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: [] });

    const entitlementsPath = /\/services\/entitlements$/;
    const refusals = () =>
      sandbox.requests.filter((r) => r.fault === 'refused' && entitlementsPath.test(r.path)).length;
    const before = refusals();
    // A 403 is final: no certificate refresh, no second request.
    sandbox.injectFault({ kind: 'refused', status: 403 }, { method: 'GET', path: entitlementsPath });
    const referredOnly = await syncTenantDetails({ fpx, table }, { tenantId, claimed: false, rfaIds });
    expect(refusals() - before).toBe(1);
    expect(referredOnly.entitlements).toBeUndefined();
    expect(referredOnly.contacts.status).toBe('succeeded');
    expect(referredOnly.notes.status).toBe('succeeded');
    const kept = await rows(table('FpxEntitlements'), tenantId);
    expect(kept).toHaveLength(recordCount);
    expect(kept.every((r) => r.removedAt === '')).toBe(true);

    // A claimed tenant has no such excuse: the refusal fails the run (and still removes nothing).
    sandbox.injectFault({ kind: 'refused', status: 404 }, { method: 'GET', path: entitlementsPath });
    await expect(
      syncTenantDetails({ fpx, table }, { tenantId, claimed: true, rfaIds: [] }),
    ).rejects.toMatchObject({ status: 404 });
    expect((await rows(table('FpxEntitlements'), tenantId)).every((r) => r.removedAt === '')).toBe(true);
  });
});

describe('through the local host and the real queue', () => {
  let host: RunningHost;
  let settings: Record<string, string>;

  // The real entry polls the contract's queues: an account of its own keeps it apart from other suites' hosts.
  beforeAll(async () => {
    settings = {
      AzureWebJobsStorage: inject('storageAccounts').details,
      ...sandboxSettings(sandbox),
      FPX_PAGE_SIZE: '4',
      FPX_RATE_LIMIT_PER_MINUTE: '60000',
    };
    await queueClient(settings.AzureWebJobsStorage as string, TENANT_DETAILS_QUEUE).createIfNotExists();
    host = await startHost({
      entry: DEFAULT_ENTRY,
      port: 0,
      settings: { ...SCHEDULE_DEFAULTS, ...settings },
      timers: false,
      queuePollIntervalMs: { min: 20, max: 200 },
      visibilityTimeoutSeconds: 0,
      logger: memoryLogger(),
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('pollTenants fans out; every tenant is synced; a failing tenant lands in poison without stopping the others', async () => {
    const broken = sandbox.data.partnerTenants[2];
    if (!broken) throw new Error('no tenant 2');
    const brokenId = canonical(broken.tenantId);
    const saved = sandbox.data.tenants.get(brokenId);
    sandbox.data.tenants.delete(brokenId); // FPX answers 404 for everything about this tenant
    try {
      // The referrals first (the fan-out reads them), and the tenants they queued synced before the fan-out
      // queues the same tenants again: a message whose tenant is being synced would come back 5 s later
      // (details-conformance.test.ts tests that).
      expect((await host.invoke('pollReferrals')).outcome).toBe('Succeeded');
      const queue = queueClient(settings.AzureWebJobsStorage as string, TENANT_DETAILS_QUEUE);
      await waitFor(
        "the referrals' tenants synced",
        async () => (await queue.getProperties()).approximateMessagesCount === 0,
      );
      const poll = await host.invoke('pollTenants');
      expect(poll.outcome).toBe('Succeeded');
      const { fanOut } = poll.result as { fanOut: { enqueued: number; runId: string } };

      const state = tableClient(settings.AzureWebJobsStorage as string, 'FpxSyncState');
      const details = await waitFor(
        'every tenant of the fan-out',
        async () => {
          const row = await readDetailsState(state);
          const done = Number(row?.tenantsSucceeded ?? 0) + Number(row?.tenantsFailed ?? 0);
          return row?.runId === fanOut.runId && done >= fanOut.enqueued && row;
        },
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      expect(details).toMatchObject({
        tenantsSucceeded: fanOut.enqueued - 1,
        tenantsFailed: 1,
        lastStatus: 'failed',
      });
      expect(JSON.parse(String(details.failedTenants)).map((f: { tenantId: string }) => f.tenantId)).toEqual([
        brokenId,
      ]);

      // Its last attempt is on record before the host moves the message to the poison queue.
      const poison = queueClient(settings.AzureWebJobsStorage as string, `${TENANT_DETAILS_QUEUE}-poison`);
      const poisoned = await waitFor('the failed tenant in the poison queue', async () => {
        const peeked = await poison.peekMessages({ numberOfMessages: 32 }).catch(() => undefined);
        const ofRun = (peeked?.peekedMessageItems ?? [])
          .map(
            (m) =>
              JSON.parse(Buffer.from(m.messageText, 'base64').toString()) as {
                runId?: string;
                tenantId?: string;
              },
          )
          .filter((m) => m.runId === fanOut.runId);
        return ofRun.length > 0 && ofRun;
      });
      expect(poisoned.map((m) => m.tenantId)).toEqual([brokenId]);

      const other = canonical(String(sandbox.data.partnerTenants[0]?.tenantId));
      const contacts = await rows(tableClient(settings.AzureWebJobsStorage as string, 'FpxContacts'), other);
      const expected = new Set(
        sandbox.data.tenants.get(other)?.contacts.map((c) => canonical(c.contact.contactId)),
      );
      expect(new Set(contacts.map((r) => r.rowKey))).toEqual(expected);
    } finally {
      if (saved) sandbox.data.tenants.set(brokenId, saved);
    }
  }, 90_000);
});
