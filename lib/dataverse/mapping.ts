import type { z } from 'zod';
import { fieldErrors } from '../crm/payloads';
import { contactCreate, contactUpdate, type NoteCreate, noteCreate } from '../fpx/requests';
import type { Attributes, RemoteExecutionContext } from './context';

/** What an event asks of FPX, by its table and message; undefined for anything else (answered 200, not kept). */
export type EventKind = 'note' | 'contact';

export function eventKind(context: RemoteExecutionContext): EventKind | undefined {
  const table = context.PrimaryEntityName.toLowerCase();
  const message = context.MessageName.toLowerCase();
  if (table === 'annotation' && message === 'create') return 'note';
  if (table === 'contact' && (message === 'create' || message === 'update')) return 'contact';
  return undefined;
}

/**
 * The idempotency keys (our `webhookId`s): one note per annotation; one create per contact and generation (the
 * first create is generation 0; DataverseLinks points at the current one); one update per event.
 */
export const keys = {
  note: (annotationId: string) => `dataverse:annotation:${annotationId}:create`,
  contactCreate: (contactId: string) => `dataverse:contact:${contactId}:create`,
  /** The contact's create of this generation: a later one only after the previous made no FPX contact. */
  contactCreateAt: (contactId: string, generation: number) =>
    `dataverse:contact:${contactId}:create${generation === 0 ? '' : `:${generation}`}`,
  contactUpdate: (contactId: string, eventId: string) => `dataverse:contact:${contactId}:update:${eventId}`,
};

/**
 * What a contact's current create (by its delivery status) leaves to an event of a contact not linked yet:
 * - `wait`: it is on its way (queued, processing) or just delivered (the link is being written): 503, retried;
 * - `operator`: it `failed` (FPX down past the attempts): it may have reached FPX, and an operator's Retry on the
 *   operations page brings it back (looking in FPX first), so a new create could make a second contact: none;
 * - `next`: it ended without an FPX contact for good (rejected, ignored, superseded): the next generation creates.
 */
export function afterCreate(status: string): 'wait' | 'operator' | 'next' {
  switch (status) {
    case 'rejected':
    case 'ignored':
    case 'superseded':
      return 'next';
    case 'failed':
      return 'operator';
    default:
      return 'wait';
  }
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;

/** A note's FPX text: its title (`subject`) and body (`notetext`), a blank line between; undefined when both are empty. */
export function noteText(attributes: Attributes): string | undefined {
  const parts = [text(attributes.subject), text(attributes.notetext)].filter(Boolean);
  return parts.length > 0 ? parts.join('\n\n') : undefined;
}

export type Mapped<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The FPX note, checked against FPX's create table (e.g. its length limit). */
export function mapNote(attributes: Attributes, noteCategoryId: number): Mapped<NoteCreate> {
  const note = noteText(attributes);
  if (note === undefined)
    return { ok: false, reason: 'the note has neither a title (subject) nor text (notetext)' };
  return check(noteCreate, { text: note, noteCategoryId });
}

/** The country's name as Dataverse holds it (free text), matched case- and space-insensitively. */
export const countryKey = (name: string) => name.trim().replace(/\s+/g, ' ').toLowerCase();

/**
 * The FPX contact from a Dataverse contact: name (`firstname` + `lastname`, else `fullname`), `emailaddress1`,
 * `telephone1`, `jobtitle`, the country id matched from `address1_country`; the rest from
 * DATAVERSE_CONTACT_DEFAULTS. A value Dataverse carries wins over a default; fields FPX requires (null allowed)
 * are sent as null when neither has them. Checked against FPX's create or update table: a missing required
 * field is named in the reason.
 */
export function mapContact(
  attributes: Attributes,
  countryRegionId: string | undefined,
  defaults: Record<string, unknown>,
  form: 'create' | 'update',
): Mapped<z.input<typeof contactCreate>> {
  const name =
    [text(attributes.firstname), text(attributes.lastname)].filter(Boolean).join(' ') ||
    text(attributes.fullname);
  const carried: Record<string, unknown> = {
    name,
    email: text(attributes.emailaddress1),
    phone: text(attributes.telephone1),
    title: text(attributes.jobtitle),
    countryRegionId,
  };
  const contact: Record<string, unknown> = {
    email: null,
    title: null,
    surveyEligible: null,
    countryRegionId: null,
    surveyLanguageId: null,
    services: null,
    ...(form === 'update' ? { phone: null } : {}),
    ...defaults,
  };
  for (const [field, value] of Object.entries(carried)) if (value !== undefined) contact[field] = value;
  return check(form === 'create' ? contactCreate : contactUpdate, contact);
}

function check<S extends z.ZodType>(schema: S, value: unknown): Mapped<z.input<S>> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: value as z.input<S> };
  const reasons = Object.entries(fieldErrors(result.error)).map(
    ([field, list]) => `${field}: ${list.join('; ')}`,
  );
  return { ok: false, reason: `FPX requires what Dataverse did not give: ${reasons.join(', ')}` };
}
