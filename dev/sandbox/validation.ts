import { addError, type FieldErrors } from './http';
import { findById, type NamedId } from './reference';

/** A JSON request body whose keys are matched case-insensitively (the guide writes `l1id`, `L1id`, `serviceIntentID`). */
export class Body {
  private readonly values = new Map<string, unknown>();
  readonly errors: FieldErrors = {};

  constructor(json: Record<string, unknown>) {
    for (const [key, value] of Object.entries(json)) this.values.set(key.toLowerCase(), value);
  }

  has(key: string): boolean {
    return this.values.has(key.toLowerCase());
  }

  get(key: string): unknown {
    return this.values.get(key.toLowerCase());
  }

  fail(field: string, message: string): void {
    addError(this.errors, field, message);
  }

  get valid(): boolean {
    return Object.keys(this.errors).length === 0;
  }

  /** A field that must be present (it may still be null when `nullable`). */
  required(key: string, field: string, label = field): boolean {
    if (this.has(key)) return true;
    this.fail(field, `${label} is required`);
    return false;
  }

  string(
    key: string,
    field: string,
    options: { nullable?: boolean; nonEmpty?: boolean; maxLength?: number } = {},
  ): string | null | undefined {
    const value = this.get(key);
    if (value === undefined || (value === null && options.nullable !== false))
      return value as null | undefined;
    if (typeof value !== 'string') return this.wrongType(field, 'a string');
    if (options.nonEmpty && value.trim() === '') return this.wrongType(field, 'a non-empty string');
    if (options.maxLength !== undefined && value.length > options.maxLength) {
      this.fail(field, `The field ${field} must be a string with a maximum length of ${options.maxLength}.`);
      return undefined;
    }
    return value;
  }

  email(key: string, field: string): string | null | undefined {
    const value = this.string(key, field);
    if (typeof value === 'string' && !EMAIL.test(value)) {
      this.fail(field, 'Invalid email address provided');
      return undefined;
    }
    return value;
  }

  boolean(key: string, field: string): boolean | null | undefined {
    const value = this.get(key);
    if (value === undefined || value === null || typeof value === 'boolean') return value;
    return this.wrongType(field, 'true, false or null');
  }

  integer(
    key: string,
    field: string,
    options: { nullable?: boolean; min?: number } = {},
  ): number | null | undefined {
    const value = this.get(key);
    if (value === undefined || (value === null && options.nullable)) return value as null | undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) return this.wrongType(field, 'an integer');
    if (options.min !== undefined && value < options.min) {
      this.fail(field, `${field} must be ${options.min} or greater.`);
      return undefined;
    }
    return value;
  }

  /** A date (2025-03-01) or a date-time, as FPX (.NET) parses either (FPX-NOTES #17); kept as sent. */
  date(key: string, field: string): string | null | undefined {
    const value = this.string(key, field);
    if (typeof value === 'string' && Number.isNaN(Date.parse(value))) {
      this.fail(field, `The value '${value}' is not a valid date.`);
      return undefined;
    }
    return value;
  }

  /** An id that must name an entry of a reference list (null allowed unless `nullable: false`). */
  reference<Id>(
    key: string,
    field: string,
    list: readonly NamedId<Id>[],
    options: { nullable?: boolean } = {},
  ): NamedId<Id> | null | undefined {
    const value = this.get(key);
    if (value === undefined || (value === null && options.nullable !== false))
      return value as null | undefined;
    if (value === null || (typeof value !== 'string' && typeof value !== 'number')) {
      return this.wrongType(field, 'an id');
    }
    const entry = findById(list, value);
    if (!entry) this.fail(field, `${field} '${value}' is not a known id.`);
    return entry;
  }

  /** null, or an array of integers each naming an entry of `list`. */
  referenceList(
    key: string,
    field: string,
    list: readonly NamedId<number>[],
  ): NamedId<number>[] | null | undefined {
    const value = this.get(key);
    if (value === undefined || value === null) return value;
    if (!Array.isArray(value) || !value.every((id) => typeof id === 'number' && Number.isInteger(id))) {
      return this.wrongType(field, 'an array of integers');
    }
    const entries: NamedId<number>[] = [];
    for (const id of value) {
      const entry = findById(list, id);
      if (entry) entries.push({ ...entry });
      else this.fail(field, `${field} contains the unknown id ${id}.`);
    }
    return entries;
  }

  private wrongType(field: string, expected: string): undefined {
    this.fail(field, `${field} must be ${expected}.`);
    return undefined;
  }
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The body as an object, or a 400's errors when it is JSON of another kind. */
export function asObjectBody(json: unknown): Body | FieldErrors {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { Body: ['The request body must be a JSON object.'] };
  }
  return new Body(json as Record<string, unknown>);
}
