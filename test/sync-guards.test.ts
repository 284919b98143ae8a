import type { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import type { FpxClient } from '../lib/fpx';
import { CHECKPOINTS_TABLE, readSyncState, syncReferrals, syncStream } from '../lib/sync';
import { sandboxClient } from './support/fpx';
import { freshTables, partitionRows } from './support/storage';

/** Removal guards (issue 14 #3) and listings that continue across invocations (issue 13). */

const item = (n: number) => ({ id: `item-${String(n).padStart(3, '0')}`, n });
const items = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => item(from + i));

function run(table: (name: string) => TableClient, list: { id: string }[], extra = {}) {
  return syncStream({
    stream: 'guarded',
    rows: table('Rows'),
    state: table('FpxSyncState'),
    partitionKey: 'p',
    rowKey: (row: { id: string }) => row.id,
    pages: (async function* () {
      yield list;
    })(),
    ...extra,
  });
}

describe('removal guards', () => {
  test("a complete listing whose item count disagrees with FPX's count removes nothing, and says why", async () => {
    const table = freshTables();
    await run(table, items(0, 30));
    const result = await run(table, items(0, 25), { expectedCount: () => 30 });
    expect(result).toMatchObject({ removed: 0, removalsWithheld: 5 });
    expect(result.removalsSkipped).toBe("the listing delivered 25 items but FPX's count says 30");
    expect((await partitionRows(table('Rows'), 'p')).every((row) => row.removedAt === '')).toBe(true);
    expect(await readSyncState(table('FpxSyncState'), 'guarded')).toMatchObject({
      lastStatus: 'succeeded',
      removalsSkipped: result.removalsSkipped,
      removalsWithheld: 5,
    });
    // The count agrees: the same removals go through.
    expect(await run(table, items(0, 25), { expectedCount: () => 25 })).toMatchObject({ removed: 5 });
  });

  test('a run that would remove more than SYNC_MAX_REMOVED_PERCENT of the rows removes nothing; 100 turns it off', async () => {
    const table = freshTables();
    const logs: string[] = [];
    await run(table, items(0, 100));
    const guarded = await run(table, items(0, 70), {
      maxRemovedPercent: 20,
      log: (line: string) => logs.push(line),
    });
    expect(guarded).toMatchObject({ removed: 0, removalsWithheld: 30 });
    expect(guarded.removalsSkipped).toMatch(
      /30 of 100 rows removed, more than SYNC_MAX_REMOVED_PERCENT \(20%\)/,
    );
    expect(logs.at(-1)).toMatch(/removals skipped: it would mark 30 of 100/);
    // Within the share, or a handful in a small partition, removals go through.
    expect(await run(table, items(0, 85), { maxRemovedPercent: 20 })).toMatchObject({ removed: 15 });
    const off = await run(table, items(0, 10), { maxRemovedPercent: 100 });
    expect(off).toMatchObject({ removed: 75, removalsSkipped: '' });
  });
});

describe('a listing longer than one invocation', () => {
  let sandbox: Sandbox;
  let fpx: FpxClient;
  beforeAll(async () => {
    sandbox = await startSandbox({ data: { tenants: 2, referrals: 10, seed: 3 }, rateLimitPerMinute: 0 });
    fpx = sandboxClient(sandbox, 4);
  });
  afterAll(async () => {
    await fpx.transport.close();
    await sandbox.close();
  });

  test('continues where it stopped, and marks removals only once complete across invocations', async () => {
    const table = freshTables();
    await syncReferrals({ fpx, table });
    const rowsNow = async () => partitionRows(table('FpxReferrals'), 'referral');
    expect(await rowsNow()).toHaveLength(10);

    // FPX drops the first referral; each invocation may read one page only (no time left after it).
    const dropped = sandbox.data.referrals.shift();
    if (!dropped) throw new Error('no referral');
    try {
      const parts = [];
      for (let i = 0; i < 3; i++) parts.push(await syncReferrals({ fpx, table, listingTimeBudgetMs: 0 }));
      expect(parts.map((p) => p.status)).toEqual(['partial', 'partial', 'succeeded']);
      // 9 referrals at 4 a page: pages 1, 2 and 3, one per invocation.
      expect(parts.map((p) => p.items)).toEqual([4, 4, 1]);
      expect(parts.map((p) => p.removed)).toEqual([0, 0, 1]);
      const removed = (await rowsNow()).filter((row) => row.removedAt !== '');
      expect(removed.map((row) => row.rowKey)).toEqual([String(dropped.id)]);

      const state = await readSyncState(table('FpxSyncState'), 'referrals');
      expect(state).toMatchObject({ lastStatus: 'succeeded', resumePage: 0 });
      // The parts' keys are gone with the complete listing.
      expect(await partitionRows(table(CHECKPOINTS_TABLE), 'referrals')).toHaveLength(0);
    } finally {
      sandbox.data.referrals.unshift(dropped);
    }
  });

  test('a partial part records where the next one goes on, and the keys it saw', async () => {
    const table = freshTables();
    const first = await syncReferrals({ fpx, table, listingTimeBudgetMs: 0 });
    expect(first).toMatchObject({ status: 'partial', items: 4, removed: 0 });
    expect(await readSyncState(table('FpxSyncState'), 'referrals')).toMatchObject({
      lastStatus: 'partial',
      resumePage: 2,
      resumeItems: 4,
      resumeParts: 1,
    });
    const keyRows = await partitionRows(table(CHECKPOINTS_TABLE), 'referrals');
    expect(keyRows.flatMap((row) => JSON.parse(String(row.keys))).sort()).toEqual(
      sandbox.data.referrals
        .slice(0, 4)
        .map((r) => String(r.id))
        .sort(),
    );
  });
});
