import { canonicalGuid } from './random';
import type { NamedId, ReferenceData } from './reference';

// Wire shapes follow the guide's samples. Each allows extra fields: FPX adds fields the guide does not
// document, and clients must ignore what they do not know (FPX-NOTES "Mistakes" #5).

export interface PartnerTenant {
  tenantId: string;
  tpid: number;
  name: string;
  claimedWorkloads: NamedId<number>[];
  [extra: string]: unknown;
}

export interface ReferralWorkload {
  id: number;
  name: string;
  claimed: boolean;
}

export interface Referral {
  id: number;
  created: string;
  tenantId: string;
  tenantName: string;
  tenantDomain: string | null;
  workloads: ReferralWorkload[];
  [extra: string]: unknown;
}

export interface EntitlementRecord {
  serviceIntentId: string;
  l1: NamedId<string>;
  id: string;
  name: string;
  l2: NamedId<string> | null;
  l3: NamedId<string> | null;
  entitlementCount: number;
  targetDate: string | null;
  owner: string | null;
  nextActionDate: string | null;
  notes: string | null;
  // No service id: the guide's sample names none (FPX-NOTES #12). `recordsNameService` adds one on the wire.
  [extra: string]: unknown;
}

export interface ServiceEntitlements {
  serviceId: number;
  /** The service's seats: the records' counts must add up to this. */
  maxEntitlements: number;
  records: EntitlementRecord[];
}

export interface Contact {
  contactId: string;
  tenantId: string;
  name: string;
  email: string | null;
  phone: string | null;
  managerName: string | null;
  managerEmail: string | null;
  title: string | null;
  isEngaged: boolean | null;
  isFastTrackContact: boolean | null;
  evidence: string | null;
  surveyEligible: boolean | null;
  approvedSurvey: string | null;
  note: string | null;
  created: string;
  createdBy: string | null;
  modified: string;
  modifiedBy: string | null;
  timezone: NamedId<string> | null;
  /** The guide's stray top-level id (a flattened country/region object); kept because FPX sends it. */
  id: string | null;
  countryRegion: NamedId<string> | null;
  /** Ids are strings in responses although requests send integers (FPX-NOTES #6). */
  adminType: NamedId<string> | null;
  contactType: NamedId<string> | null;
  surveyLanguage: NamedId<string> | null;
  skillTypes: NamedId<number>[] | null;
  services: NamedId<number>[] | null;
  [extra: string]: unknown;
}

export interface Note {
  text: string | null;
  author: string | null;
  created: string;
  noteCategory: NamedId<number>;
  [extra: string]: unknown;
}

/** A contact or note and the referral (rfaId) it belongs to; null for the tenant's own. */
export interface ContactEntry {
  rfaId: number | null;
  contact: Contact;
}
export interface NoteEntry {
  rfaId: number | null;
  note: Note;
}

export interface TenantDetails {
  /** As FPX spells it in this tenant's responses (some tenants uppercase or without dashes). */
  tenantId: string;
  tenantName: string;
  entitlements: Map<number, ServiceEntitlements>;
  contacts: ContactEntry[];
  /** Oldest first. */
  notes: NoteEntry[];
}

/** The sandbox's live store. Tests edit it to simulate changes made in FPX. */
export interface SandboxData {
  seed: number;
  reference: ReferenceData;
  /** `GET /partnerTenants`, in this order. */
  partnerTenants: PartnerTenant[];
  /** `GET /partnerReferrals`, in this order. */
  referrals: Referral[];
  /** Every tenant the `/tenants/{tenantId}/…` endpoints know: claimed and referred ones. */
  tenants: TenantDirectory;
  /** How `GET …/services/entitlements` behaves where the guide is silent (FPX-NOTES #12); tests switch it. */
  entitlements: EntitlementBehaviour;
  /**
   * Unset (the default): every reference list is a bare array of `{id, name}`, paging ignored. Set: the
   * list envelope `{count, hasMore, items}`, at most `pageSize` a page (FPX-NOTES #15: either may come).
   */
  referencePaging?: { pageSize: number };
}

export interface EntitlementBehaviour {
  /** Without `serviceIds`: every record of every service (`all`), or a 400 (`reject`, the default). */
  unfiltered: 'all' | 'reject';
  /** Records carry `serviceId` (the guide's sample has none; default false). */
  recordsNameService: boolean;
}

export function emptyTenantDetails(tenantId: string, tenantName: string): TenantDetails {
  return { tenantId, tenantName, entitlements: new Map(), contacts: [], notes: [] };
}

/**
 * Tenant details by tenant id, in any GUID form (keys are stored lowercase with dashes).
 * Details are generated on first use, so 100,000 referrals start fast; iterating generates them all.
 */
export class TenantDirectory extends Map<string, TenantDetails> {
  private pendingSources: Map<string, unknown> | undefined;

  /**
   * @param generate makes a tenant's details from its source, on first access.
   * @param listPending the tenants (ids lowercase with dashes) generated lazily. Read on the first lookup, not
   *   at start: indexing 100,000 referral tenants up front doubled the time to generate the data.
   */
  constructor(
    private readonly generate: (canonicalId: string, source: unknown) => TenantDetails = noGenerator,
    private listPending?: () => Iterable<[string, unknown]>,
  ) {
    super();
  }

  private get pending(): Map<string, unknown> {
    if (!this.pendingSources) {
      const pending = new Map<string, unknown>();
      for (const [id, source] of this.listPending?.() ?? []) if (!super.has(id)) pending.set(id, source);
      this.pendingSources = pending;
      this.listPending = undefined;
    }
    return this.pendingSources;
  }

  override get(tenantId: string): TenantDetails | undefined {
    const key = canonicalGuid(tenantId);
    if (!key) return undefined;
    const found = super.get(key);
    if (found) return found;
    if (!this.pending.has(key)) return undefined;
    const details = this.generate(key, this.pending.get(key));
    this.pending.delete(key);
    super.set(key, details);
    return details;
  }

  override has(tenantId: string): boolean {
    const key = canonicalGuid(tenantId);
    return key !== undefined && (super.has(key) || this.pending.has(key));
  }

  override set(tenantId: string, details: TenantDetails): this {
    const key = keyOf(tenantId);
    this.pending.delete(key);
    return super.set(key, details);
  }

  override delete(tenantId: string): boolean {
    const key = canonicalGuid(tenantId);
    if (!key) return false;
    const wasPending = this.pending.delete(key);
    return super.delete(key) || wasPending;
  }

  override clear(): void {
    this.pending.clear();
    super.clear();
  }

  override get size(): number {
    return super.size + this.pending.size;
  }

  /** The tenants generated so far, without generating the rest. */
  generated(): IterableIterator<TenantDetails> {
    return super.values();
  }

  override entries(): MapIterator<[string, TenantDetails]> {
    this.generateAll();
    return super.entries();
  }

  override keys(): MapIterator<string> {
    this.generateAll();
    return super.keys();
  }

  override values(): MapIterator<TenantDetails> {
    this.generateAll();
    return super.values();
  }

  override [Symbol.iterator](): MapIterator<[string, TenantDetails]> {
    return this.entries();
  }

  override forEach(
    callback: (value: TenantDetails, key: string, map: Map<string, TenantDetails>) => void,
    thisArg?: unknown,
  ): void {
    this.generateAll();
    super.forEach(callback, thisArg);
  }

  private generateAll(): void {
    for (const key of [...this.pending.keys()]) this.get(key);
  }
}

function noGenerator(): never {
  throw new Error('This TenantDirectory has no generator for lazy tenants');
}

function keyOf(tenantId: string): string {
  const key = canonicalGuid(tenantId);
  if (!key) throw new Error(`Not a tenant id (GUID): ${tenantId}`);
  return key;
}
