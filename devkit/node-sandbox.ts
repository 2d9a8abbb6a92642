/**
 * The confinement of the real node (node.ts): one set of Linux namespaces that every node
 * process joins, made by a holder process
 * `setpriv --pdeathsig KILL -- unshare --net --pid --fork --kill-child=SIGKILL --mount
 * --propagation private --mount-proc -- catatonit -P`:
 *
 * - a **network namespace** with only `lo` and a bridge on a private subnet: containerd,
 *   the kubelet, kube-proxy, the pods and the node's registry live there, and it has no route
 *   to anywhere else. It is anonymous (`unshare --net`, not `ip netns add`): nothing names it
 *   in /run/netns, so it ends with its last process, also when the test runner is SIGKILLed.
 * - a **PID namespace** whose init is `catatonit -P` (it reaps orphans, such as containerd's
 *   shims): when it dies, the kernel kills every process of the namespace, shims and
 *   containers included. `--kill-child` kills it when `unshare` dies, and `unshare` dies with
 *   the test runner (pdeathsig), so nothing of the node outlives the runner.
 * - a private **mount namespace** (with its own /proc): the kubelet's and containerd's mounts
 *   (overlay root filesystems, Secret tmpfs, pod network namespaces) never reach the host,
 *   and host paths the node writes are covered by folders of the sandbox: `/run` (containerd's
 *   shim sockets and runc state, the iptables lock), `/var/lib` (the kubelet's hard-coded
 *   device-plugins folder, CNI state), `/var/log` (`/var/log/containers`). The kubelet's kernel
 *   tunables (`vm.overcommit_memory`, `kernel.panic`, `kernel.panic_on_oops`, ...) are
 *   global, not per namespace: files holding the values it wants are bind-mounted over them in
 *   this /proc, so it finds them set and writes nothing.
 *
 * Cgroups are not namespaced: the kubelet gets its own cgroup root `/<name>` in every
 * hierarchy, removed on teardown. A reaper process (node-reaper.ts), detached from the test
 * runner, notices the runner's end and kills the holder, removes those cgroups and the
 * sandbox's folder, also after a SIGKILL.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "./binaries.ts";
import { startProcess, waitFor, type ManagedProcess, type StartOptions } from "./processes.ts";
import { removeCgroups, type ReaperMessage } from "./node-reaper.ts";

export interface NodeSandbox {
  /** `hubmirror-node-<id>`: also the name of the kubelet's cgroup root. */
  readonly name: string;
  readonly dir: string;
  /** Host PID of the PID namespace's init: `nsenter --target <pid>` enters the node. */
  readonly initPid: number;
  /** The kubelet's `cgroupRoot`. */
  readonly cgroupRoot: string;
  /** Starts a long-running process inside the node's namespaces (pdeathsig too). */
  start(options: StartOptions): ManagedProcess;
  /** Runs a command inside the node's namespaces to completion; returns its stdout. */
  run(command: string, args: readonly string[], options?: { input?: string; timeoutMs?: number }): string;
  /** Kills every process of the node and removes its cgroups (the caller removes `dir`). */
  stop(): Promise<void>;
}

export interface SandboxOptions {
  /** What the reaper removes if the test runner dies (default: `dir`). */
  readonly cleanupDir?: string;
  /** The bridge inside the namespace, with the node's address on it, e.g. `10.244.0.1/24`. */
  readonly bridge: { readonly name: string; readonly address: string };
}

/** Kernel tunables the kubelet sets when they differ (pkg/kubelet/cm setupKernelTunables). */
const KUBELET_TUNABLES: Readonly<Record<string, string>> = {
  "vm/overcommit_memory": "1",
  "vm/panic_on_oom": "0",
  "kernel/panic": "10",
  "kernel/panic_on_oops": "1",
  "kernel/keys/root_maxkeys": "1000000",
  "kernel/keys/root_maxbytes": "25000000",
};

/** Host paths covered by folders of the sandbox inside its mount namespace. */
const COVERED = ["/run", "/var/lib", "/var/log"];

const CGROUP_FS = "/sys/fs/cgroup";

/** The children of a process (host PIDs). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** The cgroup v1/v2 hierarchies mounted under /sys/fs/cgroup (folders, not symlinks). */
export function cgroupHierarchies(): string[] {
  return readdirSync(CGROUP_FS, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(CGROUP_FS, e.name));
}

function startReaper(dir: string, name: string): Writable {
  const child = spawn(process.execPath, [join(repoRoot, "devkit/node-reaper.ts"), dir, name], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  const stdin = child.stdin;
  // The pipe stays open as long as this process lives, without keeping it alive.
  (stdin as unknown as { unref?: () => void }).unref?.();
  return stdin;
}

function tell(reaper: Writable, message: ReaperMessage): void {
  reaper.write(`${JSON.stringify(message)}\n`);
}

export async function createNodeSandbox(dir: string, options: SandboxOptions): Promise<NodeSandbox> {
  const name = `hubmirror-node-${randomBytes(4).toString("hex")}`;
  mkdirSync(dir, { recursive: true });
  const reaper = startReaper(options.cleanupDir ?? dir, name);
  const holder = startProcess({
    name: "node-namespaces",
    command: "unshare",
    args: [
      "--net",
      "--pid",
      "--fork",
      "--kill-child=SIGKILL",
      "--mount",
      "--propagation",
      "private",
      "--mount-proc",
      "--",
      "catatonit",
      "-P",
    ],
    logFile: join(dir, "namespaces.log"),
  });
  const initPid = await waitFor("the node's PID namespace init", () => childPids(holder.pid)[0], {
    timeoutMs: 10_000,
    intervalMs: 20,
    process: holder,
  });
  tell(reaper, { initPid });

  const enter = ["--target", String(initPid), "--net", "--mount", "--pid", "--"];
  const run = (
    command: string,
    args: readonly string[],
    runOptions: { input?: string; timeoutMs?: number } = {},
  ) =>
    execFileSync("nsenter", [...enter, command, ...args], {
      encoding: "utf8",
      input: runOptions.input,
      timeout: runOptions.timeoutMs ?? 30_000,
      stdio: ["pipe", "pipe", "pipe"],
    });

  const cgroupRoot = `/${name}`;
  const stop = async () => {
    try {
      process.kill(holder.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await waitFor("the node's processes to end", () => (alive(initPid) ? undefined : true), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    await holder.exited;
    await removeCgroups(name, 10_000);
    tell(reaper, { done: true });
    reaper.end();
  };

  try {
    // Mounts of the node's mount namespace.
    const ns = join(dir, "ns");
    for (const path of COVERED) {
      const source = join(ns, path.replaceAll("/", "_"));
      mkdirSync(source, { recursive: true });
      run("mount", ["--bind", source, path]);
    }
    const sysctlDir = join(ns, "sysctl");
    mkdirSync(sysctlDir, { recursive: true });
    for (const [key, value] of Object.entries(KUBELET_TUNABLES)) {
      const file = join(sysctlDir, key.replaceAll("/", "_"));
      writeFileSync(file, `${value}\n`);
      run("mount", ["--bind", file, `/proc/sys/${key}`]);
    }

    // The network: loopback and the bridge with the node's address.
    const { name: bridge, address } = options.bridge;
    run("ip", ["link", "set", "lo", "up"]);
    run("ip", ["link", "add", bridge, "type", "bridge"]);
    run("ip", ["addr", "add", address, "dev", bridge]);
    run("ip", ["link", "set", bridge, "up"]);

    // The kubelet's cgroup root in every hierarchy (cpuset needs its cpus and mems set).
    for (const hierarchy of cgroupHierarchies()) {
      const path = join(hierarchy, name);
      mkdirSync(path);
      if (existsSync(join(hierarchy, "cpuset.cpus"))) {
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          writeFileSync(join(path, f), readFileSync(join(hierarchy, f), "utf8"));
        }
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    name,
    dir,
    initPid,
    cgroupRoot,
    run,
    start(startOptions: StartOptions): ManagedProcess {
      const proc = startProcess({
        ...startOptions,
        command: "nsenter",
        args: [...enter, startOptions.command, ...startOptions.args],
      });
      // nsenter forks into the PID namespace and does not pass signals on: stop the child itself.
      return {
        ...proc,
        hasExited: () => proc.hasExited(),
        async stop(graceMs = 5_000) {
          for (const child of childPids(proc.pid)) {
            try {
              process.kill(child, "SIGTERM");
            } catch {
              // gone
            }
          }
          const outcome = await Promise.race([proc.exited, sleep(graceMs, "timeout")]);
          if (outcome === "timeout") {
            for (const child of childPids(proc.pid)) {
              try {
                process.kill(child, "SIGKILL");
              } catch {
                // gone
              }
            }
          }
          await proc.stop(1_000);
        },
      };
    },
    stop,
  };
}
