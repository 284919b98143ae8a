import type { CallOptions, EntitlementRecord, FpxClient } from '../fpx';

/** An FpxEntitlements row's item: FPX's record plus the service it belongs to and that service's seats. */
export type ServiceEntitlement = EntitlementRecord & { serviceId: number; maxEntitlements: number };

/**
 * A tenant's entitlement records, each with its service (FPX-NOTES #12: records name no service, and the
 * request without `serviceIds` is not documented to return everything).
 *
 * One request filtered by every FRP service says whether the tenant has records at all, and is the whole
 * answer when FPX's records do name their service. Otherwise one request per service places them: the
 * services the tenant had records for last time first, stopping once every record is placed, so a tenant
 * usually costs 1 + (services with records) reads. Each service with records costs one more call for
 * its seats (`maxEntitlements`).
 */
export async function readServiceEntitlements(
  fpx: FpxClient,
  tenantId: string,
  services: readonly number[],
  knownServices: readonly number[],
  options: CallOptions,
): Promise<ServiceEntitlement[]> {
  const all = await fpx.entitlements(tenantId, [...services], options);
  if (all.length === 0) return [];
  const byService = new Map<number, EntitlementRecord[]>();
  const named = all.map((record) => [namedService(record), record] as const);
  if (named.every(([serviceId]) => serviceId !== undefined)) {
    for (const [serviceId, record] of named) add(byService, serviceId as number, record);
  } else {
    const unplaced = new Set(all.map((record) => record.serviceIntentId));
    const order = [
      ...knownServices.filter((id) => services.includes(id)),
      ...services.filter((id) => !knownServices.includes(id)),
    ];
    for (const serviceId of order) {
      if (unplaced.size === 0) break;
      for (const record of await fpx.entitlements(tenantId, [serviceId], options)) {
        add(byService, serviceId, record);
        unplaced.delete(record.serviceIntentId);
      }
    }
    // A record no single-service read returned was removed in between: the next run agrees with FPX again.
  }
  const rows: ServiceEntitlement[] = [];
  for (const [serviceId, records] of byService) {
    const maxEntitlements = await fpx.maxEntitlements(tenantId, serviceId, options);
    for (const record of records) rows.push({ ...record, serviceId, maxEntitlements });
  }
  return rows;
}

function add(map: Map<number, EntitlementRecord[]>, serviceId: number, record: EntitlementRecord): void {
  const list = map.get(serviceId);
  if (list) list.push(record);
  else map.set(serviceId, [record]);
}

/** The service a record names, if FPX sends one (`serviceId` in any casing, a number or digits). */
function namedService(record: EntitlementRecord): number | undefined {
  for (const [key, value] of Object.entries(record)) {
    if (key.toLowerCase() !== 'serviceid') continue;
    const id = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return id;
  }
  return undefined;
}
