import type { TableClient } from '@azure/data-tables';
import type { Clock } from '../clock';
import type { FpxClient, PagedList, PartnerTenant, Referral } from '../fpx';
import { ensureTableOnce } from '../storage';
import type { AfterSubmit } from './batch-writer';
import {
  CHECKPOINTS_TABLE,
  type Checkpoint,
  deleteSeenKeys,
  readCheckpoint,
  readSeenKeys,
  saveSeenKeys,
  writeCheckpoint,
} from './listing-checkpoint';
import { recordRunProgress, SYNC_RUNS_TABLE, type SyncResult } from './sync-state';
import { type RowWrite, syncStream } from './sync-stream';

/** The contract's table names (docs/contract.md, "Tables"). */
export const TABLES = {
  referrals: 'FpxReferrals',
  tenants: 'FpxTenants',
  entitlements: 'FpxEntitlements',
  contacts: 'FpxContacts',
  notes: 'FpxNotes',
  syncState: 'FpxSyncState',
  referenceData: 'FpxReferenceData',
} as const;

export interface StreamDeps {
  fpx: FpxClient;
  table(name: string): TableClient;
  log?: (message: string) => void;
  now?: () => Date;
  /** The composition root's clock; `now` (tests) wins over it. */
  clock?: Clock;
  /** SYNC_MAX_REMOVED_PERCENT: a run marking more of a partition removed marks nothing (unset: no limit; the setting defaults to 20). */
  maxRemovedPercent?: number;
  /**
   * How long one invocation reads a listing before it stops and leaves the rest to the next: host.json's
   * functionTimeout (10 minutes) less room to record the part. Default 8 minutes.
   */
  listingTimeBudgetMs?: number;
  /** Told every 10 pages how far a listing got (the operations page shows it). */
  onProgress?: (stream: string, progress: { pages: number; items: number; expectedCount?: number }) => void;
  /**
   * The CRM events' outbox (lib/events): told of each batch of referral or tenant row writes before it is
   * written; what it returns runs once the batch is written (the events' queue message).
   */
  recordWrites?: (partitionKey: string, writes: RowWrite[]) => Promise<AfterSubmit | undefined>;
}

const LISTING_TIME_BUDGET_MS = 8 * 60_000;

/**
 * One of FPX's top-level listings into its table, across invocations when it is too long for one: each
 * invocation reads for at most `listingTimeBudgetMs`, then records where it stopped and the keys it saw;
 * the next goes on from there, and removals are marked once the listing is complete, from the keys of
 * every part (and only if FPX's count agrees with the items delivered).
 */
async function syncListing<T extends object>(
  deps: StreamDeps,
  spec: {
    stream: string;
    table: string;
    partitionKey: string;
    rowKey: (item: T) => string;
    list: (onAttempt: () => void) => PagedList<T>;
    onWritten?: (item: T) => void;
  },
): Promise<SyncResult> {
  const state = deps.table(TABLES.syncState);
  const recordWrites = deps.recordWrites;
  const checkpoints = deps.table(CHECKPOINTS_TABLE);
  await ensureTableOnce(state);
  const clock = timeOf(deps);
  const startedAt = clock();
  const checkpoint = await readCheckpoint(state, spec.stream, startedAt);
  const seenBefore = checkpoint
    ? await readSeenKeys(checkpoints, spec.stream, checkpoint.listingStartedAt)
    : undefined;
  if (checkpoint) {
    deps.log?.(
      `sync ${spec.stream}: continuing the listing started ${checkpoint.listingStartedAt} at page ${checkpoint.nextPage} (part ${checkpoint.parts + 1})`,
    );
  }
  let calls = 0;
  let count: number | undefined;
  let nextPage = checkpoint?.nextPage ?? 1;
  let more = true;
  const stopAt = startedAt.getTime() + (deps.listingTimeBudgetMs ?? LISTING_TIME_BUDGET_MS);
  const paged = spec.list(() => {
    calls++;
  });
  const result = await syncStream({
    stream: spec.stream,
    rows: deps.table(spec.table),
    state,
    history: deps.table(SYNC_RUNS_TABLE),
    partitionKey: spec.partitionKey,
    rowKey: spec.rowKey,
    pages: (async function* () {
      for await (const page of paged.pages(nextPage, checkpoint?.itemsBefore ?? 0)) {
        if (page.count !== undefined) count = page.count;
        nextPage = page.page + 1;
        more = page.hasMore;
        yield page.items;
      }
    })(),
    apiCalls: () => calls,
    onWritten: spec.onWritten,
    beforeWrite: recordWrites ? (writes) => recordWrites(spec.partitionKey, writes) : undefined,
    shouldStop: () => more && clock().getTime() >= stopAt,
    seenBefore,
    itemsBefore: checkpoint?.itemsBefore,
    expectedCount: () => count,
    maxRemovedPercent: deps.maxRemovedPercent,
    // The operations page shows a running listing's pages; recording it never fails the run.
    onProgress: (progress) => {
      void recordRunProgress(state, spec.stream, progress, clock());
      deps.onProgress?.(spec.stream, progress);
    },
    log: deps.log,
    now: clock,
  });
  if (result.status === 'partial') {
    const next: Checkpoint = {
      nextPage,
      itemsBefore: (checkpoint?.itemsBefore ?? 0) + result.items,
      listingStartedAt: checkpoint?.listingStartedAt ?? startedAt.toISOString(),
      parts: (checkpoint?.parts ?? 0) + 1,
    };
    await saveSeenKeys(checkpoints, spec.stream, next, result.seenKeys ?? []);
    await writeCheckpoint(state, spec.stream, next);
  } else if (checkpoint) {
    await writeCheckpoint(state, spec.stream, undefined);
    await deleteSeenKeys(checkpoints, spec.stream);
  }
  return result;
}

/**
 * pollReferrals: FPX's referrals into FpxReferrals (partition `referral`, RowKey the referral id).
 * `onWritten` hears of each new, changed or restored referral.
 */
export function syncReferrals(
  deps: StreamDeps,
  onWritten?: (referral: Referral) => void,
): Promise<SyncResult> {
  return syncListing(deps, {
    stream: 'referrals',
    table: TABLES.referrals,
    partitionKey: 'referral',
    rowKey: (referral: Referral) => referral.id,
    list: (onAttempt) => deps.fpx.partnerReferrals({ onAttempt }),
    onWritten,
  });
}

/** pollTenants: FPX's partner tenants into FpxTenants (partition `tenant`, RowKey the tenant id). */
export function syncTenants(deps: StreamDeps): Promise<SyncResult> {
  return syncListing(deps, {
    stream: 'tenants',
    table: TABLES.tenants,
    partitionKey: 'tenant',
    rowKey: (tenant: PartnerTenant) => tenant.tenantId,
    list: (onAttempt) => deps.fpx.partnerTenants({ onAttempt }),
  });
}

/** The time a sync reads: the test's `now`, else the composition root's clock, else the system's. */
export function timeOf(deps: { now?: () => Date; clock?: Clock }): () => Date {
  if (deps.now) return deps.now;
  const clock = deps.clock;
  return clock ? () => new Date(clock.now()) : () => new Date();
}
