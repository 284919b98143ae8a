import type {
  Contact,
  ContactEntry,
  EntitlementRecord,
  NoteEntry,
  ServiceEntitlements,
  TenantDetails,
} from './data';
import { asStringId, BASE_TIME, DAY_MS, HOUR_MS, isoSeconds } from './format';
import { Random } from './random';
import { GUID_CONTACT_TYPE_ID, type ReferenceData } from './reference';

const FIRST_NAMES = [
  'Ada',
  'Ben',
  'Chen',
  'Dana',
  'Eli',
  'Fatima',
  'Goran',
  'Hana',
  'Ivan',
  'Jo',
  'Kofi',
  'Lena',
];
const LAST_NAMES = ['Adams', 'Berg', 'Costa', 'Diaz', 'Evans', 'Fischer', 'Garcia', 'Huang', 'Ito', 'Jensen'];
const TITLES = ['IT Director', 'IT administrator', 'CIO', 'Project Manager', 'Messaging Lead', null];
const NOTE_TEXTS = [
  'Kick-off call held; customer wants to start with mail migration.',
  'Waiting for the customer to assign licences.',
  'Pilot group of 50 users agreed.',
  'Network assessment shows proxy blocks Teams media.',
  'Executive sponsor changed; new contact added.',
  'Deployment paused until the next fiscal quarter.',
];

/**
 * A tenant's entitlements (1–3 services whose records add up to maxEntitlements), 0–6 contacts and
 * 0–8 notes; about 30% of contacts and notes belong to one of `rfaIds` (the tenant's referrals).
 */
export function generateDetails(
  seed: number,
  canonical: string,
  tenantId: string,
  tenantName: string,
  rfaIds: number[],
  reference: ReferenceData,
): TenantDetails {
  // Seeded by tenant, so a tenant's details do not depend on which tenants were looked at first.
  const random = new Random(seed, 'details', canonical);
  const entitlements = new Map<number, ServiceEntitlements>();
  for (const service of random.sample(reference.frpServices, random.int(1, 3))) {
    entitlements.set(service.id, generateService(random, reference, service.id));
  }
  const forReferral = () => (rfaIds.length > 0 && random.chance(0.3) ? random.pick(rfaIds) : null);
  const contacts: ContactEntry[] = [];
  const contactCount = random.int(0, 6);
  for (let c = 0; c < contactCount; c++) {
    contacts.push({ rfaId: forReferral(), contact: generateContact(random, reference, tenantId) });
  }
  const notes: NoteEntry[] = [];
  const noteCount = random.int(0, 8);
  let noteTime = BASE_TIME + random.int(0, 90) * DAY_MS;
  for (let n = 0; n < noteCount; n++) {
    noteTime += random.int(1, 240) * HOUR_MS;
    const category = random.pick(reference.noteCategories.slice(0, 4));
    notes.push({
      rfaId: forReferral(),
      note: {
        text: random.pick(NOTE_TEXTS),
        author: random.chance(0.2) ? null : personName(random),
        created: isoSeconds(noteTime),
        noteCategory: { ...category },
      },
    });
  }
  return { tenantId, tenantName, entitlements, contacts, notes };
}

function generateService(random: Random, reference: ReferenceData, serviceId: number): ServiceEntitlements {
  const maxEntitlements = random.int(1, 50) * 10;
  const statuses = random.sample(reference.l1Statuses, random.int(1, 3));
  // Split the seats over the statuses: every record gets at least one seat, the last takes the rest.
  const counts: number[] = [];
  let left = maxEntitlements;
  statuses.forEach((_, index) => {
    const remaining = statuses.length - index - 1;
    const count = remaining === 0 ? left : random.int(1, left - remaining);
    counts.push(count);
    left -= count;
  });
  const records = statuses.map((l1, index): EntitlementRecord => {
    const l2 = random.chance(0.6) ? { ...random.pick(reference.l2Statuses) } : null;
    const record: EntitlementRecord = {
      serviceIntentId: random.guid(),
      l1: { ...l1 },
      id: random.guid(),
      name: l1.name,
      l2,
      l3: l2 && random.chance(0.5) ? { ...random.pick(reference.l3Statuses) } : null,
      entitlementCount: counts[index] as number,
      targetDate: random.chance(0.7) ? isoSeconds(BASE_TIME + random.int(30, 400) * DAY_MS) : null,
      owner: random.chance(0.8) ? personName(random) : null,
      nextActionDate: random.chance(0.5) ? isoSeconds(BASE_TIME + random.int(10, 300) * DAY_MS) : null,
      notes: random.chance(0.6) ? random.pick(NOTE_TEXTS) : null,
    };
    if (random.chance(0.15)) record.statusReason = 'Imported';
    return record;
  });
  return { serviceId, maxEntitlements, records };
}

function generateContact(random: Random, reference: ReferenceData, tenantId: string): Contact {
  const name = personName(random);
  const email = random.chance(0.9) ? `${name.toLowerCase().replace(' ', '.')}@example.com` : null;
  const country = random.chance(0.9) ? { ...random.pick(reference.countryRegions) } : null;
  const created = isoSeconds(BASE_TIME + random.int(0, 365) * DAY_MS);
  const contactType = random.chance(0.15)
    ? { id: GUID_CONTACT_TYPE_ID, name: 'Some contact type' }
    : asStringId(random.pick(reference.contactTypes.filter((t) => typeof t.id === 'number')));
  const contact: Contact = {
    contactId: random.guid(),
    tenantId,
    name,
    email,
    phone: random.chance(0.7) ? `+1-555-${random.int(100, 999)}-${random.int(1000, 9999)}` : null,
    managerName: random.chance(0.5) ? personName(random) : null,
    managerEmail: random.chance(0.4) ? 'manager@example.com' : null,
    title: random.pick(TITLES),
    isEngaged: random.chance(0.8) ? random.chance(0.5) : null,
    isFastTrackContact: random.chance(0.5),
    evidence: random.chance(0.3) ? 'Confirmed on kick-off call' : null,
    surveyEligible: random.chance(0.9) ? random.chance(0.7) : null,
    approvedSurvey: random.chance(0.3) ? 'Survey A' : null,
    note: random.chance(0.4) ? random.pick(NOTE_TEXTS) : null,
    created,
    createdBy: personName(random),
    modified: created,
    modifiedBy: random.chance(0.8) ? personName(random) : null,
    timezone: random.chance(0.8) ? { ...random.pick(reference.timezones) } : null,
    id: country?.id ?? null,
    countryRegion: country,
    adminType: random.chance(0.6) ? asStringId(random.pick(reference.adminTypes)) : null,
    surveyLanguage: random.chance(0.9) ? { ...random.pick(reference.surveyLanguages) } : null,
    contactType,
    skillTypes: random.sample(reference.skillTypes, random.int(0, 3)).map((s) => ({ ...s })),
    services: random.chance(0.9)
      ? random.sample(reference.services, random.int(1, 3)).map((s) => ({ ...s }))
      : null,
  };
  if (random.chance(0.2)) contact.preferredContactMethod = random.pick(['Email', 'Phone', 'Teams']);
  return contact;
}

function personName(random: Random): string {
  return `${random.pick(FIRST_NAMES)} ${random.pick(LAST_NAMES)}`;
}
