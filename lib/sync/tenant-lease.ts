import type { TableClient } from '@azure/data-tables';
import {
  deleteEntityIfUnchanged,
  ensureTableOnce,
  getEntityOrUndefined,
  isConflict,
  isNotFound,
  isPreconditionFailed,
} from '../storage';

/**
 * One `syncTenantDetails` per tenant at a time (overlapping fan-outs, admin runs, host retries): a short
 * lease in Table Storage, taken with an atomic insert or an ETag-conditional update of an expired one.
 * A sync that finds the tenant leased waits for its turn instead of interleaving its writes.
 */
export const TENANT_LEASES_TABLE = 'FpxTenantLeases';
const PARTITION = 'tenant';
/** Longer than a tenant's sync takes; a holder that dies frees the tenant after this. */
const TENANT_LEASE_MS = 5 * 60_000;

export type TenantLease = { release(): Promise<void> } | { busyUntil: number };

export async function takeTenantLease(
  table: TableClient,
  tenantId: string,
  holder: string,
  now: number,
  leaseMs = TENANT_LEASE_MS,
): Promise<TenantLease> {
  await ensureTableOnce(table);
  const entity = { partitionKey: PARTITION, rowKey: tenantId, holder, leaseUntil: now + leaseMs };
  let etag: string | undefined;
  try {
    etag = (await table.createEntity(entity)).etag;
  } catch (error) {
    if (!isConflict(error)) throw error;
    // Undefined when released meanwhile: the next try takes it.
    const existing = await getEntityOrUndefined<{ leaseUntil?: number }>(table, PARTITION, tenantId);
    const until = Number(existing?.leaseUntil ?? 0);
    if (!existing || until > now) return { busyUntil: existing ? until : now };
    try {
      etag = (await table.updateEntity(entity, 'Replace', { etag: existing.etag })).etag;
    } catch (updateError) {
      if (isPreconditionFailed(updateError) || isNotFound(updateError)) return { busyUntil: now + 1_000 };
      throw updateError;
    }
  }
  return {
    async release() {
      // Only our own lease: after a takeover (we were too slow) the row is someone else's.
      await deleteEntityIfUnchanged(table, PARTITION, tenantId, etag);
    },
  };
}
