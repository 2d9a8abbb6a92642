/**
 * `spec.schedule`: the cron syntax Kubernetes CronJobs accept (five fields, or one of
 * the @-macros) with an optional IANA time zone. Parsing and next-run arithmetic come
 * from cron-parser; this module only narrows the syntax to what users of CronJobs know.
 */
import { CronExpressionParser } from "cron-parser";

/** The CronJob macros; @midnight is spelled out because cron-parser lacks it. */
const MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

export type ScheduleResult =
  { ok: true; next: (after: Date) => Date } | { ok: false; field: string; message: string };

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function parseSchedule(schedule: string, timeZone = "UTC"): ScheduleResult {
  if (!isTimeZone(timeZone)) {
    return {
      ok: false,
      field: "spec.timeZone",
      message: `unknown time zone "${timeZone}" (use an IANA name such as Europe/Berlin)`,
    };
  }
  const text = schedule.trim();
  const expression = MACROS[text] ?? text;
  if (expression.split(/\s+/).length !== 5) {
    return {
      ok: false,
      field: "spec.schedule",
      message: `"${schedule}" is not a cron schedule: use five fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly`,
    };
  }
  try {
    CronExpressionParser.parse(expression, { tz: timeZone });
  } catch (err) {
    return {
      ok: false,
      field: "spec.schedule",
      message: `"${schedule}" is not a valid cron schedule: ${(err as Error).message}`,
    };
  }
  return {
    ok: true,
    next: (after) =>
      CronExpressionParser.parse(expression, { tz: timeZone, currentDate: after }).next().toDate(),
  };
}
