import Module from 'node:module';
import path from 'node:path';
import type {
  CoreFunctionMetadata,
  FunctionCallback,
  HookCallback,
  HookData,
  ProgrammingModel,
  RpcFunctionMetadata,
  RpcLogCategory,
  RpcLogLevel,
} from './core-types';

/**
 * Our implementation of `@azure/functions-core`, the module the Azure Functions Node.js worker provides
 * to `@azure/functions` (Azure/azure-functions-nodejs-worker `src/setupCoreModule.ts`). The library
 * requires it lazily the first time `app.*` is called; `installFunctionsCore()` must run before that.
 */

export const CORE_MODULE_ID = '@azure/functions-core';

export interface RegisteredFunction {
  metadata: RpcFunctionMetadata;
  callback: FunctionCallback;
}

export type CoreLogSink = (level: RpcLogLevel, category: RpcLogCategory, message: string) => void;

export class Disposable {
  #callOnDispose: () => unknown;

  static from(...disposables: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => {
      for (const d of disposables) d.dispose();
    });
  }

  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }

  dispose(): unknown {
    const call = this.#callOnDispose;
    this.#callOnDispose = () => undefined;
    return call();
  }
}

/** Everything one app entry registered: its functions (in registration order) and its hooks. */
export class AppRegistration {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks = new Map<string, HookCallback[]>();
  /** The worker's `appHookData` (shared by all hooks) and `appLevelOnlyHookData` (app start/terminate). */
  readonly appHookData: HookData = {};
  readonly appLevelOnlyHookData: HookData = {};
  /** Set once startup finished: like the worker, no function may be registered or removed afterwards. */
  sealed = false;

  constructor(readonly entry: string) {}

  hooksFor(name: string): HookCallback[] {
    let list = this.hooks.get(name);
    if (!list) {
      list = [];
      this.hooks.set(name, list);
    }
    return list;
  }
}

interface CoreState {
  programmingModel?: ProgrammingModel;
  /** The app most recently loaded; registrations and hooks go there (functions only until sealed). */
  app?: AppRegistration;
  /** Where `coreApi.log` (the library's system log) goes: the running hosts' loggers. */
  logSinks: Set<CoreLogSink>;
  api: typeof coreApi;
}

function registrationError(message: string): Error {
  const error = new Error(message);
  error.name = 'AzFuncSystemError';
  return error;
}

function startingApp(): AppRegistration {
  const app = state().app;
  if (!app || app.sealed) {
    throw registrationError(
      'A function can only be registered during app startup (while the local host loads the entry).',
    );
  }
  return app;
}

const coreApi = {
  version: '4.0.0-local',
  hostVersion: '4.0.0-local',
  Disposable,

  registerFunction(metadata: CoreFunctionMetadata, callback: FunctionCallback): Disposable {
    const app = startingApp();
    const name = metadata.name;
    if (!name) throw registrationError('A function must have a name.');
    for (const existing of app.functions.keys()) {
      if (existing.toLowerCase() === name.toLowerCase()) {
        throw registrationError(`A function with the name "${name}" has already been registered.`);
      }
    }
    const rpcMetadata: RpcFunctionMetadata = {
      name,
      functionId: metadata.functionId ?? name,
      bindings: metadata.bindings,
      // What the host itself reads (src/coreApi/registerFunction.ts).
      rawBindings: Object.entries(metadata.bindings).map(([bindingName, b]) =>
        JSON.stringify({ ...b, name: bindingName }),
      ),
      scriptFile: app.entry,
      directory: path.dirname(app.entry),
      retryOptions: metadata.retryOptions,
    };
    app.functions.set(name, { metadata: rpcMetadata, callback });
    return new Disposable(() => {
      if (app.sealed) throw registrationError('A function can only be disposed during app startup.');
      app.functions.delete(name);
    });
  },

  registerHook(hookName: string, callback: HookCallback): Disposable {
    const app = state().app;
    if (!app)
      throw registrationError(`A "${hookName}" hook can only be registered by an app the local host loads.`);
    const list = app.hooksFor(hookName);
    list.push(callback);
    return new Disposable(() => {
      const index = list.indexOf(callback);
      if (index >= 0) list.splice(index, 1);
    });
  },

  setProgrammingModel(model: ProgrammingModel): void {
    state().programmingModel = model;
  },

  getProgrammingModel(): ProgrammingModel | undefined {
    return state().programmingModel;
  },

  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
    const sinks = state().logSinks;
    for (const sink of sinks) sink(level, category, message);
    if (sinks.size === 0 && (level === 'error' || level === 'critical' || level === 'warning'))
      console.error(message);
  },
};

// One state per process, even if this file is evaluated twice (vitest's runner and Node's require).
const STATE_KEY = Symbol.for('fpx-crm-connector.dev.functionsCore');

function state(): CoreState {
  const holder = globalThis as unknown as Record<symbol, CoreState | undefined>;
  let current = holder[STATE_KEY];
  if (!current) {
    current = { api: coreApi, logSinks: new Set() };
    holder[STATE_KEY] = current;
  }
  return current;
}

type ModuleLoad = (request: string, parent: unknown, isMain: boolean) => unknown;
const moduleInternals = Module as unknown as { _load: ModuleLoad };
const INSTALLED_KEY = Symbol.for('fpx-crm-connector.dev.functionsCore.installed');

/**
 * Makes `require('@azure/functions-core')` return our core API in this process, as the worker does by
 * wrapping `require`. `Module._load` is what every CommonJS `require` goes through, including the
 * `@azure/functions` bundle when vitest or tsx load it natively. Idempotent.
 */
export function installFunctionsCore(): void {
  const holder = globalThis as unknown as Record<symbol, boolean | undefined>;
  if (holder[INSTALLED_KEY]) return;
  const originalLoad = moduleInternals._load;
  const api = state().api;
  moduleInternals._load = function load(this: unknown, request: string, parent: unknown, isMain: boolean) {
    if (request === CORE_MODULE_ID) return api;
    return originalLoad.call(this, request, parent, isMain);
  };
  holder[INSTALLED_KEY] = true;
}

export function functionsCoreApi(): typeof coreApi {
  return state().api;
}

export function currentProgrammingModel(): ProgrammingModel | undefined {
  return state().programmingModel;
}

/** Registrations from here on go to `app`: functions until `finishStartup(app)`, hooks for good. */
export function beginStartup(app: AppRegistration): void {
  state().app = app;
}

export function finishStartup(app: AppRegistration): void {
  app.sealed = true;
}

/** Sends the library's system log to `sink` until the returned function is called. */
export function addCoreLogSink(sink: CoreLogSink): () => void {
  state().logSinks.add(sink);
  return () => state().logSinks.delete(sink);
}
