import { Cron } from 'croner';

/**
 * A timer trigger's schedule. Azure reads six-field NCRONTAB expressions ("{second} {minute} {hour}
 * {day} {month} {day-of-week}", UTC unless WEBSITE_TIME_ZONE is set) and, on dedicated plans, TimeSpan
 * intervals ("hh:mm:ss"). NCrontab requires both day fields to match when both are restricted, hence
 * `domAndDow`.
 */
export interface Schedule {
  readonly expression: string;
  /** First occurrence strictly after `after`. */
  next(after: Date): Date;
  /** Last occurrence strictly before `before`, if the schedule can tell. */
  previous(before: Date): Date | undefined;
}

const TIME_SPAN = /^(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2}))?$/;

export function parseSchedule(expression: string, timezone = 'UTC'): Schedule {
  const span = TIME_SPAN.exec(expression.trim());
  if (span) return timeSpanSchedule(expression, span);
  let cron: Cron;
  try {
    cron = new Cron(expression.trim(), { mode: '6-part', timezone, domAndDow: true });
  } catch (error) {
    throw new Error(
      `Invalid schedule "${expression}": expected six NCRONTAB fields "{second} {minute} {hour} {day} {month} {day-of-week}" (${(error as Error).message})`,
    );
  }
  return {
    expression,
    next(after) {
      const next = cron.nextRun(after);
      if (!next) throw new Error(`Schedule "${expression}" has no occurrence after ${after.toISOString()}`);
      return next;
    },
    previous(before) {
      return cron.previousRuns(1, before)[0];
    },
  };
}

function timeSpanSchedule(expression: string, span: RegExpExecArray): Schedule {
  const [, days, hours, minutes, seconds] = span;
  const ms =
    (((Number(days ?? 0) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds ?? 0)) * 1000;
  if (ms <= 0) throw new Error(`Invalid schedule "${expression}": the interval must be longer than zero`);
  return {
    expression,
    next: (after) => new Date(after.getTime() + ms),
    previous: (before) => new Date(before.getTime() - ms),
  };
}
