import { format } from 'node:util';
import type { RpcLogLevel } from './core-types';

export type LogLevel = Exclude<RpcLogLevel, 'none'>;

/** `host`: the local host's own lines; `user`: what handlers log; `system`: the library's worker log. */
export type LogCategory = 'host' | 'user' | 'system';

export interface LogEntry {
  time: Date;
  level: LogLevel;
  category: LogCategory;
  message: string;
  functionName?: string;
  invocationId?: string;
}

export interface HostLogger {
  log(entry: LogEntry): void;
}

const LEVEL_RANK: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
};

export function isAtLeast(level: LogLevel, minimum: LogLevel): boolean {
  return LEVEL_RANK[level] >= LEVEL_RANK[minimum];
}

export function toLogLevel(level: string | null | undefined): LogLevel {
  return level && level in LEVEL_RANK ? (level as LogLevel) : 'information';
}

/** One line as Core Tools prints it: time, level, then the function name for handler logs. */
export function formatLogEntry(entry: LogEntry): string {
  const where = entry.category === 'host' || !entry.functionName ? '' : `${entry.functionName}: `;
  return `[${entry.time.toISOString()}] [${entry.level}] ${where}${entry.message}`;
}

export interface ConsoleLoggerOptions {
  /** Handler logs at or above this level are printed (default trace: everything handlers log). */
  userLevel?: LogLevel;
  /** Host and library lines at or above this level are printed (default information). */
  hostLevel?: LogLevel;
  write?: { out(line: string): void; err(line: string): void };
}

/** Prints entries to stdout, warnings and errors to stderr. */
export function consoleLogger(options: ConsoleLoggerOptions = {}): HostLogger {
  const userLevel = options.userLevel ?? 'trace';
  const hostLevel = options.hostLevel ?? 'information';
  const write = options.write ?? {
    out: (line: string) => process.stdout.write(`${line}\n`),
    err: (line: string) => process.stderr.write(`${line}\n`),
  };
  return {
    log(entry) {
      if (!isAtLeast(entry.level, entry.category === 'user' ? userLevel : hostLevel)) return;
      const line = formatLogEntry(entry);
      if (isAtLeast(entry.level, 'warning')) write.err(line);
      else write.out(line);
    },
  };
}

/** Keeps entries in memory (tests and `invoke` read them back). */
export function memoryLogger(forward?: HostLogger): HostLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    log(entry) {
      entries.push(entry);
      forward?.log(entry);
    },
  };
}

/** Small helper for the host's own lines. */
export function hostLine(logger: HostLogger, level: LogLevel, message: string, ...args: unknown[]): void {
  logger.log({
    time: new Date(),
    level,
    category: 'host',
    message: args.length ? format(message, ...args) : message,
  });
}
