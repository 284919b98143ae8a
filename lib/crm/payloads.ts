import { z } from 'zod';
import { fpxRequests, normalizeGuid } from '../fpx';

/**
 * The webhook payloads: FPX's request schemas (lib/fpx/requests.ts, the guide's tables) extended with
 * what the path of the FPX call needs. Nothing is defined twice, so what passes here is what FPX's table
 * asks for, and the OpenAPI document is generated from these same schemas.
 */

/** A GUID in any form (dashes or not, braces, any case); comes out lowercase with dashes. */
const anyGuid = (what: string) =>
  z
    .string({ error: `expected the ${what} (a GUID)` })
    .transform((value, ctx) => {
      const guid = normalizeGuid(value);
      if (guid) return guid;
      ctx.addIssue({ code: 'custom', message: `expected the ${what} (a GUID)` });
      return z.NEVER;
    })
    .meta({
      description: `The ${what}: a GUID with or without dashes or braces, in any case`,
      examples: ['9d4c6f56-7db9-4236-9957-ce225e3583be'],
    });

const tenantId = anyGuid('tenant id');

/**
 * The referral the note or contact is for: sent as `?rfaId=` on the create, as FPX files a referred tenant's
 * notes and contacts under it (FPX-NOTES #16), and looked for there after an unknown outcome.
 */
const RFA_MESSAGE = "expected FPX's referral id (an integer or a string of digits)";
const rfaId = z
  .union(
    [
      z.int({ error: RFA_MESSAGE }).nonnegative(RFA_MESSAGE),
      z.string({ error: RFA_MESSAGE }).regex(/^\d+$/, RFA_MESSAGE),
    ],
    { error: RFA_MESSAGE },
  )
  .transform(String)
  .nullish()
  .meta({
    description: "FPX's referral id the note or contact is for (a referred tenant's); sent to FPX as ?rfaId=",
    examples: [123456],
  });

/** `POST /api/crm/notes` → `POST /tenants/{tenantId}/notes[?rfaId=]`. */
export const notePayload = fpxRequests.noteCreate.extend({ tenantId, rfaId });

/** `POST /api/crm/contacts` without `contactId` → `POST /tenants/{tenantId}/contacts[?rfaId=]` (the create table). */
export const contactCreatePayload = fpxRequests.contactCreate.extend({ tenantId, rfaId });

/** `POST /api/crm/contacts` with `contactId` → `PATCH /contacts/{contactId}` (the update table: `phone` required). */
export const contactUpdatePayload = fpxRequests.contactUpdate.extend({
  tenantId,
  contactId: anyGuid('contact id'),
});

/** Either contact form, as documented; parsing picks one by `contactId` so errors name the right table. */
export const contactPayload = z.union([contactUpdatePayload, contactCreatePayload]);

/** `POST /api/crm/entitlements` → `PATCH /tenants/{tenantId}/services/{serviceId}/entitlements`. */
export const entitlementPayload = fpxRequests.entitlementUpdate.extend({
  tenantId,
  serviceId: z.number({ error: 'expected an integer' }).int('expected an integer').nonnegative(),
});

/** What one webhook asks of FPX, as stored with its delivery (JSON) and replayed by the queue. */
export type CrmOperation =
  | { op: 'createNote'; tenantId: string; rfaId?: string; note: fpxRequests.NoteCreate }
  | {
      op: 'createContact';
      tenantId: string;
      rfaId?: string;
      contact: fpxRequests.ContactCreate;
      /** From Dataverse: its contact id, linked to the FPX contact once created (DataverseLinks). */
      dataverseContactId?: string;
    }
  | { op: 'updateContact'; tenantId: string; contactId: string; contact: fpxRequests.ContactUpdate }
  | { op: 'updateEntitlement'; tenantId: string; serviceId: number; update: fpxRequests.EntitlementUpdate };

export type WebhookEndpoint = 'notes' | 'contacts' | 'entitlements';
export const WEBHOOK_ENDPOINTS: readonly WebhookEndpoint[] = ['notes', 'contacts', 'entitlements'];

export type FieldErrors = Record<string, string[]>;
export type ParsedPayload = { ok: true; operation: CrmOperation } | { ok: false; errors: FieldErrors };

/** Validates a webhook's JSON against its endpoint's schema; errors as `{field: [reason]}`. */
export function parsePayload(endpoint: WebhookEndpoint, json: unknown): ParsedPayload {
  switch (endpoint) {
    case 'notes':
      return parse(notePayload, json, ({ tenantId, rfaId, ...note }) => ({
        op: 'createNote',
        tenantId,
        ...(rfaId == null ? {} : { rfaId }),
        note,
      }));
    case 'entitlements':
      return parse(entitlementPayload, json, ({ tenantId, serviceId, ...update }) => ({
        op: 'updateEntitlement',
        tenantId,
        serviceId,
        update,
      }));
    case 'contacts': {
      const contactId = isObject(json) ? json.contactId : undefined;
      if (contactId === undefined || contactId === null) {
        return parse(contactCreatePayload, json, ({ tenantId, rfaId, ...contact }) => ({
          op: 'createContact',
          tenantId,
          ...(rfaId == null ? {} : { rfaId }),
          contact,
        }));
      }
      return parse(contactUpdatePayload, json, ({ tenantId, contactId: id, ...contact }) => ({
        op: 'updateContact',
        tenantId,
        contactId: id,
        contact,
      }));
    }
  }
}

function parse<S extends z.ZodType>(
  schema: S,
  json: unknown,
  toOperation: (value: z.output<S>) => CrmOperation,
): ParsedPayload {
  if (!isObject(json)) return { ok: false, errors: { body: ['expected a JSON object'] } };
  const result = schema.safeParse(json);
  if (!result.success) return { ok: false, errors: fieldErrors(result.error) };
  return { ok: true, operation: toOperation(result.data) };
}

/** Zod issues as `{field: [reason]}`; the field is the dotted path (`services.2`), or `body` for the whole. */
export function fieldErrors(error: z.ZodError): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of error.issues) {
    const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
    const list = errors[field] ?? [];
    if (!list.includes(issue.message)) list.push(issue.message);
    errors[field] = list;
  }
  return errors;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Creates FPX takes no key for, so a resend after an unknown outcome must look first (reconcile). */
export function isCreate(operation: CrmOperation): boolean {
  if (operation.op === 'createNote' || operation.op === 'createContact') return true;
  // An entitlement PATCH without serviceIntentId adds a status record.
  return operation.op === 'updateEntitlement' && operation.update.serviceIntentId === undefined;
}
