/**
 * The Argo CD health check shipped with the chart (charts/hub-mirror-operator/argocd/),
 * run over its tests in Argo CD's own layout (health_test.yaml + testdata/) by Lua 5.1 in
 * a sandbox shaped like Argo CD's (test/unit/argocd/sandbox.lua).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { repoRoot } from "../../devkit/binaries.ts";

const DIR = join(repoRoot, "charts/hub-mirror-operator/argocd");
const SCRIPT = join(DIR, "health.lua");
const SANDBOX = join(repoRoot, "test/unit/argocd/sandbox.lua");

interface HealthStatus {
  status: string;
  message: string;
}
interface HealthTests {
  tests: { healthStatus: HealthStatus; inputPath: string }[];
}

const tmp = mkdtempSync(join(tmpdir(), "hubmirror-argocd-"));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs a health script over an object as Argo CD would. */
function health(object: unknown, script = SCRIPT): HealthStatus {
  const input = join(tmp, "object.json");
  writeFileSync(input, JSON.stringify(object));
  const result = spawnSync("lua5.1", [SANDBOX, input, script], { encoding: "utf8" });
  if (result.error) throw new Error(`lua5.1: ${result.error.message} (install lua5.1 and lua-cjson)`);
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as HealthStatus;
}

const cases = (parse(readFileSync(join(DIR, "health_test.yaml"), "utf8")) as HealthTests).tests;

describe("Argo CD health check for MirrorJob", () => {
  it.each(cases.map((c) => [c.inputPath, c] as const))("%s", (inputPath, c) => {
    const object: unknown = parse(readFileSync(join(DIR, inputPath), "utf8"));
    expect(health(object)).toEqual(c.healthStatus);
  });

  it("has a case for every health status it can return", () => {
    expect(new Set(cases.map((c) => c.healthStatus.status))).toEqual(
      new Set(["Healthy", "Progressing", "Degraded", "Suspended"]),
    );
  });

  it("uses only what Argo CD's restricted sandbox offers (Lua 5.1, no string, math, os, io, goto)", () => {
    const code = readFileSync(SCRIPT, "utf8")
      .split("\n")
      .map((line) => line.replace(/--.*$/, ""))
      .join("\n");
    expect(code).not.toMatch(/\b(string|math|os|io|debug|coroutine)\s*\.|\bgoto\b|:\s*\w+\s*\(/);
  });

  it("runs in a sandbox that really lacks those libraries", () => {
    const probe = join(tmp, "probe.lua");
    writeFileSync(probe, 'return { status = "Healthy", message = string.format("%d", 1) }');
    expect(() => health({}, probe)).toThrow(/attempt to index global 'string'/);
    writeFileSync(probe, 'local s = "abc"\nreturn { status = "Healthy", message = s:upper() }');
    expect(() => health({}, probe)).toThrow(/attempt to index/);
  });
});
