/**
 * The two forms of a storage connection the Azure Functions host accepts, parsed once:
 * - a connection string in `AzureWebJobsStorage` (Azurite's `UseDevelopmentStorage=true`, an account key, or
 *   service endpoints with a SAS);
 * - identity-based settings `AzureWebJobsStorage__*`: `__accountName`, or `__tableServiceUri` and
 *   `__queueServiceUri`, with `__credential` (`managedidentity`) and `__clientId` (a user-assigned identity).
 * As in the host, a connection string wins when both are set. Setting values are never echoed in errors.
 */

export const STORAGE_SETTING = 'AzureWebJobsStorage';
export const DEVELOPMENT_STORAGE = 'UseDevelopmentStorage=true';

export type StorageSettings =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      /** e.g. `https://<account>.table.core.windows.net`, without a trailing slash. */
      tableServiceUrl: string;
      /** e.g. `https://<account>.queue.core.windows.net`, without a trailing slash. */
      queueServiceUrl: string;
      /** `managedidentity`: ManagedIdentityCredential; `default`: DefaultAzureCredential (no `__credential`). */
      credential: 'managedidentity' | 'default';
      /** Client id of the user-assigned managed identity; unset for the system-assigned one. */
      clientId?: string;
    };

/** What is wrong with which setting; lib/config turns it into its ConfigError. */
export interface StorageSettingsProblem {
  setting: string;
  expected: string;
  missing: boolean;
}

export type StorageSettingsResult =
  | { ok: true; settings: StorageSettings }
  | { ok: false; problem: StorageSettingsProblem };

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;

const CONNECTION_STRING_FORMS =
  'a storage connection string: "UseDevelopmentStorage=true", "AccountName=…;AccountKey=…" (with optional endpoints), or TableEndpoint and QueueEndpoint with SharedAccessSignature; or unset it and use the identity-based settings';

function text(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/** `key=value;…` into a map with lower-case keys (values may contain `=`, e.g. base64 keys). */
export function connectionStringParts(connectionString: string): Map<string, string> | undefined {
  const parts = new Map<string, string>();
  for (const segment of connectionString.split(';')) {
    if (!segment.trim()) continue;
    const eq = segment.indexOf('=');
    if (eq <= 0) return undefined;
    parts.set(segment.slice(0, eq).trim().toLowerCase(), segment.slice(eq + 1).trim());
  }
  return parts.size > 0 ? parts : undefined;
}

function isConnectionString(connectionString: string): boolean {
  const parts = connectionStringParts(connectionString);
  if (!parts) return false;
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') return true;
  if (parts.get('accountname') && parts.get('accountkey')) return true;
  return Boolean(
    parts.get('sharedaccesssignature') && parts.get('tableendpoint') && parts.get('queueendpoint'),
  );
}

/** Children of `name__…`, keyed by the lower-cased child name (app settings are case-insensitive). */
function childSettings(env: Record<string, string | undefined>, name: string): Map<string, string> {
  const prefix = `${name}__`.toLowerCase();
  const children = new Map<string, string>();
  for (const [key, value] of Object.entries(env)) {
    const v = text(value);
    if (v && key.toLowerCase().startsWith(prefix)) children.set(key.slice(prefix.length).toLowerCase(), v);
  }
  return children;
}

function serviceUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  // Tokens only travel over TLS; a SAS belongs in a connection string, not here.
  if (url.protocol !== 'https:' || url.search || url.hash || url.username || url.password) return undefined;
  return url.href.replace(/\/+$/, '');
}

/**
 * Reads the storage connection named `name` (default `AzureWebJobsStorage`) from the environment.
 * Nothing set at all gives the local emulator, the contract's default.
 */
export function parseStorageSettings(
  env: Record<string, string | undefined>,
  name: string = STORAGE_SETTING,
): StorageSettingsResult {
  const fail = (setting: string, expected: string, missing = false): StorageSettingsResult => ({
    ok: false,
    problem: { setting, expected, missing },
  });

  const connectionString = text(env[name]);
  if (connectionString) {
    if (!isConnectionString(connectionString)) return fail(name, CONNECTION_STRING_FORMS);
    return { ok: true, settings: { kind: 'connectionString', connectionString } };
  }

  const children = childSettings(env, name);
  if (children.size === 0) {
    return { ok: true, settings: { kind: 'connectionString', connectionString: DEVELOPMENT_STORAGE } };
  }

  const accountName = children.get('accountname');
  if (accountName !== undefined && !ACCOUNT_NAME.test(accountName)) {
    return fail(`${name}__accountName`, 'a storage account name (3 to 24 lowercase letters and digits)');
  }

  const urls: Record<'table' | 'queue', string | undefined> = { table: undefined, queue: undefined };
  for (const service of ['table', 'queue'] as const) {
    const setting = `${name}__${service}ServiceUri`;
    const explicit = children.get(`${service}serviceuri`);
    const example = `https://<account>.${service}.core.windows.net`;
    if (explicit !== undefined) {
      urls[service] = serviceUrl(explicit);
      if (!urls[service]) return fail(setting, `an https URL without query, e.g. ${example}`);
    } else if (accountName) {
      urls[service] = `https://${accountName}.${service}.core.windows.net`;
    } else {
      return fail(setting, `the ${service} service URL (${example}), or set ${name}__accountName`, true);
    }
  }

  const credential = children.get('credential');
  if (credential !== undefined && credential.toLowerCase() !== 'managedidentity') {
    return fail(
      `${name}__credential`,
      '"managedidentity", or unset to use the default Azure credential chain',
    );
  }
  const clientId = children.get('clientid');
  if (clientId !== undefined && !GUID.test(clientId)) {
    return fail(`${name}__clientId`, 'the client id (a GUID) of the user-assigned managed identity');
  }

  return {
    ok: true,
    settings: {
      kind: 'identity',
      tableServiceUrl: urls.table as string,
      queueServiceUrl: urls.queue as string,
      credential: credential ? 'managedidentity' : 'default',
      ...(clientId ? { clientId } : {}),
    },
  };
}

/** Connection strings that point at plain-http endpoints (Azurite), which the Table SDK refuses unless told. */
export function isInsecureEndpoint(connection: string): boolean {
  return (
    /UseDevelopmentStorage=true/i.test(connection) ||
    /Endpoint=http:\/\//i.test(connection) ||
    /DefaultEndpointsProtocol=http(;|$)/i.test(connection)
  );
}
