/**
 * Where lib writes what an invocation logs: the host's invocation log in production (functions/ passes the
 * Functions `InvocationContext`, which has these three methods), an array in tests.
 */
export interface Log {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** A Log that writes nothing. */
export const silentLog: Log = { log: () => undefined, warn: () => undefined, error: () => undefined };
