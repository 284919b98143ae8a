import { randomUUID } from 'node:crypto';
import { type Handler, isReply, objectBody, type RequestContext, tenantFor } from './context';
import type { EntitlementRecord, ServiceEntitlements } from './data';
import { type FieldErrors, notFound, ok, type Reply, validationReply } from './http';
import { canonicalGuid } from './random';
import { findById, type NamedId, type ReferenceData } from './reference';
import type { Body } from './validation';

const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

/**
 * `GET /tenants/{tenantId}/services/entitlements?serviceIds=…`: a bare array of records that, as in the
 * guide's sample, do not say which service they belong to (unless `recordsNameService` is switched on).
 * Without `serviceIds` it answers every record or a 400, as `data.entitlements.unfiltered` says.
 */
export const getEntitlements: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const behaviour = context.data.entitlements;
  const wanted: number[] = [];
  for (const raw of context.query.all('serviceIds').flatMap((value) => value.split(','))) {
    if (!/^\s*\d+\s*$/.test(raw))
      return validationReply({ ServiceIds: [`The value '${raw}' is not valid.`] });
    wanted.push(Number(raw));
  }
  if (wanted.length === 0 && behaviour.unfiltered === 'reject') {
    return validationReply({ ServiceIds: ['The ServiceIds field is required.'] });
  }
  const services =
    wanted.length > 0
      ? [...new Set(wanted)].flatMap((id) => tenant.entitlements.get(id) ?? [])
      : [...tenant.entitlements.values()];
  return ok(services.flatMap((service) => onTheWire(service, behaviour)));
};

function onTheWire(service: ServiceEntitlements, behaviour: { recordsNameService: boolean }) {
  return behaviour.recordsNameService
    ? service.records.map((record) => ({ ...record, serviceId: service.serviceId }))
    : service.records;
}

/** `GET /tenants/{tenantId}/services/{serviceId}/maxEntitlements`. */
export const getMaxEntitlements: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const serviceId = serviceIdFor(context);
  if (typeof serviceId !== 'number') return serviceId;
  const maxEntitlements = tenant.entitlements.get(serviceId)?.maxEntitlements ?? 0;
  return ok({ tenantId: tenant.tenantId, serviceId, maxEntitlements });
};

/** `PATCH /tenants/{tenantId}/services/{serviceId}/entitlements`: one record in, the service's records out. */
export const patchEntitlements: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const serviceId = serviceIdFor(context);
  if (typeof serviceId !== 'number') return serviceId;
  const body = objectBody(context);
  if (isReply(body)) return body;
  const service = tenant.entitlements.get(serviceId) ?? { serviceId, maxEntitlements: 0, records: [] };
  const result = applyPatch(service, body, context.data.reference);
  if (!Array.isArray(result)) return validationReply(result);
  // Only a valid change is stored: a rejected PATCH leaves the records as they were.
  service.records.splice(0, service.records.length, ...result);
  tenant.entitlements.set(serviceId, service);
  return ok(onTheWire(service, context.data.entitlements));
};

function serviceIdFor(context: RequestContext): number | Reply {
  const raw = context.params.serviceId ?? '';
  if (!/^\d+$/.test(raw)) return validationReply({ ServiceId: [`The value '${raw}' is not valid.`] });
  const serviceId = Number(raw);
  return findById(context.data.reference.services, serviceId) ? serviceId : notFound(`Service ${raw}`);
}

/** The service's records after the change, or the errors that reject it. */
function applyPatch(
  service: ServiceEntitlements,
  body: Body,
  reference: ReferenceData,
): EntitlementRecord[] | FieldErrors {
  const target = recordToChange(service, body);
  body.required('l1Id', 'L1Id');
  const l1Id = body.string('l1Id', 'L1Id', { nullable: false, nonEmpty: true });
  const l2Id = body.string('l2Id', 'L2Id');
  const l3Id = body.string('l3Id', 'L3Id');
  body.required('entitlementCount', 'EntitlementCount');
  const count = body.integer('entitlementCount', 'EntitlementCount', { min: 0 });
  const targetDate = body.date('targetDate', 'TargetDate');
  const nextActionDate = body.date('nextActionDate', 'NextActionDate');
  const owner = body.string('owner', 'Owner');
  const notes = body.string('notes', 'Notes');
  if (target === undefined && count === 0) {
    body.fail('EntitlementCount', 'A new status record needs an entitlement count greater than 0.');
  }
  if (!body.valid || typeof l1Id !== 'string' || typeof count !== 'number' || target === null)
    return body.errors;

  const { l1Statuses } = reference;
  const l1 = status(l1Id, l1Statuses);
  // PATCH: a field left out keeps its value; one sent as null clears it.
  const keep = <T>(key: string, value: T, previous: T): T => (body.has(key) ? value : previous);
  const changed: EntitlementRecord = {
    ...target, // an updated record keeps fields the sandbox does not know
    serviceIntentId: target?.serviceIntentId ?? randomUUID(),
    l1,
    id: target?.id ?? randomUUID(),
    name: l1.name,
    l2: keep('l2Id', l2Id ? status(l2Id, reference.l2Statuses) : null, target?.l2 ?? null),
    l3: keep('l3Id', l3Id ? status(l3Id, reference.l3Statuses) : null, target?.l3 ?? null),
    entitlementCount: count,
    targetDate: keep('targetDate', targetDate ?? null, target?.targetDate ?? null),
    owner: keep('owner', owner ?? null, target?.owner ?? null),
    nextActionDate: keep('nextActionDate', nextActionDate ?? null, target?.nextActionDate ?? null),
    notes: keep('notes', notes ?? null, target?.notes ?? null),
  };
  const records = target
    ? service.records.flatMap((record) => (record !== target ? [record] : count === 0 ? [] : [changed]))
    : [...service.records, changed];

  const l1Keys = records.map((record) => statusKey(record.l1.id, l1Statuses));
  if (new Set(l1Keys).size !== l1Keys.length) {
    body.fail('L1Id', `L1 values must be unique for all records of a service: '${l1Id}' is already used.`);
  }
  const sum = records.reduce((total, record) => total + record.entitlementCount, 0);
  if (sum !== service.maxEntitlements) {
    body.fail(
      'EntitlementCount',
      `The entitlement counts of service ${service.serviceId} must add up to ${service.maxEntitlements}; they would add up to ${sum}.`,
    );
  }
  return body.valid ? records : body.errors;
}

/** undefined: add a record; null: the id names no record (the error is recorded). */
function recordToChange(service: ServiceEntitlements, body: Body): EntitlementRecord | undefined | null {
  const raw = body.get('serviceIntentId');
  if (raw === undefined || raw === null || raw === '') return undefined;
  const id = typeof raw === 'string' ? canonicalGuid(raw) : undefined;
  if (!id) {
    body.fail('ServiceIntentId', `The value '${String(raw)}' is not a valid GUID.`);
    return null;
  }
  if (id === EMPTY_GUID) return undefined;
  const record = service.records.find((candidate) => canonicalGuid(candidate.serviceIntentId) === id);
  if (!record) body.fail('ServiceIntentId', `Service ${service.serviceId} has no status record ${raw}.`);
  return record ?? null;
}

/** A status as FPX answers it: the id as sent (FPX-NOTES #3), the name from the catalog when it is known. */
function status(idOrName: string, catalog: readonly NamedId<string>[]): NamedId<string> {
  const known = findStatus(idOrName, catalog);
  return { id: idOrName, name: known?.name ?? idOrName };
}

/** Two records have the same L1 status when they name the same catalog entry, by id or by name. */
function statusKey(idOrName: string, catalog: readonly NamedId<string>[]): string {
  return findStatus(idOrName, catalog)?.id ?? idOrName.trim().toLowerCase();
}

function findStatus(idOrName: string, catalog: readonly NamedId<string>[]): NamedId<string> | undefined {
  const byName = idOrName.trim().toLowerCase();
  return findById(catalog, idOrName) ?? catalog.find((entry) => entry.name.toLowerCase() === byName);
}
