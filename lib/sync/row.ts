import type { TableEntity } from '@azure/data-tables';
import { contentHash } from './hash';

/**
 * How an FPX item becomes a table row (the contract's table schema):
 * - one column per FPX field, by its FPX name; nested objects and arrays as JSON strings;
 * - Table Storage cannot store null, so a null value (an FPX field sent as null, and `removedAt` while
 *   the row is present) is stored as the empty string `NULL_VALUE`; a field the item does not carry at
 *   all (undefined) has no column. Every row therefore always has all four system columns;
 * - a string longer than `MAX_COLUMN_CHARS` is split into `name`, `name_1`, `name_2`, … (read it back
 *   by concatenating them in order, see `joinColumn`);
 * - if the whole row would still exceed the 1 MiB entity limit (a note can hold 1,048,576 characters,
 *   2 MiB in UTF-16), the longest string column is cut to fit and flagged: `name_truncated` = true and
 *   `name_length` = its full length. `contentHash` is always of the full item, so nothing changes silently.
 */

export type SyncRow = TableEntity<Record<string, unknown>>;

export const NULL_VALUE = '';
export const SYSTEM_COLUMNS = ['firstSeenAt', 'lastChangedAt', 'removedAt', 'contentHash'] as const;
/** Table Storage allows 32,768 UTF-16 code units (64 KiB) per string property; keep a margin. */
export const MAX_COLUMN_CHARS = 32_000;
/** The entity limit is 1 MiB (1,048,576 bytes); keep room for Timestamp and rounding. */
export const ENTITY_BUDGET_BYTES = 1_000_000;

/** Names the SDK or the service already uses for an entity's own properties. */
const RESERVED_NAMES = new Set<string>([
  'partitionKey',
  'rowKey',
  'etag',
  'timestamp',
  'PartitionKey',
  'RowKey',
  'Timestamp',
  ...SYSTEM_COLUMNS,
]);
/** Property names follow C# identifier rules and are at most 255 characters. */
const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

export interface RowMeta {
  partitionKey: string;
  rowKey: string;
  firstSeenAt: string;
  lastChangedAt: string;
  /** null (or left out) while the item is present in the listing. */
  removedAt?: string | null;
}

type EdmValue = { type: 'Double' | 'Int64'; value: string | number };
type ColumnValue = string | number | boolean | EdmValue;

/** Builds the full row for an item: its columns plus the system columns. Pure; throws on a bad field name. */
export function toRow(item: object, meta: RowMeta, hash: string = contentHash(item)): SyncRow {
  const columns = new Map<string, ColumnValue>();
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    if (RESERVED_NAMES.has(name)) throw new Error(`field "${name}" clashes with a reserved column name`);
    if (!COLUMN_NAME.test(name)) throw new Error(`field ${JSON.stringify(name)} is not a valid column name`);
    columns.set(name, toColumnValue(name, value));
  }
  const fixedBytes =
    4 +
    2 * (meta.partitionKey.length + meta.rowKey.length) +
    stringPropertyBytes('firstSeenAt', meta.firstSeenAt) +
    stringPropertyBytes('lastChangedAt', meta.lastChangedAt) +
    stringPropertyBytes('removedAt', meta.removedAt ?? NULL_VALUE) +
    stringPropertyBytes('contentHash', hash);
  const truncated = fitIntoEntity(columns, ENTITY_BUDGET_BYTES - fixedBytes);

  const row: SyncRow = { partitionKey: meta.partitionKey, rowKey: meta.rowKey };
  for (const [name, value] of columns) {
    if (typeof value === 'string' && value.length > MAX_COLUMN_CHARS) {
      splitString(value, MAX_COLUMN_CHARS).forEach((part, index) => {
        if (index === 0) row[name] = part;
        else setDerived(row, columns, `${name}_${index}`, part);
      });
    } else {
      row[name] = value;
    }
  }
  for (const [name, fullLength] of truncated) {
    setDerived(row, columns, `${name}_truncated`, true);
    setDerived(row, columns, `${name}_length`, fullLength);
  }
  row.firstSeenAt = meta.firstSeenAt;
  row.lastChangedAt = meta.lastChangedAt;
  row.removedAt = meta.removedAt ?? NULL_VALUE;
  row.contentHash = hash;
  return row;
}

/** Reads a string column back whole, joining the parts `name`, `name_1`, … that `toRow` split it into. */
export function joinColumn(row: Record<string, unknown>, name: string): string | undefined {
  const first = row[name];
  if (typeof first !== 'string') return undefined;
  let text = first;
  for (let index = 1; typeof row[`${name}_${index}`] === 'string'; index++) text += row[`${name}_${index}`];
  return text;
}

/** A row is removed when `removedAt` holds a timestamp; the empty string (or no value) means present. */
export function isRemoved(row: { removedAt?: unknown }): boolean {
  return typeof row.removedAt === 'string' && row.removedAt !== NULL_VALUE;
}

function toColumnValue(name: string, value: unknown): ColumnValue {
  if (value === null) return NULL_VALUE;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    // Whole numbers in Int32 range go as plain JSON (the service infers Int32); anything else as Double.
    if (Number.isInteger(value) && Math.abs(value) <= 2 ** 31 - 1) return value;
    if (Number.isFinite(value)) return { type: 'Double', value };
    return { type: 'Double', value: Number.isNaN(value) ? 'NaN' : value > 0 ? 'INF' : '-INF' };
  }
  if (typeof value === 'bigint') return { type: 'Int64', value: value.toString() };
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    return JSON.stringify(value, (_key, nested) => (typeof nested === 'bigint' ? nested.toString() : nested));
  }
  throw new Error(`field "${name}" has a ${typeof value} value, which has no column type`);
}

/** Size of a string property by the service's formula: 8 + 2·name + 4 + 2·value bytes. */
function stringPropertyBytes(name: string, value: string): number {
  return 12 + 2 * (name.length + value.length);
}

function columnBytes(name: string, value: ColumnValue): number {
  if (typeof value === 'string') {
    // Every part after the first carries its own name (`name_N`) and overhead.
    const parts = Math.max(1, Math.ceil(value.length / MAX_COLUMN_CHARS));
    return parts * (12 + 2 * (name.length + 4)) + 2 * value.length;
  }
  return 8 + 2 * name.length + (typeof value === 'boolean' ? 1 : 8);
}

/**
 * Cuts the longest string columns until the row fits the budget. Returns the cut columns with their
 * full lengths (the flags `name_truncated` and `name_length` are budgeted here too).
 */
function fitIntoEntity(columns: Map<string, ColumnValue>, budget: number): Map<string, number> {
  const truncated = new Map<string, number>();
  const total = () => {
    let bytes = 0;
    for (const [name, value] of columns) bytes += columnBytes(name, value);
    for (const name of truncated.keys()) bytes += 2 * (16 + 2 * name.length + 20);
    return bytes;
  };
  for (let excess = total() - budget; excess > 0; excess = total() - budget) {
    let longest: [string, string] | undefined;
    for (const [name, value] of columns) {
      if (typeof value === 'string' && value.length > (longest?.[1].length ?? 0)) longest = [name, value];
    }
    if (!longest) throw new Error('the row exceeds the 1 MiB entity limit even without its text');
    const [name, value] = longest;
    if (!truncated.has(name)) truncated.set(name, value.length);
    // Half the excess in UTF-16 code units, plus slack for the flags and part headers.
    const keep = Math.max(0, value.length - Math.ceil(excess / 2) - 256);
    columns.set(name, cutAt(value, keep));
  }
  return truncated;
}

/** Splits a string into parts of at most `size` (≥ 2) code units without tearing a surrogate pair apart. */
function splitString(value: string, size: number): string[] {
  const parts: string[] = [];
  for (let start = 0; start < value.length; ) {
    const part = cutAt(value.slice(start), size);
    parts.push(part);
    start += part.length;
  }
  return parts;
}

/** The first `length` code units, one less if the cut would leave half a surrogate pair. */
function cutAt(value: string, length: number): string {
  if (length >= value.length) return value;
  const last = value.charCodeAt(length - 1);
  return value.slice(0, last >= 0xd800 && last <= 0xdbff ? length - 1 : length);
}

/** Adds a column `toRow` derived from a field, refusing to overwrite one of the item's own fields. */
function setDerived(row: SyncRow, columns: Map<string, ColumnValue>, name: string, value: ColumnValue): void {
  if (columns.has(name)) throw new Error(`derived column "${name}" clashes with a field of the same name`);
  if (!COLUMN_NAME.test(name)) throw new Error(`derived column "${name}" is not a valid column name`);
  row[name] = value;
}
