/**
 * Cleanup of the local stack (stack.ts) that survives the stack's own process. The stack's
 * harness processes run under `setpriv --pdeathsig KILL`; the pod runner's processes (not
 * started that way) are killed by `stop()` and, should the stack's process be killed
 * outright, by a small reaper process (`node devkit/stack-reaper.ts <dir>`) that notices its
 * pipe from the stack closing, kills them and removes the stack's folder.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The pod runner's folders of `oc-mirror` shims (one per line): every process of a Job's pod
 * has one of them first in its PATH.
 */
const shimDirOf = (dir: string) => join(dir, "pods", "bin");

/** Pids of processes whose environment has `PATH=<shimDir>/<line>:` (the pods' processes). */
function podProcesses(dir: string): number[] {
  const marker = `PATH=${shimDirOf(dir)}/`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1");
      if (environ.startsWith(marker) || environ.includes(`\0${marker}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Kills the processes of the pods the stack in `dir` runs; how many there were. */
export function killPodProcesses(dir: string): number {
  let killed = 0;
  for (const pid of podProcesses(dir)) {
    try {
      process.kill(pid, "SIGKILL");
      killed++;
    } catch {
      // already gone
    }
  }
  return killed;
}

/** Waits for the stack's pipe to close, then kills its pods' processes and removes `dir`. */
async function reaper(dir: string): Promise<void> {
  process.on("SIGINT", () => undefined);
  process.stdin.resume();
  await new Promise<void>((done) => {
    process.stdin.once("close", done);
    process.stdin.once("end", done);
  });
  for (let round = 0; round < 5 && killPodProcesses(dir) > 0; round++) await sleep(100);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

/** Starts the reaper of the stack in `dir`; it acts when this process is gone. */
export function startReaper(dir: string): void {
  const child = spawn(process.execPath, [import.meta.filename, dir], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  // The pipe's write end stays open for as long as this process lives (without keeping it alive).
  (child.stdin as Socket | null)?.unref();
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write("usage: node devkit/stack-reaper.ts <dir of the stack>\n");
    process.exit(2);
  }
  await reaper(dir);
}
