import { z } from 'zod';
import { contactCreate } from '../fpx/requests';
import { parseStorageSettings, type StorageSettings } from '../storage/settings';

export {
  HOST_JSON,
  type HostJsonFile,
  type HostJsonSettings,
  hostJsonSettings,
  MAX_DEQUEUE_COUNT,
  timeSpanSeconds,
} from './host-json';

/**
 * Every setting of the contract, parsed once into a typed config before any function is registered.
 * A bad setting stops start-up with one message naming it; values of secret settings are never echoed.
 */

export const SCHEDULE_DEFAULTS = {
  POLL_REFERRALS_SCHEDULE: '0 */5 * * * *',
  POLL_TENANTS_SCHEDULE: '0 0 * * * *',
  CERT_CHECK_SCHEDULE: '0 0 8 * * *',
  REFERENCE_DATA_SCHEDULE: '0 0 2 * * *',
} as const;

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    readonly expected: string,
    /** `unresolved`: the setting holds a Key Vault reference that App Service could not resolve. */
    state: boolean | 'unresolved' = false,
  ) {
    super(
      `Setting ${setting} is ${state === 'unresolved' ? 'an unresolved Key Vault reference' : state ? 'missing' : 'invalid'}: expected ${expected}`,
    );
    this.name = 'ConfigError';
  }
}

/**
 * App Service replaces `@Microsoft.KeyVault(...)` with the secret; when it cannot (no access, wrong name,
 * vault unreachable) the app sees the reference text itself. Only the reference is ever quoted, never more.
 */
const KEY_VAULT_REFERENCE = /^\s*(@Microsoft\.KeyVault\([^)]*\))/i;

/**
 * The settings holding an unresolved Key Vault reference, with the reference text. Loose prefix match:
 * `@Microsoft.KeyVault(` can only be a reference, and a broken one is unresolved too.
 */
export function unresolvedKeyVaultReferences(env: Record<string, string | undefined>): Map<string, string> {
  const found = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!value || !/^\s*@Microsoft\.KeyVault\(/i.test(value)) continue;
    found.set(name, KEY_VAULT_REFERENCE.exec(value)?.[1] ?? '@Microsoft.KeyVault(…');
  }
  return found;
}

const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined));

const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  optionalText.pipe(
    z
      .string()
      .regex(/^\d+$/, `a whole number from 1 to ${max}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .int()
          .min(1, `a whole number from 1 to ${max}`)
          .max(max, `a whole number from 1 to ${max}`),
      )
      .default(fallback),
  );

const httpsUrl = (what: string) =>
  optionalText.pipe(
    z
      .url({ protocol: /^https$/, error: `an https URL (${what})` })
      .transform((v) => v.replace(/\/+$/, ''))
      .optional(),
  );

const email = z.email({ error: 'an email address' });

const emailList = optionalText.transform((v, ctx) => {
  const list = (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const address of list) {
    if (!email.safeParse(address).success) {
      ctx.addIssue({ code: 'custom', message: 'comma separated email addresses' });
      return z.NEVER;
    }
  }
  return list;
});

// Six NCRONTAB fields: second minute hour day month day-of-week.
const ncrontab = (fallback: string) =>
  optionalText.pipe(
    z
      .string()
      .regex(/^\S+(\s+\S+){5}$/, 'an NCRONTAB expression of six fields, e.g. "0 */5 * * * *"')
      .default(fallback),
  );

// Standard Webhooks secrets: "whsec_" + base64, several space separated during rotation.
const webhookSecrets = optionalText.transform((v, ctx) => {
  const secrets = (v ?? '').split(/\s+/).filter(Boolean);
  for (const s of secrets) {
    const body = s.startsWith('whsec_') ? s.slice(6) : '';
    if (!body || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || Buffer.from(body, 'base64').length < 16) {
      ctx.addIssue({
        code: 'custom',
        message: 'space separated Standard Webhooks secrets "whsec_<base64 of at least 16 bytes>"',
      });
      return z.NEVER;
    }
  }
  return secrets;
});

// CRM event endpoints: space separated https URLs (http only to this machine, for the local receiver).
const eventUrls = optionalText.transform((v, ctx) => {
  const urls = (v ?? '').split(/\s+/).filter(Boolean);
  for (const url of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    const local =
      parsed?.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
    if (!parsed || !(parsed.protocol === 'https:' || local) || parsed.username || parsed.password) {
      ctx.addIssue({
        code: 'custom',
        message:
          'space separated https URLs (http only for 127.0.0.1 or localhost), without user or password',
      });
      return z.NEVER;
    }
  }
  return [...new Set(urls)];
});

const alertDays = optionalText.transform((v, ctx) => {
  const days = (v ?? '30,14,7,1').split(',').map((s) => s.trim());
  if (days.some((d) => !/^\d+$/.test(d) || Number(d) < 1)) {
    ctx.addIssue({ code: 'custom', message: 'comma separated whole numbers of days, e.g. "30,14,7,1"' });
    return z.NEVER;
  }
  return [...new Set(days.map(Number))].sort((a, b) => b - a);
});

/** DATAVERSE_URL: https; plain http only on this machine (the local Web API fake). */
const dataverseUrl = optionalText.pipe(
  z
    .url({
      protocol: /^https?$/,
      error: 'the environment URL, e.g. https://contoso.crm.dynamics.com',
    })
    .refine((v) => v.startsWith('https:') || /^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(`${v}/`), {
      message: 'an https URL (http only for 127.0.0.1), e.g. https://contoso.crm.dynamics.com',
    })
    .transform((v) => new URL(v).origin)
    .optional(),
);

/** DATAVERSE_CONTACT_DEFAULTS: FPX contact fields (the create table), each checked; the error names the field. */
const contactDefaults = optionalText.transform((v, ctx) => {
  if (!v) return {};
  let json: unknown;
  try {
    json = JSON.parse(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'a JSON object of FPX contact fields' });
    return z.NEVER;
  }
  const parsed = contactCreate.partial().strict().safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
    ctx.addIssue({
      code: 'custom',
      message: `a JSON object of FPX contact fields (${field ? `${field}: ` : ''}${issue?.message ?? 'invalid'})`,
    });
    return z.NEVER;
  }
  // The input form (GUIDs as given): the whole contact is validated again when an event is mapped.
  return json as Record<string, unknown>;
});

const settingsSchema = z.object({
  FPX_BASE_URL: httpsUrl('the FPX API base including /ftop/v1.2/api').pipe(
    z.string({ error: 'an https URL (the FPX API base including /ftop/v1.2/api)' }),
  ),
  FPX_CERT_KEYVAULT_URL: httpsUrl('the Key Vault holding the client certificate'),
  FPX_CERT_NAME: optionalText.pipe(
    z
      .string()
      .regex(/^[0-9a-zA-Z-]{1,127}$/, 'a Key Vault certificate name (letters, digits and dashes)')
      .optional(),
  ),
  CERT_REFRESH_MINUTES: positiveInt(60, 24 * 60),
  FPX_CERT_PATH: optionalText,
  FPX_CERT_PASSWORD: optionalText,
  FPX_CA_PATH: optionalText,
  FPX_RATE_LIMIT_PER_MINUTE: positiveInt(600, 60_000),
  FPX_MAX_INSTANCES: positiveInt(40, 1000),
  SYNC_MAX_REMOVED_PERCENT: positiveInt(20, 100),
  FPX_PAGE_SIZE: positiveInt(25, 1000),
  FPX_ORIGIN: optionalText.pipe(
    z
      .url({ protocol: /^https?$/, error: 'an origin such as https://crm.example.com' })
      .transform((v) => new URL(v).origin)
      .optional(),
  ),
  CRM_WEBHOOK_SECRET: webhookSecrets,
  CRM_DELIVERY_MAX_ATTEMPTS: positiveInt(8, 100),
  CRM_DELIVERY_BACKOFF_SECONDS: positiveInt(30, 3600),
  CRM_EVENTS_URL: eventUrls,
  CRM_EVENTS_SECRET: webhookSecrets,
  CRM_EVENTS_PER_SECOND: positiveInt(50, 1000),
  CERT_ALERT_DAYS: alertDays,
  ALERT_EMAIL_TO: emailList,
  ALERT_EMAIL_FROM: optionalText.pipe(email.optional()),
  ACS_EMAIL_ENDPOINT: httpsUrl('the Communication Services endpoint'),
  ACS_EMAIL_CONNECTION_STRING: optionalText.pipe(
    z
      .string()
      .regex(/endpoint=https:\/\/[^;]+;accesskey=.+/i, 'a connection string "endpoint=https://…;accesskey=…"')
      .optional(),
  ),
  SMTP_URL: optionalText.pipe(
    z
      .url({ protocol: /^smtps?$/, error: 'an smtp:// or smtps:// URL, e.g. smtp://127.0.0.1:2525' })
      .optional(),
  ),
  POLL_REFERRALS_SCHEDULE: ncrontab(SCHEDULE_DEFAULTS.POLL_REFERRALS_SCHEDULE),
  POLL_TENANTS_SCHEDULE: ncrontab(SCHEDULE_DEFAULTS.POLL_TENANTS_SCHEDULE),
  CERT_CHECK_SCHEDULE: ncrontab(SCHEDULE_DEFAULTS.CERT_CHECK_SCHEDULE),
  REFERENCE_DATA_SCHEDULE: ncrontab(SCHEDULE_DEFAULTS.REFERENCE_DATA_SCHEDULE),
  AZURE_CLIENT_ID: optionalText,
  DATAVERSE_URL: dataverseUrl,
  DATAVERSE_WEBHOOK_KEY: optionalText.pipe(
    z
      .string()
      .regex(/^[\x21-\x7e]{16,256}$/, '16 to 256 printable ASCII characters without spaces')
      .optional(),
  ),
  DATAVERSE_TENANT_ID_COLUMN: optionalText.pipe(
    z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,99}$/, "an account column's logical name, e.g. fpx_tenantid")
      .default('fpx_tenantid'),
  ),
  DATAVERSE_NOTE_CATEGORY_ID: positiveInt(1),
  DATAVERSE_CONTACT_DEFAULTS: contactDefaults,
  // Telemetry (lib/telemetry/setup.ts): Application Insights through the Azure Monitor distro, or OTLP/HTTP.
  APPLICATIONINSIGHTS_CONNECTION_STRING: optionalText.pipe(
    z
      .string()
      .regex(
        /(^|;)\s*InstrumentationKey=[^;]+/i,
        'an Application Insights connection string "InstrumentationKey=…;IngestionEndpoint=…"',
      )
      .optional(),
  ),
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: optionalText.pipe(
    z
      .string()
      .regex(
        /(^|;)\s*Authorization=AAD\s*(;|$)/i,
        '"Authorization=AAD" with an optional "ClientId=<client id>;"',
      )
      .optional(),
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalText.pipe(
    z
      .url({
        protocol: /^https?$/,
        error: 'an http(s) URL of an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318',
      })
      .optional(),
  ),
  // Checked only with OTEL_EXPORTER_OTLP_ENDPOINT set (telemetrySettings): unused, any value is harmless.
  OTEL_EXPORTER_OTLP_PROTOCOL: optionalText,
  // The standard switch: "true" turns telemetry off whatever else is set.
  OTEL_SDK_DISABLED: optionalText,
  OTEL_METRIC_EXPORT_INTERVAL: positiveInt(60_000, 3_600_000),
});

type Settings = z.infer<typeof settingsSchema>;

export type CertificateSettings =
  | {
      kind: 'keyVault';
      vaultUrl: string;
      name: string;
      refreshMinutes: number;
      /** AZURE_CLIENT_ID: the user-assigned managed identity to read the vault with (unset: system-assigned). */
      identityClientId?: string;
    }
  | { kind: 'file'; path: string; password?: string };

export interface LoadConfigOptions {
  /** Where the one error line per unresolved Key Vault reference goes (default console.error). */
  log?: (message: string) => void;
}

export interface Config {
  /** AzureWebJobsStorage: a connection string, or identity-based `AzureWebJobsStorage__*` settings. */
  storage: StorageSettings;
  fpx: {
    baseUrl: string;
    certificate: CertificateSettings;
    caPath?: string;
    rateLimitPerMinute: number;
    /** The deployment's instance cap: the budget's share per instance while storage cannot be reached. */
    maxInstances: number;
    pageSize: number;
    origin?: string;
  };
  /** Webhook secrets; queued deliveries: FPX calls in all (the first included) and the first retry delay. */
  crm: { webhookSecrets: string[]; deliveryMaxAttempts: number; deliveryBackoffSeconds: number };
  alerts: {
    days: number[];
    emailTo: string[];
    emailFrom?: string;
    acsEndpoint?: string;
    acsConnectionString?: string;
    smtpUrl?: string;
    /** AZURE_CLIENT_ID: the user-assigned managed identity for ACS_EMAIL_ENDPOINT (unset: system-assigned). */
    identityClientId?: string;
    /** Alert settings that held an unresolved Key Vault reference (so are taken as unset). */
    unresolved?: string[];
  };
  schedules: { pollReferrals: string; pollTenants: string; certCheck: string; referenceData: string };
  /** A sync run marking more than this share of a table's rows removed marks none (100: no limit). */
  sync: { maxRemovedPercent: number };
  /** Dynamics 365 (Dataverse) webhooks; without `url` the endpoint answers 503. */
  dataverse: {
    url?: string;
    /** Secret: compared in constant time with the header x-fpx-dataverse-key, never logged. */
    webhookKey?: string;
    tenantIdColumn: string;
    noteCategoryId: number;
    /** FPX contact fields Dataverse has no column for (input form, checked against the create table). */
    contactDefaults: Record<string, unknown>;
    /** AZURE_CLIENT_ID: the user-assigned managed identity for the Web API (unset: system-assigned). */
    identityClientId?: string;
    /**
     * Running in Azure (App Service sets WEBSITE_INSTANCE_ID): the host checked the function key (`?code=`)
     * before the function runs. Not on the local host, which checks no keys.
     */
    functionKeyChecked: boolean;
  };
  /**
   * Referral and tenant changes pushed to the CRM (docs/events.md); no `urls`: no events. `secrets` is empty
   * only when CRM_EVENTS_SECRET is an unresolved Key Vault reference (events are recorded, not sent).
   */
  events: { urls: string[]; secrets: string[]; perSecond: number };
  telemetry: TelemetrySettings;
}

/**
 * Where spans and metrics go: Application Insights (the connection string wins when both are set), an OTLP/HTTP
 * receiver, or nowhere (then no SDK is loaded and telemetry costs nothing).
 */
export type TelemetrySettings =
  | { exporter: 'none' }
  | {
      exporter: 'azureMonitor';
      connectionString: string;
      /** APPLICATIONINSIGHTS_AUTHENTICATION_STRING says Authorization=AAD: send as this managed identity. */
      entraId?: { clientId?: string };
      metricIntervalMs: number;
    }
  | { exporter: 'otlp'; endpoint: string; metricIntervalMs: number };

function telemetrySettings(s: Settings): TelemetrySettings {
  if (s.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return { exporter: 'none' };
  const metricIntervalMs = s.OTEL_METRIC_EXPORT_INTERVAL;
  if (s.APPLICATIONINSIGHTS_CONNECTION_STRING) {
    const auth = s.APPLICATIONINSIGHTS_AUTHENTICATION_STRING;
    const clientId = auth ? /(?:^|;)\s*ClientId=([^;]+)/i.exec(auth)?.[1]?.trim() : undefined;
    return {
      exporter: 'azureMonitor',
      connectionString: s.APPLICATIONINSIGHTS_CONNECTION_STRING,
      ...(auth ? { entraId: clientId ? { clientId } : {} } : {}),
      metricIntervalMs,
    };
  }
  if (s.OTEL_EXPORTER_OTLP_ENDPOINT) {
    if (s.OTEL_EXPORTER_OTLP_PROTOCOL && s.OTEL_EXPORTER_OTLP_PROTOCOL !== 'http/json') {
      throw new ConfigError(
        'OTEL_EXPORTER_OTLP_PROTOCOL',
        '"http/json" or unset (the only OTLP protocol the app ships an exporter for)',
      );
    }
    return { exporter: 'otlp', endpoint: s.OTEL_EXPORTER_OTLP_ENDPOINT, metricIntervalMs };
  }
  return { exporter: 'none' };
}

function certificateSettings(s: Settings): CertificateSettings {
  if (s.FPX_CERT_KEYVAULT_URL || s.FPX_CERT_NAME) {
    if (!s.FPX_CERT_KEYVAULT_URL)
      throw new ConfigError('FPX_CERT_KEYVAULT_URL', 'a Key Vault URL, since FPX_CERT_NAME is set', true);
    if (!s.FPX_CERT_NAME)
      throw new ConfigError(
        'FPX_CERT_NAME',
        'the certificate name, since FPX_CERT_KEYVAULT_URL is set',
        true,
      );
    return {
      kind: 'keyVault',
      vaultUrl: s.FPX_CERT_KEYVAULT_URL,
      name: s.FPX_CERT_NAME,
      refreshMinutes: s.CERT_REFRESH_MINUTES,
      identityClientId: s.AZURE_CLIENT_ID,
    };
  }
  if (!s.FPX_CERT_PATH) {
    throw new ConfigError(
      'FPX_CERT_PATH',
      'the path of a PEM or PFX client certificate (or set FPX_CERT_KEYVAULT_URL and FPX_CERT_NAME)',
      true,
    );
  }
  return { kind: 'file', path: s.FPX_CERT_PATH, password: s.FPX_CERT_PASSWORD };
}

/** AzureWebJobsStorage in either form the Functions host accepts (lib/storage parses it). */
function storageSettings(env: Record<string, string | undefined>): StorageSettings {
  const result = parseStorageSettings(env);
  if (!result.ok) {
    const { setting, expected, missing } = result.problem;
    throw new ConfigError(setting, expected, missing);
  }
  return result.settings;
}

/** The settings createAlertSender needs; CERT_ALERT_DAYS has its default. */
const ALERT_SETTINGS = [
  'ALERT_EMAIL_TO',
  'ALERT_EMAIL_FROM',
  'ACS_EMAIL_ENDPOINT',
  'ACS_EMAIL_CONNECTION_STRING',
  'SMTP_URL',
];

/**
 * Parses the environment into a Config, or throws one ConfigError naming the first bad setting.
 * A setting holding an unresolved Key Vault reference is taken as unset, with one error line naming it
 * (webhooks then answer 503, alerts go to the log); it stops start-up only when storage, FPX_BASE_URL or the
 * certificate's location depends on it, since no function can run without those.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  options: LoadConfigOptions = {},
): Config {
  const unresolved = unresolvedKeyVaultReferences(env);
  const log = options.log ?? ((message: string) => console.error(message));
  for (const [name, reference] of unresolved) {
    log(
      `Setting ${name} holds the Key Vault reference ${reference}, which did not resolve: the app takes ${name} as unset. ` +
        `Check that the app's identity has the "Key Vault Secrets User" role and that the secret exists (portal: the app's Environment variables show each reference's status).`,
    );
  }
  // Unset, storage would fall back to the development storage: never that in place of the real account.
  const storageReference = [...unresolved.keys()].find((name) => /^AzureWebJobsStorage(__|$)/i.test(name));
  if (storageReference) {
    throw new ConfigError(
      storageReference,
      'a storage connection (the Functions host needs it too)',
      'unresolved',
    );
  }
  const settings = { ...env };
  for (const name of unresolved.keys()) delete settings[name];
  try {
    return parseSettings(settings, [...unresolved.keys()]);
  } catch (error) {
    // Only a setting everything needs can stop start-up by being unset: say why it is.
    if (error instanceof ConfigError && unresolved.has(error.setting)) {
      throw new ConfigError(error.setting, error.expected, 'unresolved');
    }
    throw error;
  }
}

function parseSettings(env: Record<string, string | undefined>, unresolved: string[]): Config {
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const setting = String(issue?.path[0] ?? 'unknown');
    throw new ConfigError(setting, issue?.message ?? 'a valid value', !env[setting]?.trim());
  }
  const s = parsed.data;
  if (s.ACS_EMAIL_ENDPOINT && s.ACS_EMAIL_CONNECTION_STRING) {
    throw new ConfigError(
      'ACS_EMAIL_CONNECTION_STRING',
      'to be unset when ACS_EMAIL_ENDPOINT is set (use one of them)',
    );
  }
  if (
    s.CRM_EVENTS_URL.length > 0 &&
    s.CRM_EVENTS_SECRET.length === 0 &&
    !unresolved.includes('CRM_EVENTS_SECRET')
  ) {
    throw new ConfigError(
      'CRM_EVENTS_SECRET',
      'a Standard Webhooks secret "whsec_<base64 of at least 16 bytes>" to sign events with, since CRM_EVENTS_URL is set',
      true,
    );
  }
  const alertsUnresolved = unresolved.filter((name) => ALERT_SETTINGS.includes(name));
  return {
    storage: storageSettings(env),
    fpx: {
      baseUrl: s.FPX_BASE_URL,
      certificate: certificateSettings(s),
      caPath: s.FPX_CA_PATH,
      rateLimitPerMinute: s.FPX_RATE_LIMIT_PER_MINUTE,
      maxInstances: s.FPX_MAX_INSTANCES,
      pageSize: s.FPX_PAGE_SIZE,
      origin: s.FPX_ORIGIN,
    },
    crm: {
      webhookSecrets: s.CRM_WEBHOOK_SECRET,
      deliveryMaxAttempts: s.CRM_DELIVERY_MAX_ATTEMPTS,
      deliveryBackoffSeconds: s.CRM_DELIVERY_BACKOFF_SECONDS,
    },
    alerts: {
      days: s.CERT_ALERT_DAYS,
      emailTo: s.ALERT_EMAIL_TO,
      emailFrom: s.ALERT_EMAIL_FROM,
      acsEndpoint: s.ACS_EMAIL_ENDPOINT,
      acsConnectionString: s.ACS_EMAIL_CONNECTION_STRING,
      smtpUrl: s.SMTP_URL,
      identityClientId: s.AZURE_CLIENT_ID,
      ...(alertsUnresolved.length > 0 ? { unresolved: alertsUnresolved } : {}),
    },
    schedules: {
      pollReferrals: s.POLL_REFERRALS_SCHEDULE,
      pollTenants: s.POLL_TENANTS_SCHEDULE,
      certCheck: s.CERT_CHECK_SCHEDULE,
      referenceData: s.REFERENCE_DATA_SCHEDULE,
    },
    sync: { maxRemovedPercent: s.SYNC_MAX_REMOVED_PERCENT },
    dataverse: {
      url: s.DATAVERSE_URL,
      webhookKey: s.DATAVERSE_WEBHOOK_KEY,
      tenantIdColumn: s.DATAVERSE_TENANT_ID_COLUMN,
      noteCategoryId: s.DATAVERSE_NOTE_CATEGORY_ID,
      contactDefaults: s.DATAVERSE_CONTACT_DEFAULTS,
      identityClientId: s.AZURE_CLIENT_ID,
      functionKeyChecked: Boolean(env.WEBSITE_INSTANCE_ID?.trim()),
    },
    events: { urls: s.CRM_EVENTS_URL, secrets: s.CRM_EVENTS_SECRET, perSecond: s.CRM_EVENTS_PER_SECOND },
    telemetry: telemetrySettings(s),
  };
}
