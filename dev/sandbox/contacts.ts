import { randomUUID } from 'node:crypto';
import { type Caller, type Handler, isReply, objectBody, tenantFor } from './context';
import type { Contact, ContactEntry, SandboxData } from './data';
import { isoSeconds } from './format';
import { type FieldErrors, notFound, ok, pageOf, parsePaging, queryInteger, validationReply } from './http';
import { canonicalGuid } from './random';
import type { NamedId, ReferenceData } from './reference';
import type { Body } from './validation';

/** `GET /tenants/{tenantId}/contacts?rfaId&contactTypeId&page&pageSize`: the envelope plus `rfaId`. */
export const listContacts: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const errors: FieldErrors = {};
  const rfaId = queryInteger(context.query, 'rfaId', 'RfaId', errors) ?? null;
  const paging = parsePaging(context.query, errors);
  const contactType = context.query.get('contactTypeId');
  if (Object.keys(errors).length > 0) return validationReply(errors);
  // Contact type ids are compared as text: FPX answers them as strings, and one is a GUID.
  const matches = tenant.contacts.filter(
    (entry) =>
      entry.rfaId === rfaId &&
      (contactType === undefined || sameId(entry.contact.contactType?.id, contactType)),
  );
  return ok({ rfaId, ...pageOf(matches, paging, (entry) => entry.contact) });
};

/** `POST /tenants/{tenantId}/contacts`: answers the new contact with 200, as the guide says. */
export const createContact: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const body = objectBody(context);
  if (isReply(body)) return body;
  const input = readContact(body, context.data.reference, 'create');
  if (!input) return validationReply(body.errors);
  const now = isoSeconds(Date.now());
  const author = authorOf(context.caller);
  const contact = toContact(input, {
    contactId: randomUUID(),
    tenantId: tenant.tenantId,
    created: now,
    createdBy: author,
    modified: now,
    modifiedBy: author,
  });
  const rfaId = queryInteger(context.query, 'rfaId', 'RfaId', body.errors) ?? null;
  if (!body.valid) return validationReply(body.errors);
  tenant.contacts.push({ rfaId, contact });
  return ok(contact);
};

/** `PATCH /contacts/{contactId}`: no tenant in the path; fields left out keep their values. */
export const updateContact: Handler = (context) => {
  const raw = context.params.contactId ?? '';
  const contactId = canonicalGuid(raw);
  if (!contactId) return validationReply({ ContactId: [`The value '${raw}' is not valid.`] });
  const entry = findContact(context.data, contactId);
  if (!entry) return notFound(`Contact ${raw}`);
  const body = objectBody(context);
  if (isReply(body)) return body;
  const input = readContact(body, context.data.reference, 'update');
  if (!input) return validationReply(body.errors);
  const previous = entry.contact;
  const merged = Object.fromEntries(
    Object.entries(input).map(([key, value]) => [key, body.has(key) ? value : undefined]),
  ) as Partial<ContactInput>;
  entry.contact = {
    ...previous,
    ...withoutUndefined(contactFields(merged)),
    modified: isoSeconds(Date.now()),
    modifiedBy: authorOf(context.caller) ?? previous.modifiedBy,
  };
  return ok(entry.contact);
};

/** A create/update body: the contact's plain fields, and its reference data as `…Id` objects. */
type ContactInput = Pick<
  Contact,
  | 'name'
  | 'email'
  | 'phone'
  | 'managerName'
  | 'managerEmail'
  | 'title'
  | 'isEngaged'
  | 'isFastTrackContact'
  | 'evidence'
  | 'surveyEligible'
  | 'approvedSurvey'
  | 'note'
> & {
  timeZoneId: NamedId<string> | null;
  countryRegionId: NamedId<string> | null;
  adminTypeId: NamedId<number> | null;
  surveyLanguageId: NamedId<string> | null;
  contactTypeId: NamedId<number | string>;
  skillTypes: NamedId<number>[] | null;
  services: NamedId<number>[] | null;
};

/** Checks the body against the guide's create/update table; undefined when it fails (errors are in `body`). */
function readContact(
  body: Body,
  reference: ReferenceData,
  mode: 'create' | 'update',
): ContactInput | undefined {
  for (const [key, field] of REQUIRED) body.required(key, field);
  if (mode === 'update') body.required('phone', 'Phone');
  if (!body.has('contactTypeId') || body.get('contactTypeId') === null) {
    body.errors.ContactTypeId = ['Contact Type is Required'];
  }
  const input = {
    name: body.string('name', 'Name', { nullable: false, nonEmpty: true }),
    email: body.email('email', 'Email'),
    phone: body.string('phone', 'Phone'),
    managerName: body.string('managerName', 'ManagerName'),
    managerEmail: body.email('managerEmail', 'ManagerEmail'),
    title: body.string('title', 'Title'),
    isEngaged: body.boolean('isEngaged', 'IsEngaged'),
    isFastTrackContact: body.boolean('isFastTrackContact', 'IsFastTrackContact'),
    evidence: body.string('evidence', 'Evidence'),
    surveyEligible: body.boolean('surveyEligible', 'SurveyEligible'),
    approvedSurvey: body.string('approvedSurvey', 'ApprovedSurvey'),
    note: body.string('note', 'Note'),
    timeZoneId: body.reference('timeZoneId', 'TimeZoneId', reference.timezones),
    countryRegionId: body.reference('countryRegionId', 'CountryRegionId', reference.countryRegions),
    adminTypeId: integerReference(body, 'adminTypeId', 'AdminTypeId', reference.adminTypes),
    surveyLanguageId: body.reference('surveyLanguageId', 'SurveyLanguageId', reference.surveyLanguages),
    contactTypeId: integerReference(body, 'contactTypeId', 'ContactTypeId', reference.contactTypes),
    skillTypes: body.referenceList('skillTypes', 'SkillTypes', reference.skillTypes),
    services: body.referenceList('services', 'Services', reference.services),
  };
  return body.valid ? (input as ContactInput) : undefined;
}

const REQUIRED: Array<[string, string]> = [
  ['name', 'Name'],
  ['email', 'Email'],
  ['title', 'Title'],
  ['surveyEligible', 'SurveyEligible'],
  ['countryRegionId', 'CountryRegionId'],
  ['surveyLanguageId', 'SurveyLanguageId'],
  ['services', 'Services'],
];

/** Integer ids in requests (the guide's tables), though responses carry them as strings. */
function integerReference<Id>(body: Body, key: string, field: string, list: readonly NamedId<Id>[]) {
  const value = body.get(key);
  if (value !== undefined && value !== null && (typeof value !== 'number' || !Number.isInteger(value))) {
    body.fail(field, `${field} must be an integer.`);
    return undefined;
  }
  return body.reference(key, field, list);
}

type ContactStamp = Pick<
  Contact,
  'contactId' | 'tenantId' | 'created' | 'createdBy' | 'modified' | 'modifiedBy'
>;

function toContact(input: ContactInput, stamp: ContactStamp): Contact {
  const fields = contactFields(input);
  return {
    contactId: stamp.contactId,
    tenantId: stamp.tenantId,
    name: input.name,
    email: input.email ?? null,
    phone: input.phone ?? null,
    managerName: input.managerName ?? null,
    managerEmail: input.managerEmail ?? null,
    title: input.title ?? null,
    isEngaged: input.isEngaged ?? null,
    isFastTrackContact: input.isFastTrackContact ?? null,
    evidence: input.evidence ?? null,
    surveyEligible: input.surveyEligible ?? null,
    approvedSurvey: input.approvedSurvey ?? null,
    note: input.note ?? null,
    created: stamp.created,
    createdBy: stamp.createdBy,
    modified: stamp.modified,
    modifiedBy: stamp.modifiedBy,
    timezone: fields.timezone ?? null,
    id: fields.id ?? null,
    countryRegion: fields.countryRegion ?? null,
    adminType: fields.adminType ?? null,
    surveyLanguage: fields.surveyLanguage ?? null,
    contactType: fields.contactType ?? null,
    skillTypes: fields.skillTypes ?? null,
    services: fields.services ?? null,
  };
}

/** Request fields as FPX answers them: objects for ids, string ids, the stray top-level `id`. */
function contactFields(input: Partial<ContactInput>): Partial<Contact> {
  const asString = (entry: NamedId | null | undefined) =>
    entry === undefined ? undefined : entry === null ? null : { id: String(entry.id), name: entry.name };
  const copy = <T extends NamedId>(entry: T | null | undefined) =>
    entry === undefined ? undefined : entry === null ? null : { ...entry };
  const { timeZoneId, countryRegionId, adminTypeId, surveyLanguageId, contactTypeId, ...plain } = input;
  return {
    ...plain,
    timezone: copy(timeZoneId),
    id: countryRegionId === undefined ? undefined : (countryRegionId?.id ?? null),
    countryRegion: copy(countryRegionId),
    adminType: asString(adminTypeId),
    surveyLanguage: copy(surveyLanguageId),
    contactType: asString(contactTypeId),
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

/** Contacts of tenants generated so far: a contact id can only be known once its tenant was read. */
function findContact(data: SandboxData, contactId: string): ContactEntry | undefined {
  for (const tenant of data.tenants.generated()) {
    const entry = tenant.contacts.find(
      (candidate) => canonicalGuid(candidate.contact.contactId) === contactId,
    );
    if (entry) return entry;
  }
  return undefined;
}

function sameId(id: string | undefined, wanted: string): boolean {
  if (id === undefined) return false;
  return (canonicalGuid(id) ?? id.toLowerCase()) === (canonicalGuid(wanted) ?? wanted.toLowerCase());
}

function authorOf(caller: Caller): string | null {
  return caller.name ?? caller.sub ?? null;
}
