/**
 * A 50-object smoke run of the scale benchmark (bench/scale.ts, issue 16) with the operator's
 * default run limits (10 runs at once, 5 per registry, 1 per target): all 50 MirrorJobs push
 * into one target, so they take turns: most of them wait in phase Queued, and every one must still end Succeeded with exactly one
 * Job. It also checks what the benchmark measures that is not a timing: no request beyond
 * watches and Lease renewals while idle, no watch re-opened while idle, and a restart that
 * creates no Job. (Times are printed by the benchmark, never asserted.)
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { repoRoot } from "../../devkit/binaries.ts";

const dir = mkdtempSync(join(tmpdir(), "hubmirror-scale-smoke-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Result {
  readonly n: number;
  readonly jobsPerMirrorJob: { readonly min: number; readonly max: number };
  readonly queuedSeen: number;
  readonly idle: {
    readonly nonWatchNonLeasePerMinute: number;
    readonly watchesOpened: Record<string, number>;
  };
  readonly restart: { readonly jobsCreated: number; readonly reconciles: number };
}

it("50 MirrorJobs on one registry with the default limits: queued, then all Succeeded, one Job each", () => {
  const json = join(dir, "scale.json");
  const run = spawnSync(
    process.execPath,
    [
      "bench/scale.ts",
      "--sizes",
      "50",
      "--default-limits",
      "--entry",
      "src",
      "--idle-seconds",
      "20",
      "--timeout-minutes",
      "8",
      "--json",
      json,
    ],
    { cwd: repoRoot, encoding: "utf8", timeout: 600_000 },
  );
  // The benchmark fails when a MirrorJob ends Failed or does not reach Succeeded with Ready=True.
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  const [result] = (JSON.parse(readFileSync(json, "utf8")) as { results: Result[] }).results;
  expect(result?.n).toBe(50);
  expect(result?.jobsPerMirrorJob).toEqual({ min: 1, max: 1 });
  // One run at a time into the target: most of the 50 had to wait, visibly (a few may find a
  // slot that an ended run freed before they were first reconciled).
  expect(result?.queuedSeen).toBeGreaterThanOrEqual(25);
  expect(result?.idle.nonWatchNonLeasePerMinute).toBe(0);
  expect(result?.idle.watchesOpened).toEqual({});
  expect(result?.restart.jobsCreated).toBe(0);
  expect(result?.restart.reconciles).toBeGreaterThanOrEqual(50);
}, 660_000);
