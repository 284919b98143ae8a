import { z } from 'zod';
import { EMPTY_GUID, normalizeGuid } from './guid';

/**
 * What we send to FPX, following the guide's request tables. The webhook payloads extend these,
 * so nothing invalid reaches FPX. Required-but-nullable fields must be present (null allowed).
 */

export const NOTE_TEXT_MAX = 1_048_576;

const guidField = z.string().transform((value, ctx) => {
  const guid = normalizeGuid(value);
  if (guid) return guid;
  ctx.addIssue({ code: 'custom', message: 'expected a GUID' });
  return z.NEVER;
});
const intId = z.number({ error: 'expected an integer' }).int('expected an integer');
/**
 * "string, nullable" in the guide (FPX-NOTES #17): a date or a date-time (with or without an offset), sent on
 * exactly as given: FPX reads it, we do not reformat it.
 */
const DATE_MESSAGE = 'expected a date (YYYY-MM-DD) or an ISO 8601 date-time';
const dateOrDateTime = z
  .union(
    [z.iso.date({ error: DATE_MESSAGE }), z.iso.datetime({ offset: true, local: true, error: DATE_MESSAGE })],
    { error: DATE_MESSAGE },
  )
  .meta({
    description: 'A date (2025-03-01) or an ISO 8601 date-time (2025-03-01T09:30:00Z), sent on as given',
  });
const requiredNullable = <T extends z.ZodType>(schema: T) =>
  schema.nullable().refine((v) => v !== undefined, { message: 'required (null allowed)' });

export const noteCreate = z.object({
  text: z.string().max(NOTE_TEXT_MAX, `at most ${NOTE_TEXT_MAX} characters`).nullable(),
  noteCategoryId: intId.positive(),
});

const contactFields = {
  name: z.string().trim().min(1, 'required'),
  email: requiredNullable(z.email({ error: 'expected an email address' })),
  phone: z.string().nullish(),
  managerName: z.string().nullish(),
  managerEmail: z.email({ error: 'expected an email address' }).nullish(),
  title: requiredNullable(z.string()),
  isEngaged: z.boolean().nullish(),
  isFastTrackContact: z.boolean().nullish(),
  evidence: z.string().nullish(),
  surveyEligible: requiredNullable(z.boolean()),
  approvedSurvey: z.string().nullish(),
  note: z.string().nullish(),
  timeZoneId: guidField.nullish(),
  countryRegionId: requiredNullable(guidField),
  adminTypeId: intId.nullish(),
  surveyLanguageId: requiredNullable(guidField),
  contactTypeId: intId,
  skillTypes: z.array(intId).nullish(),
  services: requiredNullable(z.array(intId)),
};

export const contactCreate = z.object(contactFields);
/** Update requires `phone` as well (the guide's update table). */
export const contactUpdate = z.object({ ...contactFields, phone: requiredNullable(z.string()) });

export const entitlementUpdate = z.object({
  /** Leave out, or the empty GUID, to add a status record. */
  serviceIntentId: guidField.optional().transform((v) => (v === EMPTY_GUID ? undefined : v)),
  // Typed string-uuid in the guide, but its example sends "In Progress" (FPX-NOTES #3).
  l1Id: z.string().trim().min(1, 'required'),
  l2Id: z.string().trim().min(1).nullish(),
  l3Id: z.string().trim().min(1).nullish(),
  entitlementCount: intId.nonnegative('0 removes the record; never negative'),
  targetDate: dateOrDateTime.nullish(),
  owner: z.string().nullish(),
  nextActionDate: dateOrDateTime.nullish(),
  notes: z.string(),
});

export type NoteCreate = z.input<typeof noteCreate>;
export type ContactCreate = z.input<typeof contactCreate>;
export type ContactUpdate = z.input<typeof contactUpdate>;
export type EntitlementUpdate = z.input<typeof entitlementUpdate>;
