/**
 * Applied is not done: after an apply the operator follows how the cluster takes the change
 * up. Its own control plane (the MachineConfigPools are cluster-wide: other test files must not
 * see them), the OpenShift stand-ins including MachineConfigPool, and the test playing the
 * Machine Config Operator: when the mirror sets change it renders (a short pause), sets the
 * worker pool Updating, then Updated (or Degraded). The MirrorJobs run the real oc-mirror
 * through the pod runner; a tag-pinned image gives an ImageTagMirrorSet, whose creation drains
 * nodes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../devkit/control-plane.ts";
import { installCrds } from "../../devkit/crds.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";
import { startPodRunner, type PodRunner } from "../../devkit/pod-runner.ts";
import { waitFor } from "../../devkit/processes.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  upstreamImageSet,
  upstreamSource,
  type MirrorJobObject,
  type RunningOperator,
} from "../harness/operator.ts";

const registry = inject("registry");
const NAMESPACE = "mirrors";
const MCP = { group: "machineconfiguration.openshift.io", version: "v1", plural: "machineconfigpools" };
const POOLS = ["master", "worker"] as const;
const ITMS = { group: "config.openshift.io", version: "v1", plural: "imagetagmirrorsets" };
let dir: string;
let cluster: ControlPlane;
let kc: KubeConfig;
let runner: PodRunner;
let operator: RunningOperator | undefined;
let custom: CustomObjectsApi;
/** The MCO players of the running test, stopped after it (also when it failed). */
const players: { stop: () => Promise<void> }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hubmirror-harness-rollout-"));
  cluster = await startControlPlane(join(dir, "cluster"));
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigFile);
  custom = kc.makeApiClient(CustomObjectsApi);
  await installCrds(kc);
  await installOpenShiftStandIns(kc);
  await kc.makeApiClient(CoreV1Api).createNamespace({
    body: { metadata: { name: NAMESPACE, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
  });
  await createPushSecret(kc, NAMESPACE);
  await createRegistryCa(kc, NAMESPACE);
  await createSourceInputs(kc, NAMESPACE);
  runner = startPodRunner({ kc, root: join(dir, "pods"), namespaces: () => [NAMESPACE] });
}, 180_000);

afterAll(async () => {
  await runner.stop();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  for (const player of players.splice(0)) await player.stop();
  // Each test starts from a clean slate: no MirrorJob, no mirror set, pools Updated. The
  // operator is still running here, so it removes what it applied and then its finalizer.
  const mjs = mirrorJobs(kc);
  for (const name of ["first", "second", "catalog"]) await mjs.delete(NAMESPACE, name).catch(() => undefined);
  try {
    await waitFor(
      "the MirrorJobs to be gone",
      async () => {
        const list = (await custom.listNamespacedCustomObject({
          group: "hubmirror.dev",
          version: "v1alpha1",
          namespace: NAMESPACE,
          plural: "mirrorjobs",
        })) as { items: unknown[] };
        return list.items.length === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  } finally {
    await operator?.stop();
    operator = undefined;
  }
});

interface PoolStatus {
  readonly state: "Updated" | "Updating" | "Degraded";
  readonly updated?: number;
}

async function setPool(name: string, status: PoolStatus): Promise<void> {
  const at = new Date().toISOString();
  const condition = (type: string, on: boolean, message = "") => ({
    type,
    status: on ? "True" : "False",
    lastTransitionTime: at,
    reason: "",
    message,
  });
  await custom.patchClusterCustomObjectStatus(
    {
      ...MCP,
      name,
      body: {
        status: {
          machineCount: 3,
          updatedMachineCount: status.updated ?? (status.state === "Updated" ? 3 : 0),
          degradedMachineCount: status.state === "Degraded" ? 1 : 0,
          conditions: [
            condition("Updated", status.state === "Updated"),
            condition("Updating", status.state === "Updating"),
            condition(
              "Degraded",
              status.state === "Degraded",
              status.state === "Degraded" ? "Node worker-1 is reporting: failed to drain" : "",
            ),
          ],
        },
      },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

beforeEach(async () => {
  for (const name of POOLS) {
    await custom
      .createClusterCustomObject({
        ...MCP,
        body: { apiVersion: `${MCP.group}/${MCP.version}`, kind: "MachineConfigPool", metadata: { name } },
      })
      .catch(() => undefined);
    await setPool(name, { state: "Updated" });
  }
  for (const itms of (
    (await custom.listClusterCustomObject(ITMS)) as { items: { metadata: { name: string } }[] }
  ).items)
    await custom.deleteClusterCustomObject({ ...ITMS, name: itms.metadata.name });
});

/** One update of the worker pool, as the MCO would make it: which mirror sets it rolled out. */
interface PoolUpdate {
  readonly startedAt: number;
  endedAt?: number;
  readonly mirrorSets: readonly string[];
}

/**
 * Plays the Machine Config Operator: a change of the mirror sets is rendered (`renderMs`),
 * then the worker pool updates for `updateMs` and ends Updated, or Degraded when `degrade`.
 * Changes that arrive while it updates are rolled out by another update afterwards.
 */
function playMco(options: { renderMs: number; updateMs: number; degrade?: boolean }) {
  const updates: PoolUpdate[] = [];
  let seen = "";
  const control = { stopped: false };
  const mirrorSets = async () =>
    (
      (await custom.listClusterCustomObject(ITMS)) as {
        items: { metadata: { name: string; resourceVersion: string } }[];
      }
    ).items;
  const fingerprint = (items: { metadata: { name: string; resourceVersion: string } }[]) =>
    items
      .map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`)
      .sort()
      .join(",");
  const loop = (async () => {
    for (let i = 0; !control.stopped && i < 2_000; i++) {
      const items = await mirrorSets();
      if (fingerprint(items) !== seen && items.length > 0) {
        await sleep(options.renderMs);
        const rendered = await mirrorSets();
        seen = fingerprint(rendered);
        const update: PoolUpdate = {
          startedAt: Date.now(),
          mirrorSets: rendered.map((o) => o.metadata.name).sort(),
        };
        updates.push(update);
        // Every pool renders registries.conf anew; the worker pool is the one that may degrade.
        for (const pool of POOLS) await setPool(pool, { state: "Updating", updated: 1 });
        await sleep(options.updateMs);
        await setPool("master", { state: "Updated" });
        await setPool("worker", { state: options.degrade === true ? "Degraded" : "Updated" });
        update.endedAt = Date.now();
      }
      await sleep(100);
    }
  })();
  const player = {
    updates,
    stop: async () => {
      control.stopped = true;
      await loop;
    },
  };
  players.push(player);
  return player;
}

function spec(registryPath: string, extra: Record<string, unknown> = {}) {
  return {
    imageSet: { inline: upstreamImageSet({ additionalImages: ["tagOnly"] }) },
    source: upstreamSource(),
    registry: {
      url: `${registry.host}/${registryPath}`,
      pushSecretRef: { name: "push" },
      caBundleRef: { name: "registry-ca" },
    },
    // The operator looks at the pools every tenth of the deadline: every 6 s here.
    apply: { disruptive: "Allow", rolloutDeadline: "1m" },
    ...extra,
  };
}

const rolledOut = (mj: MirrorJobObject) => condition(mj, "RolledOut");

describe("following the rollout", () => {
  it("shows the pools updating while a change that drains nodes rolls out, then RolledOut=True and Ready", async () => {
    const mco = playMco({ renderMs: 500, updateMs: 15_000 });
    operator = await startOperator(kc, { applyNamespaces: [NAMESPACE] });
    const mjs = mirrorJobs(kc);
    await mjs.create(NAMESPACE, "first", spec("rollout-first"));
    const rolling = await mjs.waitFor(
      NAMESPACE,
      "first",
      "the pool updating",
      (m) => m.status?.rollout?.pools?.some((p) => p.name === "worker" && p.state === "Updating") === true,
      90_000,
    );
    expect(rolling.status?.phase).toBe("RollingOut");
    expect(rolledOut(rolling)).toMatchObject({ status: "False", reason: "RollingOut" });
    expect(rolledOut(rolling)?.message).toMatch(
      /MachineConfigPool worker is updating \(1\/3 machines updated\)/,
    );
    expect(condition(rolling, "Ready")).toMatchObject({ status: "False", reason: "RollingOut" });
    expect(rolling.status?.rollout).toMatchObject({ state: "RollingOut", drains: true, mirrorSets: true });
    const done = await mjs.waitFor(
      NAMESPACE,
      "first",
      "RolledOut=True",
      (m) => rolledOut(m)?.status === "True",
      60_000,
    );
    expect(condition(done, "Ready")?.status).toBe("True");
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.rollout?.completionTime).toBeDefined();
    expect(done.status?.rollout?.pools?.find((p) => p.name === "worker")).toMatchObject({
      state: "Updated",
      updatedMachineCount: 3,
    });
    await mco.stop();
    expect(mco.updates).toHaveLength(1);
  }, 150_000);

  it("reports a degraded pool by name (RolledOut=False, Degraded) and exports it for the alert", async () => {
    const mco = playMco({ renderMs: 300, updateMs: 1_000, degrade: true });
    operator = await startOperator(kc, { applyNamespaces: [NAMESPACE] });
    const mjs = mirrorJobs(kc);
    await mjs.create(NAMESPACE, "first", spec("rollout-degraded"));
    const degraded = await mjs.waitFor(
      NAMESPACE,
      "first",
      "RolledOut=False (Degraded)",
      (m) => rolledOut(m)?.reason === "Degraded",
      90_000,
    );
    expect(rolledOut(degraded)?.status).toBe("False");
    expect(rolledOut(degraded)?.message).toMatch(
      /MachineConfigPool worker is degraded \(1 of 3 machines\): Node worker-1 is reporting: failed to drain/,
    );
    expect(condition(degraded, "Ready")).toMatchObject({ status: "False", reason: "Degraded" });
    const metrics = await (await fetch(`http://127.0.0.1:${String(operator.health.port)}/metrics`)).text();
    expect(metrics).toMatch(/hubmirror_rollout_state\{namespace="mirrors",name="first",state="Degraded"\} 1/);
    await mco.stop();
  }, 150_000);
});

describe("one rollout at a time", () => {
  it("holds a second MirrorJob's change that drains nodes while the first rolls out, then applies it", async () => {
    const mco = playMco({ renderMs: 300, updateMs: 25_000 });
    operator = await startOperator(kc, { applyNamespaces: [NAMESPACE] });
    const mjs = mirrorJobs(kc);
    await mjs.create(NAMESPACE, "first", spec("one-at-a-time-1"));
    await mjs.waitFor(
      NAMESPACE,
      "first",
      "the pool updating",
      (m) => m.status?.rollout?.pools?.some((p) => p.state === "Updating") === true,
      90_000,
    );
    await mjs.create(NAMESPACE, "second", spec("one-at-a-time-2"));
    const held = await mjs.waitFor(
      NAMESPACE,
      "second",
      "held",
      (m) => m.status?.rollout?.state === "Waiting",
      90_000,
    );
    expect(condition(held, "Applied")?.reason).toMatch(/^(WaitingForPools|WaitingForRollout)$/);
    expect(condition(held, "Applied")?.message).toMatch(/drains nodes|drain/);
    for (const name of ["first", "second"])
      await mjs.waitFor(NAMESPACE, name, "RolledOut=True", (m) => rolledOut(m)?.status === "True", 90_000);
    await mco.stop();
    // Two updates: the second MirrorJob's mirror set came after the first update had ended.
    expect(mco.updates).toHaveLength(2);
    const [first, second] = mco.updates;
    expect(first?.mirrorSets).toHaveLength(1);
    expect(second?.mirrorSets).toHaveLength(2);
    expect(second?.startedAt).toBeGreaterThanOrEqual(first?.endedAt ?? Infinity);
  }, 200_000);

  it("applies changes that drain nodes and are due together in one batch: the pool updates once", async () => {
    const mco = playMco({ renderMs: 1_000, updateMs: 3_000 });
    operator = await startOperator(kc, { applyNamespaces: [NAMESPACE], drainBatchSeconds: 60 });
    const mjs = mirrorJobs(kc);
    await mjs.create(NAMESPACE, "first", spec("batch-1"));
    await mjs.create(NAMESPACE, "second", spec("batch-2"));
    const waiting = await mjs.waitFor(
      NAMESPACE,
      "second",
      "batching",
      (m) => condition(m, "Applied")?.reason === "BatchingDrainChanges",
      90_000,
    );
    expect(condition(waiting, "Applied")?.message).toMatch(/applied together \(nodes drain once\)/);
    for (const name of ["first", "second"])
      await mjs.waitFor(NAMESPACE, name, "RolledOut=True", (m) => rolledOut(m)?.status === "True", 120_000);
    await mco.stop();
    expect(mco.updates).toHaveLength(1);
    expect(mco.updates[0]?.mirrorSets).toHaveLength(2);
  }, 200_000);
});

describe("catalogs", () => {
  it("reports a CatalogSource stuck in TRANSIENT_FAILURE past the deadline, with its name and state", async () => {
    operator = await startOperator(kc, { applyNamespaces: [NAMESPACE] });
    const mjs = mirrorJobs(kc);
    await mjs.create(NAMESPACE, "catalog", {
      ...spec("rollout-catalog"),
      imageSet: { inline: upstreamImageSet({ operators: true }) },
      apply: {
        disruptive: "Allow",
        rolloutDeadline: "20s",
        kinds: ["CatalogSource", "ImageDigestMirrorSet"],
      },
    });
    const applied = await mjs.waitFor(
      NAMESPACE,
      "catalog",
      "the CatalogSource applied",
      (m) => m.status?.appliedResources?.some((r) => r.kind === "CatalogSource") === true,
      120_000,
    );
    const cs = applied.status?.appliedResources?.find((r) => r.kind === "CatalogSource");
    // The catalog pod cannot serve (a stale opm cache, say): OLM reports TRANSIENT_FAILURE.
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: "operators.coreos.com",
        version: "v1alpha1",
        plural: "catalogsources",
        namespace: cs?.namespace ?? "",
        name: cs?.name ?? "",
        body: { status: { connectionState: { lastObservedState: "TRANSIENT_FAILURE", address: "x:50051" } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const rolling = await mjs.waitFor(
      NAMESPACE,
      "catalog",
      "the CatalogSource's state in RolledOut",
      (m) =>
        rolledOut(m)?.reason === "RollingOut" && rolledOut(m)?.message.includes("TRANSIENT_FAILURE") === true,
      30_000,
    );
    expect(rolledOut(rolling)?.message).toContain(
      `CatalogSource ${cs?.namespace ?? ""}/${cs?.name ?? ""} is TRANSIENT_FAILURE`,
    );
    const stuck = await mjs.waitFor(
      NAMESPACE,
      "catalog",
      "RolledOut=False (Stuck)",
      (m) => rolledOut(m)?.reason === "Stuck",
      60_000,
    );
    expect(rolledOut(stuck)?.message).toMatch(
      new RegExp(
        `not rolled out after .*CatalogSource ${cs?.namespace ?? ""}/${cs?.name ?? ""} is TRANSIENT_FAILURE`,
      ),
    );
    expect(stuck.status?.rollout?.catalogSources).toEqual([
      { namespace: cs?.namespace, name: cs?.name, state: "TRANSIENT_FAILURE" },
    ]);
    expect(condition(stuck, "Ready")).toMatchObject({ status: "False", reason: "Stuck" });
  }, 200_000);
});
