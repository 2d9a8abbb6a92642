import { describe, expect, it } from "vitest";
import type { MirrorJobStatus } from "../api/status.ts";
import {
  mirrorJobSamples,
  scheduleIntervalSeconds,
  type MirrorJobLike,
  type Sample,
} from "./mirrorjob-samples.ts";

const id = { namespace: "mirror", name: "weekly" };

function mj(status?: MirrorJobStatus, spec: Record<string, unknown> = {}): MirrorJobLike {
  return {
    metadata: { ...id, creationTimestamp: "2026-03-01T10:00:00Z" },
    spec,
    ...(status !== undefined && { status }),
  };
}

function value(samples: Sample[], labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const finished: MirrorJobStatus = {
  phase: "Failed",
  conditions: [
    {
      type: "PreflightPassed",
      status: "True",
      reason: "PreflightSucceeded",
      message: "ok",
      lastTransitionTime: "2026-03-01T10:00:01Z",
    },
  ],
  lastRun: {
    id: "r2",
    jobName: "weekly-r2",
    trigger: "Schedule",
    generation: 1,
    startTime: "2026-03-08T03:00:00Z",
    completionTime: "2026-03-08T03:20:00Z",
    result: "PartiallyFailed",
    images: {
      additional: { copied: 2, failed: 1, total: 3 },
      operator: { copied: 10, failed: 0, total: 10 },
    },
    verification: {
      reason: "ImagesMissing",
      checked: 13,
      present: 11,
      missing: 1,
      mismatched: 1,
      errors: 0,
      completionTime: "2026-03-08T03:21:00Z",
    },
  },
  lastSuccessfulRun: {
    id: "r1",
    jobName: "weekly-r1",
    trigger: "Created",
    generation: 1,
    startTime: "2026-03-01T10:00:02Z",
    completionTime: "2026-03-01T10:30:00Z",
    result: "Succeeded",
  },
  pendingChange: { hash: "abcdef01", disruptive: true, summary: "ITMS added" },
};

describe("mirrorJobSamples", () => {
  it("reads phase, last run, last success, verification, preflight and a pending change", () => {
    const s = mirrorJobSamples(mj(finished));
    expect(s.phase).toHaveLength(10);
    expect(value(s.phase, { phase: "Failed" })).toBe(1);
    expect(s.phase.filter((x) => x.value === 1)).toHaveLength(1);
    expect(s.lastRunResult.map((x) => [x.labels.result, x.value])).toEqual([
      ["Succeeded", 0],
      ["PartiallyFailed", 1],
      ["Failed", 0],
      ["Crashed", 0],
    ]);
    expect(s.lastSuccess).toEqual([{ labels: id, value: Date.parse("2026-03-01T10:30:00Z") / 1000 }]);
    expect(s.created).toEqual([{ labels: id, value: Date.parse("2026-03-01T10:00:00Z") / 1000 }]);
    expect(s.runImages).toEqual([
      { labels: { ...id, category: "operator", state: "copied" }, value: 10 },
      { labels: { ...id, category: "operator", state: "failed" }, value: 0 },
      { labels: { ...id, category: "additional", state: "copied" }, value: 2 },
      { labels: { ...id, category: "additional", state: "failed" }, value: 1 },
    ]);
    expect(s.verificationMissing).toEqual([{ labels: id, value: 1 }]);
    expect(s.verificationMismatched).toEqual([{ labels: id, value: 1 }]);
    expect(s.registryReachable).toEqual([{ labels: id, value: 1 }]);
    expect(s.pendingDisruptiveChange).toEqual([{ labels: id, value: 1 }]);
    expect(s.scheduleInterval).toEqual([]);
  });

  it("leaves out what a new MirrorJob does not have yet, and zeroes the rest", () => {
    const s = mirrorJobSamples(mj());
    expect(s.phase.every((x) => x.value === 0)).toBe(true);
    expect(s.lastRunResult).toEqual([]);
    expect(s.lastSuccess).toEqual([]);
    expect(s.runImages).toEqual([]);
    expect(s.verificationMissing).toEqual([]);
    expect(s.registryReachable).toEqual([]);
    expect(s.pendingDisruptiveChange).toEqual([{ labels: id, value: 0 }]);
    expect(s.created).toHaveLength(1);
  });

  it("says 0 for the registry when preflight could not use it", () => {
    for (const reason of ["RegistryUnreachable", "RegistryAuthFailed", "RegistryTLSFailed"]) {
      const s = mirrorJobSamples(
        mj({
          conditions: [
            {
              type: "PreflightPassed",
              status: "False",
              reason,
              message: "x",
              lastTransitionTime: "2026-03-01T10:00:01Z",
            },
          ],
        }),
      );
      expect(s.registryReachable).toEqual([{ labels: id, value: 0 }]);
    }
    const secretMissing = mirrorJobSamples(
      mj({
        conditions: [
          {
            type: "PreflightPassed",
            status: "False",
            reason: "SecretNotFound",
            message: "x",
            lastTransitionTime: "2026-03-01T10:00:01Z",
          },
        ],
      }),
    );
    expect(secretMissing.registryReachable).toEqual([{ labels: id, value: 1 }]);
  });

  it("treats a finished run without a result as crashed, and reads Date timestamps (lists)", () => {
    const s = mirrorJobSamples({
      metadata: { ...id, creationTimestamp: new Date("2026-03-01T10:00:00Z") },
      status: {
        lastRun: {
          id: "r",
          jobName: "j",
          trigger: "Created",
          generation: 1,
          startTime: "2026-03-01T10:00:00Z",
        },
      },
    });
    expect(value(s.lastRunResult, { result: "Crashed" })).toBe(1);
    expect(s.created[0]?.value).toBe(Date.parse("2026-03-01T10:00:00Z") / 1000);
  });

  it("gives nothing for an object without a name", () => {
    const s = mirrorJobSamples({ metadata: { namespace: "x" } });
    expect(Object.values(s).flat()).toEqual([]);
  });

  it("exports the schedule's interval through the given function", () => {
    const seen: [string, string | undefined][] = [];
    const s = mirrorJobSamples(
      mj(undefined, { schedule: "0 3 * * 0", timeZone: "Europe/Berlin" }),
      (a, b) => {
        seen.push([a, b]);
        return 42;
      },
    );
    expect(seen).toEqual([["0 3 * * 0", "Europe/Berlin"]]);
    expect(s.scheduleInterval).toEqual([{ labels: id, value: 42 }]);
    const invalid = mirrorJobSamples(mj(undefined, { schedule: "every day" }));
    expect(invalid.scheduleInterval).toEqual([]);
  });
});

describe("scheduleIntervalSeconds", () => {
  const from = new Date("2026-01-01T00:00:00Z");

  it("is the period of a regular schedule", () => {
    expect(scheduleIntervalSeconds("0 3 * * 0", undefined, from)).toBe(7 * 24 * 3600);
    expect(scheduleIntervalSeconds("@daily", "UTC", from)).toBe(24 * 3600);
    expect(scheduleIntervalSeconds("*/15 * * * *", undefined, from)).toBe(900);
  });

  it("is the longest gap of an irregular one", () => {
    // Weekdays at 06:00: Friday to Monday.
    expect(scheduleIntervalSeconds("0 6 * * 1-5", undefined, from)).toBe(3 * 24 * 3600);
    // The 31st: months without one are skipped (Mar 31 -> May 31 is among the longest).
    expect(scheduleIntervalSeconds("0 0 31 * *", undefined, from)).toBe(61 * 24 * 3600);
    // Feb 29: four years between runs.
    expect(scheduleIntervalSeconds("0 0 29 2 *", undefined, from)).toBe(
      (Date.parse("2032-02-29T00:00:00Z") - Date.parse("2028-02-29T00:00:00Z")) / 1000,
    );
  });

  it("sees the hour a daylight-saving change adds", () => {
    expect(scheduleIntervalSeconds("0 3 * * 0", "Europe/Berlin", from)).toBe(7 * 24 * 3600 + 3600);
  });

  it("is undefined for an invalid schedule or time zone", () => {
    expect(scheduleIntervalSeconds("61 * * * *", undefined, from)).toBeUndefined();
    expect(scheduleIntervalSeconds("0 3 * * 0", "Mars/Olympus", from)).toBeUndefined();
  });
});
