import { HOST_JSON, MAX_DEQUEUE_COUNT } from '../lib/config';
import { DEFAULT_ENTRY, PROJECT_ROOT } from './host/app-loader';
import type { InvocationOutcome } from './host/invocation';
import { consoleLogger, type HostLogger } from './host/logger';
import { InputError } from './host/manual-input';
import { HostRuntime, UnknownFunctionError } from './host/runtime';
import { currentSettings, isUnset, type Settings } from './host/settings';
import { describeFilled, fillLocalSettings, type LocalParts, runningStart } from './local-settings';

/**
 * `npm run invoke -- <functionName> [--input <json>] [--entry <file>]`: loads the app in process with
 * the local host's machinery (no HTTP server, no timers, no queue polling), runs one function once
 * with the current settings and prints a one-line JSON summary as the last line.
 * Exit code 0: succeeded, 1: failed, 2: usage error (e.g. an unknown function name).
 *
 * Settings: the environment, then local.settings.json; while `npm start` runs, its Azurite, FPX sandbox,
 * certificates and webhook secret where those name none (`.local/settings.json`); then the contract's
 * schedules and `UseDevelopmentStorage=true`, put into the settings before the app loads.
 */

export interface InvokeOptions {
  logger?: HostLogger;
  /** Parts of a running `npm start` to use where the settings name none (default: none). */
  parts?: LocalParts;
}

export interface InvokeSummary {
  function: string;
  invocationId: string | null;
  outcome: 'Succeeded' | 'Failed';
  durationMs: number;
  result: unknown;
  error?: string;
}

/**
 * Runs function `name` of the app at `entry` once: a timer with `input` `{isPastDue}` (default false),
 * a queue trigger with `input` as the message, an http trigger with `input`
 * `{method, path | url, query, headers, body}`. Rejects with UnknownFunctionError for an unknown name.
 */
export async function invokeFunction(
  entry: string | undefined,
  name: string,
  input?: unknown,
  settings: Settings = currentSettings(PROJECT_ROOT),
  options: InvokeOptions = {},
): Promise<InvocationOutcome> {
  const runtime = await HostRuntime.create({
    entry: entry ?? DEFAULT_ENTRY,
    settings: invokeSettings(settings, options.parts),
    logger: options.logger ?? consoleLogger(),
    origin: 'http://127.0.0.1:7071',
    routePrefix: HOST_JSON.routePrefix ?? 'api',
    queue: {
      batchSize: 1,
      newBatchThreshold: 0,
      pollIntervalMs: { min: 1000, max: 1000 },
      maxDequeueCount: MAX_DEQUEUE_COUNT,
      visibilityTimeoutSeconds: 0,
      leaseSeconds: 60,
    },
  });
  try {
    if (!runtime.find(name) && !runtime.problem(name)) {
      throw new UnknownFunctionError(name, runtime.registeredNames);
    }
    await runtime.start();
    return (await runtime.invoke(name, input)).outcome;
  } finally {
    await runtime.stop(30_000);
  }
}

/**
 * The settings a run gets, filled in explicitly (the host adds no defaults): the given ones, the parts of a
 * running `npm start` where they name none, the contract's schedules where unset, and storage on the local
 * emulator when nothing else names one.
 */
export function invokeSettings(settings: Settings, parts: LocalParts = {}): Settings {
  const filled = fillLocalSettings(settings, parts).settings;
  if (isUnset(filled.AzureWebJobsStorage)) filled.AzureWebJobsStorage = 'UseDevelopmentStorage=true';
  return filled;
}

export function summarize(outcome: InvocationOutcome): InvokeSummary {
  const summary: InvokeSummary = {
    function: outcome.functionName,
    invocationId: outcome.invocationId,
    outcome: outcome.outcome,
    durationMs: outcome.durationMs,
    result: outcome.result ?? null,
  };
  if (outcome.error) summary.error = outcome.error.message;
  return summary;
}

const USAGE = 'Usage: npm run invoke -- <functionName> [--input <json>] [--entry <file>]';

interface CliArgs {
  name: string;
  input?: unknown;
  entry?: string;
}

function parseArgs(argv: string[]): CliArgs | string {
  let name: string | undefined;
  let input: unknown;
  let entry = process.env.FUNCTIONS_ENTRY || undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    if (flag === '--input' || flag === '--entry') {
      const value = inline ?? argv[++i];
      if (value === undefined) return `${flag} needs a value`;
      if (flag === '--entry') entry = value;
      else input = parseInput(value);
    } else if (flag === '--help' || flag === '-h') {
      return USAGE;
    } else if (flag.startsWith('-')) {
      return `Unknown option ${flag}`;
    } else if (name === undefined) {
      name = arg;
    } else {
      return `Unexpected argument ${arg}`;
    }
  }
  if (!name) return 'Missing the function name';
  return { name, input, entry };
}

/** JSON when it parses, otherwise the text itself (a plain queue message). */
function parseInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function printLast(line: string, code: number): void {
  process.stdout.write(`${line}\n`, () => process.exit(code));
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n${args === USAGE ? '' : `${USAGE}\n`}`);
    process.exit(2);
  }
  const started = performance.now();
  const running = runningStart();
  try {
    const settings = currentSettings(PROJECT_ROOT);
    if (running) {
      const lent = describeFilled(fillLocalSettings(settings, running.parts).filled);
      if (lent.length) {
        console.log(
          `Using the ${lent.join(', ')} of npm start (pid ${running.start.pid}, .local/settings.json)`,
        );
      }
    }
    const outcome = await invokeFunction(args.entry, args.name, args.input, settings, {
      parts: running?.parts,
    });
    printLast(JSON.stringify(summarize(outcome)), outcome.outcome === 'Succeeded' ? 0 : 1);
  } catch (error) {
    if (error instanceof UnknownFunctionError || error instanceof InputError) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      process.exit(2);
    }
    // The app could not be loaded or the input did not fit the trigger: no invocation ran.
    const e = error as Error;
    process.stderr.write(`${e.stack ?? e.message}\n`);
    if (!running) {
      process.stderr.write(
        'No npm start is running (no .local/settings.json): start it in another terminal to use its Azurite, FPX sandbox and certificates, or give the settings yourself.\n',
      );
    }
    const summary: InvokeSummary = {
      function: args.name,
      invocationId: null,
      outcome: 'Failed',
      durationMs: Math.round(performance.now() - started),
      result: null,
      error: e.message,
    };
    printLast(JSON.stringify(summary), 1);
  }
}

// Run as a script (tsx dev/invoke.ts), not when imported.
if (typeof require !== 'undefined' && require.main === module) void main(process.argv.slice(2));
