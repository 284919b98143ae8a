import { createContact, listContacts, updateContact } from './contacts';
import type { Handler } from './context';
import { getEntitlements, getMaxEntitlements, patchEntitlements } from './entitlements';
import { errorReply } from './http';
import { listPartnerContacts, listPartnerReferrals, listPartnerTenants, referenceList } from './listings';
import { createNote, listNotes } from './notes';

/** Every endpoint lives under this path. */
export const API_BASE = '/ftop/v1.2/api';

interface Route {
  method: string;
  /** Segments after the API base; `:name` captures a path parameter. */
  segments: string[];
  handler: Handler;
}

const route = (method: string, path: string, handler: Handler): Route => ({
  method,
  segments: path.split('/').filter(Boolean),
  handler,
});

const ROUTES: Route[] = [
  route('GET', '/partnerTenants', listPartnerTenants),
  route('GET', '/partnerTenants/contacts', listPartnerContacts),
  route('GET', '/partnerReferrals', listPartnerReferrals),
  route('GET', '/tenants/:tenantId/services/entitlements', getEntitlements),
  route('PATCH', '/tenants/:tenantId/services/:serviceId/entitlements', patchEntitlements),
  route('GET', '/tenants/:tenantId/services/:serviceId/maxEntitlements', getMaxEntitlements),
  route('GET', '/tenants/:tenantId/contacts', listContacts),
  route('POST', '/tenants/:tenantId/contacts', createContact),
  route('PATCH', '/contacts/:contactId', updateContact),
  route('GET', '/tenants/:tenantId/notes', listNotes),
  route('POST', '/tenants/:tenantId/notes', createNote),
  route(
    'GET',
    '/timezones',
    referenceList((r) => r.timezones),
  ),
  route(
    'GET',
    '/services',
    referenceList((r) => r.services),
  ),
  route(
    'GET',
    '/services/frp',
    referenceList((r) => r.frpServices),
  ),
  route(
    'GET',
    '/contactTypes',
    referenceList((r) => r.contactTypes),
  ),
  route(
    'GET',
    '/countryRegions',
    referenceList((r) => r.countryRegions),
  ),
  route(
    'GET',
    '/adminTypes',
    referenceList((r) => r.adminTypes),
  ),
  route(
    'GET',
    '/surveyLanguages',
    referenceList((r) => r.surveyLanguages),
  ),
  route(
    'GET',
    '/skillTypes',
    referenceList((r) => r.skillTypes),
  ),
  route(
    'GET',
    '/noteCategories',
    referenceList((r) => r.noteCategories),
  ),
];

export type Match =
  | { handler: Handler; params: Record<string, string> }
  | { status: 404 | 405; allow?: string };

/** Finds the handler for a path after the API base; route segments match case-insensitively, as ASP.NET does. */
export function matchRoute(method: string, path: string): Match {
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  const allowed: string[] = [];
  for (const candidate of ROUTES) {
    const params = matchSegments(candidate.segments, segments);
    if (!params) continue;
    if (candidate.method === method) return { handler: candidate.handler, params };
    allowed.push(candidate.method);
  }
  return allowed.length > 0 ? { status: 405, allow: allowed.join(', ') } : { status: 404 };
}

function matchSegments(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i] as string;
    const actual = segments[i] as string;
    if (expected.startsWith(':')) params[expected.slice(1)] = actual;
    else if (expected.toLowerCase() !== actual.toLowerCase()) return undefined;
  }
  return params;
}

export function unmatchedReply(match: { status: 404 | 405; allow?: string }, method: string, path: string) {
  return match.status === 405
    ? errorReply(405, `Method ${method} is not allowed on ${path}.`, {
        headers: { Allow: match.allow ?? '' },
      })
    : errorReply(404, `No endpoint at ${path}.`);
}
