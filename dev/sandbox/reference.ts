import { canonicalGuid, guidFor } from './random';

export interface NamedId<Id = number | string> {
  id: Id;
  name: string;
}

/** The reference lists FPX serves as bare arrays of `{id, name}`, plus catalogs the generator draws from. */
export interface ReferenceData {
  timezones: NamedId<string>[];
  services: NamedId<number>[];
  /** `/services/frp`: the services a FastTrack Ready Partner records entitlement statuses for. */
  frpServices: NamedId<number>[];
  /** Integer ids, except one GUID (FPX-NOTES "Mistakes" #6). */
  contactTypes: NamedId<number | string>[];
  countryRegions: NamedId<string>[];
  adminTypes: NamedId<number>[];
  surveyLanguages: NamedId<string>[];
  skillTypes: NamedId<number>[];
  noteCategories: NamedId<number>[];
  /** Not an endpoint: what `claimedWorkloads` and referral `workloads` name. */
  workloads: NamedId<number>[];
  /** Not an endpoint: the entitlement status levels records point at. */
  l1Statuses: NamedId<string>[];
  l2Statuses: NamedId<string>[];
  l3Statuses: NamedId<string>[];
}

/**
 * The GUID the guide's contact samples use for timezone, country/region and survey language.
 * It is in each list so the guide's own request example is accepted as printed.
 */
export const GUIDE_SAMPLE_GUID = '12345678-1234-1234-1234-123456789abc';
/** The contact type id that is a GUID in the guide's "Get contacts" sample. */
export const GUID_CONTACT_TYPE_ID = '123e4567-e89b-12d3-a456-426655440000';

const named = <Id>(ids: Id[], names: string[]): NamedId<Id>[] =>
  names.map((name, index) => ({ id: ids[index] as Id, name }));
const numbered = (names: string[], first = 1) =>
  named(
    names.map((_, index) => first + index),
    names,
  );
const guided = (kind: string, names: string[]) =>
  named(
    names.map((name) => guidFor(`${kind}:${name}`)),
    names,
  );

const SERVICES = numbered([
  'Exchange Online',
  'SharePoint Online',
  'OneDrive for Business',
  'Microsoft Teams',
  'Microsoft Intune',
  'Windows',
  'Microsoft 365 Apps',
  'Microsoft Defender for Endpoint',
  'Microsoft Purview',
  'Microsoft Entra ID',
  'Microsoft Copilot',
  'Viva',
]);

export function createReferenceData(): ReferenceData {
  return {
    timezones: [
      { id: GUIDE_SAMPLE_GUID, name: 'Pacific Standard Time' },
      ...guided('timezone', [
        'Eastern Standard Time',
        'Central Standard Time',
        'GMT Standard Time',
        'W. Europe Standard Time',
        'India Standard Time',
        'Tokyo Standard Time',
        'AUS Eastern Standard Time',
      ]),
    ],
    services: SERVICES,
    frpServices: SERVICES.slice(0, 8),
    contactTypes: [
      ...numbered([
        'Primary',
        'Technical',
        'Executive Sponsor',
        'Project Manager',
        'IT Administrator',
        'Change Manager',
      ]),
      { id: GUID_CONTACT_TYPE_ID, name: 'Some contact type' },
    ],
    countryRegions: [
      { id: GUIDE_SAMPLE_GUID, name: 'United States' },
      ...guided('countryRegion', [
        'Canada',
        'United Kingdom',
        'Germany',
        'France',
        'India',
        'Japan',
        'Australia',
      ]),
    ],
    adminTypes: numbered([
      'Global Administrator',
      'Exchange Administrator',
      'SharePoint Administrator',
      'Teams Administrator',
    ]),
    surveyLanguages: [
      { id: GUIDE_SAMPLE_GUID, name: 'English' },
      ...guided('surveyLanguage', ['French', 'German', 'Spanish', 'Japanese', 'Portuguese']),
    ],
    skillTypes: numbered([
      'Identity',
      'Messaging',
      'Collaboration',
      'Endpoint Management',
      'Security',
      'Compliance',
    ]),
    noteCategories: numbered(['Engagement Management', 'Technical', 'Onboarding', 'Adoption', 'Escalation']),
    workloads: numbered(
      [
        'Exchange Online',
        'SharePoint Online',
        'Microsoft Teams',
        'Microsoft Intune',
        'Windows',
        'Microsoft 365 Apps',
        'Microsoft Defender',
        'Microsoft Purview',
        'Microsoft Copilot',
      ],
      101,
    ),
    l1Statuses: guided('l1', [
      'Not Started',
      'In Progress',
      'Completed',
      'Blocked',
      'Deferred',
      'Not Applicable',
    ]),
    l2Statuses: guided('l2', ['Planning', 'Pilot', 'Deployment', 'Awaiting Customer', 'Awaiting Partner']),
    l3Statuses: guided('l3', ['Licensing', 'Network', 'Identity Readiness', 'Budget', 'Resourcing']),
  };
}

/** Finds an entry by id, comparing the way FPX does: integers and their strings alike, GUIDs in any case. */
export function findById<Id>(list: readonly NamedId<Id>[], id: unknown): NamedId<Id> | undefined {
  const wanted = idKey(id);
  return list.find((entry) => idKey(entry.id) === wanted);
}

function idKey(id: unknown): string {
  const text = String(id);
  return canonicalGuid(text) ?? text.toLowerCase();
}
