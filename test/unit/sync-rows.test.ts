import { describe, expect, test } from 'vitest';
import { contentHash, stableRowKey, tableKeyProblem, toRow } from '../../lib/sync';

const T1 = '2025-03-01T10:00:00.000Z';
const T2 = '2025-03-01T10:05:00.000Z';

describe('row rules', () => {
  test('contentHash ignores key order at every depth but not array order or values', () => {
    const a = { id: '1', nested: { x: 1, y: [1, { p: true, q: null }] }, skipped: undefined };
    const b = { nested: { y: [1, { q: null, p: true }], x: 1 }, id: '1' };
    expect(contentHash(a)).toBe(contentHash(b));
    expect(contentHash(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(contentHash({ ...b, nested: { x: 1, y: [{ q: null, p: true }, 1] } })).not.toBe(contentHash(a));
    expect(contentHash({ ...b, id: 1 })).not.toBe(contentHash(a));
  });

  test('stableRowKey is deterministic, unambiguous and Table-safe', () => {
    const key = stableRowKey('2025-01-01T00:00:00Z', 'Ann', 'a/b#c?d\\e\n');
    expect(key).toBe(stableRowKey('2025-01-01T00:00:00Z', 'Ann', 'a/b#c?d\\e\n'));
    expect(tableKeyProblem(key)).toBeUndefined();
    expect(stableRowKey('a b', 'c')).not.toBe(stableRowKey('a', 'b c'));
  });

  test('toRow refuses a field that would overwrite a system column', () => {
    const meta = { partitionKey: 'p', rowKey: 'r', firstSeenAt: T1, lastChangedAt: T1 };
    expect(() => toRow({ removedAt: 'x' }, meta)).toThrow('reserved column');
    expect(() => toRow({ text: 'x'.repeat(40_000), text_1: 'clash' }, meta)).toThrow('clashes');
    expect(toRow({ n: 3_000_000_000, big: 2n, when: new Date(T2) }, meta)).toMatchObject({
      n: { type: 'Double', value: 3_000_000_000 },
      big: { type: 'Int64', value: '2' },
      when: T2,
      removedAt: '',
    });
  });
});
