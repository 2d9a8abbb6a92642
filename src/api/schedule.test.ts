import { describe, expect, it } from "vitest";
import { parseSchedule } from "./schedule.ts";

describe("parseSchedule", () => {
  it("computes the next run in the schedule's time zone", () => {
    const s = parseSchedule("0 3 * * 0", "Europe/Berlin");
    expect(s.ok && s.next(new Date("2026-11-23T00:00:00Z")).toISOString()).toBe("2026-11-29T02:00:00.000Z");
  });

  it("defaults to UTC", () => {
    const s = parseSchedule("30 1 * * *");
    expect(s.ok && s.next(new Date("2026-11-23T00:00:00Z")).toISOString()).toBe("2026-11-23T01:30:00.000Z");
  });

  it.each([
    "@daily",
    "@midnight",
    "@weekly",
    "@hourly",
    "@monthly",
    "@yearly",
    "*/15 * * * *",
    "0 3 * * MON-FRI",
  ])("accepts %s", (schedule) => {
    expect(parseSchedule(schedule).ok).toBe(true);
  });

  it.each([
    ["* * * *", /five fields/],
    ["0 0 3 * * 0", /five fields/],
    ["@every 5m", /five fields/],
    ["61 * * * *", /not a valid cron schedule/],
    ["0 25 * * *", /not a valid cron schedule/],
  ])("rejects %s", (schedule, message) => {
    const s = parseSchedule(schedule);
    expect(s).toMatchObject({ ok: false, field: "spec.schedule" });
    expect(!s.ok && s.message).toMatch(message);
  });

  it("rejects an unknown time zone, naming spec.timeZone", () => {
    expect(parseSchedule("0 3 * * 0", "Mars/Olympus")).toMatchObject({ ok: false, field: "spec.timeZone" });
  });
});
