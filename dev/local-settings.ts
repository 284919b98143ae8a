/**
 * The settings `npm start` fills in itself, and `.local/settings.json`, where it leaves what it runs while
 * it runs, so that `npm run invoke` and `npm run webhook` in another terminal use the same Azurite, FPX
 * sandbox, certificates and host.
 *
 * One rule for both: a part npm start runs (Azurite, the FPX sandbox, the SMTP sink, the local webhook
 * secret) is used only where the settings (environment, then local.settings.json) name none of their own,
 * and the contract's schedules fill in the `%SETTING%`s that are unset. The local host itself adds nothing:
 * a function whose `%SETTING%` is unset is in error there, as in Azure.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SCHEDULE_DEFAULTS } from '../lib/config';
import { PROJECT_ROOT } from './host/app-loader';
import { isUnset, type Settings } from './host/settings';

export const LOCAL_DIR = path.join(PROJECT_ROOT, '.local');
/** Written by `npm start` once its host listens, removed when it stops. */
export const LOCAL_SETTINGS_FILE = path.join(LOCAL_DIR, 'settings.json');
/** The local webhook secret `npm start` generates once (used when CRM_WEBHOOK_SECRET is unset). */
export const LOCAL_WEBHOOK_SECRET_FILE = path.join(LOCAL_DIR, 'webhook-secret');

/** Alert addresses for the local SMTP sink. */
export const LOCAL_ALERT_ADDRESSES = {
  ALERT_EMAIL_TO: 'fpx-alerts@fpx-connector.local',
  ALERT_EMAIL_FROM: 'fpx-crm-connector@fpx-connector.local',
} as const;

/** What `npm start` runs itself, each part for the settings that name none of their own. */
export interface LocalParts {
  /** Azurite's connection string. */
  storage?: string;
  /** The FPX sandbox and the certificates it generated. */
  fpx?: { url: string; caPath: string; clientCertPath: string };
  /** The SMTP sink for alert emails. */
  mail?: { url: string };
  /** The local webhook secret (`.local/webhook-secret`). */
  webhookSecret?: string;
  /** The local Dataverse Web API, its managed-identity settings and an account linked to a sandbox tenant. */
  dataverse?: { url: string; identityEnv: Record<string, string>; account: string; contactDefaults?: string };
  /** The local DATAVERSE_WEBHOOK_KEY (`.local/dataverse-key`). */
  dataverseKey?: string;
  /** The local CRM event receiver (dev/event-receiver.ts) and the secret events are signed with for it. */
  events?: { url: string; secret?: string };
}

export const LOCAL_DATAVERSE_KEY_FILE = path.join(LOCAL_DIR, 'dataverse-key');

/** The local DATAVERSE_WEBHOOK_KEY, made once under .local, and the local Web API's one account. */
export const LOCAL_DATAVERSE_KEY = {
  file: LOCAL_DATAVERSE_KEY_FILE,
  account: 'a11ce000-0000-4000-8000-000000000001',
  read(): string {
    if (!existsSync(LOCAL_DATAVERSE_KEY_FILE)) {
      mkdirSync(LOCAL_DIR, { recursive: true });
      writeFileSync(LOCAL_DATAVERSE_KEY_FILE, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    }
    return readFileSync(LOCAL_DATAVERSE_KEY_FILE, 'utf8').trim();
  },
};

/** The embedded Azurite serves storage when AzureWebJobsStorage is unset or `UseDevelopmentStorage=true`. */
export function wantsLocalStorage(settings: Settings): boolean {
  const storage = settings.AzureWebJobsStorage?.trim();
  return !storage || /^UseDevelopmentStorage=true$/i.test(storage);
}

/** The embedded FPX sandbox serves FPX when FPX_BASE_URL is unset. */
export function wantsLocalFpx(settings: Settings): boolean {
  return isUnset(settings.FPX_BASE_URL);
}

/** The SMTP sink takes alert emails when no email transport is set. */
export function wantsLocalMail(settings: Settings): boolean {
  return [settings.SMTP_URL, settings.ACS_EMAIL_ENDPOINT, settings.ACS_EMAIL_CONNECTION_STRING].every(
    isUnset,
  );
}

/**
 * `settings` with the local parts and the contract's schedule defaults filled in where the settings name
 * nothing of their own; `filled` lists the settings added (or, for `UseDevelopmentStorage=true`, replaced).
 */
export function fillLocalSettings(
  settings: Settings,
  parts: LocalParts,
): { settings: Settings; filled: string[] } {
  const result: Settings = { ...settings };
  const filled: string[] = [];
  const fill = (name: string, value: string | undefined, when = isUnset(result[name])) => {
    if (value === undefined || !when) return;
    result[name] = value;
    filled.push(name);
  };
  if (parts.storage && wantsLocalStorage(settings)) fill('AzureWebJobsStorage', parts.storage, true);
  if (parts.fpx && wantsLocalFpx(settings)) {
    fill('FPX_BASE_URL', parts.fpx.url);
    fill('FPX_CA_PATH', parts.fpx.caPath);
    if (isUnset(settings.FPX_CERT_KEYVAULT_URL)) fill('FPX_CERT_PATH', parts.fpx.clientCertPath);
  }
  if (parts.mail && wantsLocalMail(settings)) {
    fill('SMTP_URL', parts.mail.url);
    for (const [name, value] of Object.entries(LOCAL_ALERT_ADDRESSES)) fill(name, value);
  }
  fill('CRM_WEBHOOK_SECRET', parts.webhookSecret);
  if (parts.dataverse && isUnset(settings.DATAVERSE_URL)) {
    fill('DATAVERSE_URL', parts.dataverse.url);
    // The app's managed identity, as App Service provides it: @azure/identity gets its Web API token there.
    for (const [name, value] of Object.entries(parts.dataverse.identityEnv)) fill(name, value);
    fill('DATAVERSE_WEBHOOK_KEY', parts.dataverseKey);
    fill('DATAVERSE_CONTACT_DEFAULTS', parts.dataverse.contactDefaults);
  }
  fill('CRM_EVENTS_URL', parts.events?.url);
  fill('CRM_EVENTS_SECRET', parts.events?.secret);
  for (const [name, value] of Object.entries(SCHEDULE_DEFAULTS)) fill(name, value);
  return { settings: result, filled };
}

/** What `.local/settings.json` holds. */
export interface RunningStart {
  /** The `npm start` process; the file counts only while it lives. */
  pid: number;
  startedAt: string;
  /** The Functions host, e.g. http://127.0.0.1:7071. */
  hostUrl: string;
  storage?: string;
  fpx?: LocalParts['fpx'];
  mail?: LocalParts['mail'];
  /** Set when npm start signs with the local webhook secret (the file's path, never the secret). */
  webhookSecretFile?: string;
  /** The local Dataverse Web API (URL and the linked account) and the key file's path (never the key). */
  dataverse?: { url: string; account: string; keyFile?: string };
}

/** Writes `.local/settings.json` for this process (readable by its owner only). */
export function writeRunningStart(hostUrl: string, parts: LocalParts, file = LOCAL_SETTINGS_FILE): void {
  const content: RunningStart & { about: string } = {
    about:
      'Written by npm start while it runs, removed when it stops: npm run invoke and npm run webhook use these parts where their own settings name none.',
    pid: process.pid,
    startedAt: new Date().toISOString(),
    hostUrl,
    storage: parts.storage,
    fpx: parts.fpx,
    mail: parts.mail,
    webhookSecretFile: parts.webhookSecret
      ? path.relative(PROJECT_ROOT, LOCAL_WEBHOOK_SECRET_FILE)
      : undefined,
    dataverse: parts.dataverse && {
      url: parts.dataverse.url,
      account: parts.dataverse.account,
      keyFile: parts.dataverseKey ? path.relative(PROJECT_ROOT, LOCAL_DATAVERSE_KEY_FILE) : undefined,
    },
  };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
}

/** Removes `.local/settings.json` if this process wrote it (another npm start may have replaced it). */
export function removeRunningStart(file = LOCAL_SETTINGS_FILE): void {
  if (readFile(file)?.pid === process.pid) rmSync(file, { force: true });
}

function readFile(file: string): RunningStart | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as RunningStart;
    return Number.isInteger(parsed?.pid) && typeof parsed.hostUrl === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running `npm start` (from `.local/settings.json`), if there is one; a file left by a killed one is ignored. */
export function runningStart(
  file = LOCAL_SETTINGS_FILE,
): { start: RunningStart; parts: LocalParts } | undefined {
  const start = readFile(file);
  if (!start || !isAlive(start.pid)) return undefined;
  const secretFile = start.webhookSecretFile && path.resolve(PROJECT_ROOT, start.webhookSecretFile);
  const webhookSecret =
    secretFile && existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() || undefined : undefined;
  return { start, parts: { storage: start.storage, fpx: start.fpx, mail: start.mail, webhookSecret } };
}

/** Names of the parts a running npm start lends to `settings`, for a one-line note. */
export function describeFilled(filled: readonly string[]): string[] {
  const parts: string[] = [];
  if (filled.includes('AzureWebJobsStorage')) parts.push('Azurite');
  if (filled.includes('FPX_BASE_URL')) parts.push('FPX sandbox');
  if (filled.some((n) => n === 'FPX_CA_PATH' || n === 'FPX_CERT_PATH')) parts.push('certificates');
  if (filled.includes('SMTP_URL')) parts.push('SMTP sink');
  if (filled.includes('CRM_WEBHOOK_SECRET')) parts.push('webhook secret');
  return parts;
}
