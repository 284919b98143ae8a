/** The pure part of Dataverse webhooks: the context as Dataverse serializes it, dates, attributes → FPX fields. */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { type ContextInput, remoteExecutionContext, trimmed } from '../../dev/dataverse/context';
import {
  afterCreate,
  entityReference,
  eventFingerprint,
  eventId,
  eventKind,
  eventTime,
  keys,
  mapContact,
  mapNote,
  parseContext,
  parseDataverseDate,
  targetAttributes,
} from '../../lib/dataverse';

const ACCOUNT = 'A1B2C3D4-0000-4000-8000-000000000001';

function parsed(context: Record<string, unknown>) {
  const result = parseContext(JSON.parse(JSON.stringify(context)));
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.context;
}

describe('context parsing', () => {
  test('Target attributes as key/value lists, EntityReference values, ids normalized', () => {
    const id = randomUUID().toUpperCase();
    const context = parsed(
      remoteExecutionContext({
        message: 'Create',
        table: 'contact',
        id,
        attributes: { firstname: 'Jo', parentcustomerid: { LogicalName: 'account', Id: ACCOUNT } },
      }),
    );
    expect(context.PrimaryEntityId).toBe(id.toLowerCase());
    expect(eventKind(context)).toBe('contact');
    const attributes = targetAttributes(context);
    expect(attributes).toMatchObject({ firstname: 'Jo', contactid: id });
    expect(entityReference(attributes?.parentcustomerid)).toEqual({
      logicalName: 'account',
      id: ACCOUNT.toLowerCase(),
    });
  });

  test('a trimmed context has no Target; other tables and messages are not ours', () => {
    const context = remoteExecutionContext({
      message: 'Create',
      table: 'annotation',
      id: randomUUID(),
      attributes: {},
    });
    expect(targetAttributes(parsed(trimmed(context)))).toBeUndefined();
    expect(eventKind(parsed({ ...context, MessageName: 'Delete' }))).toBeUndefined();
    expect(eventKind(parsed({ ...context, PrimaryEntityName: 'account' }))).toBeUndefined();
  });

  test('the event id and fingerprint: the same for a redelivery, another for another request', () => {
    const input: ContextInput = {
      message: 'Update',
      table: 'contact',
      id: randomUUID(),
      attributes: { jobtitle: 'CIO' },
      requestId: randomUUID(),
    };
    const context = parsed(remoteExecutionContext(input));
    const id = eventId(context) as string;
    expect(id).toBe(input.requestId);
    const fingerprint = eventFingerprint(context, id);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    // Delivered again: serialized anew (other correlation and business unit ids, another attribute order), same event.
    const again = parsed(remoteExecutionContext({ ...input, attributes: { jobtitle: 'CTO' } }));
    expect(again.CorrelationId).not.toBe(context.CorrelationId);
    expect(eventFingerprint(again, eventId(again) as string)).toBe(fingerprint);
    // Another request, another message or another row: another fingerprint.
    const other = (change: Partial<ContextInput>) => {
      const c = parsed(remoteExecutionContext({ ...input, ...change }));
      return eventFingerprint(c, eventId(c) as string);
    };
    expect(other({ requestId: randomUUID() })).not.toBe(fingerprint);
    expect(other({ message: 'Create' })).not.toBe(fingerprint);
    expect(other({ id: randomUUID() })).not.toBe(fingerprint);

    const noRequest = parsed({ ...context, RequestId: null });
    expect(eventId(noRequest)).toBe(noRequest.OperationId);
    const onlyCorrelation = parsed({ ...context, RequestId: null, OperationId: null });
    expect(eventId(onlyCorrelation)).toBe(context.CorrelationId);
  });

  test('errors name the field', () => {
    const result = parseContext({
      MessageName: 'Create',
      PrimaryEntityName: 'contact',
      PrimaryEntityId: 'x',
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(Object.keys(result.errors)).toEqual(['PrimaryEntityId']);
  });
});

describe('dates', () => {
  test('/Date(ms)/ with or without an offset; anything else undefined', () => {
    expect(parseDataverseDate('/Date(1700000000000)/')?.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(parseDataverseDate('/Date(1700000000000+0100)/')?.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(parseDataverseDate('/Date(-1000)/')?.toISOString()).toBe('1969-12-31T23:59:59.000Z');
    expect(parseDataverseDate('2023-11-14')).toBeUndefined();
    expect(parseDataverseDate(1700000000000)).toBeUndefined();
  });

  test('the event time orders updates (Unix seconds), else the fallback', () => {
    const context = parsed(
      remoteExecutionContext({
        message: 'Update',
        table: 'contact',
        id: randomUUID(),
        attributes: {},
        createdOn: new Date(1_700_000_000_500),
      }),
    );
    expect(eventTime(context, 0)).toBe(1_700_000_000);
    expect(eventTime(parsed({ ...context, OperationCreatedOn: null }), 5_000)).toBe(5);
  });
});

describe('mapping', () => {
  const defaults = { contactTypeId: 2, surveyEligible: false, services: [1], title: 'Default title' };

  test('a contact: name, email, phone, title, country; defaults fill the rest; Dataverse wins', () => {
    const mapped = mapContact(
      {
        firstname: ' Jo ',
        lastname: 'Park',
        emailaddress1: 'jo@example.com',
        telephone1: '+1',
        jobtitle: 'CIO',
      },
      '12345678-1234-1234-1234-123456789abc',
      defaults,
      'create',
    );
    expect(mapped).toEqual({
      ok: true,
      value: {
        name: 'Jo Park',
        email: 'jo@example.com',
        phone: '+1',
        title: 'CIO',
        countryRegionId: '12345678-1234-1234-1234-123456789abc',
        contactTypeId: 2,
        surveyEligible: false,
        services: [1],
        surveyLanguageId: null,
      },
    });
    const withDefault = mapContact({ fullname: 'Sam Ode' }, undefined, defaults, 'update');
    expect(withDefault).toMatchObject({
      ok: true,
      value: { name: 'Sam Ode', title: 'Default title', phone: null, email: null },
    });
  });

  test('a missing required field is named', () => {
    const noType = mapContact({ firstname: 'Jo' }, undefined, {}, 'create');
    expect(noType).toMatchObject({ ok: false, reason: expect.stringContaining('contactTypeId') });
    const noName = mapContact({ emailaddress1: 'jo@example.com' }, undefined, defaults, 'create');
    expect(noName).toMatchObject({ ok: false, reason: expect.stringContaining('name') });
    const badEmail = mapContact({ firstname: 'Jo', emailaddress1: 'nope' }, undefined, defaults, 'create');
    expect(badEmail).toMatchObject({ ok: false, reason: expect.stringContaining('email') });
  });

  test('a note: subject and notetext, a blank line between; neither → a reason', () => {
    expect(mapNote({ subject: 'Kick-off', notetext: 'Teams first.' }, 4)).toEqual({
      ok: true,
      value: { text: 'Kick-off\n\nTeams first.', noteCategoryId: 4 },
    });
    expect(mapNote({ notetext: 'Only text' }, 1)).toMatchObject({ ok: true, value: { text: 'Only text' } });
    expect(mapNote({ subject: ' ', notetext: null }, 1)).toMatchObject({ ok: false });
  });
});

describe('contact creates', () => {
  test("a generation's key: the first is the contact's own create key, later ones are numbered", () => {
    const id = randomUUID();
    expect(keys.contactCreateAt(id, 0)).toBe(keys.contactCreate(id));
    expect(keys.contactCreateAt(id, 2)).toBe(`dataverse:contact:${id}:create:2`);
  });

  test('after a create: wait while it is on its way, an operator for a failed one, the next only when none came of it', () => {
    for (const status of ['processing', 'queued', 'delivered']) expect(afterCreate(status)).toBe('wait');
    expect(afterCreate('failed')).toBe('operator');
    for (const status of ['rejected', 'ignored', 'superseded']) expect(afterCreate(status)).toBe('next');
  });
});
