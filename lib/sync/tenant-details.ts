import { odata, type TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { FpxError, fpxSchemas, type PagedList } from '../fpx';
import { ensureQueueOnce, sendJsonMessage } from '../storage';
import { inSpan } from '../telemetry';
import { readServiceEntitlements, type ServiceEntitlement } from './entitlements';
import { type StreamDeps, TABLES, timeOf } from './fpx-streams';
import { stableRowKey } from './hash';
import { presentRows } from './present-rows';
import { referenceIds } from './reference-ids';
import type { SyncResult } from './sync-state';
import { syncStream } from './sync-stream';
import { takeTenantLease } from './tenant-lease';

export const TENANT_DETAILS_QUEUE = 'fpx-tenant-details';
/** One tenant to read: claimed (listed by partnerTenants) and/or referred (with the referrals' rfaIds). */
export const tenantDetailsMessage = z.object({
  tenantId: fpxSchemas.tenantId,
  claimed: z.boolean().default(true),
  rfaIds: z.array(z.union([z.string().min(1), z.number()]).transform(String)).default([]),
  runId: z.string().optional(),
});
export type TenantDetailsMessage = z.output<typeof tenantDetailsMessage>;

/** What a tenant's sync needs: the listings' dependencies, without their time limit. */
export type DetailsDeps = Pick<StreamDeps, 'fpx' | 'table' | 'log' | 'now' | 'maxRemovedPercent'>;

export interface TenantDetailsResult {
  tenantId: string;
  /** Undefined when FPX refused the entitlements of a tenant that is only referred. */
  entitlements?: SyncResult;
  contacts: SyncResult;
  notes: SyncResult;
  apiCalls: number;
}

/** Pages of several listings one after the other: one complete listing for the tenant's partition. */
async function* concatPages<T, R>(
  lists: Array<{ list: () => PagedList<T>; row: (item: T) => R }>,
): AsyncGenerator<R[]> {
  for (const { list, row } of lists) {
    for await (const page of list().pages()) yield page.items.map(row);
  }
}

/** The services the tenant's present entitlement rows name: read first, they usually hold every record. */
async function knownServices(table: TableClient, tenantId: string): Promise<number[]> {
  const ids = new Set<number>();
  for await (const row of presentRows<{ serviceId?: unknown }>(table, tenantId, ['serviceId'])) {
    if (typeof row.serviceId === 'number') ids.add(row.serviceId);
  }
  return [...ids];
}

/**
 * Reads one tenant's entitlement records (per FRP service, each row with its `serviceId` and
 * `maxEntitlements`), contacts and notes (every category; with each referral's rfaId as well as without
 * when claimed; each row with the `rfaId` it was read with) and keeps FpxEntitlements, FpxContacts and
 * FpxNotes in step for that tenant's partition only. A listing that fails marks nothing removed and fails
 * the run; a reference list that is empty or unreadable (FRP services, note categories) marks nothing
 * removed in the listings built from it, and says why.
 */
export async function syncTenantDetails(
  deps: DetailsDeps,
  message: TenantDetailsMessage,
): Promise<TenantDetailsResult> {
  const { fpx, tenantId } = { fpx: deps.fpx, tenantId: message.tenantId };
  let calls = 0;
  const onAttempt = () => {
    calls++;
  };
  // A referral's tenant without a claimed workload is read through its referrals only.
  const scopes: Array<string | undefined> = [...(message.claimed ? [undefined] : []), ...message.rfaIds];
  // No state row per tenant and listing: the queue function sums each tenant into FpxSyncState's `details` row.
  const common = {
    partitionKey: tenantId,
    log: deps.log,
    now: timeOf(deps),
    maxRemovedPercent: deps.maxRemovedPercent,
  };

  const entitlementRows = deps.table(TABLES.entitlements);
  const services = await referenceIds(fpx, 'frpServices', onAttempt);
  let records: ServiceEntitlement[] | undefined = [];
  if ('ids' in services) {
    const known = await knownServices(entitlementRows, tenantId);
    // FPX may refuse entitlements of a tenant that is only referred. Then there is no listing at all: skip
    // the sync rather than take an empty answer for a complete one (that would mark every record removed).
    records = await readServiceEntitlements(fpx, tenantId, services.ids, known, { onAttempt }).catch(
      (error: unknown) => {
        if (!message.claimed && error instanceof FpxError && (error.status === 403 || error.status === 404)) {
          return undefined;
        }
        throw error;
      },
    );
  }
  const entitlements = records
    ? await syncStream({
        ...common,
        stream: `${tenantId}-entitlements`,
        rows: entitlementRows,
        rowKey: (record: ServiceEntitlement) => record.serviceIntentId,
        pages: (async function* () {
          yield records;
        })(),
        skipRemovals: 'problem' in services ? services.problem : undefined,
      })
    : undefined;

  const contacts = await syncStream({
    ...common,
    stream: `${tenantId}-contacts`,
    rows: deps.table(TABLES.contacts),
    rowKey: (contact: fpxSchemas.Contact & { rfaId: string | null }) => contact.contactId,
    pages: concatPages(
      scopes.map((rfaId) => ({
        list: () => fpx.contacts(tenantId, { rfaId, onAttempt }),
        row: (contact: fpxSchemas.Contact) => ({ ...contact, rfaId: rfaId ?? null }),
      })),
    ),
  });

  // Without the categories, read FPX's default one (1) and keep every note row: the listing is partial.
  const categories = await referenceIds(fpx, 'noteCategories', onAttempt);
  const categoryIds = 'ids' in categories ? categories.ids : [undefined];
  const notes = await syncStream({
    ...common,
    stream: `${tenantId}-notes`,
    rows: deps.table(TABLES.notes),
    // FPX gives notes no id: the same created, author and text is the same note.
    rowKey: (note: fpxSchemas.Note) => stableRowKey(note.created, note.author, note.text),
    pages: concatPages(
      scopes.flatMap((rfaId) =>
        categoryIds.map((noteCategory) => ({
          list: () => fpx.notes(tenantId, { noteCategory, rfaId, onAttempt }),
          row: (note: fpxSchemas.Note) => ({ ...note, rfaId: rfaId ?? null }),
        })),
      ),
    ),
    skipRemovals: 'problem' in categories ? categories.problem : undefined,
  });

  return { tenantId, entitlements, contacts, notes, apiCalls: calls };
}

export type ExclusiveOutcome = { result: TenantDetailsResult } | { deferredSeconds: number };

/** A tenant's sync takes seconds: a message that finds it busy looks again this soon (the lease bounds it). */
const DEFER_SECONDS = 5;

/**
 * `syncTenantDetails` under the tenant's lease: two syncs of one tenant (overlapping fan-outs, admin runs,
 * host retries) never interleave their writes. A message whose tenant is being synced goes back on the
 * queue, visible again in a few seconds (a tenant's sync takes seconds), and this
 * invocation succeeds without an outcome: the message that comes back records it.
 */
export async function syncTenantDetailsExclusively(
  deps: DetailsDeps & { leases: TableClient; queue: QueueClient; holder: string },
  message: TenantDetailsMessage,
): Promise<ExclusiveOutcome> {
  const now = timeOf(deps)().getTime();
  const lease = await takeTenantLease(deps.leases, message.tenantId, deps.holder, now);
  if ('busyUntil' in lease) {
    const deferredSeconds = Math.min(DEFER_SECONDS, Math.max(1, Math.ceil((lease.busyUntil - now) / 1000)));
    await sendJsonMessage(deps.queue, message, { visibilityTimeout: deferredSeconds });
    deps.log?.(
      `tenant ${message.tenantId}: another sync of it is running; queued again for ${deferredSeconds} s`,
    );
    return { deferredSeconds };
  }
  try {
    // One span per tenant: its listings' sync spans and FPX calls nest under it.
    const attributes = { 'fpx.tenant_id': message.tenantId, 'sync.claimed': message.claimed };
    const result = await inSpan('sync tenant details', attributes, async (span) => {
      const synced = await syncTenantDetails(deps, message);
      span.setAttribute('sync.api_calls', synced.apiCalls);
      return synced;
    });
    return { result };
  } finally {
    await lease.release();
  }
}

/** What `fanOutTenantDetails` (fan-out.ts) queued; the details run (details-state.ts) starts from it. */
export interface FanOutResult {
  runId: string;
  enqueued: number;
  claimed: number;
  referralOnly: number;
  /** Tenants in neither listing any more whose detail rows this fan-out marked removed, and those rows. */
  departedTenants: number;
  departedRows: number;
  /** Why departed tenants were not looked for ('' when they were). */
  departedSkipped: string;
}

/** Onto `fpx-tenant-details`, with bounded concurrency (a queue has no batch send). */
export async function enqueueTenantDetails(
  queue: QueueClient,
  messages: readonly TenantDetailsMessage[],
): Promise<void> {
  await ensureQueueOnce(queue);
  for (let i = 0; i < messages.length; i += 16) {
    await Promise.all(messages.slice(i, i + 16).map((m) => sendJsonMessage(queue, m)));
  }
}

/** Few enough tenants to look each up; more, and both tables are read once instead. */
const LOOKUP_LIMIT = 20;

/**
 * What to read for each tenant: claimed when FpxTenants has it, with the rfaId of every present referral
 * for it (all of them: a scope left out would have its contacts and notes marked removed). Every tenant of
 * both tables, or only those of `only`.
 */
export async function tenantMessages(
  table: (name: string) => TableClient,
  runId?: string,
  only?: ReadonlySet<string>,
): Promise<TenantDetailsMessage[]> {
  const tenants = new Map<string, TenantDetailsMessage>();
  const message = (tenantId: string, claimed: boolean) => {
    let found = tenants.get(tenantId);
    if (!found) {
      found = { tenantId, claimed, rfaIds: [], ...(runId ? { runId } : {}) };
      tenants.set(tenantId, found);
    }
    return found;
  };
  const lookUp = only && only.size <= LOOKUP_LIMIT;
  const filters = lookUp
    ? [...only].map((id) => ({ tenant: odata`RowKey eq ${id}`, referral: odata`tenantId eq ${id}` }))
    : [{ tenant: '', referral: '' }];
  for (const filter of filters) {
    for await (const row of presentRows<{ tenantId: string }>(
      table(TABLES.tenants),
      'tenant',
      ['tenantId'],
      filter.tenant,
    )) {
      if (!only || only.has(row.tenantId)) message(row.tenantId, true);
    }
  }
  for (const filter of filters) {
    for await (const row of presentRows<{ id: string; tenantId: string }>(
      table(TABLES.referrals),
      'referral',
      ['id', 'tenantId'],
      filter.referral,
    )) {
      if (!only || only.has(row.tenantId)) message(row.tenantId, false).rfaIds.push(String(row.id));
    }
  }
  return [...tenants.values()];
}
