import type { TokenCredential } from '@azure/identity';
import { lazy } from '../lazy';
import type { Attributes } from './context';

/**
 * Reads rows from Dataverse's Web API (`<DATAVERSE_URL>/api/data/v9.2`) as the app's managed identity (an
 * application user in the environment): a bearer token for `<DATAVERSE_URL>/.default`, which the credential
 * caches and renews. Rows come back as attributes in the shape a context carries them (lookups as
 * `{LogicalName, Id}`), so the mapping does not care where they came from.
 */

export const API_PATH = '/api/data/v9.2';
const LOOKUP_TYPE = '@Microsoft.Dynamics.CRM.lookuplogicalname';
const TIMEOUT_MS = 10_000;
/** Dataverse's error code for a row that does not exist; any other 404 is a wrong URL or table. */
export const ROW_NOT_FOUND = '0x80040217';

export const CONTACT_COLUMNS = [
  'firstname',
  'lastname',
  'fullname',
  'emailaddress1',
  'telephone1',
  'jobtitle',
  'address1_country',
  '_parentcustomerid_value',
];
export const ANNOTATION_COLUMNS = ['subject', 'notetext', 'objecttypecode', '_objectid_value'];

/** A Web API call that did not give the row: `transient` ones may work later (5xx, 429, network, identity). */
export class WebApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'WebApiError';
  }
}

export interface WebApiOptions {
  url: string;
  /** Default: DefaultAzureCredential (the managed identity in Azure; `identityClientId` picks a user-assigned one). */
  credential?: TokenCredential;
  identityClientId?: string;
  fetch?: typeof fetch;
}

export class DataverseWebApi {
  private readonly credential: TokenCredential;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: WebApiOptions) {
    this.credential =
      options.credential ??
      new (lazy.identity().DefaultAzureCredential)({
        managedIdentityClientId: options.identityClientId || undefined,
      });
    this.fetch = options.fetch ?? fetch;
  }

  /** `accounts(<id>)?$select=<column>`: the column's value (trimmed), or null when empty; undefined: no such account. */
  async accountColumn(
    accountId: string,
    column: string,
    signal?: AbortSignal,
  ): Promise<string | null | undefined> {
    const row = await this.get(`accounts(${accountId})`, [column], signal);
    if (!row) return undefined;
    const value = row[column];
    return typeof value === 'string' && value.trim() ? value.trim() : null;
  }

  /** The contact's columns we map, with `parentcustomerid` as a lookup; undefined: no such contact. */
  async contact(contactId: string, signal?: AbortSignal): Promise<Attributes | undefined> {
    const row = await this.get(`contacts(${contactId})`, CONTACT_COLUMNS, signal);
    if (!row) return undefined;
    return { ...withoutAnnotations(row), parentcustomerid: lookup(row, '_parentcustomerid_value') };
  }

  /** The note's columns we map, with `objectid` as a lookup (its table from `objecttypecode`). */
  async annotation(annotationId: string, signal?: AbortSignal): Promise<Attributes | undefined> {
    const row = await this.get(`annotations(${annotationId})`, ANNOTATION_COLUMNS, signal);
    if (!row) return undefined;
    const id = row._objectid_value;
    const table = row[`_objectid_value${LOOKUP_TYPE}`] ?? row.objecttypecode;
    return {
      ...withoutAnnotations(row),
      objectid: typeof id === 'string' && typeof table === 'string' ? { LogicalName: table, Id: id } : null,
    };
  }

  /** `signal`: the caller's deadline; each read (token and request) is bounded by TIMEOUT_MS besides. */
  private async get(
    path: string,
    select: string[],
    deadline?: AbortSignal,
  ): Promise<Record<string, unknown> | undefined> {
    const url = `${this.options.url}${API_PATH}/${path}?$select=${select.join(',')}`;
    const signal = deadline
      ? AbortSignal.any([AbortSignal.timeout(TIMEOUT_MS), deadline])
      : AbortSignal.timeout(TIMEOUT_MS);
    let token: string;
    try {
      // Raced as well: not every credential in the chain honours abortSignal.
      const got = await untilAborted(
        this.credential.getToken(`${this.options.url}/.default`, { abortSignal: signal }),
        signal,
      );
      if (!got) throw new Error('no token');
      token = got.token;
    } catch (error) {
      throw new WebApiError(`no token for the Web API: ${(error as Error).message}`, undefined, true);
    }
    let response: Response;
    try {
      response = await this.fetch(url, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'odata-version': '4.0',
          'odata-maxversion': '4.0',
          prefer: `odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"`,
        },
        signal,
      });
    } catch (error) {
      throw new WebApiError(`the Web API did not answer: ${(error as Error).message}`, undefined, true);
    }
    if (!response.ok) {
      const detail = await errorOf(response);
      const status = response.status;
      if (status === 404 && detail.code === ROW_NOT_FOUND) return undefined;
      const hint =
        status === 401 || status === 403
          ? ' (check the application user of the app’s managed identity and its security role)'
          : '';
      // 401/403 are fixed by an administrator, after which a retry works: transient for Dataverse's retries.
      const transient = status >= 500 || status === 429 || status === 408 || status === 401 || status === 403;
      throw new WebApiError(`GET ${path} answered ${status}${hint}: ${detail.message}`, status, transient);
    }
    return (await response.json()) as Record<string, unknown>;
  }
}

function lookup(row: Record<string, unknown>, column: string): { LogicalName: string; Id: string } | null {
  const id = row[column];
  const table = row[`${column}${LOOKUP_TYPE}`];
  return typeof id === 'string' && typeof table === 'string' ? { LogicalName: table, Id: id } : null;
}

function withoutAnnotations(row: Record<string, unknown>): Attributes {
  return Object.fromEntries(Object.entries(row).filter(([name]) => !name.includes('@')));
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    return { code: String(body.error?.code ?? ''), message: (body.error?.message ?? '').slice(0, 300) };
  } catch {
    return { code: '', message: '' };
  }
}

/** The promise's result, or the signal's reason once it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
