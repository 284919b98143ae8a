import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { type FpxClient, FpxError, fpxSchemas, type PagedList } from '../fpx';
import { DETAILS_RUNS_TABLE, startDetailsRun } from './details-state';
import { TABLES } from './fpx-streams';
import { stableRowKey } from './hash';
import { type SyncResult, syncStream } from './sync-stream';

export const TENANT_DETAILS_QUEUE = 'fpx-tenant-details';
/** One tenant to read: claimed (listed by partnerTenants) and/or referred (with the referrals' rfaIds). */
export const tenantDetailsMessage = z.object({
  tenantId: fpxSchemas.tenantId,
  claimed: z.boolean().default(true),
  rfaIds: z.array(z.union([z.string().min(1), z.number()]).transform(String)).default([]),
  runId: z.string().optional(),
});
export type TenantDetailsMessage = z.output<typeof tenantDetailsMessage>;

export interface DetailsDeps {
  fpx: FpxClient;
  table(name: string): TableClient;
  log?: (message: string) => void;
  now?: () => Date;
}

export interface TenantDetailsResult {
  tenantId: string;
  /** Undefined when FPX refused the entitlements of a tenant that is only referred. */
  entitlements?: SyncResult;
  contacts: SyncResult;
  notes: SyncResult;
  apiCalls: number;
}

/** Note categories change rarely: one read per process and hour, not one per tenant. */
const NOTE_CATEGORIES_TTL_MS = 60 * 60 * 1000;
const noteCategoryCache = new WeakMap<FpxClient, { at: number; ids: Promise<number[]> }>();

function noteCategories(fpx: FpxClient, onAttempt: () => void): Promise<number[]> {
  const cached = noteCategoryCache.get(fpx);
  if (cached && Date.now() - cached.at < NOTE_CATEGORIES_TTL_MS) return cached.ids;
  const ids = fpx.referenceList('noteCategories', { onAttempt }).then((list) => {
    const numeric = list.map((c) => Number(c.id)).filter((id) => Number.isInteger(id));
    return numeric.length > 0 ? numeric : [1];
  });
  noteCategoryCache.set(fpx, { at: Date.now(), ids });
  ids.catch(() => noteCategoryCache.delete(fpx));
  return ids;
}

/** Pages of several listings one after the other: one complete listing for the tenant's partition. */
async function* concatPages<T>(lists: Array<() => PagedList<T>>): AsyncGenerator<T[]> {
  for (const list of lists) {
    for await (const page of list().pages()) yield page.items;
  }
}

/**
 * Reads one tenant's entitlement records, contacts and notes (every category; with each referral's
 * rfaId as well as without when claimed) and keeps FpxEntitlements, FpxContacts and FpxNotes in step
 * for that tenant's partition only. A listing that fails marks nothing removed and fails the run.
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
    now: deps.now,
  };

  // FPX may refuse entitlements of a tenant that is only referred. Then there is no listing at all: skip
  // the sync rather than take an empty answer for a complete one (that would mark every record removed).
  const records = await fpx.entitlements(tenantId, [], { onAttempt }).catch((error: unknown) => {
    if (!message.claimed && error instanceof FpxError && (error.status === 403 || error.status === 404)) {
      return undefined;
    }
    throw error;
  });
  const entitlements = records
    ? await syncStream({
        ...common,
        stream: `${tenantId}-entitlements`,
        rows: deps.table(TABLES.entitlements),
        rowKey: (record: fpxSchemas.EntitlementRecord) => record.serviceIntentId,
        pages: (async function* () {
          yield records;
        })(),
      })
    : undefined;

  const contacts = await syncStream({
    ...common,
    stream: `${tenantId}-contacts`,
    rows: deps.table(TABLES.contacts),
    rowKey: (contact: fpxSchemas.Contact) => contact.contactId,
    pages: concatPages(scopes.map((rfaId) => () => fpx.contacts(tenantId, { rfaId, onAttempt }))),
  });

  const categories = await noteCategories(fpx, onAttempt);
  const notes = await syncStream({
    ...common,
    stream: `${tenantId}-notes`,
    rows: deps.table(TABLES.notes),
    // FPX gives notes no id: the same created, author and text is the same note.
    rowKey: (note: fpxSchemas.Note) => stableRowKey(note.created, note.author, note.text),
    pages: concatPages(
      scopes.flatMap((rfaId) =>
        categories.map((noteCategory) => () => fpx.notes(tenantId, { noteCategory, rfaId, onAttempt })),
      ),
    ),
  });

  return { tenantId, entitlements, contacts, notes, apiCalls: calls };
}

export interface FanOutResult {
  runId: string;
  enqueued: number;
  claimed: number;
  referralOnly: number;
}

/**
 * After a successful pollTenants run: one message per tenant, claimed (FpxTenants) or referred
 * (FpxReferrals, with their rfaIds), each tenant once per run, onto `fpx-tenant-details`; the run is
 * recorded in FpxSyncState's `details` row first.
 */
export async function fanOutTenantDetails(
  deps: { table(name: string): TableClient; queue: QueueClient; now?: () => Date },
  runId: string,
): Promise<FanOutResult> {
  const tenants = new Map<string, TenantDetailsMessage>();
  for await (const row of presentRows<{ tenantId: string }>(deps.table(TABLES.tenants), 'tenant', [
    'tenantId',
  ])) {
    tenants.set(row.tenantId, { tenantId: row.tenantId, claimed: true, rfaIds: [], runId });
  }
  let referralOnly = 0;
  for await (const row of presentRows<{ id: string; tenantId: string }>(
    deps.table(TABLES.referrals),
    'referral',
    ['id', 'tenantId'],
  )) {
    let message = tenants.get(row.tenantId);
    if (!message) {
      message = { tenantId: row.tenantId, claimed: false, rfaIds: [], runId };
      tenants.set(row.tenantId, message);
      referralOnly++;
    }
    message.rfaIds.push(String(row.id));
  }
  const messages = [...tenants.values()];
  const result = { runId, enqueued: messages.length, claimed: messages.length - referralOnly, referralOnly };
  // The run is on record before its first message can be taken, so every tenant's outcome counts towards it.
  await startDetailsRun(deps.table(TABLES.syncState), deps.table(DETAILS_RUNS_TABLE), result, deps.now?.());
  await deps.queue.createIfNotExists();
  // Bounded concurrency: a queue has no batch send.
  for (let i = 0; i < messages.length; i += 16) {
    await Promise.all(
      messages
        .slice(i, i + 16)
        .map((m) => deps.queue.sendMessage(Buffer.from(JSON.stringify(m)).toString('base64'))),
    );
  }
  return result;
}

/** Rows not marked removed; none when the table does not exist yet (that stream never ran). */
async function* presentRows<T extends object>(table: TableClient, partition: string, select: string[]) {
  try {
    yield* table.listEntities<T>({
      queryOptions: { filter: `PartitionKey eq '${partition}' and removedAt eq ''`, select },
    });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
}
