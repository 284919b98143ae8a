import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from 'vitest';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { FileCertificateSource } from '../lib/cert';
import { FpxClient, FpxTransport } from '../lib/fpx';
import { tableClient } from '../lib/storage';
import { readSyncState, type StreamDeps, syncReferrals, syncTenants } from '../lib/sync';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const REFERRALS = 260;
const TENANTS = 53;

let sandbox: Sandbox;
let transport: FpxTransport;

beforeAll(async () => {
  sandbox = await startSandbox({
    data: { tenants: TENANTS, referrals: REFERRALS, seed: 11 },
    rateLimitPerMinute: 0,
  });
  transport = new FpxTransport({
    baseUrl: sandbox.url,
    certificates: new FileCertificateSource(sandbox.certs.client.pemPath),
    caPem: sandbox.certs.ca.certPem,
    rateLimitPerMinute: 60_000,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  });
});
afterAll(async () => {
  await transport.close();
  await sandbox.close();
});
afterEach(() => sandbox.setOutage(false));

/** Each test its own tables (one Azurite for the whole run), counting write requests on the wire. */
function deps(pageSize = 25) {
  const suffix = randomBytes(4).toString('hex');
  const tables = new Map<string, TableClient>();
  const writes = { count: 0 };
  const table = (name: string) => {
    let client = tables.get(name);
    if (!client) {
      client = tableClient(inject('storageConnection'), `${name}${suffix}`);
      // The run's own records (state, history) are not data writes.
      if (name !== 'FpxSyncState' && name !== 'FpxSyncRuns') {
        client.pipeline.addPolicy(
          {
            name: 'countWrites',
            sendRequest(request, next) {
              if (request.method !== 'GET') writes.count++;
              return next(request);
            },
          },
          { afterPhase: 'Retry' },
        );
      }
      tables.set(name, client);
    }
    return client;
  };
  const lines: string[] = [];
  const streamDeps: StreamDeps = {
    fpx: new FpxClient(transport, pageSize),
    table,
    log: (l) => lines.push(l),
  };
  return { ...streamDeps, writes, lines };
}

async function rows(table: TableClient) {
  const all: Record<string, unknown>[] = [];
  for await (const row of table.listEntities()) all.push(row);
  return new Map(all.map((r) => [String(r.rowKey), r]));
}

describe('pollReferrals sync', () => {
  test('first sync lands every referral in the contract schema; an unchanged re-sync writes nothing', async () => {
    const d = deps(25);
    const first = await syncReferrals(d);
    expect(first).toMatchObject({ status: 'succeeded', seen: REFERRALS, created: REFERRALS, removed: 0 });
    expect(first.apiCalls).toBe(Math.ceil(REFERRALS / 25));
    // ⌈N/100⌉ batch transactions plus the table creation.
    expect(first.transactions).toBe(Math.ceil(REFERRALS / 100));

    const table = d.table('FpxReferrals');
    const stored = await rows(table);
    expect(stored.size).toBe(REFERRALS);
    const source = sandbox.data.referrals[0];
    const row = stored.get(String(source?.id));
    expect(row).toMatchObject({
      partitionKey: 'referral',
      rowKey: String(source?.id),
      id: String(source?.id),
      created: source?.created,
      tenantName: source?.tenantName,
      removedAt: '',
    });
    expect(JSON.parse(String(row?.workloads))).toEqual(source?.workloads);
    expect(row?.firstSeenAt).toBe(row?.lastChangedAt);
    expect(String(row?.contentHash)).toMatch(/^[0-9a-f]{64}$/);
    expect(d.lines.at(-1)).toMatch(/referrals/);

    const writesBefore = d.writes.count;
    const again = await syncReferrals(d);
    expect(again).toMatchObject({ status: 'succeeded', seen: REFERRALS, created: 0, changed: 0, removed: 0 });
    expect(again.entityWrites).toBe(0);
    expect(d.writes.count - writesBefore).toBe(0);

    const state = await readSyncState(d.table('FpxSyncState'), 'referrals');
    expect(state).toMatchObject({
      lastStatus: 'succeeded',
      seen: REFERRALS,
      created: 0,
      changed: 0,
      removed: 0,
    });
    expect(state?.apiCalls).toBe(Math.ceil(REFERRALS / 25));
  });

  test('quirky referrals are stored normalised: tenant ids lowercase with dashes, nulls, extra fields', async () => {
    const d = deps(50);
    await syncReferrals(d);
    const stored = await rows(d.table('FpxReferrals'));
    expect([...stored.values()].every((r) => GUID.test(String(r.tenantId)))).toBe(true);
    const upper = sandbox.data.referrals[1]; // i % 6 === 1: UPPERCASE tenant id in FPX's answer
    expect(upper?.tenantId).not.toMatch(GUID);
    expect(stored.get(String(upper?.id))?.tenantId).toBe(
      String(upper?.tenantId)
        .toLowerCase()
        .replace(/^(.{8})-?(.{4})-?(.{4})-?(.{4})-?(.{12})$/, '$1-$2-$3-$4-$5'),
    );
    expect(stored.get(String(sandbox.data.referrals[7]?.id))?.tenantDomain).toBe(''); // FPX's null
    expect(stored.get(String(sandbox.data.referrals[4]?.id))?.referralSource).toBe('FastTrack Center');
  });

  test('changes, removals and additions land exactly; a referral that comes back is restored', async () => {
    const d = deps(25);
    await syncReferrals(d);
    const referrals = sandbox.data.referrals;
    const saved = referrals.slice();
    try {
      const changed = referrals[10];
      if (!changed) throw new Error('no referral 10');
      referrals[10] = { ...changed, tenantName: 'Renamed Tenant' };
      const [removedA] = referrals.splice(20, 1);
      const [removedB] = referrals.splice(40, 1);
      referrals.push({ ...changed, id: 9_000_001, tenantName: 'Brand New' });

      const run = await syncReferrals(d);
      expect(run).toMatchObject({ created: 1, changed: 1, removed: 2, restored: 0, seen: REFERRALS - 1 });
      expect(run.entityWrites).toBe(4);
      let stored = await rows(d.table('FpxReferrals'));
      expect(stored.get(String(changed.id))?.tenantName).toBe('Renamed Tenant');
      expect(stored.get('9000001')?.tenantName).toBe('Brand New');
      const gone = stored.get(String(removedA?.id));
      expect(gone?.removedAt).not.toBe('');
      expect(gone?.tenantName).toBe(removedA?.tenantName); // data kept
      expect(stored.get(String(removedB?.id))?.removedAt).not.toBe('');

      if (removedA) referrals.push(removedA);
      const back = await syncReferrals(d);
      expect(back).toMatchObject({ created: 0, changed: 1, restored: 1, removed: 0 });
      stored = await rows(d.table('FpxReferrals'));
      expect(stored.get(String(removedA?.id))?.removedAt).toBe('');
      expect(stored.get(String(removedB?.id))?.removedAt).not.toBe('');
    } finally {
      referrals.splice(0, referrals.length, ...saved);
    }
  });

  test('a run that fails in the middle of the listing marks nothing removed and records the failure', async () => {
    const d = deps(25);
    await syncReferrals(d);
    const referrals = sandbox.data.referrals;
    const saved = referrals.slice();
    try {
      referrals.splice(0, 5); // gone from FPX: a complete listing would mark these removed
      // The guide's own broken sample: a tenant id that is no GUID, on page 6 of 11.
      const broken = referrals[130];
      if (!broken) throw new Error('no referral 130');
      referrals[130] = { ...broken, tenantId: 'Dummy Tenant 3' };

      await expect(syncReferrals(d)).rejects.toThrow(/GET \/partnerReferrals.*items\.5\.tenantId/);
      const stored = await rows(d.table('FpxReferrals'));
      expect([...stored.values()].filter((r) => r.removedAt !== '')).toHaveLength(0);
      const state = await readSyncState(d.table('FpxSyncState'), 'referrals');
      expect(state).toMatchObject({ lastStatus: 'failed' });
      expect(state?.lastError).toMatch(/tenantId/);

      referrals[130] = broken;
      const next = await syncReferrals(d);
      expect(next).toMatchObject({ status: 'succeeded', removed: 5 });
      expect(await readSyncState(d.table('FpxSyncState'), 'referrals')).toMatchObject({
        lastStatus: 'succeeded',
      });
    } finally {
      referrals.splice(0, referrals.length, ...saved);
    }
  });

  test('an FPX outage fails the run after the retries and records it', async () => {
    const d = deps(25);
    sandbox.setOutage(true);
    await expect(syncReferrals(d)).rejects.toMatchObject({ status: 503 });
    const state = await readSyncState(d.table('FpxSyncState'), 'referrals');
    expect(state).toMatchObject({ lastStatus: 'failed' });
    expect(state?.lastError).toMatch(/503/);
  });
});

describe('pollTenants sync', () => {
  test('follows hasMore on partnerTenants and stores tenants keyed by normalised tenant id', async () => {
    const d = deps(10);
    const run = await syncTenants(d);
    expect(run).toMatchObject({ status: 'succeeded', seen: TENANTS, created: TENANTS });
    expect(run.apiCalls).toBe(Math.ceil(TENANTS / 10));
    const stored = await rows(d.table('FpxTenants'));
    expect(stored.size).toBe(TENANTS);
    for (const [key, row] of stored) {
      expect(key).toMatch(GUID);
      expect(row).toMatchObject({ partitionKey: 'tenant', tenantId: key });
      expect(Array.isArray(JSON.parse(String(row.claimedWorkloads)))).toBe(true);
    }
    expect((await syncTenants(d)).entityWrites).toBe(0);
  });
});
