/**
 * dataverseWebhook end to end through the Functions library's HttpRequest and functions/http-adapter.ts:
 * contexts in Dataverse's own JSON shape (dev/dataverse/context.ts), the Web API fake with its bearer token,
 * real Azurite and the FPX sandbox over mutual TLS, the CRM delivery pipeline underneath.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { dataverseHeaders, remoteExecutionContext, trimmed } from '../dev/dataverse/context';
import { type DataverseWebApiFake, startDataverseWebApiFake } from '../dev/dataverse/web-api-fake';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { GUIDE_SAMPLE_GUID } from '../dev/sandbox/reference';
import { adaptHttp } from '../functions/http-adapter';
import { deliveryIdFor, REPLAYED_HEADER } from '../lib/crm';
import {
  ANSWER_WITHIN_MS,
  ContactLinks,
  type DataverseDeps,
  DataverseWebApi,
  handleDataverseWebhook,
  keys,
  LookupCache,
  WebApiError,
} from '../lib/dataverse';
import { retryDelivery } from '../lib/ops';
import { tableClient } from '../lib/storage';
import {
  bodyOf,
  type CrmFixture,
  crmFixture,
  headerOf,
  loggedContext,
  noteCreates,
  runWorker,
  TENANT,
} from './crm-support';

const KEY = `dv-key-${randomBytes(12).toString('hex')}`;
const connection = inject('storageConnection');
let sandbox: Sandbox;
let api: DataverseWebApiFake;
let fx: CrmFixture;
let deps: DataverseDeps;
let canada = '';

const ACCOUNT = randomUUID();
const BARE_ACCOUNT = randomUUID();

beforeAll(async () => {
  [sandbox, api] = await Promise.all([
    startSandbox({ data: { tenants: 2, referrals: 1 }, rateLimitPerMinute: 0 }),
    startDataverseWebApiFake(),
  ]);
  fx = crmFixture(connection, sandbox);
  const run = randomBytes(4).toString('hex');
  const links = new ContactLinks(tableClient(connection, `DataverseLinks${run}`));
  fx.deps.onContactCreated = links.onContactCreated(fx.deps.now);
  const referenceData = tableClient(connection, `FpxReferenceData${run}`);
  await referenceData.createTable();
  canada = String(sandbox.data.reference.countryRegions.find((c) => c.name === 'Canada')?.id);
  await referenceData.createEntity({
    partitionKey: 'countryRegions',
    rowKey: canada,
    id: canada,
    name: 'Canada',
  });
  api.setRow('accounts', ACCOUNT, { name: 'Litware', fpx_tenantid: TENANT.toUpperCase() });
  api.setRow('accounts', BARE_ACCOUNT, { name: 'No tenant yet', fpx_tenantid: null });
  deps = {
    crm: fx.deps,
    settings: {
      url: api.url,
      webhookKey: KEY,
      tenantIdColumn: 'fpx_tenantid',
      noteCategoryId: 2,
      contactDefaults: {
        contactTypeId: 2,
        surveyLanguageId: GUIDE_SAMPLE_GUID,
        surveyEligible: false,
        services: [2],
      },
      functionKeyChecked: false,
    },
    webApi: new DataverseWebApi({ url: api.url, credential: api.credential }),
    links,
    referenceData,
    cache: new LookupCache(),
  };
});
afterAll(() => Promise.all([sandbox.close(), api.close()]));

async function post(
  context: Record<string, unknown>,
  options: { key?: string | null; oversized?: boolean; untrimmed?: boolean; to?: DataverseDeps } = {},
) {
  const key = options.key === null ? undefined : (options.key ?? KEY);
  // `untrimmed`: the size header with the context whole (its Target then stale): the header alone decides.
  const body = JSON.stringify(options.oversized && !options.untrimmed ? trimmed(context) : context);
  const request = new HttpRequest({
    method: 'POST',
    url: 'http://127.0.0.1:7071/api/dataverse',
    headers: dataverseHeaders(context, { key, oversized: options.oversized }),
    body: { string: body },
  });
  const { context: invocation, lines } = loggedContext('dataverseWebhook');
  const answer = await adaptHttp((req, log) => handleDataverseWebhook(options.to ?? deps, req, log))(
    request,
    invocation,
  );
  return { answer, body: bodyOf(answer), lines };
}

/** Contact creates FPX performed (not the faulted ones). */
const contactPosts = () =>
  sandbox.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/contacts') && r.status === 200);
const contactPatches = (fpxId: string) =>
  sandbox.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/contacts/${fpxId}`));
const postsOf = (email: string) =>
  contactPosts().filter((r) => (r.body as { email?: string } | undefined)?.email === email);

/** Collects the app's metrics on demand (the OpenTelemetry SDK's own reader). */
class CollectingReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('notes', () => {
  test('an annotation on an account reaches FPX once; the redelivered context replays its answer', async () => {
    const id = randomUUID();
    const subject = `Kick-off ${id}`;
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id,
      attributes: {
        subject,
        notetext: 'Teams first.',
        objectid: { LogicalName: 'account', Id: ACCOUNT },
        createdon: new Date(),
      },
    });
    const first = await post(context);
    expect(first.answer.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'delivered', deliveryId: deliveryIdFor(keys.note(id)) });
    expect(first.body.result).toMatchObject({ text: `${subject}\n\nTeams first.`, noteCategory: { id: 2 } });

    const again = await post(context);
    expect(again.answer.status).toBe(200);
    expect(headerOf(again.answer, REPLAYED_HEADER)).toBe('true');
    expect(noteCreates(sandbox, `${subject}\n\nTeams first.`)).toHaveLength(1);
  });

  test('a context marked over 256 KB: the note is read from the Web API, not from what the context carries', async () => {
    const id = randomUUID();
    const subject = `Big attachment ${id}`;
    api.setRow('annotations', id, {
      subject,
      notetext: null,
      objecttypecode: 'account',
      objectid: { LogicalName: 'account', Id: ACCOUNT },
    });
    // A Target still there (stale): only x-ms-dynamics-msg-size-exceeded tells the handler to read the row.
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id,
      attributes: { subject: `Stale ${id}`, objectid: { LogicalName: 'account', Id: ACCOUNT } },
    });
    const { answer, body } = await post(context, { oversized: true, untrimmed: true });
    expect(answer.status).toBe(200);
    expect(body).toMatchObject({ status: 'delivered' });
    expect(noteCreates(sandbox, subject)).toHaveLength(1);
    expect(noteCreates(sandbox, `Stale ${id}`)).toHaveLength(0);
    const read = api.requests.find((r) => r.path.endsWith(`annotations(${id})`));
    expect(read).toMatchObject({ authorized: true, status: 200 });
    expect(read?.select).toEqual(expect.arrayContaining(['subject', 'notetext', '_objectid_value']));
  });

  test('an account without a tenant id: acknowledged, recorded as ignored with the reason (and counted), never sent', async () => {
    const id = randomUUID();
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id,
      attributes: { subject: `Orphan ${id}`, objectid: { LogicalName: 'account', Id: BARE_ACCOUNT } },
    });
    const reader = new CollectingReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    try {
      const { answer, body } = await post(context);
      expect(answer.status).toBe(200);
      expect(body).toMatchObject({
        status: 'ignored',
        message: expect.stringContaining('fpx_tenantid is empty'),
      });
      const row = await fx.deps.store.get(deliveryIdFor(keys.note(id)));
      expect(row).toMatchObject({ status: 'ignored', lastError: expect.stringContaining(BARE_ACCOUNT) });
      expect((await post(context)).body).toMatchObject({ status: 'ignored' });
      expect(noteCreates(sandbox, `Orphan ${id}`)).toHaveLength(0);
      // Final once, as every delivery: the replay above is not counted again.
      const { resourceMetrics } = await reader.collect();
      const finals = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .find((m) => m.descriptor.name === 'crm.deliveries');
      const ignoredNotes = finals?.dataPoints.filter(
        (p) => p.attributes['crm.delivery.status'] === 'ignored',
      );
      expect(ignoredNotes).toEqual([
        expect.objectContaining({
          value: 1,
          attributes: { 'crm.delivery.status': 'ignored', 'crm.endpoint': 'notes' },
        }),
      ]);
    } finally {
      metrics.disable();
    }
  });

  test('the answer time budget spent reading Dataverse: the FPX attempt is cut short and queued (202)', async () => {
    const id = randomUUID();
    const subject = `Late ${id}`;
    // Reading the account takes the whole budget (on the handlers' clock: nothing waits).
    class Slow extends DataverseWebApi {
      override async accountColumn(accountId: string, column: string, signal?: AbortSignal) {
        const value = await super.accountColumn(accountId, column, signal);
        fx.clock.advance(ANSWER_WITHIN_MS);
        return value;
      }
    }
    const late: DataverseDeps = {
      ...deps,
      webApi: new Slow({ url: api.url, credential: api.credential }),
      cache: new LookupCache(),
    };
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id,
      attributes: { subject, objectid: { LogicalName: 'account', Id: ACCOUNT } },
    });
    const { answer, body } = await post(context, { to: late });
    expect(answer.status).toBe(202);
    expect(body).toMatchObject({ status: 'queued', deliveryId: deliveryIdFor(keys.note(id)) });
    expect(await runWorker(fx.deps)).toContain('delivered');
    expect(noteCreates(sandbox, subject)).toHaveLength(1);
  });
});

describe('contacts', () => {
  test('create, then update: one FPX create, then a PATCH of that contact; redelivery creates nothing', async () => {
    const id = randomUUID();
    const email = `jo.${id.slice(0, 8)}@litware.example.com`;
    const attributes = {
      firstname: 'Jo',
      lastname: 'Park',
      emailaddress1: email,
      telephone1: '+1-555-0100',
      jobtitle: 'CIO',
      address1_country: ' canada ',
      parentcustomerid: { LogicalName: 'account', Id: ACCOUNT },
    };
    const create = remoteExecutionContext({ message: 'Create', table: 'contact', id, attributes });
    const first = await post(create);
    expect(first.answer.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'delivered' });
    const posts = contactPosts().filter((r) => (r.body as { email?: string } | undefined)?.email === email);
    expect(posts).toHaveLength(1);
    expect(posts[0]?.body).toMatchObject({
      name: 'Jo Park',
      phone: '+1-555-0100',
      title: 'CIO',
      countryRegionId: canada,
      contactTypeId: 2,
    });
    const link = await deps.links.get(id);
    expect(link?.fpxContactId).toBe((first.body.result as { contactId: string }).contactId);

    expect(headerOf((await post(create)).answer, REPLAYED_HEADER)).toBe('true');

    // An Update's Target holds only what changed: the contact is read whole from the Web API.
    api.setRow('contacts', id, { ...attributes, jobtitle: 'CTO' });
    const update = remoteExecutionContext({
      message: 'Update',
      table: 'contact',
      id,
      attributes: { jobtitle: 'CTO' },
    });
    const second = await post(update);
    expect(second.answer.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'delivered' });
    expect(contactPatches(link?.fpxContactId ?? '')).toHaveLength(1);
    expect(contactPatches(link?.fpxContactId ?? '')[0]?.body).toMatchObject({
      title: 'CTO',
      name: 'Jo Park',
    });
    await post(update);
    expect(
      contactPosts().filter((r) => (r.body as { email?: string } | undefined)?.email === email),
    ).toHaveLength(1);
    expect(contactPatches(link?.fpxContactId ?? '')).toHaveLength(1);
  });

  test('an update of a contact we never created is a create (and links it)', async () => {
    const id = randomUUID();
    const email = `sam.${id.slice(0, 8)}@litware.example.com`;
    api.setRow('contacts', id, {
      firstname: 'Sam',
      lastname: 'Ode',
      emailaddress1: email,
      jobtitle: 'Admin',
      parentcustomerid: { LogicalName: 'account', Id: ACCOUNT },
    });
    const update = remoteExecutionContext({
      message: 'Update',
      table: 'contact',
      id,
      attributes: { jobtitle: 'Admin' },
    });
    const { body } = await post(update);
    expect(body).toMatchObject({ status: 'delivered', deliveryId: deliveryIdFor(keys.contactCreate(id)) });
    expect(
      contactPosts().filter((r) => (r.body as { email?: string } | undefined)?.email === email),
    ).toHaveLength(1);
    expect(await deps.links.get(id)).toBeDefined();
  });

  test('a Create and an Update of a new contact at once: one creates, the other gets 503, then is a PATCH', async () => {
    const id = randomUUID();
    const email = `kim.${id.slice(0, 8)}@litware.example.com`;
    const attributes = {
      firstname: 'Kim',
      lastname: 'Lu',
      emailaddress1: email,
      parentcustomerid: { LogicalName: 'account', Id: ACCOUNT },
    };
    api.setRow('contacts', id, { ...attributes, jobtitle: 'CEO' });
    const create = remoteExecutionContext({ message: 'Create', table: 'contact', id, attributes });
    const update = remoteExecutionContext({
      message: 'Update',
      table: 'contact',
      id,
      attributes: { jobtitle: 'CEO' },
    });
    // The Update found no link and reads the row; meanwhile the Create claims the contact's create key (another
    // fingerprint) and is delivered: the Update's claim of that key then fails.
    let first: Awaited<ReturnType<typeof post>> | undefined;
    class Racing extends DataverseWebApi {
      override async contact(contactId: string, signal?: AbortSignal) {
        first ??= await post(create);
        return super.contact(contactId, signal);
      }
    }
    const racing = { ...deps, webApi: new Racing({ url: api.url, credential: api.credential }) };
    const loser = await post(update, { to: racing });
    expect(first?.body).toMatchObject({
      status: 'delivered',
      deliveryId: deliveryIdFor(keys.contactCreate(id)),
    });
    expect(loser.answer.status).toBe(503);
    expect(headerOf(loser.answer, 'Retry-After')).toBe('60');

    // Dataverse brings the Update again: the contact is linked by now, so it is a PATCH.
    const again = await post(update);
    expect(again.body).toMatchObject({ status: 'delivered' });
    const link = await deps.links.get(id);
    expect(contactPatches(link?.fpxContactId ?? '')).toHaveLength(1);
    expect(contactPatches(link?.fpxContactId ?? '')[0]?.body).toMatchObject({ title: 'CEO' });
    expect(postsOf(email)).toHaveLength(1);
  });

  test('FPX down: 202 queued; the queue delivers it and links the contact; the next update is a PATCH', async () => {
    const id = randomUUID();
    const email = `lee.${id.slice(0, 8)}@litware.example.com`;
    const attributes = {
      firstname: 'Lee',
      lastname: 'Ray',
      emailaddress1: email,
      parentcustomerid: { LogicalName: 'account', Id: ACCOUNT },
    };
    sandbox.injectFault({ kind: '5xx', status: 503 }, { method: 'POST', path: /\/contacts$/ });
    const { answer, body } = await post(
      remoteExecutionContext({ message: 'Create', table: 'contact', id, attributes }),
    );
    expect(answer.status).toBe(202);
    expect(body).toMatchObject({ status: 'queued' });
    // Another change while the create is queued: Dataverse is told to bring it again later.
    api.setRow('contacts', id, { ...attributes, jobtitle: 'Dev' });
    const update = remoteExecutionContext({
      message: 'Update',
      table: 'contact',
      id,
      attributes: { jobtitle: 'Dev' },
    });
    const early = await post(update);
    expect(early.answer.status).toBe(503);
    expect(headerOf(early.answer, 'Retry-After')).toBeDefined();

    expect(await runWorker(fx.deps)).toContain('delivered');
    const link = await deps.links.get(id);
    expect(link).toBeDefined();
    const later = await post(update);
    expect(later.body).toMatchObject({ status: 'delivered' });
    expect(contactPatches(link?.fpxContactId ?? '')).toHaveLength(1);
    expect(
      contactPosts().filter((r) => (r.body as { email?: string } | undefined)?.email === email),
    ).toHaveLength(1);
  });

  /** A contact of the account in the Web API, and an Update event of it (a new event id each time). */
  function changed(id: string, email: string, jobtitle: string) {
    api.setRow('contacts', id, {
      firstname: 'Ana',
      lastname: 'Diaz',
      emailaddress1: email,
      jobtitle,
      parentcustomerid: { LogicalName: 'account', Id: ACCOUNT },
    });
    return remoteExecutionContext({ message: 'Update', table: 'contact', id, attributes: { jobtitle } });
  }
  /** FPX contacts with this email, however their create was answered (a dropped answer included). */
  const fpxContacts = (email: string) =>
    (sandbox.data.tenants.get(TENANT)?.contacts ?? []).filter((entry) => entry.contact.email === email);

  test('after a first create that made no contact, two events while FPX is down: one create, the other 503, then a PATCH', async () => {
    const id = randomUUID();
    const email = `ana.${id.slice(0, 8)}@litware.example.com`;
    const create = remoteExecutionContext({
      message: 'Create',
      table: 'contact',
      id,
      attributes: {
        lastname: 'Diaz',
        emailaddress1: email,
        parentcustomerid: { LogicalName: 'account', Id: BARE_ACCOUNT },
      },
    });
    expect((await post(create)).body).toMatchObject({
      status: 'ignored',
      deliveryId: deliveryIdFor(keys.contactCreate(id)),
    });

    // Moved to an account with a tenant id while FPX is down: this event's create (the next generation) is queued.
    sandbox.injectFault({ kind: '5xx', status: 503 }, { method: 'POST', path: /\/contacts$/ });
    const first = await post(changed(id, email, 'Dev'));
    expect(first.answer.status).toBe(202);
    expect(first.body).toMatchObject({
      status: 'queued',
      deliveryId: deliveryIdFor(keys.contactCreateAt(id, 1)),
    });
    // The next change finds that create on its way: Dataverse brings it again later, no second create.
    const second = changed(id, email, 'Lead');
    const early = await post(second);
    expect(early.answer.status).toBe(503);
    expect(headerOf(early.answer, 'Retry-After')).toBe('60');

    expect(await runWorker(fx.deps)).toContain('delivered');
    const link = await deps.links.get(id);
    const later = await post(second);
    expect(later.body).toMatchObject({ status: 'delivered' });
    expect(contactPatches(link?.fpxContactId ?? '')[0]?.body).toMatchObject({ title: 'Lead' });
    expect(postsOf(email)).toHaveLength(1);
    expect(fpxContacts(email)).toHaveLength(1);
  });

  test('the create pointer: two events at once after rejected creates, one moves it and creates, the other 503', async () => {
    const id = randomUUID();
    const email = `ana.${id.slice(0, 8)}@litware.example.com`;
    // FPX refuses the first two creates (its 403): generation 0, then 1 (the pointer inserted), are rejected.
    sandbox.injectFault({ kind: 'refused', status: 403 }, { method: 'POST', path: /\/contacts$/ }, 2);
    expect((await post(changed(id, email, 'Dev'))).body).toMatchObject({
      status: 'rejected',
      deliveryId: deliveryIdFor(keys.contactCreate(id)),
    });
    expect((await post(changed(id, email, 'Dev'))).body).toMatchObject({
      status: 'rejected',
      deliveryId: deliveryIdFor(keys.contactCreateAt(id, 1)),
    });

    // A reads the pointer (generation 1, rejected); before it moves it on, B reads, moves it and creates.
    const a = changed(id, email, 'Ops');
    const b = changed(id, email, 'Ops');
    let racer: Awaited<ReturnType<typeof post>> | undefined;
    class Racing extends ContactLinks {
      override async read(contactId: string) {
        const row = await super.read(contactId);
        racer ??= await post(b);
        return row;
      }
    }
    const loser = await post(a, { to: { ...deps, links: new Racing(deps.links.table) } });
    expect(racer?.body).toMatchObject({
      status: 'delivered',
      deliveryId: deliveryIdFor(keys.contactCreateAt(id, 2)),
    });
    expect(loser.answer.status).toBe(503);
    expect(headerOf(loser.answer, 'Retry-After')).toBe('60');
    expect((await deps.links.read(id)).create.generation).toBe(2);
    // Retried, A finds the link: a PATCH.
    expect((await post(a)).body).toMatchObject({ status: 'delivered' });
    expect(postsOf(email)).toHaveLength(1);
    expect(fpxContacts(email)).toHaveLength(1);
  });

  test('a failed create that may have reached FPX: later events are ignored naming it, never create; Retry reconciles', async () => {
    const id = randomUUID();
    const email = `ana.${id.slice(0, 8)}@litware.example.com`;
    // FPX creates the contact but its answer is lost; the queue then gives up (one attempt allowed here).
    sandbox.injectFault({ kind: 'dropAfterHandling' }, { method: 'POST', path: /\/contacts$/ });
    const oneAttempt = { ...deps, crm: { ...fx.deps, policy: { ...fx.deps.policy, maxAttempts: 1 } } };
    const first = await post(changed(id, email, 'Dev'), { to: oneAttempt });
    expect(first.body).toMatchObject({ status: 'queued' });
    expect(await runWorker(oneAttempt.crm)).toContain('failed');
    const createId = deliveryIdFor(keys.contactCreate(id));
    expect(await fx.deps.store.get(createId)).toMatchObject({
      status: 'failed',
      unknownSince: expect.any(String),
    });

    const next = changed(id, email, 'Lead');
    const answer = await post(next);
    expect(answer.answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'ignored', message: expect.stringContaining(createId) });
    expect(fpxContacts(email)).toHaveLength(1);

    // The operator's Retry: the queue looks in FPX first, finds the contact and links it.
    expect(await retryDelivery(fx.deps, createId)).toMatchObject({ status: 202 });
    expect(await runWorker(fx.deps)).toContain('delivered');
    const link = await deps.links.get(id);
    expect(link).toBeDefined();
    expect((await post(changed(id, email, 'CTO'))).body).toMatchObject({ status: 'delivered' });
    expect(contactPatches(link?.fpxContactId ?? '')).toHaveLength(1);
    expect(fpxContacts(email)).toHaveLength(1);
  });

  test('a contact lacking a field FPX requires is ignored, naming it', async () => {
    const id = randomUUID();
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'contact',
      id,
      attributes: {
        emailaddress1: 'x@example.com',
        parentcustomerid: { LogicalName: 'account', Id: ACCOUNT },
      },
    });
    const { body } = await post(context);
    expect(body).toMatchObject({ status: 'ignored', message: expect.stringContaining('name') });
  });
});

describe('refusals', () => {
  const note = () =>
    remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id: randomUUID(),
      attributes: { subject: 'x', objectid: { LogicalName: 'account', Id: ACCOUNT } },
    });

  test('a wrong or missing x-fpx-dataverse-key: 401, nothing read or stored', async () => {
    const context = note();
    const reads = api.requests.length;
    expect((await post(context, { key: `${KEY}x` })).answer.status).toBe(401);
    expect((await post(context, { key: null })).answer.status).toBe(401);
    // Even where Azure checked the function key, a header sent must match.
    const azure = { ...deps, settings: { ...deps.settings, functionKeyChecked: true } };
    expect((await post(context, { key: `${KEY}x`, to: azure })).answer.status).toBe(401);
    expect(api.requests.length).toBe(reads);
    expect(
      await fx.deps.store.get(deliveryIdFor(keys.note(String(context.PrimaryEntityId)))),
    ).toBeUndefined();
  });

  test('a header while no DATAVERSE_WEBHOOK_KEY is set: 401; no header where Azure checked the function key: passes', async () => {
    const keyless = { ...deps, settings: { ...deps.settings, webhookKey: undefined } };
    const refused = await post(note(), { key: 'anything-at-all', to: keyless });
    expect(refused.answer.status).toBe(401);
    expect(refused.body.message).toContain('no DATAVERSE_WEBHOOK_KEY');
    expect((await post(note(), { key: null, to: keyless })).answer.status).toBe(401);

    const azure = { ...keyless, settings: { ...keyless.settings, functionKeyChecked: true } };
    const { answer, body } = await post(note(), { key: null, to: azure });
    expect(answer.status).toBe(200);
    expect(body).toMatchObject({ status: 'delivered' });
  });

  test('the Web API reads are bounded: a token that never comes, a 404 that is not "no such row"', async () => {
    const stuck = new DataverseWebApi({
      url: api.url,
      credential: { getToken: () => new Promise(() => {}) },
    });
    const noToken = await stuck
      .accountColumn(ACCOUNT, 'fpx_tenantid', AbortSignal.abort())
      .catch((error: unknown) => error);
    expect(noToken).toBeInstanceOf(WebApiError);
    expect(noToken).toMatchObject({ transient: true, message: expect.stringContaining('no token') });

    // A wrong DATAVERSE_URL (its path): 404 "resource not found", not a missing account: retried, not ignored.
    const wrong = new DataverseWebApi({ url: `${api.url}/elsewhere`, credential: api.credential });
    await expect(wrong.accountColumn(ACCOUNT, 'fpx_tenantid')).rejects.toMatchObject({ status: 404 });
    const context = note();
    const { answer } = await post(context, { to: { ...deps, webApi: wrong, cache: new LookupCache() } });
    expect(answer.status).toBe(503);
    expect(
      await fx.deps.store.get(deliveryIdFor(keys.note(String(context.PrimaryEntityId)))),
    ).toBeUndefined();
    // A row that does not exist is still "not in Dataverse".
    expect(await deps.webApi?.accountColumn(randomUUID(), 'fpx_tenantid')).toBeUndefined();
  });

  test('the Web API unavailable: 503 with Retry-After (Dataverse retries); no DATAVERSE_URL: 503', async () => {
    api.setMode('failing');
    try {
      const { answer } = await post(note(), { to: { ...deps, cache: new LookupCache() } });
      expect(answer.status).toBe(503);
      expect(headerOf(answer, 'Retry-After')).toBe('60');
    } finally {
      api.setMode('normal');
    }
    const unset = { ...deps, settings: { ...deps.settings, url: undefined }, webApi: undefined };
    expect((await post(note(), { to: unset })).answer.status).toBe(503);
  });

  test('not a context: 400 naming the field; another table or message: 200 ignored, not kept', async () => {
    const broken = { ...note(), PrimaryEntityId: 'nope' };
    const bad = await post(broken);
    expect(bad.answer.status).toBe(400);
    expect(bad.body.errors).toHaveProperty('PrimaryEntityId');
    const other = remoteExecutionContext({
      message: 'Create',
      table: 'opportunity',
      id: randomUUID(),
      attributes: {},
    });
    expect((await post(other)).body).toMatchObject({ status: 'ignored' });
  });
});
