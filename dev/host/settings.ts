import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export type Settings = Record<string, string | undefined>;

/**
 * A `%NAME%` in a binding (or a connection) names an app setting that has no value. As in Azure, the
 * function is then in error and not registered; the host has no defaults of its own.
 */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    readonly functionName: string,
    usage: string,
  ) {
    super(`Setting ${setting} is missing: function ${functionName} uses it in ${usage}`);
    this.name = 'SettingError';
  }
}

export interface SettingSources {
  settings: Settings;
}

/** A setting's value; unset and empty are both missing, as an empty app setting is in Azure. */
export function settingValue(name: string, sources: SettingSources): string | undefined {
  const value = sources.settings[name];
  return value !== undefined && value !== '' ? value : undefined;
}

/** True when `value` is unset or blank. */
export function isUnset(value: string | undefined): boolean {
  return !value?.trim();
}

/**
 * Resolves app-setting references as the Functions host does for binding properties:
 * every `%NAME%` is replaced by the setting's value.
 */
export function resolveSettingReferences(
  value: string,
  sources: SettingSources,
  functionName: string,
  usage: string,
): string {
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const resolved = settingValue(name, sources);
    if (resolved === undefined) throw new SettingError(name, functionName, `${usage} "${value}"`);
    return resolved;
  });
}

/**
 * `Values` of local.settings.json, the file Core Tools reads; missing file gives no values.
 * A file that exists but is not valid JSON is an error rather than silently ignored.
 */
export function readLocalSettings(projectRoot: string): Record<string, string> {
  const file = path.join(projectRoot, 'local.settings.json');
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  const values = (parsed as { Values?: unknown } | null)?.Values;
  if (!values || typeof values !== 'object') return {};
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (value !== null && value !== undefined) result[name] = String(value);
  }
  return result;
}

/** process.env plus local.settings.json values; real environment variables win, as with Core Tools. */
export function currentSettings(projectRoot: string, env: Settings = process.env): Settings {
  return { ...readLocalSettings(projectRoot), ...definedOnly(env) };
}

function definedOnly(settings: Settings): Settings {
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
}

/**
 * Puts settings into process.env (app code reads its settings there, as in Azure) and returns a
 * function that restores the previous values.
 */
export function applySettingsToEnv(settings: Settings): () => void {
  const previous = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined || process.env[name] === value) continue;
    previous.set(name, process.env[name]);
    process.env[name] = value;
  }
  return () => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}
