import { type FpxClient, FpxError, normalizeGuid } from '../fpx';
import type { CrmOperation } from './payloads';

/**
 * FPX takes no idempotency key, so after an attempt whose outcome is unknown (the connection dropped
 * after the request went out, a timeout, a crashed instance) a create is looked for before it is sent
 * again. A match counts as delivered, with FPX's record as the result.
 *
 * - note: same tenant, category and text, `created` since the unknown attempt began (minus clock skew);
 *   notes are asked newest first, and every page is read (the order is not relied on). A create sent with
 *   an `rfaId` is looked for under it first, then in the tenant's own listing (see findIn).
 * - contact: same tenant and email (case-insensitive), or, without an email, same name and title;
 *   `created` in the same window.
 * - entitlement record added without serviceIntentId: the service has a record with the same L1 status
 *   (id or name), count and notes (FPX keeps L1 unique per service, and records carry no `created`).
 *
 * Limitation: an identical create made by someone else in that window (minutes) is taken for ours.
 */

export interface FoundInFpx {
  result: unknown;
}

export async function findExisting(
  fpx: FpxClient,
  operation: CrmOperation,
  since: Date,
  options: { skewMs: number; signal?: AbortSignal },
): Promise<FoundInFpx | undefined> {
  const from = since.getTime() - options.skewMs;
  const inWindow = (created: string | null | undefined) => {
    const time = Date.parse(created ?? '');
    return !Number.isNaN(time) && time >= from;
  };
  switch (operation.op) {
    case 'createNote': {
      const { note, tenantId } = operation;
      return findIn(operation.rfaId, async (rfaId) => {
        const listing = fpx.notes(tenantId, {
          noteCategory: note.noteCategoryId,
          rfaId,
          orderByCreated: 'Descending',
          signal: options.signal,
          priority: 'interactive',
        });
        // Every page: FPX may not honour the ordering, and a note without `created` must not end the search.
        for await (const candidate of listing) {
          if (!inWindow(candidate.created)) continue;
          if ((candidate.text ?? null) === (note.text ?? null)) return { result: candidate };
        }
        return undefined;
      });
    }
    case 'createContact': {
      const { contact, tenantId } = operation;
      const email = contact.email?.toLowerCase();
      return findIn(operation.rfaId, async (rfaId) => {
        for await (const candidate of fpx.contacts(tenantId, {
          rfaId,
          signal: options.signal,
          priority: 'interactive',
        })) {
          if (!inWindow(candidate.created)) continue;
          const same = email
            ? candidate.email?.toLowerCase() === email
            : !candidate.email &&
              candidate.name === contact.name &&
              (candidate.title ?? null) === contact.title;
          if (same) return { result: candidate };
        }
        return undefined;
      });
    }
    case 'updateEntitlement': {
      const { tenantId, serviceId, update } = operation;
      const records = await fpx.entitlements(tenantId, [serviceId], {
        signal: options.signal,
        priority: 'interactive',
      });
      const wanted = statusKey(update.l1Id);
      const match = records.find(
        (record) =>
          (statusKey(String(record.l1?.id ?? '')) === wanted ||
            statusKey(record.l1?.name ?? '') === wanted) &&
          record.entitlementCount === update.entitlementCount &&
          (record.notes ?? '') === update.notes,
      );
      return match ? { result: records } : undefined;
    }
    case 'updateContact':
      return undefined; // a PATCH of an existing contact is safe to send again
  }
}

/**
 * Looks where the create went: under its `rfaId` (a referred tenant's notes and contacts may only show there),
 * then, in case FPX ignored the parameter, in the tenant's own listing; a tenant FPX does not let us read
 * without the referral (a 4xx there) has nothing of ours in that listing.
 */
async function findIn(
  rfaId: string | undefined,
  search: (rfaId?: string) => Promise<FoundInFpx | undefined>,
): Promise<FoundInFpx | undefined> {
  if (rfaId === undefined) return search();
  const found = await search(rfaId);
  if (found) return found;
  try {
    return await search();
  } catch (error) {
    if (error instanceof FpxError && error.kind === 'http' && [400, 403, 404].includes(error.status ?? 0))
      return undefined;
    throw error;
  }
}

function statusKey(value: string): string {
  return normalizeGuid(value) ?? value.trim().toLowerCase();
}
