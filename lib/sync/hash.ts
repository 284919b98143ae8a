import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted at every depth, `undefined` members left out (as JSON does),
 * dates as ISO strings, bigints as decimal strings. Two items with the same content give the same
 * text whatever order FPX sent their keys in, so the hash only moves when the content does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    return `[${value.map((entry) => (entry === undefined ? 'null' : canonicalJson(entry))).join(',')}]`;
  }
  if (typeof value === 'object') {
    const members = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${members.join(',')}}`;
  }
  // Strings, finite numbers, booleans; NaN/Infinity become null and functions/undefined vanish, as in JSON.
  return JSON.stringify(value) ?? 'null';
}

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Stable content hash of an item: sha256 (hex) of its canonical JSON, so key order does not matter. */
export function contentHash(item: unknown): string {
  return sha256Hex(canonicalJson(item));
}

/**
 * A Table-safe RowKey derived from several values (e.g. a note's created, author and text):
 * sha256 hex of the canonical JSON array of the parts, so `('a b', 'c')` and `('a', 'b c')` differ.
 * 64 characters of [0-9a-f]: never a forbidden character, far below the 1 KiB key limit.
 */
export function stableRowKey(...parts: unknown[]): string {
  return sha256Hex(canonicalJson(parts));
}
