/**
 * The real node's reaper (see node-sandbox.ts): `node node-reaper.ts <dir> <name>`, started
 * detached with a pipe from the test runner. The runner writes `{"initPid":N}` once the node's
 * namespaces exist and `{"done":true}` after its own teardown. When the pipe closes without
 * `done` (the runner died, even by SIGKILL), the reaper kills the node's PID namespace (its
 * init), waits for it to end, removes the kubelet's cgroups (`/<name>` in every hierarchy)
 * and the node's folder, and exits.
 */
import { readFileSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface ReaperMessage {
  readonly initPid?: number;
  readonly done?: boolean;
}

const CGROUP_FS = "/sys/fs/cgroup";

function subfolders(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(path, e.name));
  } catch {
    return [];
  }
}

/** Removes one cgroup tree, deepest first; returns the folders still there. */
function removeTree(path: string): string[] {
  const left = subfolders(path).flatMap(removeTree);
  try {
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") left.push(path);
  }
  return left;
}

/**
 * Removes the cgroup `/<name>` (and everything below it) from every hierarchy. A cgroup can
 * only go once its processes have ended: retries until `timeoutMs`.
 */
export async function removeCgroups(name: string, timeoutMs: number): Promise<void> {
  if (!/^hubmirror-node-[0-9a-f]+$/.test(name)) throw new Error(`refusing to remove cgroups named ${name}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = subfolders(CGROUP_FS).flatMap((h) => removeTree(join(h, name)));
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`cgroups still in use: ${left.join(", ")}`);
    await sleep(100);
  }
}

function isCatatonit(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "catatonit";
  } catch {
    return false;
  }
}

async function reap(dir: string, name: string): Promise<void> {
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => undefined);
  const state: { initPid?: number; done: boolean } = { done: false };
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        const message = JSON.parse(line) as ReaperMessage;
        if (message.initPid !== undefined) state.initPid = message.initPid;
        if (message.done === true) state.done = true;
      } catch {
        // ignore a malformed line
      }
    }
  });
  await new Promise<void>((resolve) => {
    process.stdin.once("close", resolve);
    process.stdin.once("end", resolve);
  });
  if (state.done) process.exit(0);
  const initPid = state.initPid;
  if (initPid !== undefined && isCatatonit(initPid)) {
    try {
      process.kill(initPid, "SIGKILL");
    } catch {
      // gone
    }
    for (let i = 0; i < 300 && isCatatonit(initPid); i++) await sleep(100);
  }
  await removeCgroups(name, 30_000).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

if (import.meta.main) {
  const dir = process.argv[2] ?? "";
  const name = process.argv[3] ?? "";
  if (dir === "" || name === "") {
    process.stderr.write("usage: node-reaper.ts <dir> <name>\n");
    process.exit(2);
  }
  await reap(dir, name);
}
