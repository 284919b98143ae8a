import { z } from 'zod';
import { normalizeGuid } from './guid';

/**
 * Response schemas tolerant of everything FPX-NOTES.md shows FPX sending: GUIDs with or without
 * dashes and in any case, ids as numbers or strings, nulls on nullable fields, and unknown fields
 * (kept, never a failure). Tenant ids leave here lowercase with dashes.
 */

export const tenantId = z.string().transform((value, ctx) => {
  const guid = normalizeGuid(value);
  if (guid) return guid;
  ctx.addIssue({ code: 'custom', message: 'expected a tenant id (GUID)' });
  return z.NEVER;
});

/** An id that is a GUID in some answers and a number or plain string in others. */
export const flexibleId = z.union([z.number(), z.string()]);

/** A record id used as a table key: GUIDs normalised, numbers as strings. */
export const keyId = z.union([z.number(), z.string().min(1)]).transform((v) => {
  const text = String(v);
  return normalizeGuid(text) ?? text;
});

const count = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]);
const flag = z.union([
  z.boolean(),
  z.enum(['true', 'false', 'True', 'False']).transform((v) => v.toLowerCase() === 'true'),
]);

/** `{id, name}` as reference data and nested objects come. */
export const namedRef = z.object({ id: flexibleId.nullish(), name: z.string().nullish() }).loose();

export const workload = z
  .object({ id: flexibleId, name: z.string().nullish(), claimed: flag.nullish() })
  .loose();

export const partnerTenant = z
  .object({
    tenantId,
    tpid: flexibleId.nullish(),
    name: z.string().nullish(),
    claimedWorkloads: z.array(workload).nullish(),
  })
  .loose();

export const referral = z
  .object({
    id: keyId,
    created: z.string().nullish(),
    tenantId,
    tenantName: z.string().nullish(),
    tenantDomain: z.string().nullish(),
    workloads: z.array(workload).nullish(),
  })
  .loose();

export const entitlementRecord = z
  .object({
    serviceIntentId: keyId,
    l1: namedRef.nullish(),
    l2: namedRef.nullish(),
    l3: namedRef.nullish(),
    id: flexibleId.nullish(),
    name: z.string().nullish(),
    entitlementCount: count,
    targetDate: z.string().nullish(),
    owner: z.string().nullish(),
    nextActionDate: z.string().nullish(),
    notes: z.string().nullish(),
  })
  .loose();

export const contact = z
  .object({
    contactId: keyId,
    tenantId: tenantId.nullish(),
    name: z.string().nullish(),
    email: z.string().nullish(),
    phone: z.string().nullish(),
    managerName: z.string().nullish(),
    managerEmail: z.string().nullish(),
    title: z.string().nullish(),
    isEngaged: flag.nullish(),
    isFastTrackContact: flag.nullish(),
    evidence: z.string().nullish(),
    surveyEligible: flag.nullish(),
    approvedSurvey: z.string().nullish(),
    note: z.string().nullish(),
    created: z.string().nullish(),
    createdBy: z.string().nullish(),
    modified: z.string().nullish(),
    modifiedBy: z.string().nullish(),
    timezone: namedRef.nullish(),
    countryRegion: namedRef.nullish(),
    adminType: namedRef.nullish(),
    surveyLanguage: namedRef.nullish(),
    contactType: namedRef.nullish(),
    skillTypes: z.array(namedRef).nullish(),
    services: z.array(namedRef).nullish(),
  })
  .loose();

export const note = z
  .object({
    text: z.string().nullish(),
    author: z.string().nullish(),
    created: z.string().nullish(),
    noteCategory: namedRef.nullish(),
  })
  .loose();

/** `{count, hasMore, items}`; contacts and notes add `rfaId`, `tenantId`, `tenantName`. */
export function listEnvelope<T extends z.ZodType>(item: T) {
  return z
    .object({
      count: count.nullish(),
      hasMore: flag.nullish(),
      items: z.array(item).nullish(),
    })
    .loose();
}

/**
 * One page of a reference list: the list envelope, or a bare array of `{id, name}` (FPX-NOTES #15). A bare
 * array is the whole list, so it reads as a last page: there is no page 2 to ask for.
 */
export const referencePage = z.union([
  z.array(namedRef).transform((items) => ({ items, hasMore: false })),
  listEnvelope(namedRef),
]);

/** A reference list's one answer as its items (the client reads every page; see FpxClient.referenceList). */
export const referenceList = referencePage.transform((v) => v.items ?? []);

export const entitlementList = z.array(entitlementRecord);

/** Seats of a service: a number, or an object holding it (the guide shows no sample). */
export const maxEntitlements = z.union([count, z.record(z.string(), z.unknown())]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const keys = ['maxentitlements', 'maxentitlement', 'maxentitlementcount', 'seats', 'count', 'total'];
  for (const [key, value] of Object.entries(v)) {
    if (!keys.includes(key.toLowerCase())) continue;
    const parsed = count.safeParse(value);
    if (parsed.success) return parsed.data;
  }
  ctx.addIssue({ code: 'custom', message: 'expected the number of seats (maxEntitlements)' });
  return z.NEVER;
});

export type PartnerTenant = z.output<typeof partnerTenant>;
export type Referral = z.output<typeof referral>;
export type EntitlementRecord = z.output<typeof entitlementRecord>;
export type Contact = z.output<typeof contact>;
export type Note = z.output<typeof note>;
export type NamedRef = z.output<typeof namedRef>;
