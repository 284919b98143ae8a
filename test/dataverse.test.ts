/**
 * dataverseWebhook end to end through the Functions library's HttpRequest and functions/http-adapter.ts:
 * contexts in Dataverse's own JSON shape (dev/dataverse/context.ts), the Web API fake with its bearer token,
 * real Azurite and the FPX sandbox over mutual TLS, the CRM delivery pipeline underneath.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { dataverseHeaders, remoteExecutionContext, trimmed } from '../dev/dataverse/context';
import { type DataverseWebApiFake, startDataverseWebApiFake } from '../dev/dataverse/web-api-fake';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { GUIDE_SAMPLE_GUID } from '../dev/sandbox/reference';
import { adaptHttp } from '../functions/http-adapter';
import { deliveryIdFor, REPLAYED_HEADER } from '../lib/crm';
import {
  ContactLinks,
  type DataverseDeps,
  DataverseWebApi,
  handleDataverseWebhook,
  keys,
  LookupCache,
} from '../lib/dataverse';
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
  options: { key?: string | null; oversized?: boolean; to?: DataverseDeps } = {},
) {
  const key = options.key === null ? undefined : (options.key ?? KEY);
  const body = JSON.stringify(options.oversized ? trimmed(context) : context);
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

  test('a context trimmed over 256 KB: the note is read from the Web API', async () => {
    const id = randomUUID();
    const subject = `Big attachment ${id}`;
    api.setRow('annotations', id, {
      subject,
      notetext: null,
      objecttypecode: 'account',
      objectid: { LogicalName: 'account', Id: ACCOUNT },
    });
    const context = remoteExecutionContext({ message: 'Create', table: 'annotation', id, attributes: {} });
    const { answer, body } = await post(context, { oversized: true });
    expect(answer.status).toBe(200);
    expect(body).toMatchObject({ status: 'delivered' });
    expect(noteCreates(sandbox, subject)).toHaveLength(1);
    const read = api.requests.find((r) => r.path.endsWith(`annotations(${id})`));
    expect(read).toMatchObject({ authorized: true, status: 200 });
    expect(read?.select).toEqual(expect.arrayContaining(['subject', 'notetext', '_objectid_value']));
  });

  test('an account without a tenant id: acknowledged, recorded as ignored with the reason, never sent', async () => {
    const id = randomUUID();
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id,
      attributes: { subject: `Orphan ${id}`, objectid: { LogicalName: 'account', Id: BARE_ACCOUNT } },
    });
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
    expect((await post(context, { key: `${KEY}x` })).answer.status).toBe(401);
    expect((await post(context, { key: null })).answer.status).toBe(401);
    expect(
      await fx.deps.store.get(deliveryIdFor(keys.note(String(context.PrimaryEntityId)))),
    ).toBeUndefined();
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
