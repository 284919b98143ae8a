import {
  type PartnerTenant,
  type Referral,
  type ReferralWorkload,
  type SandboxData,
  TenantDirectory,
} from './data';
import { BASE_TIME, DAY_MS, HOUR_MS, isoSeconds, slug, spell } from './format';
import { Random } from './random';
import { createReferenceData, type NamedId, type ReferenceData } from './reference';
import { generateDetails } from './tenant-details';

export interface DataSizes {
  tenants?: number;
  referrals?: number;
  seed?: number;
}

// Which items carry FPX's quirks is fixed by position (0-based index), so tests can rely on them:
// - partner tenant j: j % 5 === 1 UPPERCASE tenantId, j % 5 === 3 tenantId without dashes,
//   j % 6 === 5 an extra `segment` field;
// - referral i (id i + 1): i % 6 === 1 UPPERCASE tenantId, i % 6 === 5 without dashes,
//   i % 10 === 7 `tenantDomain: null`, i % 9 === 4 an extra `referralSource` field;
// - referral i with i % 4 === 0 is for partner tenant (i / 4) % tenants; the others for tenants only referred.

/** Referrals are an hour apart, or closer so that even 100,000 of them span two years at most. */
const REFERRAL_SPAN_MS = 730 * DAY_MS;

const COMPANIES = [
  'Contoso',
  'Fabrikam',
  'Northwind Traders',
  'Adventure Works',
  'Tailspin Toys',
  'Wingtip Toys',
  'Litware',
  'Proseware',
  'Woodgrove Bank',
  'Alpine Ski House',
  'Coho Winery',
  'Fourth Coffee',
  'Lamna Healthcare',
  'Relecloud',
  'Trey Research',
  'Wide World Importers',
  'Humongous Insurance',
  'Blue Yonder Airlines',
  'Lucerne Publishing',
  'Consolidated Messenger',
];
const COMPANY_SLUGS = COMPANIES.map(slug);

/** What a partner tenant's details are generated from (a referral-only tenant's come from its Referral). */
class PartnerSource {
  constructor(
    readonly tenant: PartnerTenant,
    readonly rfaIds: number[],
  ) {}
}

export function generateData(sizes: DataSizes = {}): SandboxData {
  const seed = sizes.seed ?? 1;
  const tenantCount = sizes.tenants ?? 60;
  const referralCount = sizes.referrals ?? 40;
  const reference = createReferenceData();
  const partnerTenants: PartnerTenant[] = [];
  const canonicalIds: string[] = [];
  const lazySources: Array<PartnerSource | Referral> = [];
  const tenants = new TenantDirectory(
    (canonical, source) => {
      if (source instanceof PartnerSource) {
        const { tenant, rfaIds } = source;
        return generateDetails(seed, canonical, tenant.tenantId, tenant.name, rfaIds, reference);
      }
      const referral = source as Referral;
      return generateDetails(
        seed,
        canonical,
        referral.tenantId,
        referral.tenantName,
        [referral.id],
        reference,
      );
    },
    function* () {
      for (let k = 0; k < lazySources.length; k++) yield [canonicalIds[k] as string, lazySources[k]];
    },
  );

  for (let j = 0; j < tenantCount; j++) {
    const random = new Random(seed, 'tenant', j);
    const canonical = random.guid();
    const tenant: PartnerTenant = {
      tenantId: spell(canonical, j % 5 === 1 ? 'upper' : j % 5 === 3 ? 'noDashes' : 'plain'),
      tpid: 100_000 + j * 10 + random.int(0, 9),
      name: `${random.pick(COMPANIES)} ${j + 1}`,
      claimedWorkloads: random.sample(reference.workloads, random.int(1, 3)),
    };
    if (j % 6 === 5) tenant.segment = random.pick(['Enterprise', 'SMC', 'Public Sector']);
    partnerTenants.push(tenant);
    canonicalIds.push(canonical);
    lazySources.push(new PartnerSource(tenant, referralIdsForTenant(j, tenantCount, referralCount)));
  }

  const referrals: Referral[] = new Array(referralCount);
  const random = new Random(seed, 'referrals');
  const step = Math.min(HOUR_MS, Math.floor(REFERRAL_SPAN_MS / Math.max(1, referralCount)));
  for (let i = 0; i < referralCount; i++) {
    const id = i + 1;
    const claimedIndex = tenantCount > 0 && i % 4 === 0 ? (i / 4) % tenantCount : -1;
    const claimed = partnerTenants[claimedIndex];
    const canonical = claimed ? (canonicalIds[claimedIndex] as string) : random.guid();
    const company = random.int(0, COMPANIES.length - 1);
    const tenantName = claimed ? claimed.name : `${COMPANIES[company]} R${id}`;
    const referral: Referral = {
      id,
      created: isoSeconds(BASE_TIME + i * step + random.int(0, step - 1)),
      tenantId: spell(canonical, i % 6 === 1 ? 'upper' : i % 6 === 5 ? 'noDashes' : 'plain'),
      tenantName,
      tenantDomain:
        i % 10 === 7
          ? null
          : `${claimed ? slug(claimed.name) : `${COMPANY_SLUGS[company]}r${id}`}.onmicrosoft.com`,
      workloads: referralWorkloads(random, reference, claimed),
    };
    if (i % 9 === 4) referral.referralSource = 'FastTrack Center';
    referrals[i] = referral;
    if (!claimed) {
      canonicalIds.push(canonical);
      lazySources.push(referral);
    }
  }
  return {
    seed,
    reference,
    partnerTenants,
    referrals,
    tenants,
    entitlements: { unfiltered: 'reject', recordsNameService: false },
  };
}

/** The referral ids the generator points at partner tenant j (every 4th referral, round robin). */
function referralIdsForTenant(j: number, tenantCount: number, referralCount: number): number[] {
  const ids: number[] = [];
  for (let i = 4 * j; i < referralCount; i += 4 * tenantCount) ids.push(i + 1);
  return ids;
}

function referralWorkloads(random: Random, reference: ReferenceData, claimed: PartnerTenant | undefined) {
  const catalog = reference.workloads;
  const workloads: ReferralWorkload[] = [];
  if (claimed) {
    for (const { id, name } of claimed.claimedWorkloads) workloads.push({ id, name, claimed: true });
    const extra = random.pick(catalog);
    if (!workloads.some((w) => w.id === extra.id))
      workloads.push({ id: extra.id, name: extra.name, claimed: false });
    return workloads;
  }
  // Consecutive catalog entries from a random start: distinct, and cheap enough for 100,000 referrals.
  const start = random.int(0, catalog.length - 1);
  const count = random.int(1, 3);
  for (let k = 0; k < count; k++) {
    const { id, name } = catalog[(start + k) % catalog.length] as NamedId<number>;
    workloads.push({ id, name, claimed: false });
  }
  return workloads;
}
