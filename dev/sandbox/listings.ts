import type { Handler } from './context';
import type { Contact } from './data';
import { type FieldErrors, ok, pageOf, parsePaging, validationReply } from './http';
import type { NamedId, ReferenceData } from './reference';

/** `GET /partnerTenants`: paged although the guide documents no parameters (FPX-NOTES #9). */
export const listPartnerTenants: Handler = ({ query, data }) => {
  const errors: FieldErrors = {};
  const paging = parsePaging(query, errors);
  return Object.keys(errors).length > 0 ? validationReply(errors) : ok(pageOf(data.partnerTenants, paging));
};

export const listPartnerReferrals: Handler = ({ query, data }) => {
  const errors: FieldErrors = {};
  const paging = parsePaging(query, errors);
  return Object.keys(errors).length > 0 ? validationReply(errors) : ok(pageOf(data.referrals, paging));
};

/** `GET /partnerTenants/contacts`: the contacts of every partner tenant (not of tenants only referred). */
export const listPartnerContacts: Handler = ({ query, data }) => {
  const errors: FieldErrors = {};
  const paging = parsePaging(query, errors);
  if (Object.keys(errors).length > 0) return validationReply(errors);
  const contacts: Contact[] = [];
  for (const tenant of data.partnerTenants) {
    for (const entry of data.tenants.get(tenant.tenantId)?.contacts ?? []) {
      if (entry.rfaId === null) contacts.push(entry.contact);
    }
  }
  return ok(pageOf(contacts, paging));
};

/** A reference list: the bare array of `{id, name}`, or pages of it when `data.referencePaging` is set. */
export function referenceList(pick: (reference: ReferenceData) => readonly NamedId[]): Handler {
  return ({ query, data }) => {
    const list = pick(data.reference);
    if (!data.referencePaging) return ok(list);
    const errors: FieldErrors = {};
    const paging = parsePaging(query, errors);
    if (Object.keys(errors).length > 0) return validationReply(errors);
    return ok(
      pageOf(list, { ...paging, pageSize: Math.min(paging.pageSize, data.referencePaging.pageSize) }),
    );
  };
}
