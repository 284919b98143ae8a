import { type FpxClient, REFERENCE_LISTS, type ReferenceList } from '../fpx';
import { safeErrorMessage } from '../redact';

/** The integer ids of a reference list, or why they cannot be used (the caller then marks nothing removed). */
export type ReferenceIds = { ids: number[] } | { problem: string };

/** Reference lists change rarely: one read per process, list and hour, not one per tenant. */
const TTL_MS = 60 * 60 * 1000;
const cache = new WeakMap<FpxClient, Map<ReferenceList, { at: number; ids: Promise<ReferenceIds> }>>();

/**
 * The ids of `/noteCategories` or `/services/frp`, for listing a tenant's notes per category and its
 * entitlements per service. An empty or unreadable list is a problem, never "nothing there": the listings
 * built from it would be partial. Problems are not cached, so the next tenant asks again.
 */
export function referenceIds(
  fpx: FpxClient,
  list: ReferenceList,
  onAttempt: () => void,
  now = Date.now(),
): Promise<ReferenceIds> {
  let lists = cache.get(fpx);
  if (!lists) {
    lists = new Map();
    cache.set(fpx, lists);
  }
  const cached = lists.get(list);
  if (cached && now - cached.at < TTL_MS) return cached.ids;
  const path = REFERENCE_LISTS[list];
  const ids = fpx.referenceList(list, { onAttempt }).then(
    (items): ReferenceIds => {
      const numeric = [...new Set(items.map((item) => Number(item.id)).filter(Number.isInteger))];
      return numeric.length > 0 ? { ids: numeric } : { problem: `${path} is empty` };
    },
    (error: unknown): ReferenceIds => ({ problem: `${path} could not be read: ${safeErrorMessage(error)}` }),
  );
  const entry = { at: now, ids };
  lists.set(list, entry);
  ids.then((result) => {
    if ('problem' in result && lists.get(list) === entry) lists.delete(list);
  });
  return ids;
}
