import type { z } from 'zod';
import { type PageBody, PagedList } from './paging';
import type { Priority } from './rate-limiter';
import * as requests from './requests';
import * as schemas from './schemas';
import type { FpxTransport, Query } from './transport';

export interface CallOptions {
  /** The end user's JWT, forwarded as `Authorization: Bearer` (FPX tracks users by it). */
  endUserToken?: string;
  signal?: AbortSignal;
  /** Attempts for a GET, the first included (default: the transport's retry policy). */
  maxAttempts?: number;
  /** `interactive` for calls someone waits on (a webhook, the health probe): served before bulk work. */
  priority?: Priority;
  /** Told of every HTTP request sent for this call or listing, retries included. */
  onAttempt?: () => void;
}

export interface ContactQuery extends CallOptions {
  rfaId?: number | string;
  contactTypeId?: number;
}

export interface NoteQuery extends CallOptions {
  noteCategory?: number;
  rfaId?: number | string;
  orderByCreated?: 'Ascending' | 'Descending';
}

export const REFERENCE_LISTS = {
  timezones: '/timezones',
  services: '/services',
  frpServices: '/services/frp',
  contactTypes: '/contactTypes',
  countryRegions: '/countryRegions',
  adminTypes: '/adminTypes',
  surveyLanguages: '/surveyLanguages',
  skillTypes: '/skillTypes',
  noteCategories: '/noteCategories',
} as const;
export type ReferenceList = keyof typeof REFERENCE_LISTS;

/** The guide writes "tenants/services/maxEntitlements"; this is the path we take (FPX-NOTES.md), kept here only. */
const maxEntitlementsPath = (tenant: string, serviceId: number) =>
  `/tenants/${tenant}/services/${serviceId}/maxEntitlements`;

/** One typed function per FPX endpoint. Every answer is validated; tenant ids come back lowercase with dashes. */
export class FpxClient {
  constructor(
    readonly transport: FpxTransport,
    readonly pageSize: number,
  ) {}

  /** GET /partnerTenants: tenants with a claimed workload. Paged although the guide documents no paging. */
  partnerTenants(options: CallOptions = {}): PagedList<schemas.PartnerTenant> {
    return this.list('/partnerTenants', 'GET /partnerTenants', schemas.partnerTenant, {}, options);
  }

  /** GET /partnerReferrals. */
  partnerReferrals(options: CallOptions = {}): PagedList<schemas.Referral> {
    return this.list('/partnerReferrals', 'GET /partnerReferrals', schemas.referral, {}, options);
  }

  /** GET /tenants/{tenantId}/services/entitlements: all records, or those of `serviceIds`. A bare array. */
  entitlements(tenantId: string, serviceIds: number[] = [], options: CallOptions = {}) {
    return this.transport.call({
      method: 'GET',
      path: `/tenants/${tenantPath(tenantId)}/services/entitlements`,
      endpoint: 'GET /tenants/{tenantId}/services/entitlements',
      query: { serviceIds },
      schema: schemas.entitlementList,
      ...options,
    });
  }

  /** PATCH /tenants/{tenantId}/services/{serviceId}/entitlements: one record in, the service's records out. */
  updateEntitlement(
    tenantId: string,
    serviceId: number,
    update: requests.EntitlementUpdate,
    options: CallOptions = {},
  ) {
    return this.transport.call({
      method: 'PATCH',
      path: `/tenants/${tenantPath(tenantId)}/services/${serviceIdPath(serviceId)}/entitlements`,
      endpoint: 'PATCH /tenants/{tenantId}/services/{serviceId}/entitlements',
      body: requests.entitlementUpdate.parse(update),
      schema: schemas.entitlementList,
      ...options,
    });
  }

  /** GET /tenants/{tenantId}/services/{serviceId}/maxEntitlements: the service's seats. */
  maxEntitlements(tenantId: string, serviceId: number, options: CallOptions = {}) {
    return this.transport.call({
      method: 'GET',
      path: maxEntitlementsPath(tenantPath(tenantId), serviceIdPath(serviceId)),
      endpoint: 'GET /tenants/{tenantId}/services/{serviceId}/maxEntitlements',
      schema: schemas.maxEntitlements,
      ...options,
    });
  }

  /** GET /tenants/{tenantId}/contacts (with `rfaId` for a referral's tenant). */
  contacts(tenantId: string, query: ContactQuery = {}): PagedList<schemas.Contact> {
    const { rfaId, contactTypeId, ...options } = query;
    return this.list(
      `/tenants/${tenantPath(tenantId)}/contacts`,
      'GET /tenants/{tenantId}/contacts',
      schemas.contact,
      { rfaId, contactTypeId },
      options,
    );
  }

  /** POST /tenants/{tenantId}/contacts (with `rfaId` for a referral's tenant: FPX files it under the referral). */
  createContact(
    tenantId: string,
    contact: requests.ContactCreate,
    { rfaId, ...options }: CallOptions & { rfaId?: number | string } = {},
  ) {
    return this.transport.call({
      method: 'POST',
      path: `/tenants/${tenantPath(tenantId)}/contacts`,
      endpoint: 'POST /tenants/{tenantId}/contacts',
      query: { rfaId },
      body: requests.contactCreate.parse(contact),
      schema: schemas.contact,
      ...options,
    });
  }

  /** PATCH /contacts/{contactId} (the guide's example shows POST; FPX-NOTES #2). */
  updateContact(contactId: string, contact: requests.ContactUpdate, options: CallOptions = {}) {
    return this.transport.call({
      method: 'PATCH',
      path: `/contacts/${encodeURIComponent(contactId)}`,
      endpoint: 'PATCH /contacts/{contactId}',
      body: requests.contactUpdate.parse(contact),
      schema: schemas.contact,
      ...options,
    });
  }

  /** GET /tenants/{tenantId}/notes: one note category per listing (FPX's default is 1). */
  notes(tenantId: string, query: NoteQuery = {}): PagedList<schemas.Note> {
    const { noteCategory, rfaId, orderByCreated, ...options } = query;
    return this.list(
      `/tenants/${tenantPath(tenantId)}/notes`,
      'GET /tenants/{tenantId}/notes',
      schemas.note,
      { noteCategory, rfaId, orderByCreated },
      options,
    );
  }

  /** POST /tenants/{tenantId}/notes (with `rfaId` for a referral's tenant: FPX files it under the referral). */
  createNote(
    tenantId: string,
    note: requests.NoteCreate,
    { rfaId, ...options }: CallOptions & { rfaId?: number | string } = {},
  ) {
    return this.transport.call({
      method: 'POST',
      path: `/tenants/${tenantPath(tenantId)}/notes`,
      endpoint: 'POST /tenants/{tenantId}/notes',
      query: { rfaId },
      body: requests.noteCreate.parse(note),
      schema: schemas.note,
      ...options,
    });
  }

  /** Reference data (`/timezones`, `/services/frp`, `/noteCategories`, …) as `{id, name}`: every page. */
  referenceList(list: ReferenceList, options: CallOptions = {}): Promise<schemas.NamedRef[]> {
    return this.referencePages(list, options).toArray();
  }

  /** A reference list page by page: a bare array is the whole list, an envelope pages (FPX-NOTES #15). */
  referencePages(list: ReferenceList, options: CallOptions = {}): PagedList<schemas.NamedRef> {
    const path = REFERENCE_LISTS[list];
    return this.list(path, `GET ${path}`, schemas.namedRef, {}, options, schemas.referencePage);
  }

  private list<T extends z.ZodType>(
    path: string,
    endpoint: string,
    item: T,
    query: Query,
    options: CallOptions,
    /** The page's schema, when it is not the list envelope of `item` (reference lists may come bare). */
    envelope: z.ZodType<PageBody<z.output<T>>> = schemas.listEnvelope(item),
  ): PagedList<z.output<T>> {
    return new PagedList(endpoint, (page) =>
      this.transport.call({
        method: 'GET',
        path,
        endpoint,
        query: { ...query, page, pageSize: this.pageSize },
        schema: envelope,
        ...options,
      }),
    );
  }
}

/** Tenant ids go out lowercase with dashes, whatever form the caller had. */
function tenantPath(tenantId: string): string {
  return encodeURIComponent(schemas.tenantId.parse(tenantId));
}

function serviceIdPath(serviceId: number): number {
  if (!Number.isInteger(serviceId) || serviceId < 0) throw new RangeError('serviceId must be a whole number');
  return serviceId;
}
