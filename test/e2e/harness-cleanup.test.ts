/**
 * The harness leaves no process behind: not when a test fails, and not when the test
 * runner itself is killed. Each case runs a nested vitest with the real global setup
 * in its own TMPDIR, then looks for any process whose command line names that folder.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { repoRoot } from "../../devkit/binaries.ts";
import { waitFor } from "../../devkit/processes.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function processesUnder(dir: string): string[] {
  try {
    return execFileSync("pgrep", ["-af", dir], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function nestedRun(fixture: string, tmp: string) {
  const child = spawn(
    join(repoRoot, "node_modules/.bin/vitest"),
    ["run", "--config", "test/harness/self-test/vitest.config.ts"],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        TMPDIR: tmp,
        HUBMIRROR_SELF_TEST: fixture,
        HUBMIRROR_SELF_TEST_MARKER: join(tmp, "marker"),
      },
      stdio: "ignore",
    },
  );
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", resolve);
  });
  return { child, exited };
}

describe("harness cleanup", () => {
  it("stops every process and removes its files when a test fails", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "hubmirror-selftest-"));
    dirs.push(tmp);
    const run = nestedRun("fails.fixture.ts", tmp);
    expect(await run.exited).toBe(1);
    expect(processesUnder(tmp)).toEqual([]);
    expect(execFileSync("ls", ["-A", tmp], { encoding: "utf8" }).trim()).toBe("");
  });

  it("leaves no process behind when the runner is killed with SIGKILL", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "hubmirror-selftest-"));
    dirs.push(tmp);
    const run = nestedRun("hangs.fixture.ts", tmp);
    const marker = join(tmp, "marker");
    await waitFor(
      "the nested run to start its control plane",
      () => (existsSync(marker) ? true : undefined),
      {
        timeoutMs: 90_000,
        intervalMs: 200,
      },
    );
    const harnessDir = readFileSync(marker, "utf8");
    // The nested run inherits the cluster mode: etcd, kube-apiserver, kube-controller-manager and
    // the registry locally; only the registry against an external cluster (HUBMIRROR_E2E_KUBECONFIG).
    const expected = inject("clusterMode") === "local" ? 4 : 1;
    expect(processesUnder(harnessDir).length).toBeGreaterThanOrEqual(expected);
    run.child.kill("SIGKILL");
    await run.exited;
    await waitFor(
      "the kernel to end the orphaned harness processes",
      () => (processesUnder(harnessDir).length === 0 ? true : undefined),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
  });
});
