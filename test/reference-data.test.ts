import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from 'vitest';
import { type NamedId, type ReferenceData, type Sandbox, startSandbox } from '../dev/sandbox';
import { type FpxClient, REFERENCE_LISTS, type ReferenceList } from '../lib/fpx';
import { tableClient } from '../lib/storage';
import {
  REFERENCE_DATA_STREAM,
  ReferenceDataError,
  readSyncState,
  syncReferenceData,
  TABLES,
} from '../lib/sync';
import { sandboxClient } from './support/fpx';

const LISTS = Object.keys(REFERENCE_LISTS) as ReferenceList[];
/** Attempts per GET: a fault injected this many times fails the call for good. */
const ATTEMPTS = 2;

let sandbox: Sandbox;
let fpx: FpxClient;
let original: ReferenceData;

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 2, referrals: 2, seed: 12 }, rateLimitPerMinute: 0 });
  original = structuredClone(sandbox.data.reference);
  fpx = sandboxClient(sandbox, 25, { retry: { maxAttempts: ATTEMPTS, baseDelayMs: 10, maxDelayMs: 20 } });
});
afterEach(() => {
  // Each test starts from the generated lists, served bare.
  sandbox.data.reference = structuredClone(original);
  sandbox.data.referencePaging = undefined;
});
afterAll(async () => {
  await fpx.transport.close();
  await sandbox.close();
});

/** Fresh tables per test (one Azurite for the whole run), and a log that keeps its lines. */
function deps() {
  const suffix = randomBytes(4).toString('hex');
  const made = new Map<string, TableClient>();
  const lines: string[] = [];
  return {
    fpx,
    lines,
    log: (line: string) => lines.push(line),
    table(name: string) {
      let client = made.get(name);
      if (!client) {
        client = tableClient(inject('storageConnection'), `${name}${suffix}`);
        made.set(name, client);
      }
      return client;
    },
  };
}

/** FpxReferenceData by list (PartitionKey), each row by RowKey. */
async function referenceRows(table: TableClient) {
  const byList = new Map<string, Map<string, Record<string, unknown>>>();
  for await (const row of table.listEntities<Record<string, unknown>>()) {
    const list = byList.get(row.partitionKey as string) ?? new Map();
    list.set(row.rowKey as string, row);
    byList.set(row.partitionKey as string, list);
  }
  return byList;
}

const served = (list: ReferenceList): readonly NamedId[] => sandbox.data.reference[list];

/** Every list's rows equal what the sandbox serves: RowKey String(id), `id` and `name` as sent, present. */
async function expectTableEqualsSandbox(table: TableClient) {
  const rows = await referenceRows(table);
  expect([...rows.keys()].sort()).toEqual([...LISTS].sort());
  for (const list of LISTS) {
    const partition = rows.get(list) ?? new Map();
    expect([...partition.keys()].sort(), list).toEqual(
      served(list)
        .map((item) => String(item.id))
        .sort(),
    );
    for (const item of served(list)) {
      expect(partition.get(String(item.id)), `${list} ${item.id}`).toMatchObject({
        id: item.id,
        name: item.name,
        removedAt: '',
        contentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        firstSeenAt: expect.any(String),
        lastChangedAt: expect.any(String),
      });
    }
  }
}

const total = () => LISTS.reduce((sum, list) => sum + served(list).length, 0);
const requestsTo = (path: string) => sandbox.requests.filter((r) => r.path === path);

describe('FpxClient.referenceList', () => {
  test('reads a bare array with one call, sending page and pageSize as every list does', async () => {
    sandbox.clearRequests();
    let calls = 0;
    const items = await fpx.referenceList('noteCategories', { onAttempt: () => calls++ });
    expect(items).toEqual(served('noteCategories'));
    expect(calls).toBe(1);
    expect(requestsTo('/noteCategories').map((r) => r.query)).toEqual([{ page: ['1'], pageSize: ['25'] }]);
  });

  test('reads the list envelope page by page while hasMore is true', async () => {
    sandbox.data.referencePaging = { pageSize: 2 };
    sandbox.clearRequests();
    const items = await fpx.referenceList('noteCategories');
    expect(items).toEqual(served('noteCategories'));
    // 5 categories, 2 a page: pages 1, 2 and 3.
    expect(requestsTo('/noteCategories').map((r) => r.query.page)).toEqual([['1'], ['2'], ['3']]);
  });
});

describe('syncReferenceData', () => {
  test('copies every reference list into FpxReferenceData, one FPX call a list, one state row', async () => {
    const d = deps();
    sandbox.clearRequests();
    const result = await syncReferenceData(d);

    await expectTableEqualsSandbox(d.table(TABLES.referenceData));
    expect(sandbox.requests.map((r) => r.path).sort()).toEqual(Object.values(REFERENCE_LISTS).sort());
    expect(result).toMatchObject({
      status: 'succeeded',
      seen: total(),
      created: total(),
      apiCalls: 9,
      pages: 9,
    });
    expect(await readSyncState(d.table(TABLES.syncState), REFERENCE_DATA_STREAM)).toMatchObject({
      lastStatus: 'succeeded',
      lastError: '',
      lastCompletedAt: expect.any(String),
      seen: total(),
      created: total(),
      removed: 0,
      removalsSkipped: '',
      apiCalls: 9,
      entityWrites: total(),
    });
    expect(d.lines).toHaveLength(1);
    expect(d.lines[0]).toMatch(/^sync referenceData succeeded: 9 of 9 lists; seen \d+, created \d+/);
  });

  test('an unchanged re-run writes nothing; a renamed and a dropped item are written', async () => {
    const d = deps();
    await syncReferenceData(d);
    const again = await syncReferenceData(d);
    expect(again).toMatchObject({ unchanged: total(), created: 0, changed: 0, removed: 0, entityWrites: 0 });

    const [kept, dropped, ...rest] = sandbox.data.reference.adminTypes;
    if (!kept || !dropped) throw new Error('the sandbox has too few admin types');
    sandbox.data.reference.adminTypes = [{ ...kept, name: 'Renamed' }, ...rest];
    const changed = await syncReferenceData(d);
    expect(changed).toMatchObject({ changed: 1, removed: 1, entityWrites: 2 });
    const adminTypes = (await referenceRows(d.table(TABLES.referenceData))).get('adminTypes');
    expect(adminTypes?.get(String(kept.id))).toMatchObject({ name: 'Renamed', removedAt: '' });
    expect(adminTypes?.get(String(dropped.id))?.removedAt).not.toBe('');
  });

  test('a paged /noteCategories (and every other list) is read whole', async () => {
    sandbox.data.referencePaging = { pageSize: 2 };
    const d = deps();
    sandbox.clearRequests();
    const result = await syncReferenceData(d);

    await expectTableEqualsSandbox(d.table(TABLES.referenceData));
    expect(requestsTo('/noteCategories').map((r) => r.query.page)).toEqual([['1'], ['2'], ['3']]);
    const pages = LISTS.reduce((sum, list) => sum + Math.ceil(served(list).length / 2), 0);
    expect(result).toMatchObject({ status: 'succeeded', seen: total(), pages, apiCalls: pages });
  });

  test('an empty list removes nothing, and the state row says why', async () => {
    const d = deps();
    await syncReferenceData(d);
    const categories = served('noteCategories').length;
    sandbox.data.reference.noteCategories = [];

    const result = await syncReferenceData(d);
    expect(result).toMatchObject({ status: 'succeeded', removed: 0, removalsWithheld: categories });
    const rows = (await referenceRows(d.table(TABLES.referenceData))).get('noteCategories');
    expect(rows?.size).toBe(categories);
    for (const row of rows?.values() ?? []) expect(row.removedAt).toBe('');
    expect(await readSyncState(d.table(TABLES.syncState), REFERENCE_DATA_STREAM)).toMatchObject({
      lastStatus: 'succeeded',
      removed: 0,
      removalsWithheld: categories,
      removalsSkipped: 'noteCategories: GET /noteCategories came back empty',
    });
    expect(d.lines.at(-1)).toContain('removals skipped: noteCategories: GET /noteCategories came back empty');
  });

  test('one failing list leaves the others synced, and the run fails naming it', async () => {
    const d = deps();
    sandbox.injectFault({ kind: '5xx', status: 500 }, { path: /^\/skillTypes$/ }, ATTEMPTS);

    const error = await syncReferenceData(d).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ReferenceDataError);
    expect((error as Error).message).toMatch(/^sync referenceData: skillTypes: .*500/);
    const rows = await referenceRows(d.table(TABLES.referenceData));
    expect([...rows.keys()].sort()).toEqual(LISTS.filter((list) => list !== 'skillTypes').sort());
    expect((error as ReferenceDataError).result).toMatchObject({
      status: 'failed',
      seen: total() - served('skillTypes').length,
      apiCalls: 8 + ATTEMPTS,
    });
    const state = await readSyncState(d.table(TABLES.syncState), REFERENCE_DATA_STREAM);
    expect(state).toMatchObject({
      lastStatus: 'failed',
      lastError: expect.stringMatching(/^skillTypes: .*500/),
    });
    expect(state?.lastCompletedAt).toBeUndefined();
    expect(d.lines).toHaveLength(1);
    expect(d.lines[0]).toMatch(/^sync referenceData failed: 8 of 9 lists; .*; failed: skillTypes: /);

    // The next run heals it.
    await syncReferenceData(d);
    await expectTableEqualsSandbox(d.table(TABLES.referenceData));
    expect(await readSyncState(d.table(TABLES.syncState), REFERENCE_DATA_STREAM)).toMatchObject({
      lastStatus: 'succeeded',
      lastError: '',
    });
  });
});
