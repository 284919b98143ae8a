import { inspect } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createCertificateAuthority, issueClientCertificate } from '../dev/certs';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { type CertificateSource, FileCertificateSource, parseClientCertificate } from '../lib/cert';
import { ManualClock } from '../lib/clock';
import { FpxClient, FpxError, FpxTransport, RateLimiter, type TransportOptions } from '../lib/fpx';
import { waitFor } from './support/wait';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let sandbox: Sandbox;
const open: FpxTransport[] = [];

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 53, referrals: 41, seed: 7 }, rateLimitPerMinute: 0 });
});
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
  await sandbox.close();
});
afterEach(() => {
  sandbox.setFaults({});
  sandbox.setRateLimit(0);
  sandbox.clearRequests();
});

function pemSource(): CertificateSource {
  return new FileCertificateSource(sandbox.certs.client.pemPath);
}

function client(options: Partial<TransportOptions> = {}, pageSize = 10): FpxClient {
  const transport = new FpxTransport({
    baseUrl: sandbox.url,
    certificates: pemSource(),
    caPem: sandbox.certs.ca.certPem,
    rateLimitPerMinute: 60_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
    ...options,
  });
  open.push(transport);
  return new FpxClient(transport, pageSize);
}

/**
 * A client whose rate limiter runs on a clock the test moves: FPX's Retry-After passes by `clock.advance`.
 * The clock starts at the real time, as the transport reads the real time when a 429 comes.
 */
function clockedClient() {
  const clock = new ManualClock(Date.now());
  const limiter = new RateLimiter(60_000, clock);
  return { fpx: client({ limiter }), clock, limiter };
}

const requestsTo = (path: string | RegExp) =>
  sandbox.requests.filter((r) => (typeof path === 'string' ? r.path === path : path.test(r.path)));

describe('mutual TLS', () => {
  test('a handshake without a client certificate fails', async () => {
    const agent = new Agent({ connect: { ca: sandbox.certs.ca.certPem } });
    await expect(
      request(`${sandbox.url}/timezones`, { dispatcher: agent }).then((r) => r.body.text()),
    ).rejects.toThrow();
    await agent.close();
  });

  test('a client certificate from another CA is refused, as an FpxError that holds no key', async () => {
    const stranger = issueClientCertificate(createCertificateAuthority('Stranger CA'));
    const certificate = parseClientCertificate(`${stranger.certPem}\n${stranger.keyPem}`, 'stranger');
    const source: CertificateSource = {
      description: 'stranger',
      current: async () => certificate,
      refresh: async () => certificate,
    };
    const error = await client({ certificates: source })
      .referenceList('timezones')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FpxError);
    expect(['tls', 'network']).toContain((error as FpxError).kind);
    expect(inspect(error, { depth: 5 })).not.toContain('PRIVATE KEY');
  });

  test('PEM and PFX certificate files both authenticate, and the sandbox sees the same certificate', async () => {
    const pfx = new FileCertificateSource(sandbox.certs.client.pfxPath, sandbox.certs.client.pfxPassword);
    await client().referenceList('services');
    await client({ certificates: pfx }).referenceList('services');
    const thumbprints = requestsTo('/services').map((r) => r.clientCertThumbprint);
    expect(thumbprints).toEqual([sandbox.certs.client.thumbprint, sandbox.certs.client.thumbprint]);
    expect((await pfx.current()).thumbprint).toBe(sandbox.certs.client.thumbprint);
  });

  test('a wrong PFX password is a clear error naming the file, not its content', async () => {
    const source = new FileCertificateSource(sandbox.certs.client.pfxPath, 'wrong password');
    await expect(source.current()).rejects.toThrow(
      /client\.pfx: the PKCS#12 \(PFX\) password is wrong or missing/,
    );
  });
});

describe('endpoints', () => {
  test('partnerTenants follows hasMore over every page, with tenant ids normalised', async () => {
    const fpx = client({}, 10);
    const tenants = await fpx.partnerTenants().toArray();
    expect(tenants).toHaveLength(sandbox.data.partnerTenants.length);
    expect(tenants.every((t) => GUID.test(t.tenantId))).toBe(true);
    const calls = requestsTo('/partnerTenants');
    expect(calls).toHaveLength(Math.ceil(sandbox.data.partnerTenants.length / 10));
    expect(calls.map((c) => c.query.page?.[0])).toEqual(calls.map((_, i) => String(i + 1)));
    expect(calls.every((c) => c.query.pageSize?.[0] === '10')).toBe(true);
  });

  test('partnerReferrals pages by pageSize and yields every referral once', async () => {
    const referrals = await client({}, 25).partnerReferrals().toArray();
    expect(new Set(referrals.map((r) => r.id)).size).toBe(sandbox.data.referrals.length);
    expect(referrals.every((r) => typeof r.id === 'string' && GUID.test(r.tenantId))).toBe(true);
    expect(requestsTo('/partnerReferrals')).toHaveLength(Math.ceil(sandbox.data.referrals.length / 25));
  });

  test('reference lists and maxEntitlements', async () => {
    const fpx = client();
    for (const list of [
      'timezones',
      'services',
      'frpServices',
      'contactTypes',
      'countryRegions',
      'adminTypes',
      'surveyLanguages',
      'skillTypes',
      'noteCategories',
    ] as const) {
      const items = await fpx.referenceList(list);
      expect(items.length, list).toBeGreaterThan(0);
      expect(items.every((i) => i.id !== undefined && i.id !== null)).toBe(true);
    }
    const tenant = await firstTenantWithEntitlements(fpx);
    const seats = await fpx.maxEntitlements(tenant.tenantId, tenant.serviceId);
    expect(seats).toBe(tenant.records.reduce((sum, r) => sum + r.entitlementCount, 0));
  });

  test('entitlements: read, add, change, remove; FPX keeps the seat total', async () => {
    const fpx = client();
    const { tenantId, serviceId, records } = await firstTenantWithEntitlements(fpx);
    const [first] = records;
    if (!first || first.entitlementCount < 2)
      throw new Error('sandbox data: expected a record with 2+ seats');
    // Moving seats needs two calls under the sum rule: shrink, then add — the sandbox checks the sum on each.
    const shrunk = fpx.updateEntitlement(tenantId.toUpperCase(), serviceId, {
      serviceIntentId: first.serviceIntentId,
      l1Id: String(first.l1?.id ?? 'In Progress'),
      entitlementCount: first.entitlementCount - 1,
      notes: 'shrink',
    });
    await expect(shrunk).rejects.toMatchObject({ status: 400, kind: 'http' });
    const error = (await shrunk.catch((e) => e)) as FpxError;
    expect(Object.keys(error.fieldErrors).length).toBeGreaterThan(0);
    expect(error.fpxMessage).toBeTruthy();

    const same = await fpx.updateEntitlement(tenantId, serviceId, {
      serviceIntentId: first.serviceIntentId,
      l1Id: String(first.l1?.id),
      entitlementCount: first.entitlementCount,
      owner: 'Jane Doe',
      notes: 'updated by test',
    });
    expect(same.find((r) => r.serviceIntentId === first.serviceIntentId)).toMatchObject({
      owner: 'Jane Doe',
      notes: 'updated by test',
    });
    const patch = requestsTo(/\/entitlements$/).find((r) => r.method === 'PATCH');
    expect(patch?.path).toBe(`/tenants/${tenantId}/services/${serviceId}/entitlements`);
  });

  test('contacts: list with rfaId, create, update', async () => {
    const fpx = client();
    const tenantId = sandboxTenantId(0);
    const created = await fpx.createContact(tenantId, {
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      title: 'CTO',
      surveyEligible: true,
      countryRegionId: await firstId(fpx, 'countryRegions'),
      surveyLanguageId: await firstId(fpx, 'surveyLanguages'),
      contactTypeId: Number(await firstIntId(fpx, 'contactTypes')),
      services: [],
    });
    expect(GUID.test(created.contactId)).toBe(true);
    expect(created).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.com' });

    const updated = await fpx.updateContact(created.contactId, {
      name: 'Ada King',
      email: 'ada@example.com',
      phone: null,
      title: 'CTO',
      surveyEligible: false,
      countryRegionId: null,
      surveyLanguageId: null,
      contactTypeId: Number(await firstIntId(fpx, 'contactTypes')),
      services: null,
    });
    expect(updated.name).toBe('Ada King');
    expect(requestsTo(`/contacts/${created.contactId}`)[0]?.method).toBe('PATCH');

    const listed = await fpx.contacts(tenantId).toArray();
    expect(listed.map((c) => c.contactId)).toContain(created.contactId);
    await fpx.contacts(tenantId, { rfaId: 1234, contactTypeId: 2 }).toArray();
    expect(requestsTo(/\/contacts$/).at(-1)?.query).toMatchObject({ rfaId: ['1234'], contactTypeId: ['2'] });
  });

  test('notes: create, then list by category with ordering', async () => {
    const fpx = client();
    const tenantId = sandboxTenantId(1);
    const note = await fpx.createNote(tenantId, { text: 'Kick-off held', noteCategoryId: 2 });
    expect(note).toMatchObject({ text: 'Kick-off held', noteCategory: { id: 2 } });
    const notes = await fpx.notes(tenantId, { noteCategory: 2, orderByCreated: 'Descending' }).toArray();
    expect(notes.map((n) => n.text)).toContain('Kick-off held');
    expect(requestsTo(/\/notes$/).at(-1)?.query).toMatchObject({
      noteCategory: ['2'],
      orderByCreated: ['Descending'],
    });
  });

  test('the end-user token and Origin reach FPX', async () => {
    const fpx = client({ origin: 'https://crm.example.com' });
    await fpx.referenceList('timezones', { endUserToken: 'eyJ.user.token' });
    expect(requestsTo('/timezones')[0]).toMatchObject({
      authorization: 'Bearer eyJ.user.token',
      origin: 'https://crm.example.com',
    });
  });
});

describe('errors', () => {
  test("FPX's 400 (camelCase) becomes an FpxError with the field errors", async () => {
    const error = (await client()
      .createNote(sandboxTenantId(0), { text: 'x', noteCategoryId: 999 })
      .catch((e) => e)) as FpxError;
    expect(error).toBeInstanceOf(FpxError);
    expect(error).toMatchObject({ status: 400, endpoint: 'POST /tenants/{tenantId}/notes' });
    expect(Object.keys(error.fieldErrors).map((k) => k.toLowerCase())).toContain('notecategoryid');
  });

  test("FPX's 404 (PascalCase) becomes an FpxError with the dependency fields", async () => {
    const error = (await client()
      .notes('00000000-0000-0000-0000-0000000000aa')
      .toArray()
      .catch((e) => e)) as FpxError;
    expect(error).toMatchObject({ status: 404, kind: 'http', endpoint: 'GET /tenants/{tenantId}/notes' });
    expect(error.fpxMessage).toBeTruthy();
    expect(error.dependencyType ?? error.dependencyOwner).toBeTruthy();
    expect(error.transient).toBe(false);
  });

  test('errors never contain the end-user token or certificate material', async () => {
    sandbox.injectFault({ kind: '5xx', status: 500 }, { method: 'POST' });
    const error = await client()
      .createNote(sandboxTenantId(0), { text: 'x', noteCategoryId: 1 }, { endUserToken: 'secret-user-token' })
      .catch((e) => e);
    const everything = `${inspect(error, { depth: 8, showHidden: true })} ${JSON.stringify(error)}`;
    expect(everything).not.toContain('secret-user-token');
    expect(everything).not.toContain('PRIVATE KEY');
    expect(everything).not.toContain('BEGIN CERTIFICATE');
  });
});

describe('retries and the rate limit', () => {
  test('GETs are retried on 5xx and on dropped connections', async () => {
    sandbox.injectFault({ kind: '5xx', status: 503 }, { path: /^\/timezones$/ });
    sandbox.injectFault({ kind: 'drop' }, { path: /^\/timezones$/ });
    const fpx = client();
    expect((await fpx.referenceList('timezones')).length).toBeGreaterThan(0);
    expect(requestsTo('/timezones').map((r) => r.status)).toEqual([503, 'dropped', 200]);
    expect(fpx.transport.stats).toMatchObject({ calls: 3, retries: 2 });
  });

  test('POST and PATCH are never resent; an unanswered or 5xx-answered create is flagged outcome-unknown', async () => {
    const fpx = client();
    // A 5xx may come after FPX applied the write (FPX-NOTES #13); only a GET's 5xx says nothing happened.
    sandbox.injectFault({ kind: '5xx', status: 503 }, { method: 'POST' });
    const failed = (await fpx
      .createNote(sandboxTenantId(2), { text: 'a', noteCategoryId: 1 })
      .catch((e) => e)) as FpxError;
    expect(failed).toMatchObject({ status: 503, transient: true, outcomeUnknown: true });

    sandbox.injectFault({ kind: 'dropAfterHandling' }, { method: 'POST' });
    const dropped = (await fpx
      .createNote(sandboxTenantId(2), { text: 'b', noteCategoryId: 1 })
      .catch((e) => e)) as FpxError;
    expect(dropped).toMatchObject({ kind: 'network', outcomeUnknown: true, transient: true });

    sandbox.injectFault({ kind: '5xx', status: 502 }, { method: 'PATCH' });
    await expect(
      fpx.updateContact('123e4567-e89b-12d3-a456-426655440000', {
        name: 'x',
        email: null,
        phone: null,
        title: null,
        surveyEligible: null,
        countryRegionId: null,
        surveyLanguageId: null,
        contactTypeId: 1,
        services: null,
      }),
    ).rejects.toMatchObject({ status: 502 });
    expect(requestsTo(/\/notes$/).filter((r) => r.method === 'POST')).toHaveLength(2);
    expect(requestsTo(/^\/contacts\//)).toHaveLength(1);
  });

  test('a slow answer times out and the GET is tried again', async () => {
    sandbox.injectFault({ kind: 'slow', delayMs: 1_500 }, { path: /^\/skillTypes$/ });
    const fpx = client({ timeouts: { headersMs: 300 } });
    expect((await fpx.referenceList('skillTypes')).length).toBeGreaterThan(0);
    expect(fpx.transport.stats).toMatchObject({ calls: 2, retries: 1 });
  });

  test('a 429 pauses every caller for its Retry-After, then all succeed', async () => {
    const { fpx, clock, limiter } = clockedClient();
    sandbox.injectFault({ kind: '429', retryAfter: '1' }, { path: /^\/services$/ });
    const first = fpx.referenceList('services');
    // Once the client has counted the 429 its pause is in force (set in the same turn).
    await waitFor('the 429', () => fpx.transport.stats.throttled === 1);
    const throttled = await waitFor('its log entry', () => sandbox.requests.find((r) => r.status === 429));
    // Callers that start after the 429 wait for FPX's second as well: all three are held, nothing is sent.
    const others = Promise.all([fpx.referenceList('timezones'), fpx.referenceList('adminTypes')]);
    await waitFor('three callers held', () => limiter.queued === 3);
    const pausedUntil = clock.now() + limiter.pausedForMs;
    expect(pausedUntil - throttled.time).toBeGreaterThanOrEqual(1_000);
    await clock.advance(limiter.pausedForMs - 1);
    expect(limiter.queued).toBe(3);
    expect(sandbox.requests.map((r) => r.path)).toEqual(['/services']);
    // The second is over: all three go.
    await clock.advance(1 + 10);
    expect((await first).length).toBeGreaterThan(0);
    expect((await others).every((r) => r.length > 0)).toBe(true);
    const after = sandbox.requests.filter((r) => r.time >= throttled.time).slice(1);
    expect(after.map((r) => r.path).sort()).toEqual(['/adminTypes', '/services', '/timezones']);
    expect(fpx.transport.stats.throttled).toBe(1);
  });

  test('Retry-After as an HTTP date is honoured', async () => {
    const { fpx, clock, limiter } = clockedClient();
    const at = new Date(Math.ceil((Date.now() + 2_000) / 1000) * 1000);
    sandbox.injectFault({ kind: '429', retryAfter: at.toUTCString() }, { path: /^\/adminTypes$/ });
    const call = fpx.referenceList('adminTypes');
    await waitFor('the retry held', () => fpx.transport.stats.throttled === 1 && limiter.queued === 1);
    // Held until that second, not before.
    expect(clock.now() + limiter.pausedForMs).toBeGreaterThanOrEqual(at.getTime());
    await clock.advance(at.getTime() - clock.now() - 1);
    expect(limiter.queued).toBe(1);
    await clock.advance(limiter.pausedForMs + 10);
    expect((await call).length).toBeGreaterThan(0);
    expect(requestsTo('/adminTypes').map((r) => r.status)).toEqual([429, 200]);
  });

  test('a GET gives up after its retry budget with the last error', async () => {
    sandbox.setOutage(true);
    try {
      const fpx = client({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
      await expect(fpx.referenceList('timezones')).rejects.toMatchObject({ status: 503 });
      expect(requestsTo('/timezones')).toHaveLength(3);
    } finally {
      sandbox.setOutage(false);
    }
  });
});

// Helpers reading the sandbox's live data through the client itself.
function sandboxTenantId(index: number): string {
  const tenant = sandbox.data.partnerTenants[index];
  if (!tenant) throw new Error(`sandbox has no tenant ${index}`);
  return String(tenant.tenantId);
}

/** Records name no service (FPX-NOTES #12): one service at a time, services from `/services/frp`. */
async function firstTenantWithEntitlements(fpx: FpxClient) {
  const services = (await fpx.referenceList('frpServices')).map((service) => Number(service.id));
  for (let i = 0; i < sandbox.data.partnerTenants.length; i++) {
    const tenantId = sandboxTenantId(i);
    for (const serviceId of services) {
      const records = await fpx.entitlements(tenantId, [serviceId]);
      if (records.length > 0) return { tenantId: tenantId.toLowerCase(), serviceId, records };
    }
  }
  throw new Error('sandbox data: no tenant with entitlements');
}

async function firstId(fpx: FpxClient, list: 'countryRegions' | 'surveyLanguages'): Promise<string> {
  return String((await fpx.referenceList(list))[0]?.id);
}

async function firstIntId(fpx: FpxClient, list: 'contactTypes'): Promise<string> {
  const item = (await fpx.referenceList(list)).find((i) => /^\d+$/.test(String(i.id)));
  return String(item?.id);
}
