/** The tenant-details fan-out's completion as pure functions: the tenants' rows summed into the `details` row. */
import { describe, expect, test } from 'vitest';
import {
  completeRun,
  countsToward,
  type DetailsRow,
  newDetailsRow,
  type TenantRunRow,
  tenantRunRow,
} from '../../lib/sync/details-state';
import type { SyncResult } from '../../lib/sync/sync-state';

const STARTED = new Date(Date.UTC(2026, 0, 1, 2));
const NOW = new Date(Date.UTC(2026, 0, 1, 3));

function details(overrides: Partial<DetailsRow> = {}): DetailsRow {
  const fanOut = {
    runId: 'run-2',
    enqueued: 3,
    claimed: 3,
    referralOnly: 0,
    departedTenants: 1,
    departedRows: 4,
    departedSkipped: '',
  };
  return { ...newDetailsRow(fanOut, STARTED), ...overrides };
}

function tenant(rowKey: string, overrides: Partial<TenantRunRow> = {}): TenantRunRow {
  return {
    partitionKey: 'run-2',
    rowKey,
    ok: true,
    seen: 10,
    created: 2,
    changed: 1,
    removed: 0,
    apiCalls: 3,
    error: '',
    removalsSkipped: '',
    ...overrides,
  };
}

function listing(stream: string, counts: Partial<SyncResult> = {}): SyncResult {
  return {
    stream,
    status: 'succeeded',
    items: 0,
    seen: 0,
    created: 0,
    changed: 0,
    restored: 0,
    removed: 0,
    removalsSkipped: '',
    removalsWithheld: 0,
    unchanged: 0,
    duplicates: 0,
    pages: 1,
    apiCalls: 1,
    tableRequests: 0,
    tableReads: 0,
    tableWrites: 0,
    transactions: 0,
    entityWrites: 0,
    largestTransaction: 0,
    durationMs: 0,
    ...counts,
  };
}

describe('completeRun', () => {
  test('while tenants are missing: nothing', () => {
    expect(completeRun(details(), [], NOW)).toBeUndefined();
    expect(completeRun(details(), [tenant('a'), tenant('b')], NOW)).toBeUndefined();
  });

  test('complete: the sums, succeeded', () => {
    const complete = completeRun(details(), [tenant('a'), tenant('b'), tenant('c', { removed: 5 })], NOW);
    expect(complete).toEqual({
      ...details(),
      lastCompletedAt: NOW.toISOString(),
      lastStatus: 'succeeded',
      lastError: '',
      tenantsSucceeded: 3,
      tenantsFailed: 0,
      failedTenants: '[]',
      seen: 30,
      created: 6,
      changed: 3,
      removed: 5,
      apiCalls: 9,
      tenantsRemovalsSkipped: 0,
      removalsSkipped: '',
    });
  });

  test('complete with failures: failed, the first error, the failed tenants listed', () => {
    const rows = [
      tenant('a'),
      tenant('b', { ok: false, seen: 0, created: 0, changed: 0, apiCalls: 1, error: 'FPX 500' }),
      tenant('c', { ok: false, error: 'timeout', removalsSkipped: 'notes: count mismatch' }),
    ];
    expect(completeRun(details(), rows, NOW)).toMatchObject({
      lastStatus: 'failed',
      lastError: 'FPX 500',
      tenantsSucceeded: 1,
      tenantsFailed: 2,
      failedTenants: JSON.stringify([
        { tenantId: 'b', error: 'FPX 500' },
        { tenantId: 'c', error: 'timeout' },
      ]),
      seen: 20,
      apiCalls: 7,
      tenantsRemovalsSkipped: 1,
      removalsSkipped: 'notes: count mismatch',
      // What the fan-out itself found stays.
      departedTenants: 1,
      departedRows: 4,
    });
  });

  test('at most 200 failed tenants are listed; all are counted', () => {
    const rows = Array.from({ length: 250 }, (_, i) => tenant(`t${i}`, { ok: false, error: 'x' }));
    const complete = completeRun(details({ enqueued: 250 }), rows, NOW);
    expect(complete?.tenantsFailed).toBe(250);
    expect(JSON.parse(complete?.failedTenants ?? '[]')).toHaveLength(200);
  });

  test('a fan-out of no tenants is complete at once', () => {
    expect(completeRun(details({ enqueued: 0 }), [], NOW)).toMatchObject({
      lastStatus: 'succeeded',
      seen: 0,
    });
  });
});

describe('a late tenant of an older run', () => {
  test('does not count towards the current run', () => {
    expect(countsToward(details(), 'run-1')).toBe(false);
    expect(countsToward(undefined, 'run-2')).toBe(false);
    expect(countsToward(details(), 'run-2')).toBe(true);
  });

  test('its row does not complete the current run', () => {
    const rows = [tenant('a'), tenant('b'), tenant('c', { partitionKey: 'run-1' })];
    expect(completeRun(details(), rows, NOW)).toBeUndefined();
  });
});

describe('tenantRunRow', () => {
  test("sums the tenant's listings and says which kept their removals", () => {
    const row = tenantRunRow({
      runId: 'run-2',
      tenantId: 'tenant-1',
      result: {
        tenantId: 'tenant-1',
        contacts: listing('tenant-1:contacts', { seen: 4, created: 1 }),
        notes: listing('tenant-1:notes', { seen: 6, changed: 2, removalsSkipped: 'count mismatch' }),
        apiCalls: 3,
      },
    });
    expect(row).toEqual({
      partitionKey: 'run-2',
      rowKey: 'tenant-1',
      ok: true,
      seen: 10,
      created: 1,
      changed: 2,
      removed: 0,
      apiCalls: 3,
      error: '',
      removalsSkipped: 'notes: count mismatch',
    });
  });

  test('a failed tenant: not ok, with its error', () => {
    const row = tenantRunRow({ runId: 'run-2', tenantId: 'tenant-1', error: new Error('FPX answered 500') });
    expect(row).toMatchObject({
      ok: false,
      seen: 0,
      apiCalls: 0,
      error: expect.stringContaining('FPX answered 500'),
    });
  });
});
