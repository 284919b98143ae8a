import { randomBytes, randomUUID } from 'node:crypto';
import type {
  CoreInvocationContext,
  FunctionCallback,
  HookData,
  InvocationState,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
  RpcParameterBinding,
  RpcTypedData,
} from './core-types';
import { type AppRegistration, currentProgrammingModel, type RegisteredFunction } from './functions-core';
import { type HostLogger, type LogCategory, type LogLevel, toLogLevel } from './logger';

/**
 * One invocation as the Node.js worker runs it (src/eventHandlers/InvocationHandler.ts): the programming
 * model builds the context and inputs, preInvocation hooks may replace inputs and handler, the handler
 * runs, postInvocation hooks may replace result or error, and the model converts the result.
 */

export interface InvocationInput {
  inputData: RpcParameterBinding[];
  triggerMetadata?: Record<string, RpcTypedData>;
  retryContext?: RpcInvocationRequest['retryContext'];
  invocationId?: string;
}

export interface InvocationOutcome {
  functionName: string;
  invocationId: string;
  outcome: 'Succeeded' | 'Failed';
  durationMs: number;
  /** What the handler returned (after postInvocation hooks); http: {status, headers, body}. */
  result?: unknown;
  error?: { name: string; message: string; stack?: string };
}

export interface InvocationRun {
  outcome: InvocationOutcome;
  /** The model's response (return value and output bindings) when it succeeded. */
  response?: RpcInvocationResponse;
}

export function newTraceParent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

function toError(value: unknown): { name: string; message: string; stack?: string } {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return { name: 'Error', message: typeof value === 'string' ? value : JSON.stringify(value) };
}

async function executeHooks(app: AppRegistration, hookName: string, context: object): Promise<void> {
  // Copy: a hook may dispose itself (or others) while the list runs.
  for (const callback of [...(app.hooks.get(hookName) ?? [])]) {
    await (callback as (ctx: object) => unknown)(context);
  }
}

/** Runs `log` hooks (which may change level and message), then hands the entry to the logger. */
export function emitLog(
  app: AppRegistration,
  logger: HostLogger,
  entry: {
    level: RpcLogLevel;
    category: RpcLogCategory;
    message: string;
    functionName?: string;
    invocationId?: string;
  },
  invocation?: { hookData: HookData; invocationContext: unknown },
): void {
  const hookContext = {
    level: entry.level,
    message: entry.message,
    get category() {
      return entry.category;
    },
    get hookData() {
      return invocation?.hookData ?? {};
    },
    get appHookData() {
      return app.appHookData;
    },
    get invocationContext() {
      return invocation?.invocationContext;
    },
  };
  for (const callback of app.hooks.get('log') ?? []) {
    try {
      (callback as (ctx: object) => unknown)(hookContext);
    } catch (error) {
      logger.log({
        time: new Date(),
        level: 'error',
        category: 'host',
        message: `A log hook failed: ${toError(error).message}`,
      });
    }
  }
  if (hookContext.level === 'none') return;
  const category: LogCategory = entry.category === 'user' ? 'user' : 'system';
  logger.log({
    time: new Date(),
    level: toLogLevel(hookContext.level) as LogLevel,
    category,
    message: hookContext.message,
    functionName: entry.functionName,
    invocationId: entry.invocationId,
  });
}

export async function runInvocation(
  app: AppRegistration,
  fn: RegisteredFunction,
  input: InvocationInput,
  logger: HostLogger,
): Promise<InvocationRun> {
  const functionName = fn.metadata.name;
  const invocationId = input.invocationId ?? randomUUID();
  const started = performance.now();
  const hookData: HookData = {};
  let invocationContext: unknown;

  const coreContext: CoreInvocationContext = {
    invocationId,
    request: {
      invocationId,
      functionId: fn.metadata.functionId,
      inputData: input.inputData,
      triggerMetadata: input.triggerMetadata ?? {},
      traceContext: { traceParent: newTraceParent(), traceState: '', attributes: {} },
      retryContext: input.retryContext ?? null,
    },
    metadata: fn.metadata,
    state: undefined as InvocationState | undefined,
    log(level, category, message) {
      emitLog(
        app,
        logger,
        { level, category, message, functionName, invocationId },
        { hookData, invocationContext },
      );
    },
  };

  let result: unknown;
  let error: unknown;
  let failed = false;
  let response: RpcInvocationResponse | undefined;
  try {
    const model = currentProgrammingModel();
    if (!model) throw new Error('No programming model was set by the app');
    const invocationModel = await model.getInvocationModel(coreContext);
    const args = await invocationModel.getArguments();
    invocationContext = args.context;
    let inputs = args.inputs;
    let callback: FunctionCallback = fn.callback;

    const preContext = {
      get hookData() {
        return hookData;
      },
      get appHookData() {
        return app.appHookData;
      },
      get invocationContext() {
        return invocationContext;
      },
      functionCallback: callback,
      inputs,
    };
    coreContext.state = 'preInvocationHooks';
    try {
      await executeHooks(app, 'preInvocation', preContext);
    } finally {
      coreContext.state = undefined;
    }
    inputs = preContext.inputs;
    callback = preContext.functionCallback;

    const postContext = {
      get hookData() {
        return hookData;
      },
      get appHookData() {
        return app.appHookData;
      },
      get invocationContext() {
        return invocationContext;
      },
      inputs,
      result: null as unknown,
      error: null as unknown,
    };
    coreContext.state = 'invocation';
    try {
      postContext.result = await invocationModel.invokeFunction(invocationContext, inputs, callback);
    } catch (err) {
      postContext.error = err;
    } finally {
      coreContext.state = undefined;
    }
    coreContext.state = 'postInvocationHooks';
    try {
      await executeHooks(app, 'postInvocation', postContext);
    } finally {
      coreContext.state = undefined;
    }
    // As the worker: any non-null error left by the hooks fails the invocation.
    if (postContext.error !== null && postContext.error !== undefined) throw postContext.error;
    result = postContext.result;
    response = await invocationModel.getResponse(invocationContext, result);
  } catch (err) {
    failed = true;
    error = err;
  }

  const outcome: InvocationOutcome = {
    functionName,
    invocationId,
    outcome: failed ? 'Failed' : 'Succeeded',
    durationMs: Math.round(performance.now() - started),
  };
  if (failed) outcome.error = toError(error);
  else outcome.result = result;
  return { outcome, response };
}
