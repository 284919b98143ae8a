/** The local host's parsing, as Azure reads it: route templates, NCRONTAB schedules, queue message encoding. */
import { describe, expect, test } from 'vitest';
import { decodeBase64Message } from '../../dev/host/queue-message';
import { parseRoute } from '../../dev/host/routes';
import { parseSchedule } from '../../dev/host/schedule';

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

describe('route templates, schedules and message encoding', () => {
  test('route templates as ASP.NET reads them', () => {
    const route = parseRoute('crm/deliveries/{id:guid}/{*rest}');
    const id = '0b6e7c1e-2f7d-4d0f-9a4e-1d2c3b4a5f60';
    expect(route.match(`/crm/deliveries/${id}`)).toEqual({ id });
    expect(route.match(`/crm/deliveries/${id}/a/b%20c`)).toEqual({ id, rest: 'a/b c' });
    expect(route.match('/crm/deliveries/not-a-guid')).toBeUndefined();
    expect(parseRoute('files/{name=readme}').match('/files')).toEqual({ name: 'readme' });
    expect(parseRoute('v/{n:range(1,9)}').match('/v/12')).toBeUndefined();
    expect(() => parseRoute('x/{id:nonsense}')).toThrow(/unknown constraint/);
  });

  test('NCRONTAB: six fields with seconds, UTC, both day fields must match', () => {
    const every5s = parseSchedule('*/5 * * * * *');
    expect(every5s.next(new Date('2024-01-01T00:00:05.000Z')).toISOString()).toBe('2024-01-01T00:00:10.000Z');
    const daily = parseSchedule('0 0 8 * * *');
    expect(daily.next(new Date('2024-01-01T09:00:00Z')).toISOString()).toBe('2024-01-02T08:00:00.000Z');
    const fridayThe13th = parseSchedule('0 0 0 13 * Fri');
    expect(fridayThe13th.next(new Date('2024-01-01T00:00:00Z')).toISOString()).toBe(
      '2024-09-13T00:00:00.000Z',
    );
    expect(parseSchedule('00:05:00').next(new Date(0)).getTime()).toBe(300_000);
    expect(() => parseSchedule('*/5 * * * *')).toThrow(/six NCRONTAB fields/);
  });

  test('queue messages: base64 is decoded, other text is taken as is', () => {
    expect(decodeBase64Message(base64('{"a":1}'))?.toString()).toBe('{"a":1}');
    expect(decodeBase64Message('not base64!')).toBeUndefined();
  });
});
