import { randomBytes } from 'node:crypto';
import { odata, type TableClient } from '@azure/data-tables';
import { describe, expect, inject, test } from 'vitest';
import { tableClient } from '../lib/storage';
import {
  contentHash,
  joinColumn,
  readSyncState,
  type SyncStreamOptions,
  stableRowKey,
  syncStream,
} from '../lib/sync';

// Suites share one Azurite: every test gets its own tables.
function freshTables() {
  const connection = inject('storageConnection');
  const suffix = randomBytes(5).toString('hex');
  return {
    rows: tableClient(connection, `SyncRows${suffix}`),
    state: tableClient(connection, `SyncState${suffix}`),
  };
}

/**
 * Watches what really goes over the wire to a table, independently of the engine's own counting:
 * write requests, and the number of operations in each batch transaction.
 */
function watchWrites(client: TableClient) {
  const seen = { writes: 0, batchSizes: [] as number[] };
  client.pipeline.addPolicy(
    {
      name: 'testWriteWatcher',
      sendRequest(request, next) {
        if (request.method !== 'GET') seen.writes++;
        if (request.url.includes('$batch') && typeof request.body === 'string') {
          seen.batchSizes.push(request.body.match(/^content-type: application\/http\r?$/gim)?.length ?? 0);
        }
        return next(request);
      },
    },
    { afterPhase: 'Retry' },
  );
  return seen;
}

interface Referral extends Record<string, unknown> {
  id: string;
  created: string;
  tenantId: string;
  tenantName: string;
  tenantDomain: string | null;
  workloads: { id: number; name: string; claimed: boolean }[];
}

function referral(n: number): Referral {
  const hex = n.toString(16).padStart(12, '0');
  return {
    id: `00000000-0000-4000-8000-${hex}`,
    created: new Date(Date.UTC(2024, 0, 1) + n * 60_000).toISOString(),
    tenantId: `11111111-0000-4000-8000-${hex}`,
    tenantName: `Contoso ${n}`,
    tenantDomain: n % 7 === 0 ? null : `contoso${n}.onmicrosoft.com`,
    workloads: [
      { id: 1, name: 'Teams', claimed: n % 2 === 0 },
      { id: 2, name: 'Exchange', claimed: false },
    ],
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

async function* pagesOf<T>(items: T[], pageSize: number, failAfterPages?: number): AsyncGenerator<T[]> {
  for (let start = 0, page = 0; start < items.length; start += pageSize, page++) {
    if (page === failAfterPages) throw new Error('FPX answered 503 on page 2');
    yield items.slice(start, start + pageSize);
  }
}

async function readPartition(rows: TableClient, partitionKey: string) {
  const entities = new Map<string, Record<string, unknown>>();
  for await (const entity of rows.listEntities<Record<string, unknown>>({
    queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
  })) {
    entities.set(entity.rowKey ?? '', entity);
  }
  return entities;
}

const T1 = '2025-03-01T10:00:00.000Z';
const T2 = '2025-03-01T10:05:00.000Z';
const T3 = '2025-03-01T10:10:00.000Z';

function referralSync(
  tables: { rows: TableClient; state: TableClient },
  items: Referral[],
  at: string,
  extra: Partial<SyncStreamOptions<Referral>> = {},
) {
  return syncStream<Referral>({
    stream: 'referrals',
    partitionKey: 'referral',
    rowKey: (item) => item.id,
    pages: pagesOf(items, 50),
    now: () => new Date(at),
    ...tables,
    ...extra,
  });
}

describe('syncStream against Azurite', () => {
  test('a first sync lands rows with exact columns, in transactions of at most 100', async () => {
    const tables = freshTables();
    const items = range(0, 310).map(referral);
    const watched = watchWrites(tables.rows);
    const logs: string[] = [];
    let apiCalls = 0;
    const result = await referralSync(tables, items, T1, {
      pages: (async function* () {
        for await (const page of pagesOf(items, 25)) {
          apiCalls++;
          yield page;
        }
      })(),
      apiCalls: () => apiCalls,
      log: (line) => logs.push(line),
    });

    expect(result).toMatchObject({
      status: 'succeeded',
      seen: 310,
      created: 310,
      changed: 0,
      removed: 0,
      unchanged: 0,
      pages: 13,
      apiCalls: 13,
      entityWrites: 310,
      transactions: 4,
      largestTransaction: 100,
    });
    expect(watched.batchSizes.sort((a, b) => a - b)).toEqual([10, 100, 100, 100]);
    // Reads: the partition index; writes: the state's start row and four transactions (tables were created).
    expect(result.tableWrites).toBeGreaterThanOrEqual(5);
    expect(result.tableRequests).toBe(result.tableReads + result.tableWrites);

    const stored = await readPartition(tables.rows, 'referral');
    expect(stored.size).toBe(310);
    const row7 = stored.get(referral(7).id);
    expect(Object.keys(row7 ?? {}).sort()).toEqual(
      [
        'partitionKey',
        'rowKey',
        'etag',
        'timestamp',
        'id',
        'created',
        'tenantId',
        'tenantName',
        'tenantDomain',
        'workloads',
        'firstSeenAt',
        'lastChangedAt',
        'removedAt',
        'contentHash',
      ].sort(),
    );
    expect(row7).toMatchObject({
      partitionKey: 'referral',
      rowKey: referral(7).id,
      id: referral(7).id,
      created: referral(7).created,
      tenantName: 'Contoso 7',
      tenantDomain: '', // null is stored as the empty string
      workloads: JSON.stringify(referral(7).workloads),
      firstSeenAt: T1,
      lastChangedAt: T1,
      removedAt: '',
      contentHash: contentHash(referral(7)),
    });
    expect(stored.get(referral(8).id)?.tenantDomain).toBe('contoso8.onmicrosoft.com');

    const state = await readSyncState(tables.state, 'referrals');
    expect(state).toMatchObject({
      lastStartedAt: T1,
      lastCompletedAt: T1,
      lastStatus: 'succeeded',
      lastError: '',
      seen: 310,
      created: 310,
      changed: 0,
      removed: 0,
      apiCalls: 13,
      tableRequests: result.tableRequests,
    });
    expect(state?.durationMs).toBeTypeOf('number');

    expect(logs.filter((line) => line.includes('pages, 250 items so far'))).toHaveLength(1);
    expect(logs.at(-1)).toMatch(
      /^sync referrals succeeded: seen 310, created 310, changed 0 \(restored 0\), removed 0, .*13 API calls, \d+ table requests/,
    );
  });

  test('an unchanged re-sync (keys in another order) writes no entity at all', async () => {
    const tables = freshTables();
    const items = range(0, 200).map(referral);
    await referralSync(tables, items, T1);

    const watched = watchWrites(tables.rows);
    const reordered = items.map((item) => Object.fromEntries(Object.entries(item).reverse()) as Referral);
    const result = await referralSync(tables, reordered, T2);
    expect(result).toMatchObject({
      seen: 200,
      unchanged: 200,
      created: 0,
      changed: 0,
      removed: 0,
      entityWrites: 0,
    });
    expect(watched.writes).toBe(0);
    expect(result.transactions).toBe(0);
    // The only write of the run is the state's start row; reads: the partition index.
    expect(result.tableWrites).toBe(1);
    expect(result.tableReads).toBe(1);
    expect((await readPartition(tables.rows, 'referral')).get(referral(3).id)?.lastChangedAt).toBe(T1);
  });

  test('changes, additions and removals land exactly; a removed row that returns is restored', async () => {
    const tables = freshTables();
    await referralSync(tables, range(0, 100).map(referral), T1);

    const changed5 = { ...referral(5), tenantName: 'Contoso Renamed' };
    const second = [...range(1, 100).map(referral), referral(100)];
    second[4] = changed5;
    const result2 = await referralSync(tables, second, T2);
    expect(result2).toMatchObject({
      seen: 100,
      created: 1,
      changed: 1,
      removed: 1,
      unchanged: 98,
      entityWrites: 3,
    });

    let stored = await readPartition(tables.rows, 'referral');
    expect(stored.get(referral(0).id)).toMatchObject({
      tenantName: 'Contoso 0', // data kept
      removedAt: T2,
      lastChangedAt: T2,
      firstSeenAt: T1,
      contentHash: contentHash(referral(0)),
    });
    expect(stored.get(referral(5).id)).toMatchObject({
      tenantName: 'Contoso Renamed',
      firstSeenAt: T1,
      lastChangedAt: T2,
      removedAt: '',
      contentHash: contentHash(changed5),
    });
    expect(stored.get(referral(100).id)).toMatchObject({ firstSeenAt: T2, lastChangedAt: T2, removedAt: '' });
    expect(stored.get(referral(6).id)).toMatchObject({ firstSeenAt: T1, lastChangedAt: T1, removedAt: '' });

    // Still missing: already removed, not stamped again.
    const again = await referralSync(tables, second, T3);
    expect(again).toMatchObject({ removed: 0, unchanged: 100, entityWrites: 0 });

    const result3 = await referralSync(tables, [referral(0), ...second], T3);
    expect(result3).toMatchObject({
      seen: 101,
      created: 0,
      changed: 1,
      restored: 1,
      removed: 0,
      entityWrites: 1,
    });
    stored = await readPartition(tables.rows, 'referral');
    expect(stored.get(referral(0).id)).toMatchObject({
      tenantName: 'Contoso 0',
      removedAt: '',
      firstSeenAt: T1,
      lastChangedAt: T3,
    });
  });

  test('a listing that throws midway marks nothing removed, records the failure and rethrows', async () => {
    const tables = freshTables();
    const items = range(0, 100).map(referral);
    await referralSync(tables, items, T1);

    const partial = [
      { ...referral(3), tenantName: 'Changed before failing' },
      referral(200),
      ...items.slice(4),
    ];
    const logs: string[] = [];
    await expect(
      referralSync(tables, partial, T2, { pages: pagesOf(partial, 25, 2), log: (line) => logs.push(line) }),
    ).rejects.toThrow('FPX answered 503 on page 2');

    const stored = await readPartition(tables.rows, 'referral');
    expect([...stored.values()].filter((row) => row.removedAt !== '')).toEqual([]);
    expect(stored.get(referral(3).id)?.tenantName).toBe('Changed before failing'); // written before the failure
    expect(stored.get(referral(200).id)?.firstSeenAt).toBe(T2);
    expect(await readSyncState(tables.state, 'referrals')).toMatchObject({
      lastStartedAt: T2,
      lastCompletedAt: T1,
      lastStatus: 'failed',
      lastError: 'Error: FPX answered 503 on page 2',
      removed: 0,
      created: 1,
      changed: 1,
    });
    expect(logs.at(-1)).toMatch(/^sync referrals failed: .*error: Error: FPX answered 503 on page 2$/);

    const next = await referralSync(tables, items, T3);
    expect(next).toMatchObject({ status: 'succeeded', removed: 1, changed: 1, created: 0 });
    expect(await readSyncState(tables.state, 'referrals')).toMatchObject({
      lastStatus: 'succeeded',
      lastError: '',
      lastCompletedAt: T3,
    });
  });

  test('removal is scoped to the partition the listing covers', async () => {
    const tables = freshTables();
    const contact = (n: number) => ({ contactId: `c${n}`, name: `Person ${n}` });
    const syncTenant = (tenantId: string, contacts: { contactId: string; name: string }[], at: string) =>
      syncStream({
        ...tables,
        stream: `contacts-${tenantId}`,
        partitionKey: tenantId,
        rowKey: (item) => item.contactId,
        pages: pagesOf(contacts, 10),
        now: () => new Date(at),
      });
    const tenantA = 'aaaaaaaa-0000-4000-8000-000000000001';
    const tenantB = 'bbbbbbbb-0000-4000-8000-000000000002';
    await syncTenant(tenantA, range(0, 30).map(contact), T1);
    await syncTenant(tenantB, range(0, 20).map(contact), T1);

    const result = await syncTenant(tenantA, range(0, 5).map(contact), T2);
    expect(result).toMatchObject({ removed: 25, unchanged: 5 });
    const rowsA = await readPartition(tables.rows, tenantA);
    const rowsB = await readPartition(tables.rows, tenantB);
    expect([...rowsA.values()].filter((row) => row.removedAt === T2)).toHaveLength(25);
    expect([...rowsB.values()].every((row) => row.removedAt === '' && row.lastChangedAt === T1)).toBe(true);
    expect(rowsB.size).toBe(20);

    // Concurrent runs on the same clients keep their own request counts.
    const [againA, againB] = await Promise.all([
      syncTenant(tenantA, range(0, 5).map(contact), T3),
      syncTenant(tenantB, range(0, 20).map(contact), T3),
    ]);
    for (const again of [againA, againB]) {
      expect(again).toMatchObject({ entityWrites: 0, tableReads: 1, tableWrites: 1, tableRequests: 2 });
    }
  });

  test('an item repeated in one listing is written once (no transaction with two writes of one row)', async () => {
    const tables = freshTables();
    const items = [referral(1), referral(2), { ...referral(1), tenantName: 'Later copy' }, referral(3)];
    const result = await referralSync(tables, items, T1);
    expect(result).toMatchObject({ seen: 3, created: 3, duplicates: 1 });
    expect((await readPartition(tables.rows, 'referral')).get(referral(1).id)?.tenantName).toBe('Contoso 1');
  });

  test('notes longer than one column round-trip; beyond the entity limit they are cut and flagged', async () => {
    const tables = freshTables();
    const tenantId = 'cccccccc-0000-4000-8000-000000000003';
    // An emoji straddles the 32,000 boundary: a surrogate pair must not be torn apart.
    const longText = `${'a'.repeat(31_999)}😀${'b'.repeat(38_000)}`;
    const hugeText = 'x'.repeat(1_048_576);
    const notes = [
      {
        created: '2025-02-01T00:00:00Z',
        author: 'Ann',
        text: longText,
        noteCategory: { id: 1, name: 'General' },
      },
      {
        created: '2025-02-02T00:00:00Z',
        author: 'Bob',
        text: hugeText,
        noteCategory: { id: 1, name: 'General' },
      },
      { created: '2025-02-03T00:00:00Z', author: 'Cy', text: 'short', noteCategory: null },
    ];
    const sync = (at: string) =>
      syncStream({
        ...tables,
        stream: `notes-${tenantId}`,
        partitionKey: tenantId,
        rowKey: (note) => stableRowKey(note.created, note.author, note.text),
        pages: pagesOf(notes, 25),
        now: () => new Date(at),
      });
    expect(await sync(T1)).toMatchObject({ created: 3 });

    const stored = await readPartition(tables.rows, tenantId);
    const [long, huge, short] = notes.map((note) =>
      stored.get(stableRowKey(note.created, note.author, note.text)),
    );
    expect(joinColumn(long ?? {}, 'text')).toBe(longText);
    expect(long?.text_2).toBeTypeOf('string');
    expect(long?.text_3).toBeUndefined();
    expect(long?.text_truncated).toBeUndefined();
    expect(long?.noteCategory).toBe('{"id":1,"name":"General"}');

    const hugeStored = joinColumn(huge ?? {}, 'text') ?? '';
    expect(huge).toMatchObject({
      text_truncated: true,
      text_length: 1_048_576,
      contentHash: contentHash(notes[1]),
    });
    expect(hugeStored.length).toBeGreaterThan(450_000);
    expect(hugeText.startsWith(hugeStored)).toBe(true);
    expect(short).toMatchObject({ text: 'short', noteCategory: '' });

    // Hashes come from the items, not from what was stored, so the cut note is not rewritten.
    expect(await sync(T2)).toMatchObject({ unchanged: 3, entityWrites: 0 });
  });

  test('an invalid row key fails the run, naming the stream and the item, and removes nothing', async () => {
    const tables = freshTables();
    await referralSync(tables, range(0, 40).map(referral), T1);
    for (const [badId, problem] of [
      ['', 'it is empty'],
      ['a/b', 'it contains the forbidden character "/"'],
    ]) {
      const items = range(0, 40).map(referral);
      items[27] = { ...referral(27), id: badId ?? '' };
      await expect(referralSync(tables, items.slice(0, 30), T2)).rejects.toThrow(
        `sync referrals: item 27 has an invalid row key: ${problem}`,
      );
      const stored = await readPartition(tables.rows, 'referral');
      expect([...stored.values()].filter((row) => row.removedAt !== '')).toEqual([]);
      expect((await readSyncState(tables.state, 'referrals'))?.lastStatus).toBe('failed');
    }
  });
});
