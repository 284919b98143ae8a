import { describe, expect, test } from 'vitest';
import { FpxError } from '../../lib/fpx';
import { readErrorBody } from '../../lib/fpx/errors';
import { PagedList } from '../../lib/fpx/paging';
import { contactCreate, entitlementUpdate, NOTE_TEXT_MAX, noteCreate } from '../../lib/fpx/requests';
import * as schemas from '../../lib/fpx/schemas';
import { retryAfterMs } from '../../lib/fpx/transport';

describe('response schemas accept what FPX sends (FPX-NOTES.md)', () => {
  test('tenant ids in every GUID form come out lowercase with dashes', () => {
    for (const form of [
      'C4B8D7A6F9E64F6D8C8E1A1F4E6B9E3F',
      'c4b8d7a6f9e64f6d8c8e1a1f4e6b9e3f',
      'C4B8D7A6-F9E6-4F6D-8C8E-1A1F4E6B9E3F',
      '{c4b8d7a6-f9e6-4f6d-8c8e-1a1f4e6b9e3f}',
    ]) {
      expect(schemas.tenantId.parse(form)).toBe('c4b8d7a6-f9e6-4f6d-8c8e-1a1f4e6b9e3f');
    }
    expect(schemas.tenantId.safeParse('Dummy Tenant 3').success).toBe(false);
  });

  test('a referral keeps unknown fields and nulls; its id becomes a string key', () => {
    const parsed = schemas.referral.parse({
      id: 3,
      created: '2021-01-03T00:00:00Z',
      tenantId: '98765432-10AB-CDEF-0123-996789ABCDEF',
      tenantName: 'Dummy Tenant 3',
      tenantDomain: null,
      workloads: [{ id: 4, name: 'Dummy Workload 4', claimed: false, since: '2021' }],
      partnerNote: 'new field FPX added',
    });
    expect(parsed).toEqual({
      id: '3',
      created: '2021-01-03T00:00:00Z',
      tenantId: '98765432-10ab-cdef-0123-996789abcdef',
      tenantName: 'Dummy Tenant 3',
      tenantDomain: null,
      workloads: [{ id: 4, name: 'Dummy Workload 4', claimed: false, since: '2021' }],
      partnerNote: 'new field FPX added',
    });
  });

  test("the guide's contact sample parses: string and GUID ids, stray id, dash-less GUIDs", () => {
    const parsed = schemas.contact.parse({
      contactId: 'A7B7D7A6F9E64F6D8C8E1A1F4E6B9E3C',
      tenantId: 'c4b8d7a6f9e64f6d8c8e1a1f4e6b9e3f',
      name: 'John Doe',
      email: 'johndoe@example.com',
      isEngaged: true,
      surveyEligible: 'True',
      timezone: { id: '12345678-1234-1234-1234-123456789abc', name: 'Pacific Standard Time' },
      id: '12345678-1234-1234-1234-123456789abc',
      adminType: { id: '1', name: 'Admin Type 1' },
      contactType: { id: '123e4567-e89b-12d3-a456-426655440000', name: 'Some contact type' },
      skillTypes: [{ id: 1, name: 'Skill Type 1' }],
      services: null,
    });
    expect(parsed.contactId).toBe('a7b7d7a6-f9e6-4f6d-8c8e-1a1f4e6b9e3c');
    expect(parsed.tenantId).toBe('c4b8d7a6-f9e6-4f6d-8c8e-1a1f4e6b9e3f');
    expect(parsed.surveyEligible).toBe(true);
    expect(parsed.adminType?.id).toBe('1');
    expect(parsed.id).toBe('12345678-1234-1234-1234-123456789abc');
  });

  test('entitlement records: null levels, string counts, L1 ids that are not GUIDs', () => {
    const [record] = schemas.entitlementList.parse([
      {
        serviceIntentId: 'C1B9D6C6-6D8C-4B6E-8A0E-8F9C7B1A5C6C',
        l1: { id: 'In Progress', name: 'Sample L1 Name' },
        l2: null,
        l3: null,
        entitlementCount: '5',
        targetDate: '2022-01-01T00:00:00Z',
        owner: 'John Doe',
        nextActionDate: null,
        notes: 'This is a sample note',
      },
    ]);
    expect(record).toMatchObject({
      serviceIntentId: 'c1b9d6c6-6d8c-4b6e-8a0e-8f9c7b1a5c6c',
      l1: { id: 'In Progress' },
      l2: null,
      entitlementCount: 5,
    });
  });

  test('a list envelope keeps rfaId and tenant fields beside items', () => {
    const page = schemas.listEnvelope(schemas.note).parse({
      rfaId: null,
      count: 1,
      hasMore: false,
      tenantId: 'c4b8d7a6-f9e6-4f6d-8c8e-1a1f4e6b9e3f',
      tenantName: 'Example Tenant',
      items: [
        { text: 'x', author: null, created: '2021-08-01T12:00:00Z', noteCategory: { id: 1, name: 'EM' } },
      ],
    });
    expect(page).toMatchObject({ rfaId: null, tenantName: 'Example Tenant', items: [{ author: null }] });
  });

  test('reference lists: a bare array or an envelope; maxEntitlements in several shapes', () => {
    expect(schemas.referenceList.parse([{ id: 1, name: 'a' }])).toEqual([{ id: 1, name: 'a' }]);
    expect(
      schemas.referenceList.parse({ count: 1, hasMore: false, items: [{ id: '1', name: 'a' }] }),
    ).toEqual([{ id: '1', name: 'a' }]);
    expect(schemas.maxEntitlements.parse(150)).toBe(150);
    expect(schemas.maxEntitlements.parse({ serviceId: 3, MaxEntitlements: 150 })).toBe(150);
    expect(schemas.maxEntitlements.safeParse({ serviceId: 3 }).success).toBe(false);
  });

  test('an item that really does not fit names the field', () => {
    const result = schemas.listEnvelope(schemas.referral).safeParse({
      count: 2,
      hasMore: false,
      items: [
        { id: 1, tenantId: '123e4567-e89b-12d3-a456-426655440000' },
        { id: 2, tenantId: 'Dummy Tenant 3' },
      ],
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['items', 1, 'tenantId']);
  });
});

describe('request schemas follow the guide', () => {
  const contact = {
    name: 'John Doe',
    email: 'johndoe@example.com',
    title: 'Manager',
    surveyEligible: true,
    countryRegionId: '12345678123412341234123456789ABC',
    surveyLanguageId: '12345678-1234-1234-1234-123456789abc',
    contactTypeId: 2,
    services: [4, 5],
  };

  test('a complete contact passes and GUIDs go out normalised', () => {
    expect(contactCreate.parse(contact).countryRegionId).toBe('12345678-1234-1234-1234-123456789abc');
  });

  test('required-but-nullable contact fields must be present', () => {
    const { email: _email, ...withoutEmail } = contact;
    const result = contactCreate.safeParse(withoutEmail);
    expect(result.error?.issues.map((i) => i.path[0])).toEqual(['email']);
    expect(contactCreate.safeParse({ ...contact, email: null }).success).toBe(true);
  });

  test('note text is limited to 1,048,576 characters', () => {
    expect(noteCreate.safeParse({ text: 'x'.repeat(NOTE_TEXT_MAX), noteCategoryId: 1 }).success).toBe(true);
    expect(noteCreate.safeParse({ text: 'x'.repeat(NOTE_TEXT_MAX + 1), noteCategoryId: 1 }).success).toBe(
      false,
    );
  });

  test('entitlement update: the empty GUID means a new record; l1Id any non-empty string', () => {
    const parsed = entitlementUpdate.parse({
      serviceIntentId: '00000000-0000-0000-0000-000000000000',
      l1Id: 'In Progress',
      entitlementCount: 5,
      notes: '',
    });
    expect(parsed.serviceIntentId).toBeUndefined();
    expect(entitlementUpdate.safeParse({ l1Id: '', entitlementCount: 5, notes: '' }).success).toBe(false);
    expect(entitlementUpdate.safeParse({ l1Id: 'x', entitlementCount: -1, notes: '' }).success).toBe(false);
  });
});

describe('error bodies in both casings', () => {
  test('PascalCase with dependency fields', () => {
    expect(
      readErrorBody({
        ErrorStatus: 500,
        DependencyType: 'SQL Server',
        DependencyOwner: 'FTR CPOR Team',
        DependencyErrorCode: 'E1234',
        Message: 'Database timeout',
      }),
    ).toEqual({
      fpxMessage: 'Database timeout',
      dependencyType: 'SQL Server',
      dependencyOwner: 'FTR CPOR Team',
      dependencyErrorCode: 'E1234',
      fieldErrors: undefined,
    });
  });

  test('camelCase 400 with field errors, and field errors inside DependencyErrorCode', () => {
    expect(
      readErrorBody({
        errors: { Email: ['Invalid email address provided'], ContactTypeId: ['Contact Type is Required'] },
        errorStatus: 400,
        message: 'One or more validation errors occurred.',
      }),
    ).toMatchObject({
      fpxMessage: 'One or more validation errors occurred.',
      fieldErrors: { Email: ['Invalid email address provided'], ContactTypeId: ['Contact Type is Required'] },
    });
    expect(
      readErrorBody({ Message: 'Bad request', DependencyErrorCode: '{"Errors":{"Text":["Too long"]}}' })
        .fieldErrors,
    ).toEqual({ Text: ['Too long'] });
  });

  test('FpxError says what failed and is transient only for 429, 5xx and no answer', () => {
    const error = new FpxError({
      kind: 'http',
      endpoint: 'POST /tenants/{tenantId}/contacts',
      status: 400,
      fpxMessage: 'One or more validation errors occurred.',
      fieldErrors: { Email: ['Invalid email address provided'] },
    });
    expect(error.message).toBe(
      'FPX POST /tenants/{tenantId}/contacts failed: 400 One or more validation errors occurred. (Email: Invalid email address provided)',
    );
    expect(error.transient).toBe(false);
    expect(new FpxError({ kind: 'http', endpoint: 'x', status: 503 }).transient).toBe(true);
    expect(new FpxError({ kind: 'http', endpoint: 'x', status: 429 }).transient).toBe(true);
    expect(new FpxError({ kind: 'network', endpoint: 'x' }).transient).toBe(true);
    expect(new FpxError({ kind: 'tls', endpoint: 'x' }).transient).toBe(false);
  });

  test('Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:45 GMT', now)).toBe(45_000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('PagedList', () => {
  const pages = (list: Array<{ items: number[]; hasMore?: boolean; count?: number }>) =>
    new PagedList<number>('GET /x', async (page) => list[page - 1] ?? { items: [], hasMore: false });

  test('follows hasMore, and count when hasMore is missing', async () => {
    expect(
      await pages([
        { items: [1, 2], hasMore: true },
        { items: [3], hasMore: false },
      ]).toArray(),
    ).toEqual([1, 2, 3]);
    expect(
      await pages([
        { items: [1, 2], count: 3 },
        { items: [3], count: 3 },
      ]).toArray(),
    ).toEqual([1, 2, 3]);
  });

  test('counts items, not pages, against count: FPX may cap the page size below ours', async () => {
    // pageSize 2 asked, FPX answers 1 item a page: page * pageSize would stop after page 2.
    const capped = [1, 2, 3, 4].map((n) => ({ items: [n], count: 4 }));
    expect(await pages(capped).toArray()).toEqual([1, 2, 3, 4]);
  });

  test('with neither hasMore nor count, reads on until an empty page', async () => {
    expect(await pages([{ items: [1, 2] }, { items: [3] }, { items: [] }]).toArray()).toEqual([1, 2, 3]);
  });

  test('stops with an error when a page repeats', async () => {
    const list = new PagedList<number>('GET /partnerTenants', async () => ({
      items: [1, 2],
      hasMore: true,
    }));
    await expect(list.toArray()).rejects.toThrow(/page 2 repeats page 1/);
    await expect(list.toArray()).rejects.toMatchObject({ kind: 'loop', endpoint: 'GET /partnerTenants' });
  });

  test('stops with an error when hasMore stays true on an empty page', async () => {
    await expect(
      pages([
        { items: [1, 2], hasMore: true },
        { items: [], hasMore: true },
      ]).toArray(),
    ).rejects.toThrow(/page 2 is empty but hasMore is still true/);
  });
});
