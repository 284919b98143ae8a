import type { RpcBindingInfo } from './core-types';
import type { RegisteredFunction } from './functions-core';
import { resolveSettingReferences, SettingError, type SettingSources, settingValue } from './settings';

export type TriggerKind = 'http' | 'timer' | 'queue' | 'other';

/** A registered function as the local host serves it, with `%SETTING%` references resolved. */
export interface RegisteredFunctionInfo {
  name: string;
  trigger: TriggerKind;
  /** The binding type as registered, e.g. `httpTrigger`, `timerTrigger`, `queueTrigger`. */
  triggerType: string;
  /** Name of the trigger binding (the key of the input in the invocation request). */
  triggerBinding: string;
  /** http: route template without the `api/` prefix, and the accepted methods (upper case). */
  route?: string;
  methods?: string[];
  /** http: the full URL, once a host listens. */
  url?: string;
  /** timer: the NCRONTAB (or TimeSpan) schedule and runOnStartup. */
  schedule?: string;
  runOnStartup?: boolean;
  /** queue: queue name and the name of the connection setting. */
  queueName?: string;
  connection?: string;
}

export function triggerBindingOf(fn: RegisteredFunction): [string, RpcBindingInfo] {
  const entry = Object.entries(fn.metadata.bindings).find(([, b]) => /trigger$/i.test(b.type ?? ''));
  if (!entry) throw new Error(`Function ${fn.metadata.name} has no trigger binding`);
  return entry;
}

function kindOf(type: string): TriggerKind {
  switch (type.toLowerCase()) {
    case 'httptrigger':
      return 'http';
    case 'timertrigger':
      return 'timer';
    case 'queuetrigger':
      return 'queue';
    default:
      return 'other';
  }
}

function optionText(binding: RpcBindingInfo, option: string): string | undefined {
  const value = binding[option];
  return typeof value === 'string' ? value : undefined;
}

/** The setting holding a storage connection: `connection` names it (empty: AzureWebJobsStorage). */
export function connectionSettingName(connection: string | undefined): string {
  return connection?.trim() ? connection.trim() : 'AzureWebJobsStorage';
}

/** Finds the connection string the way the Functions host does: `NAME`, then `AzureWebJobsNAME`. */
export function resolveConnection(connection: string, sources: SettingSources, functionName: string): string {
  const value = settingValue(connection, sources) ?? settingValue(`AzureWebJobs${connection}`, sources);
  if (value !== undefined) return value;
  if (
    settingValue(`${connection}__queueServiceUri`, sources) ??
    settingValue(`${connection}__serviceUri`, sources)
  ) {
    throw new Error(
      `Function ${functionName}: identity-based connection "${connection}" is not supported by the local host; set ${connection} to a connection string`,
    );
  }
  throw new SettingError(connection, functionName, 'its storage connection');
}

/** Describes one function, resolving `%SETTING%` references; throws SettingError for a missing one. */
export function describeFunction(fn: RegisteredFunction, sources: SettingSources): RegisteredFunctionInfo {
  const name = fn.metadata.name;
  const [bindingName, binding] = triggerBindingOf(fn);
  const triggerType = binding.type ?? 'unknown';
  const info: RegisteredFunctionInfo = {
    name,
    trigger: kindOf(triggerType),
    triggerType,
    triggerBinding: bindingName,
  };
  const resolve = (value: string, usage: string) => resolveSettingReferences(value, sources, name, usage);
  switch (info.trigger) {
    case 'http': {
      info.route = resolve(optionText(binding, 'route') ?? name, 'its route').replace(/^\/+|\/+$/g, '');
      const methods = Array.isArray(binding.methods) ? (binding.methods as string[]) : ['GET', 'POST'];
      info.methods = methods.map((m) => m.toUpperCase());
      break;
    }
    case 'timer':
      info.schedule = resolve(optionText(binding, 'schedule') ?? '', 'its schedule').trim();
      info.runOnStartup = binding.runOnStartup === true;
      break;
    case 'queue':
      info.queueName = resolve(optionText(binding, 'queueName') ?? '', 'its queue name').toLowerCase();
      info.connection = connectionSettingName(optionText(binding, 'connection'));
      break;
  }
  return info;
}
