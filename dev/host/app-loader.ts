import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AppRegistration,
  beginStartup,
  currentProgrammingModel,
  finishStartup,
  installFunctionsCore,
} from './functions-core';

/** The project root (this file lives in dev/host/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Where the composition root registers every function, as `main` in package.json would point Azure. */
export const DEFAULT_ENTRY = path.join(PROJECT_ROOT, 'functions', 'index.ts');

const ENTRY_EXTENSIONS = ['', '.ts', '.js', '.cjs', '.mts', '.mjs'];

export function resolveEntry(entry: string = DEFAULT_ENTRY): string {
  const base = path.resolve(entry);
  const candidates = ENTRY_EXTENSIONS.map((ext) => base + ext).concat(
    ENTRY_EXTENSIONS.slice(1).map((ext) => path.join(base, `index${ext}`)),
  );
  const found = candidates.find((file) => existsSync(file) && statSync(file).isFile());
  if (!found) throw new Error(`App entry ${entry} not found (the module that registers the functions)`);
  return found;
}

// One load per entry and process: a module registers its functions when it is first evaluated only.
const loads = new Map<string, Promise<AppRegistration>>();
let loadQueue: Promise<unknown> = Promise.resolve();

/**
 * Loads the app entry with `@azure/functions-core` installed and returns what it registered.
 * Loads are serialised so that registrations of two entries never mix.
 */
export function loadApp(entry?: string): Promise<AppRegistration> {
  const file = resolveEntry(entry);
  let load = loads.get(file);
  if (!load) {
    load = loadQueue.then(() => evaluateEntry(file));
    loadQueue = load.catch(() => undefined);
    loads.set(file, load);
  }
  return load;
}

async function evaluateEntry(file: string): Promise<AppRegistration> {
  installFunctionsCore();
  const app = new AppRegistration(file);
  beginStartup(app);
  try {
    // A CommonJS bundle goes through Node's own require, as the worker loads it (a test runner's module
    // transform would otherwise rewrite megabytes of bundled code first); sources go through import().
    if (/\.c?js$/.test(file)) createRequire(file)(file);
    else await import(pathToFileURL(file).href);
  } catch (error) {
    finishStartup(app);
    const cause = error instanceof Error ? error : new Error(String(error));
    throw Object.assign(new Error(`Unable to load the app entry ${file}: ${cause.message}`, { cause }), {
      name: cause.name,
    });
  }
  if (app.functions.size > 0 && !currentProgrammingModel()) {
    throw new Error(`The app entry ${file} registered functions but no programming model`);
  }
  return app;
}

/** Called once startup (entry and appStart hooks) is over; the function list is final from then on. */
export function sealApp(app: AppRegistration): void {
  finishStartup(app);
}
