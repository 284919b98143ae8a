import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createCertificateAuthority,
  type DevCertificates,
  ensureDevCertificates,
  issueClientCertificate,
} from '../dev/certs';
import {
  canonicalGuid,
  emptyTenantDetails,
  GUID_CONTACT_TYPE_ID,
  GUIDE_SAMPLE_GUID,
  generateData,
  MAX_NOTE_LENGTH,
  type Sandbox,
  type ServiceEntitlements,
  startSandbox,
  type TenantDetails,
} from '../dev/sandbox';
import { SlidingWindowLimit } from '../dev/sandbox/rate-limit';
import { createReferenceData } from '../dev/sandbox/reference';

// biome-ignore lint/suspicious/noExplicitAny: assertions read whatever JSON the sandbox answers
type Json = any;
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Json;
}
interface CallOptions {
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  agent?: Agent;
}

const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';
/** Every FRP service, as a client asks for all of a tenant's records (the filter has no documented default). */
const FRP_IDS = createReferenceData()
  .frpServices.map((s) => s.id)
  .join('&serviceIds=');
const GUID_WITH_DASHES = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let certs: DevCertificates;
let agent: Agent;
const sandboxes: Sandbox[] = [];

beforeAll(() => {
  certs = ensureDevCertificates();
  agent = pemAgent(certs.client);
});
afterAll(async () => {
  await Promise.all(sandboxes.map((sandbox) => sandbox.close()));
  await agent.close();
});

async function start(options: Parameters<typeof startSandbox>[0] = {}): Promise<Sandbox> {
  const sandbox = await startSandbox({ rateLimitPerMinute: 0, ...options });
  sandboxes.push(sandbox);
  return sandbox;
}

function pemAgent(client: { certPem: string; keyPem: string }): Agent {
  return new Agent({ connect: { ca: certs.ca.certPem, cert: client.certPem, key: client.keyPem } });
}

async function call(
  sandbox: Sandbox,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Answer> {
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await request(`${sandbox.url}${path}`, {
    method: method as 'GET',
    dispatcher: options.agent ?? agent,
    headers: { 'content-type': 'application/json', ...options.headers },
    body,
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    body: text ? JSON.parse(text) : undefined,
  };
}

const get = (sandbox: Sandbox, path: string, options?: CallOptions) => call(sandbox, 'GET', path, options);

/** An unsigned JWT: the sandbox reads `sub` and `name` without verifying, as FPX may be set up to. */
function bearer(claims: Record<string, string>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `Bearer ${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.signature`;
}

function expectPascalError(answer: Answer, status: number) {
  expect(answer.status).toBe(status);
  expect(answer.body).toMatchObject({ ErrorStatus: status, DependencyType: expect.any(String) });
  expect(answer.body.Message).toEqual(expect.any(String));
}

function expectValidationError(answer: Answer, field: string) {
  expect(answer.status).toBe(400);
  expect(answer.body).toMatchObject({ errorStatus: 400, message: 'One or more validation errors occurred.' });
  expect(Object.keys(answer.body.errors)).toContain(field);
  expect(answer.body.errors[field][0]).toEqual(expect.any(String));
}

async function allPages(sandbox: Sandbox, path: string, pageSize: number): Promise<Json[]> {
  const items: Json[] = [];
  for (let page = 1; ; page++) {
    const answer = await get(sandbox, `${path}?page=${page}&pageSize=${pageSize}`);
    expect(answer.status).toBe(200);
    items.push(...answer.body.items);
    if (!answer.body.hasMore) return items;
  }
}

/** The first partner tenant whose details satisfy `test`. */
function tenantWhere(sandbox: Sandbox, test: (details: TenantDetails) => boolean) {
  for (const tenant of sandbox.data.partnerTenants) {
    const details = sandbox.data.tenants.get(tenant.tenantId);
    if (details && test(details)) return { tenant, details };
  }
  throw new Error('no generated tenant fits');
}

describe('mutual TLS', () => {
  let sandbox: Sandbox;
  const extraCa = createCertificateAuthority('Extra trusted CA');

  beforeAll(async () => {
    sandbox = await start({ trustedClientCas: [extraCa.certPem] });
  });

  test('a connection without a client certificate fails the handshake', async () => {
    const anonymous = new Agent({ connect: { ca: certs.ca.certPem } });
    await expect(request(`${sandbox.url}/timezones`, { dispatcher: anonymous })).rejects.toThrow();
    await anonymous.close();
    expect(sandbox.requests.filter((entry) => entry.path === '/timezones')).toHaveLength(0);
  });

  test('a client certificate from an untrusted CA fails; one from trustedClientCas works', async () => {
    const untrusted = pemAgent(issueClientCertificate(createCertificateAuthority()));
    await expect(request(`${sandbox.url}/adminTypes`, { dispatcher: untrusted })).rejects.toThrow();
    await untrusted.close();
    expect(sandbox.requests.filter((entry) => entry.path === '/adminTypes')).toHaveLength(0);

    const extraClient = issueClientCertificate(extraCa, { commonName: 'extra' });
    const extra = pemAgent(extraClient);
    expect((await get(sandbox, '/skillTypes', { agent: extra })).status).toBe(200);
    await extra.close();
    expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(extraClient.thumbprint);
  });

  test('an expired client certificate from the trusted CA fails', async () => {
    const day = 86_400_000;
    const expired = issueClientCertificate(certs.ca, {
      notBefore: new Date(Date.now() - 10 * day),
      notAfter: new Date(Date.now() - day),
    });
    const expiredAgent = pemAgent(expired);
    await expect(request(`${sandbox.url}/surveyLanguages`, { dispatcher: expiredAgent })).rejects.toThrow();
    await expiredAgent.close();
  });

  test('PEM and PFX client certificates both work, and the log records the thumbprint', async () => {
    expect((await get(sandbox, '/timezones')).status).toBe(200);
    expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(certs.client.thumbprint);

    const pfx = new Agent({
      connect: { ca: certs.ca.certPem, pfx: certs.client.pfx, passphrase: certs.client.pfxPassword },
    });
    const answer = await get(sandbox, '/countryRegions', { agent: pfx });
    await pfx.close();
    expect(answer.status).toBe(200);
    expect(sandbox.requests.at(-1)).toMatchObject({
      path: '/countryRegions',
      clientCertThumbprint: certs.client.thumbprint,
    });
  });
});

describe('endpoints', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await start();
  });

  test('partnerTenants pages with count and hasMore (FPX-NOTES #9)', async () => {
    const first = await get(sandbox, '/partnerTenants');
    expect(first.body).toMatchObject({ count: 60, hasMore: true });
    expect(first.body.items).toHaveLength(25);
    const last = await get(sandbox, '/partnerTenants?page=3');
    expect(last.body).toMatchObject({ count: 60, hasMore: false });
    expect(last.body.items).toHaveLength(10);
    const beyond = await get(sandbox, '/partnerTenants?page=4');
    expect(beyond.body).toMatchObject({ count: 60, hasMore: false, items: [] });

    const all = await allPages(sandbox, '/partnerTenants', 7);
    expect(all.map((t) => t.tenantId)).toEqual(sandbox.data.partnerTenants.map((t) => t.tenantId));
    expect(all[0]).toEqual({
      tenantId: expect.any(String),
      tpid: expect.any(Number),
      name: expect.any(String),
      claimedWorkloads: expect.arrayContaining([{ id: expect.any(Number), name: expect.any(String) }]),
    });
  });

  test('partnerReferrals pages as the guide shows, with claimed and unclaimed workloads', async () => {
    const answer = await get(sandbox, '/partnerReferrals?page=2&pageSize=10');
    expect(answer.body).toMatchObject({ count: 40, hasMore: true });
    expect(answer.body.items.map((r: Json) => r.id)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(answer.body.items[0]).toMatchObject({
      id: 11,
      created: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      tenantId: expect.any(String),
      tenantName: expect.any(String),
      workloads: expect.arrayContaining([
        { id: expect.any(Number), name: expect.any(String), claimed: false },
      ]),
    });
    const all = await allPages(sandbox, '/partnerReferrals', 15);
    expect(all).toHaveLength(40);
    const claimedIds = new Set(sandbox.data.partnerTenants.map((t) => canonicalGuid(t.tenantId)));
    const overlapping = all.filter((r) => claimedIds.has(canonicalGuid(r.tenantId)));
    expect(overlapping.length).toBeGreaterThan(0);
    expect(overlapping.length).toBeLessThan(all.length);
    expect(overlapping.some((r) => r.workloads.some((w: Json) => w.claimed === true))).toBe(true);
  });

  test('the quirks FPX really sends are present (FPX-NOTES "Mistakes" #5, #6)', async () => {
    const tenants = await allPages(sandbox, '/partnerTenants', 100);
    const referrals = await allPages(sandbox, '/partnerReferrals', 100);
    const ids = [...tenants, ...referrals].map((item) => item.tenantId as string);
    expect(ids.some((id) => /^[0-9A-F-]{36}$/.test(id) && /[A-F]/.test(id))).toBe(true);
    expect(ids.some((id) => /^[0-9a-f]{32}$/.test(id))).toBe(true);
    expect(ids.some((id) => GUID_WITH_DASHES.test(id))).toBe(true);
    expect(referrals.some((r) => r.tenantDomain === null)).toBe(true);
    expect(referrals.some((r) => 'referralSource' in r)).toBe(true);
    expect(tenants.some((t) => 'segment' in t)).toBe(true);

    const contacts = (await get(sandbox, '/partnerTenants/contacts?pageSize=1000')).body.items as Json[];
    expect(contacts.length).toBeGreaterThan(10);
    expect(contacts.every((c) => 'id' in c && 'contactId' in c)).toBe(true);
    const typeIds = contacts.map((c) => c.contactType?.id).filter((id) => id !== undefined);
    expect(typeIds.every((id) => typeof id === 'string')).toBe(true);
    expect(typeIds).toContain(GUID_CONTACT_TYPE_ID);
    expect(typeIds.some((id) => /^\d+$/.test(id))).toBe(true);
    const adminIds = contacts.map((c) => c.adminType?.id).filter((id) => id !== undefined);
    expect(adminIds.length).toBeGreaterThan(0);
    expect(adminIds.every((id) => typeof id === 'string')).toBe(true);
    expect(contacts.some((c) => 'preferredContactMethod' in c)).toBe(true);
    expect(contacts.some((c) => c.email === null || c.phone === null)).toBe(true);

    const records = (
      await Promise.all(
        tenants
          .slice(0, 20)
          .map((t) => get(sandbox, `/tenants/${t.tenantId}/services/entitlements?serviceIds=${FRP_IDS}`)),
      )
    ).flatMap((answer) => answer.body as Json[]);
    expect(records.some((r) => r.l2 === null)).toBe(true);
    expect(records.some((r) => r.l2 !== null)).toBe(true);
  });

  test('entitlements: a bare array of records naming no service; serviceIds filter (any case); counts add up to maxEntitlements', async () => {
    const { tenant, details } = tenantWhere(sandbox, (d) => d.entitlements.size >= 2);
    const services = [...details.entitlements.values()];
    const [first, second] = services as [ServiceEntitlements, ServiceEntitlements];
    const filtered = await get(
      sandbox,
      `/tenants/${tenant.tenantId}/services/entitlements?serviceIDs=${first.serviceId}&serviceids=${second.serviceId}`,
    );
    expect(Array.isArray(filtered.body)).toBe(true);
    expect(filtered.body).toHaveLength(first.records.length + second.records.length);
    // The guide's sample, field for field: nothing says which service a record is for (FPX-NOTES #12).
    expect(Object.keys(filtered.body[0])).toEqual([
      'serviceIntentId',
      'l1',
      'id',
      'name',
      'l2',
      'l3',
      'entitlementCount',
      'targetDate',
      'owner',
      'nextActionDate',
      'notes',
      ...Object.keys(filtered.body[0]).slice(11),
    ]);
    expect(filtered.body.some((r: Json) => 'serviceId' in r)).toBe(false);
    const one = await get(
      sandbox,
      `/tenants/${tenant.tenantId}/services/entitlements?serviceIds=${first.serviceId}`,
    );
    expect(one.body.map((r: Json) => r.serviceIntentId)).toEqual(first.records.map((r) => r.serviceIntentId));

    const max = await get(sandbox, `/tenants/${tenant.tenantId}/services/${first.serviceId}/maxEntitlements`);
    expect(max.body).toEqual({
      tenantId: tenant.tenantId,
      serviceId: first.serviceId,
      maxEntitlements: expect.any(Number),
    });
    expect(one.body.reduce((n: number, r: Json) => n + r.entitlementCount, 0)).toBe(max.body.maxEntitlements);
  });

  test('entitlements without serviceIds: a 400 by default, every record when switched; records can name their service', async () => {
    const { tenant, details } = tenantWhere(sandbox, (d) => d.entitlements.size >= 2);
    const path = `/tenants/${tenant.tenantId}/services/entitlements`;
    const saved = sandbox.data.entitlements;
    try {
      const refused = await get(sandbox, path);
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toMatch(/ServiceIds/);

      sandbox.data.entitlements = { unfiltered: 'all', recordsNameService: true };
      const all = await get(sandbox, path);
      const services = [...details.entitlements.values()];
      expect(all.body).toHaveLength(services.reduce((n, s) => n + s.records.length, 0));
      for (const service of services) {
        const named = all.body.filter((r: Json) => r.serviceId === service.serviceId);
        expect(named.map((r: Json) => r.serviceIntentId)).toEqual(
          service.records.map((r) => r.serviceIntentId),
        );
      }
    } finally {
      sandbox.data.entitlements = saved;
    }
  });

  test('tenant ids in the path are accepted in any GUID form', async () => {
    const canonical = canonicalGuid(sandbox.data.partnerTenants[2]?.tenantId ?? '') as string;
    const forms = [canonical, canonical.toUpperCase(), canonical.replaceAll('-', ''), `{${canonical}}`];
    const answers = await Promise.all(
      forms.map((form) => get(sandbox, `/tenants/${form}/notes?noteCategory=2`)),
    );
    for (const answer of answers) expect(answer.body).toEqual(answers[0]?.body);
    expect(answers[0]?.status).toBe(200);
  });

  test('contacts: envelope with rfaId; rfaId and contactTypeId filter (parameter names in any case)', async () => {
    const { tenant, details } = tenantWhere(sandbox, (d) => d.contacts.some((c) => c.rfaId === null));
    const own = details.contacts.filter((c) => c.rfaId === null);
    const answer = await get(sandbox, `/tenants/${tenant.tenantId}/contacts`);
    expect(answer.body).toMatchObject({ rfaId: null, count: own.length, hasMore: false });
    expect(answer.body.items.map((c: Json) => c.contactId)).toEqual(own.map((c) => c.contact.contactId));

    const typeId = own[0]?.contact.contactType?.id as string;
    const byType = await get(sandbox, `/tenants/${tenant.tenantId}/contacts?contactTypeID=${typeId}`);
    expect(byType.body.items.length).toBeGreaterThan(0);
    expect(byType.body.items.every((c: Json) => c.contactType.id === typeId)).toBe(true);

    const referralTenant = sandbox.data.referrals
      .map((r) => ({ referral: r, details: sandbox.data.tenants.get(r.tenantId) as TenantDetails }))
      .find(({ referral, details }) => details.contacts.some((c) => c.rfaId === referral.id));
    if (!referralTenant) throw new Error('the generator made no referral contacts');
    const { referral } = referralTenant;
    const forReferral = await get(sandbox, `/tenants/${referral.tenantId}/contacts?rfaid=${referral.id}`);
    expect(forReferral.body.rfaId).toBe(referral.id);
    expect(forReferral.body.count).toBe(
      referralTenant.details.contacts.filter((c) => c.rfaId === referral.id).length,
    );
  });

  test('notes: category 1 by default, noteCategory and orderByCreated, referral notes only with their rfaId', async () => {
    const { tenant, details } = tenantWhere(
      sandbox,
      (d) => d.notes.filter((n) => n.rfaId === null).length >= 3,
    );
    const categories = new Set(details.notes.map((n) => n.note.noteCategory.id));
    for (const category of categories) {
      const expected = details.notes.filter((n) => n.rfaId === null && n.note.noteCategory.id === category);
      const answer = await get(sandbox, `/tenants/${tenant.tenantId}/notes?noteCategory=${category}`);
      expect(answer.body).toMatchObject({
        rfaId: null,
        count: expected.length,
        hasMore: false,
        tenantId: tenant.tenantId,
        tenantName: tenant.name,
      });
      expect(answer.body.items).toEqual(expected.map((n) => n.note));
      const descending = await get(
        sandbox,
        `/tenants/${tenant.tenantId}/notes?noteCategory=${category}&orderByCreated=Descending`,
      );
      const created = descending.body.items.map((n: Json) => n.created);
      expect(created).toEqual([...created].sort().reverse());
    }
    const defaultCategory = await get(sandbox, `/tenants/${tenant.tenantId}/notes`);
    expect(defaultCategory.body.items.every((n: Json) => n.noteCategory.id === 1)).toBe(true);

    const allCategories = new Set<number>();
    for (const t of sandbox.data.tenants.values())
      for (const n of t.notes) allCategories.add(n.note.noteCategory.id);
    expect(allCategories.size).toBeGreaterThanOrEqual(3);

    const withReferralNotes = sandbox.data.referrals
      .map((r) => ({ referral: r, details: sandbox.data.tenants.get(r.tenantId) as TenantDetails }))
      .find(({ referral, details }) => details.notes.some((n) => n.rfaId === referral.id));
    if (!withReferralNotes) throw new Error('the generator made no referral notes');
    const { referral, details: referred } = withReferralNotes;
    const note = referred.notes.find((n) => n.rfaId === referral.id)?.note;
    const category = note?.noteCategory.id;
    const forReferral = await get(
      sandbox,
      `/tenants/${referral.tenantId}/notes?rfaID=${referral.id}&noteCategory=${category}`,
    );
    expect(forReferral.body.rfaId).toBe(referral.id);
    expect(forReferral.body.items).toContainEqual(note);
    const withoutReferral = await get(
      sandbox,
      `/tenants/${referral.tenantId}/notes?noteCategory=${category}`,
    );
    expect(withoutReferral.body.items).not.toContainEqual(note);
  });

  test('reference lists are bare arrays of {id, name}', async () => {
    const paths = [
      '/timezones',
      '/services',
      '/services/frp',
      '/contactTypes',
      '/countryRegions',
      '/adminTypes',
      '/surveyLanguages',
      '/skillTypes',
      '/noteCategories',
    ];
    for (const path of paths) {
      const answer = await get(sandbox, path);
      expect(answer.status, path).toBe(200);
      expect(answer.body.length, path).toBeGreaterThan(0);
      for (const entry of answer.body) expect(Object.keys(entry).sort(), path).toEqual(['id', 'name']);
    }
    const contactTypes = (await get(sandbox, '/contactTypes')).body.map((t: Json) => t.id);
    expect(contactTypes).toContain(GUID_CONTACT_TYPE_ID);
  });

  test('partnerTenants/contacts lists the partner tenants’ contacts, paged', async () => {
    const expected = sandbox.data.partnerTenants.flatMap(
      (t) => sandbox.data.tenants.get(t.tenantId)?.contacts.filter((c) => c.rfaId === null) ?? [],
    );
    const items = await allPages(sandbox, '/partnerTenants/contacts', 20);
    expect(items.map((c) => c.contactId)).toEqual(expected.map((c) => c.contact.contactId));
    const first = await get(sandbox, '/partnerTenants/contacts?pageSize=20');
    expect(first.body).toMatchObject({ count: expected.length, hasMore: expected.length > 20 });
  });

  test('page sizes up to 1000 are served; above is a 400 naming PageSize', async () => {
    expect((await get(sandbox, '/partnerReferrals?pageSize=1000')).body.items).toHaveLength(40);
    expectValidationError(await get(sandbox, '/partnerReferrals?pageSize=1001'), 'PageSize');
    expectValidationError(await get(sandbox, '/partnerTenants?page=0'), 'Page');
    expectValidationError(await get(sandbox, '/partnerTenants?pageSize=ten'), 'PageSize');
  });

  test('unknown tenant, contact, service and path answer 404 with the PascalCase body', async () => {
    const unknown = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    expectPascalError(await get(sandbox, `/tenants/${unknown}/contacts`), 404);
    expectPascalError(await get(sandbox, `/tenants/${unknown}/services/entitlements`), 404);
    expectPascalError(await call(sandbox, 'PATCH', `/contacts/${unknown}`, { body: {} }), 404);
    const tenantId = sandbox.data.partnerTenants[0]?.tenantId;
    expectPascalError(await get(sandbox, `/tenants/${tenantId}/services/999/maxEntitlements`), 404);
    expectPascalError(await get(sandbox, '/noSuchThing'), 404);
    expectPascalError(await call(sandbox, 'DELETE', '/partnerTenants'), 405);
  });

  test('the data store is live: tests add, edit and remove tenants and referrals', async () => {
    const added = 'F0F0F0F0-1111-4222-8333-444455556666';
    sandbox.data.tenants.set(added, emptyTenantDetails(added, 'Added Tenant'));
    sandbox.data.partnerTenants.push({
      tenantId: added,
      tpid: 1,
      name: 'Added Tenant',
      claimedWorkloads: [],
    });
    const listed = await get(sandbox, '/partnerTenants?pageSize=1000');
    expect(listed.body.count).toBe(61);
    expect(listed.body.items.at(-1).tenantId).toBe(added);
    expect((await get(sandbox, `/tenants/${added.toLowerCase()}/contacts`)).body).toMatchObject({ count: 0 });

    sandbox.data.partnerTenants.pop();
    expect(sandbox.data.tenants.delete(added.replaceAll('-', ''))).toBe(true);
    expect((await get(sandbox, `/tenants/${added}/contacts`)).status).toBe(404);
    expect((await get(sandbox, '/partnerTenants')).body.count).toBe(60);
  });

  test('the request log records method, path, query, Authorization, Origin, body and thumbprint', async () => {
    sandbox.clearRequests();
    const tenantId = sandbox.data.partnerTenants[0]?.tenantId as string;
    const authorization = bearer({ sub: 'user-1', name: 'Log Tester' });
    await call(sandbox, 'POST', `/tenants/${tenantId}/notes?rfaId=1`, {
      body: { text: 'logged', noteCategoryId: 2 },
      headers: { authorization, origin: 'https://crm.example.com' },
    });
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.requests[0]).toMatchObject({
      method: 'POST',
      path: `/tenants/${tenantId}/notes`,
      query: { rfaId: ['1'] },
      status: 200,
      authorization,
      origin: 'https://crm.example.com',
      body: { text: 'logged', noteCategoryId: 2 },
      clientCertThumbprint: certs.client.thumbprint,
      time: expect.any(Number),
      durationMs: expect.any(Number),
    });
  });
});

describe('validation', () => {
  let sandbox: Sandbox;
  let tenantId: string;
  let details: TenantDetails;
  beforeAll(async () => {
    sandbox = await start();
    ({
      tenant: { tenantId },
      details,
    } = tenantWhere(sandbox, (d) => d.contacts.length > 0));
  });

  /** The guide's own "Create a contact" example, with the reference ids the sandbox knows. */
  const guideContact = (): Record<string, unknown> => ({
    name: 'John Doe',
    email: 'johndoe@example.com',
    phone: '123-456-7890',
    managerName: 'Jane Smith',
    managerEmail: 'janesmith@example.com',
    title: 'Manager',
    isEngaged: true,
    isFastTrackContact: false,
    evidence: 'some evidence',
    surveyEligible: true,
    approvedSurvey: 'some approved survey',
    note: 'some note',
    timeZoneId: GUIDE_SAMPLE_GUID,
    countryRegionId: GUIDE_SAMPLE_GUID,
    adminTypeId: 1,
    surveyLanguageId: GUIDE_SAMPLE_GUID,
    contactTypeId: 2,
    skillTypes: [1, 2, 3],
    services: [4, 5, 6],
  });
  const without = (key: string) => (body: Record<string, unknown>) => {
    delete body[key];
  };
  const set = (key: string, value: unknown) => (body: Record<string, unknown>) => {
    body[key] = value;
  };

  test('the guide’s create-contact example is accepted and answered as the guide shows', async () => {
    const before = details.contacts.length;
    const answer = await call(sandbox, 'POST', `/tenants/${tenantId}/contacts`, { body: guideContact() });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      contactId: expect.stringMatching(GUID_WITH_DASHES),
      tenantId,
      name: 'John Doe',
      id: GUIDE_SAMPLE_GUID,
      countryRegion: { id: GUIDE_SAMPLE_GUID, name: 'United States' },
      adminType: { id: '1' },
      contactType: { id: '2' },
      skillTypes: [{ id: 1 }, { id: 2 }, { id: 3 }],
      services: [{ id: 4 }, { id: 5 }, { id: 6 }],
      created: expect.any(String),
    });
    expect(details.contacts).toHaveLength(before + 1);
    const listed = await get(sandbox, `/tenants/${tenantId}/contacts?pageSize=100`);
    expect(listed.body.items.map((c: Json) => c.contactId)).toContain(answer.body.contactId);
  });

  test('body keys are matched case-insensitively and nullable fields take null', async () => {
    const body = guideContact();
    delete body.timeZoneId;
    delete body.countryRegionId;
    body.TimeZoneID = GUIDE_SAMPLE_GUID;
    body.countryRegionID = null;
    body.services = null;
    body.email = null;
    const answer = await call(sandbox, 'POST', `/tenants/${tenantId}/contacts`, { body });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      timezone: { id: GUIDE_SAMPLE_GUID },
      countryRegion: null,
      services: null,
    });
  });

  test.each([
    ['Name', without('name')],
    ['Name', set('name', '')],
    ['Name', set('name', null)],
    ['Email', without('email')],
    ['Email', set('email', 'not-an-email')],
    ['Title', without('title')],
    ['SurveyEligible', without('surveyEligible')],
    ['SurveyEligible', set('surveyEligible', 'yes')],
    ['CountryRegionId', without('countryRegionId')],
    ['CountryRegionId', set('countryRegionId', 'c0ffee00-0000-4000-8000-000000000000')],
    ['SurveyLanguageId', without('surveyLanguageId')],
    ['ContactTypeId', without('contactTypeId')],
    ['ContactTypeId', set('contactTypeId', '2')],
    ['ContactTypeId', set('contactTypeId', 999)],
    ['Services', without('services')],
    ['Services', set('services', ['4'])],
    ['SkillTypes', set('skillTypes', 'identity')],
    ['IsEngaged', set('isEngaged', 'yes')],
    ['ManagerEmail', set('managerEmail', 'nobody')],
    ['AdminTypeId', set('adminTypeId', 'one')],
    ['Phone', set('phone', 5551234)],
  ])('create contact: %s is checked (%#)', async (field, change) => {
    const body = guideContact();
    change(body);
    const before = details.contacts.length;
    expectValidationError(await call(sandbox, 'POST', `/tenants/${tenantId}/contacts`, { body }), field);
    expect(details.contacts).toHaveLength(before);
  });

  test('create contact: the guide’s messages for Email and ContactTypeId', async () => {
    const body = guideContact();
    body.email = 'bad';
    delete body.contactTypeId;
    const answer = await call(sandbox, 'POST', `/tenants/${tenantId}/contacts`, { body });
    expect(answer.body.errors).toEqual({
      Email: ['Invalid email address provided'],
      ContactTypeId: ['Contact Type is Required'],
    });
  });

  test('update contact: phone is required too; a valid PATCH changes the contact', async () => {
    const entry = details.contacts[0];
    if (!entry) throw new Error('tenant has no contact');
    const snapshot = JSON.stringify(entry.contact);
    const path = `/contacts/${entry.contact.contactId.toUpperCase()}`;
    const body = guideContact();
    delete body.phone;
    expectValidationError(await call(sandbox, 'PATCH', path, { body }), 'Phone');
    expectValidationError(
      await call(sandbox, 'PATCH', path, { body: { ...guideContact(), email: 'x' } }),
      'Email',
    );
    expect(JSON.stringify(entry.contact)).toBe(snapshot);

    const answer = await call(sandbox, 'PATCH', path, { body: { ...guideContact(), title: 'CTO' } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ contactId: entry.contact.contactId, title: 'CTO', name: 'John Doe' });
    expect(entry.contact.title).toBe('CTO');
  });

  test('notes: text length, category and JSON are checked; nothing is stored when invalid', async () => {
    const path = `/tenants/${tenantId}/notes`;
    const before = details.notes.length;
    const cases: Array<[string, unknown]> = [
      ['Text', { text: 'x'.repeat(MAX_NOTE_LENGTH + 1), noteCategoryId: 1 }],
      ['Text', { text: 42, noteCategoryId: 1 }],
      ['NoteCategoryId', { text: 'hello' }],
      ['NoteCategoryId', { text: 'hello', noteCategoryId: 99 }],
      ['NoteCategoryId', { text: 'hello', noteCategoryId: '1' }],
      ['Body', ['not', 'an', 'object']],
    ];
    for (const [field, body] of cases)
      expectValidationError(await call(sandbox, 'POST', path, { body }), field);
    expectValidationError(await call(sandbox, 'POST', path, { rawBody: '{"text": "unterminated' }), 'Body');
    expect(details.notes).toHaveLength(before);

    const longest = await call(sandbox, 'POST', path, {
      body: { text: 'y'.repeat(MAX_NOTE_LENGTH), noteCategoryId: 3 },
    });
    expect(longest.status).toBe(200);
    const empty = await call(sandbox, 'POST', path, { body: { text: null, noteCategoryID: 1 } });
    expect(empty.body).toEqual({
      text: null,
      author: null,
      created: expect.stringMatching(/Z$/),
      noteCategory: { id: 1, name: 'Engagement Management' },
    });
    const named = await call(sandbox, 'POST', path, {
      body: { text: 'by a user', noteCategoryId: 1 },
      headers: { authorization: bearer({ sub: 'u-7', name: 'Ada Adams' }) },
    });
    expect(named.body.author).toBe('Ada Adams');
    expect(details.notes).toHaveLength(before + 3);
    const listed = await get(sandbox, `${path}?orderByCreated=Descending&pageSize=100`);
    expect(listed.body.items.map((n: Json) => n.text)).toContain('by a user');
  });

  describe('entitlement PATCH', () => {
    let service: ServiceEntitlements;
    let path: string;
    beforeAll(() => {
      const found = tenantWhere(sandbox, (d) =>
        [...d.entitlements.values()].some((s) => s.records.length >= 2),
      );
      service = [...found.details.entitlements.values()].find(
        (s) => s.records.length >= 2,
      ) as ServiceEntitlements;
      path = `/tenants/${found.tenant.tenantId}/services/${service.serviceId}/entitlements`;
    });
    const sum = (records: { entitlementCount: number }[]) =>
      records.reduce((n, r) => n + r.entitlementCount, 0);

    test('each rule answers 400 naming the field and changes nothing', async () => {
      const [a, b] = service.records as [Json, Json];
      const snapshot = JSON.stringify(service);
      const cases: Array<[string, Record<string, unknown>]> = [
        ['L1Id', { serviceIntentId: a.serviceIntentId, entitlementCount: a.entitlementCount }],
        ['L1Id', { serviceIntentId: a.serviceIntentId, l1Id: '', entitlementCount: a.entitlementCount }],
        ['EntitlementCount', { serviceIntentId: a.serviceIntentId, l1Id: 'Fresh' }],
        ['EntitlementCount', { serviceIntentId: a.serviceIntentId, l1Id: 'Fresh', entitlementCount: -1 }],
        ['EntitlementCount', { serviceIntentId: a.serviceIntentId, l1Id: 'Fresh', entitlementCount: 1.5 }],
        [
          'ServiceIntentId',
          { serviceIntentId: 'aaaaaaaa-0000-4000-8000-000000000000', l1Id: 'Fresh', entitlementCount: 1 },
        ],
        ['ServiceIntentId', { serviceIntentId: 'not-a-guid', l1Id: 'Fresh', entitlementCount: 1 }],
        ['L1Id', { serviceIntentId: a.serviceIntentId, l1Id: b.l1.id, entitlementCount: a.entitlementCount }],
        [
          'L1Id',
          {
            serviceIntentId: a.serviceIntentId,
            l1Id: b.l1.name.toUpperCase(),
            entitlementCount: a.entitlementCount,
          },
        ],
        [
          'EntitlementCount',
          { serviceIntentId: a.serviceIntentId, l1Id: a.l1.id, entitlementCount: a.entitlementCount + 1 },
        ],
        ['EntitlementCount', { l1Id: 'Brand new', entitlementCount: 5 }],
        ['EntitlementCount', { serviceIntentId: EMPTY_GUID, l1Id: 'Brand new', entitlementCount: 0 }],
        [
          'TargetDate',
          {
            serviceIntentId: a.serviceIntentId,
            l1Id: a.l1.id,
            entitlementCount: a.entitlementCount,
            targetDate: 'soon',
          },
        ],
      ];
      for (const [field, body] of cases) {
        expectValidationError(await call(sandbox, 'PATCH', path, { body }), field);
      }
      expectValidationError(await call(sandbox, 'PATCH', path, { rawBody: '{' }), 'Body');
      expect(JSON.stringify(service)).toBe(snapshot);
      expect(sum(service.records)).toBe(service.maxEntitlements);
      expectPascalError(
        await call(sandbox, 'PATCH', path.replace(/services\/\d+/, 'services/999'), { body: {} }),
        404,
      );
    });

    test('update, add and remove keep the sum at maxEntitlements (body keys in any case)', async () => {
      const target = service.records[0] as Json;
      const updated = await call(sandbox, 'PATCH', path, {
        body: {
          serviceIntentID: target.serviceIntentId.toUpperCase(),
          L1Id: 'Waiting on customer',
          l2id: null,
          entitlementCount: target.entitlementCount,
          owner: 'Jane Doe',
          notes: 'moved',
        },
      });
      expect(updated.status).toBe(200);
      const changed = updated.body.find((r: Json) => r.serviceIntentId === target.serviceIntentId);
      expect(changed).toMatchObject({
        l1: { id: 'Waiting on customer', name: 'Waiting on customer' },
        l2: null,
        owner: 'Jane Doe',
        notes: 'moved',
      });
      expect(updated.body).toHaveLength(service.records.length);
      expect(sum(updated.body)).toBe(service.maxEntitlements);

      // FPX gains 20 seats for the service (a test edit), and the client files them under a new status.
      service.maxEntitlements += 20;
      const added = await call(sandbox, 'PATCH', path, {
        body: { serviceIntentId: EMPTY_GUID, l1Id: 'Added status', entitlementCount: 20, notes: 'new seats' },
      });
      expect(added.status).toBe(200);
      expect(added.body).toHaveLength(updated.body.length + 1);
      expect(sum(added.body)).toBe(service.maxEntitlements);
      const fresh = added.body.find((r: Json) => r.l1.id === 'Added status');
      expect(fresh.serviceIntentId).toMatch(GUID_WITH_DASHES);
      const max = await get(sandbox, path.replace(/entitlements$/, 'maxEntitlements'));
      expect(max.body.maxEntitlements).toBe(service.maxEntitlements);

      service.maxEntitlements -= 20;
      const removed = await call(sandbox, 'PATCH', path, {
        body: { serviceIntentId: fresh.serviceIntentId, l1Id: 'Added status', entitlementCount: 0 },
      });
      expect(removed.status).toBe(200);
      expect(removed.body.map((r: Json) => r.serviceIntentId)).not.toContain(fresh.serviceIntentId);
      expect(sum(removed.body)).toBe(service.maxEntitlements);
      const listed = await get(
        sandbox,
        `${path.replace(/\/\d+\/entitlements$/, '/entitlements')}?serviceIds=${service.serviceId}`,
      );
      expect(listed.body).toEqual(removed.body);
    });
  });
});

describe('rate limit', () => {
  test('over the limit in 60 seconds: 429 with Retry-After and the PascalCase body, whoever the user', async () => {
    const sandbox = await start({ rateLimitPerMinute: 4 });
    const statuses: number[] = [];
    let limited: Answer | undefined;
    for (let i = 0; i < 5; i++) {
      const answer = await get(sandbox, '/timezones');
      statuses.push(answer.status);
      if (answer.status === 429) limited = answer;
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    if (!limited) throw new Error('no 429');
    expectPascalError(limited, 429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // The certificate is what counts: another user's token on it does not open a second window.
    const otherUser = await get(sandbox, '/timezones', {
      headers: { authorization: bearer({ sub: 'someone-else' }) },
    });
    expect(otherUser.status).toBe(429);
    expect(Object.values(sandbox.busiestWindows())).toEqual([4]);
    sandbox.setRateLimit(0);
    expect((await get(sandbox, '/timezones')).status).toBe(200);
  });

  test('the sliding window: evenly at the limit is never refused, one more within 60 s is', () => {
    const limiter = new SlidingWindowLimit(10);
    for (let i = 0; i < 100; i++) expect(limiter.take('even', i * 6_000)).toBeUndefined();
    expect(limiter.busiestWindows()).toEqual({ even: 10 });
    const burst = Array.from({ length: 11 }, (_, i) => limiter.take('burst', i));
    expect(burst.filter((wait) => wait === undefined)).toHaveLength(10);
    expect(burst.at(-1)).toBe(60);
    // Any window, not per calendar minute: 10 at the end of one minute leave no room at the start of the next.
    const edge = new SlidingWindowLimit(10);
    for (let i = 0; i < 10; i++) edge.take('a', 59_000 + i);
    expect(edge.take('a', 61_000)).toBe(58);
    expect(edge.take('a', 119_000)).toBeUndefined();
  });
});

describe('faults', () => {
  let sandbox: Sandbox;
  let tenantId: string;
  beforeAll(async () => {
    sandbox = await start();
    tenantId = sandbox.data.partnerTenants[1]?.tenantId as string;
  });

  test('5xx: scripted status, PascalCase body, consumed once; match by method and path; times', async () => {
    sandbox.injectFault({ kind: '5xx', status: 502 });
    expectPascalError(await get(sandbox, '/timezones'), 502);
    expect((await get(sandbox, '/timezones')).status).toBe(200);

    sandbox.injectFault({ kind: '5xx' }, { method: 'POST', path: /\/notes$/ }, 2);
    expect((await get(sandbox, `/tenants/${tenantId}/notes`)).status).toBe(200);
    const note = { text: 'x', noteCategoryId: 1 };
    expectPascalError(await call(sandbox, 'POST', `/tenants/${tenantId}/notes`, { body: note }), 503);
    expectPascalError(await call(sandbox, 'POST', `/tenants/${tenantId}/notes`, { body: note }), 503);
    expect((await call(sandbox, 'POST', `/tenants/${tenantId}/notes`, { body: note })).status).toBe(200);
    expect(sandbox.requests.filter((entry) => entry.fault === '5xx')).toHaveLength(3);
  });

  test('429 carries Retry-After exactly as scripted', async () => {
    const date = new Date(Date.now() + 5000).toUTCString();
    sandbox.injectFault({ kind: '429', retryAfter: '2' });
    sandbox.injectFault({ kind: '429', retryAfter: date });
    const first = await get(sandbox, '/services');
    const second = await get(sandbox, '/services');
    expectPascalError(first, 429);
    expect(first.headers['retry-after']).toBe('2');
    expect(second.headers['retry-after']).toBe(date);
  });

  test('drop destroys the connection before anything happens', async () => {
    sandbox.clearRequests();
    sandbox.injectFault({ kind: 'drop' });
    await expect(get(sandbox, '/services')).rejects.toThrow();
    expect(sandbox.requests[0]).toMatchObject({ status: 'dropped', fault: 'drop', path: '/services' });
    expect((await get(sandbox, '/services')).status).toBe(200);
  });

  test('dropAfterHandling creates the note, but the client sees a socket error', async () => {
    const details = sandbox.data.tenants.get(tenantId) as TenantDetails;
    const before = details.notes.length;
    sandbox.injectFault({ kind: 'dropAfterHandling' }, { method: 'POST' });
    const post = call(sandbox, 'POST', `/tenants/${tenantId}/notes`, {
      body: { text: 'outcome unknown', noteCategoryId: 1 },
    });
    await expect(post).rejects.toThrow();
    expect(details.notes).toHaveLength(before + 1);
    expect(details.notes.at(-1)?.note.text).toBe('outcome unknown');
    expect(sandbox.requests.at(-1)).toMatchObject({ status: 'dropped', fault: 'dropAfterHandling' });
  });

  test('slow delays the answer', async () => {
    sandbox.injectFault({ kind: 'slow', delayMs: 300 });
    const startedAt = performance.now();
    expect((await get(sandbox, '/skillTypes')).status).toBe(200);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(290);
    expect(sandbox.requests.at(-1)).toMatchObject({ fault: 'slow', status: 200 });
  });

  test('an outage answers 503 to everything until lifted', async () => {
    sandbox.setOutage(true);
    expectPascalError(await get(sandbox, '/timezones'), 503);
    expectPascalError(await get(sandbox, `/tenants/${tenantId}/contacts`), 503);
    sandbox.setOutage(false);
    expect((await get(sandbox, '/timezones')).status).toBe(200);
  });

  test('probabilities are seeded: the same seed gives the same faults', async () => {
    const run = async () => {
      sandbox.setFaults({ error5xx: 0.3, tooManyRequests: 0.2, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await get(sandbox, '/adminTypes')).status);
      return statuses;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(first).toContain(200);
    expect(first.some((status) => status >= 500)).toBe(true);
    expect(first).toContain(429);
    sandbox.setFaults({});
  });

  test('latencyMs delays every answer', async () => {
    const slow = await start({ latencyMs: 150 });
    const startedAt = performance.now();
    await get(slow, '/timezones');
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(140);
  });
});

describe('data generator', () => {
  test('is deterministic per seed', () => {
    const a = generateData({ seed: 5, tenants: 10, referrals: 10 });
    const b = generateData({ seed: 5, tenants: 10, referrals: 10 });
    const c = generateData({ seed: 6, tenants: 10, referrals: 10 });
    const snapshot = (data: typeof a) =>
      JSON.stringify([
        data.partnerTenants,
        data.referrals,
        [...data.tenants.values()].map((t) => ({ ...t, entitlements: [...t.entitlements.values()] })),
      ]);
    expect(snapshot(a)).toBe(snapshot(b));
    expect(snapshot(a)).not.toBe(snapshot(c));
  });

  // Generation speed is a benchmark figure (bench/sync), not asserted here.
  test('100,000 referrals generate; tenant details appear on first use', () => {
    const data = generateData({ referrals: 100_000 });
    expect(data.referrals).toHaveLength(100_000);
    expect(data.referrals.at(-1)?.id).toBe(100_000);
    const last = data.referrals.at(-1)?.tenantId as string;
    expect(data.tenants.get(last)?.tenantName).toBe(data.referrals.at(-1)?.tenantName);
  });
});
