/**
 * The real node leaves nothing behind when the test runner is killed with SIGKILL: a nested
 * vitest starts a node (test/harness/self-test/node-hangs.fixture.ts) with a running pod and
 * is then killed. The kernel ends the node's PID namespace (containerd, its shims, the
 * containers, the kubelet) and the reaper removes the kubelet's cgroups and the folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { repoRoot } from "../../devkit/binaries.ts";
import { waitFor } from "../../devkit/processes.ts";

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  // A failed assertion must not leave the nested run (and its node) behind.
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Marker {
  dir: string;
  name: string;
  initPid: number;
  pids: number[];
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

function processesNaming(text: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(text);
      } catch {
        return false;
      }
    });
}

function cgroupsNamed(name: string): string[] {
  return readdirSync("/sys/fs/cgroup")
    .map((h) => join("/sys/fs/cgroup", h, name))
    .filter((p) => existsSync(p));
}

describe("real node cleanup", () => {
  it("leaves no process, cgroup or folder behind when the runner is killed with SIGKILL", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "hubmirror-selftest-node-"));
    dirs.push(tmp);
    const markerFile = join(tmp, "marker");
    const child = spawn(
      join(repoRoot, "node_modules/.bin/vitest"),
      ["run", "--config", "test/harness/self-test/vitest.config.ts"],
      {
        cwd: repoRoot,
        // Its own TMPDIR: the nested global setup's folder (a SIGKILL leaves it) goes with it.
        env: {
          ...process.env,
          TMPDIR: tmp,
          HUBMIRROR_SELF_TEST: "node-hangs.fixture.ts",
          HUBMIRROR_SELF_TEST_MARKER: markerFile,
        },
        stdio: "ignore",
      },
    );
    children.push(child);
    const exited = new Promise<number | null>((resolve) => {
      child.once("exit", resolve);
    });
    const marker = await waitFor(
      "the nested run to start its node and pod",
      () => (existsSync(markerFile) ? (JSON.parse(readFileSync(markerFile, "utf8")) as Marker) : undefined),
      { timeoutMs: 180_000, intervalMs: 250 },
    );
    // init, forwarder, registry, containerd, kubelet, kube-proxy, the shim, two pause processes
    expect(marker.pids.length).toBeGreaterThanOrEqual(9);
    expect(cgroupsNamed(marker.name).length).toBeGreaterThan(0);
    expect(processesNaming(marker.dir).length).toBeGreaterThan(0);

    child.kill("SIGKILL");
    await exited;
    await waitFor(
      "the node's processes to end",
      () => (marker.pids.some(alive) || processesNaming(marker.dir).length > 0 ? undefined : true),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    await waitFor(
      "the reaper to remove the cgroups and the folder",
      () => (cgroupsNamed(marker.name).length === 0 && !existsSync(marker.dir) ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }, 300_000);
});
