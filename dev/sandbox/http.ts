/** What a handler answers; the server writes it (or drops it, when a fault says so). */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type FieldErrors = Record<string, string[]>;

export function addError(errors: FieldErrors, field: string, message: string): void {
  const messages = errors[field] ?? [];
  messages.push(message);
  errors[field] = messages;
}

export function ok(body: unknown): Reply {
  return { status: 200, body };
}

/** The guide's error body: PascalCase, as FPX sends for everything but validation errors. */
export function errorReply(
  status: number,
  message: string,
  options: { dependencyType?: string; headers?: Record<string, string> } = {},
): Reply {
  return {
    status,
    headers: options.headers,
    body: {
      ErrorStatus: status,
      DependencyType: options.dependencyType ?? 'Internal',
      DependencyOwner: 'FT_FCU API Team',
      DependencyErrorCode: null,
      Message: message,
    },
  };
}

/** The guide's 400 body: camelCase envelope, PascalCase field names. */
export function validationReply(errors: FieldErrors): Reply {
  return {
    status: 400,
    body: { errors, errorStatus: 400, message: 'One or more validation errors occurred.' },
  };
}

export function notFound(what: string): Reply {
  return errorReply(404, `${what} was not found.`, { dependencyType: 'SQL Server' });
}

/** Query parameters by lowercased name: FPX's own documentation spells them `rfaID`, `rfaid`, `serviceIDs`. */
export class Query {
  private readonly values = new Map<string, string[]>();

  constructor(params: URLSearchParams) {
    for (const [name, value] of params) {
      const key = name.toLowerCase();
      const list = this.values.get(key);
      if (list) list.push(value);
      else this.values.set(key, [value]);
    }
  }

  get(name: string): string | undefined {
    return this.values.get(name.toLowerCase())?.[0];
  }

  all(name: string): string[] {
    return this.values.get(name.toLowerCase()) ?? [];
  }
}

/** A query value that must be an integer when present; `field` names it in the 400. */
export function queryInteger(
  query: Query,
  name: string,
  field: string,
  errors: FieldErrors,
): number | undefined {
  const raw = query.get(name);
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw.trim())) {
    addError(errors, field, `The value '${raw}' is not valid for ${field}.`);
    return undefined;
  }
  return Number(raw);
}

export const MAX_PAGE_SIZE = 1000;

export interface Paging {
  page: number;
  pageSize: number;
}

export function parsePaging(query: Query, errors: FieldErrors): Paging {
  const page = queryInteger(query, 'page', 'Page', errors) ?? 1;
  const pageSize = queryInteger(query, 'pageSize', 'PageSize', errors) ?? 25;
  if (page < 1) addError(errors, 'Page', 'Page must be 1 or greater.');
  if (pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    addError(errors, 'PageSize', `PageSize must be between 1 and ${MAX_PAGE_SIZE}.`);
  }
  return { page, pageSize };
}

/**
 * The list envelope. `count` is the number of matching items over all pages. Only the page is copied,
 * so paging through 100,000 referrals stays cheap.
 */
export function pageOf<T, U = T>(
  items: readonly T[],
  paging: Paging,
  toWire: (item: T) => U = (item) => item as unknown as U,
): { count: number; hasMore: boolean; items: U[] } {
  const start = (paging.page - 1) * paging.pageSize;
  const end = Math.min(items.length, start + paging.pageSize);
  const page: U[] = [];
  for (let i = start; i < end; i++) page.push(toWire(items[i] as T));
  return { count: items.length, hasMore: end < items.length, items: page };
}
