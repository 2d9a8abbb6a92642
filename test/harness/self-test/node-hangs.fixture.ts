// A nested test run used by test/e2e/real-node-cleanup.test.ts: starts a real node with a
// running pod, writes what it started to the marker file, then hangs until it is killed.
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { it } from "vitest";
import { startControlPlane } from "../../../devkit/control-plane.ts";
import { PAUSE_IMAGE } from "../../../devkit/node-images.ts";
import { nodeControlPlaneOptions, startNode } from "../../../devkit/node.ts";
import { waitFor } from "../../../devkit/processes.ts";

/**
 * Host PIDs of every process of the node: those in the PID namespace of `initPid` (started
 * there through nsenter, so not its descendants) and their descendants (the containers, in
 * nested PID namespaces).
 */
function nodeProcesses(initPid: number): number[] {
  const ns = readlinkSync(`/proc/${initPid}/ns/pid`);
  const parents = new Map<number, number>();
  const members = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      if (readlinkSync(`/proc/${entry}/ns/pid`) === ns) members.add(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  const inNode = (p: number): boolean => {
    for (
      let cur: number | undefined = p, hops = 0;
      cur !== undefined && hops < 64;
      cur = parents.get(cur), hops++
    ) {
      if (members.has(cur)) return true;
    }
    return false;
  };
  return [...parents.keys()].filter(inNode);
}

it("starts a node with a running pod, then hangs until the runner is killed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hubmirror-node-"));
  const cp = await startControlPlane(join(dir, "cluster"), nodeControlPlaneOptions(join(dir, "cluster")));
  const node = await startNode(cp, { dir: join(dir, "node"), cleanupDir: dir });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigFile);
  const core = kc.makeApiClient(CoreV1Api);
  const image = await node.pushImage(PAUSE_IMAGE);
  await core.createNamespacedPod({
    namespace: "default",
    body: { metadata: { name: "sleeper" }, spec: { containers: [{ name: "pause", image }] } },
  });
  await waitFor(
    "the pod to run",
    async () =>
      (await core.readNamespacedPod({ name: "sleeper", namespace: "default" })).status?.phase === "Running"
        ? true
        : undefined,
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  writeFileSync(
    process.env.HUBMIRROR_SELF_TEST_MARKER ?? "/dev/null",
    JSON.stringify({
      dir,
      name: node.sandbox.name,
      initPid: node.sandbox.initPid,
      pids: nodeProcesses(node.sandbox.initPid),
    }),
  );
  await sleep(110_000);
});
