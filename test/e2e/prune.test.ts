/**
 * Registry pruning (spec.prune) through the operator, on the real oc-mirror 4.20 and the real
 * registry (Debian docker-registry 2.8 with `storage.delete.enabled: true`): runs mirror the
 * offline upstream, the operator's prune Jobs run oc-mirror's `delete --generate` and
 * `delete --delete-yaml-file`, and the registry is read back with the project's client.
 *
 * 1. A channel's minVersion raised (4.19.1-4.19.3 -> 4.19.2-4.19.3) and applied (apply.mode
 *    Auto): the plan shows the old release's manifests (status, metrics, the Argo CD health
 *    check); Deny and a wrong hash delete nothing; the shown hash deletes exactly the old
 *    release's payload and its own component, not the component 4.19.2 and 4.19.3 share with
 *    it; the current set pulls by digest afterwards.
 * 2. An image dropped from one MirrorJob but mirrored by a second one into the same registry
 *    path is kept, and the status says whose it is.
 * 3. The delete Job's pod killed mid-way (DELETEs slowed by a proxy, the container killed after
 *    the first one): the prune is retried and converges, and a poller that reads the current set
 *    from the registry all along never misses an image.
 * 4. An image set that lists nothing is never pruned to (refused); a typo'd one fails its run
 *    (oc-mirror refuses it) and nothing is pruned.
 * 5. An image dropped from the set while the new mirror sets wait for approval (removing an
 *    IDMS entry drains nodes) is not pruned until they are applied: the cluster may still pull
 *    it through the applied IDMS.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { isPruneObject, LABELS, runNames } from "../../src/job/names.ts";
import { expectedImages } from "../../src/reconcile/runs.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { encodeJsonGzip, readResultConfigMap, RESULT_KEYS } from "../../src/report/result.ts";
import { repoRoot } from "../../devkit/binaries.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";
import { createCertificateAuthority } from "../../devkit/pki.ts";
import { waitFor } from "../../devkit/processes.ts";
import type { OcMirrorPass } from "../../devkit/pod-runner.ts";
import type { ImageSetParts } from "../../devkit/upstream-isc.ts";
import { startFaultServer, type FaultServer } from "../harness/fault-server.ts";
import { adminKubeConfig, useNamespace } from "../harness/kube.ts";
import { scrapeMetrics } from "../harness/metrics.ts";
import {
  condition,
  createRegistryCa,
  createSourceInputs,
  dockerConfigJson,
  mirrorJobs,
  startOperator,
  upstreamImageSet,
  upstreamSource,
  type MirrorJobObject,
  type RunningOperator,
} from "../harness/operator.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const events = kc.makeApiClient(EventsV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const mjs = mirrorJobs(kc);
const registry = inject("registry");
const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});
const podRunner = usePodRunner(ns);
let operator: RunningOperator | undefined;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  await installOpenShiftStandIns(kc);
});
afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-30000));
  await operator?.stop();
  operator = undefined;
  for (const close of closers.splice(0)) await close();
});

const t0 = () => {
  const start = Date.now();
  return () => `${((Date.now() - start) / 1000).toFixed(1)} s`;
};

/** The operator (allowed to apply for the test's namespace) and the MirrorJobs' inputs. */
async function start(push: string = dockerConfigJson(registry.host, registry.username, registry.password)) {
  operator = await startOperator(kc, { applyNamespaces: [ns.name] });
  await core.createNamespacedSecret({
    namespace: ns.name,
    body: {
      metadata: { name: "push" },
      type: "kubernetes.io/dockerconfigjson",
      stringData: { ".dockerconfigjson": push },
    },
  });
  await createRegistryCa(kc, ns.name);
  await createSourceInputs(kc, ns.name);
}

function spec(
  parts: ImageSetParts,
  extra: Record<string, unknown> = {},
  url = `${registry.host}/${ns.name}`,
) {
  return {
    imageSet: { inline: upstreamImageSet(parts) },
    source: upstreamSource(),
    registry: { url, pushSecretRef: { name: "push" }, caBundleRef: { name: "registry-ca" } },
    ...extra,
  };
}

/** Waits for a run that is not one of `earlier` to end, and returns the MirrorJob. */
async function nextRun(
  name: string,
  earlier: readonly string[],
  what: string,
  done: (mj: MirrorJobObject) => boolean = () => true,
): Promise<MirrorJobObject> {
  return wait(
    name,
    what,
    (mj) =>
      mj.status?.currentRun === undefined &&
      mj.status?.lastRun?.id !== undefined &&
      !earlier.includes(mj.status.lastRun.id) &&
      done(mj),
  );
}

async function wait(name: string, what: string, check: (mj: MirrorJobObject) => boolean, timeoutMs = 90_000) {
  return mjs.waitFor(ns.name, name, what, check, timeoutMs).catch(async (err: unknown) => {
    const mj = await mjs.get(ns.name, name);
    throw new Error(`${String(err)}; status: ${JSON.stringify(mj.status)}`);
  });
}

const pruned = (mj: MirrorJobObject) => condition(mj, "Pruned");

function target(): RegistryClient {
  const client = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    timeoutMs: 10_000,
  });
  closers.push(() => client.close());
  return client;
}

/** Every tag of these repositories (under the test's path) with the digest it points at. */
async function tags(client: RegistryClient, repositories: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const repository of repositories) {
    const list = await client.listTags(repository).catch(() => [] as string[]);
    for (const tag of list) {
      const head = await client.headManifest(repository, tag);
      if (head !== undefined) out.set(`${repository}:${tag}`, head.digest);
    }
  }
  return out;
}

/** The run's images in the registry (its dry-run mapping, as the operator reads it). */
async function runImages(name: string, runId: string): Promise<string[]> {
  const cm = await core.readNamespacedConfigMap({ namespace: ns.name, name: runNames(name, runId).result });
  return expectedImages(readResultConfigMap(cm)).map((i) => i.destination);
}

/** Pulls an image by digest: its manifest, the children of an index, config and layers. */
async function pullByDigest(client: RegistryClient, repository: string, digest: string, what: string) {
  const manifest = await client.getManifest(repository, digest);
  expect(manifest?.digest, what).toBe(digest);
  const body = JSON.parse(manifest?.body.toString("utf8") ?? "{}") as {
    manifests?: { digest: string }[];
    config?: { digest: string };
    layers?: { digest: string }[];
  };
  for (const child of body.manifests ?? []) await pullByDigest(client, repository, child.digest, what);
  for (const blob of [body.config, ...(body.layers ?? [])]) {
    if (blob === undefined) continue;
    const data = await client.getBlob(repository, blob.digest);
    expect(data, `${what}: blob ${blob.digest}`).toBeDefined();
  }
}

/** Every image of the run resolves and pulls by digest. Returns how many. */
async function expectPullable(client: RegistryClient, references: readonly string[]): Promise<number> {
  for (const reference of references) {
    const ref = parseReference(reference);
    const head = await client.headManifest(ref.repository, ref.digest ?? ref.tag ?? "");
    expect(head, `${reference} in the registry`).toBeDefined();
    await pullByDigest(client, ref.repository, head?.digest ?? "", reference);
  }
  return references.length;
}

async function eventReasons(name: string): Promise<string[]> {
  const list = await events.listNamespacedEvent({ namespace: ns.name });
  return list.items.filter((e) => e.regarding?.name === name).map((e) => e.reason ?? "");
}

/** The operator's /metrics samples of one prune gauge for this MirrorJob. */
async function metric(name: string, gauge: string, labels: Record<string, string> = {}): Promise<number> {
  const scrape = await scrapeMetrics(operator?.health.port ?? 0);
  return scrape.value(gauge, { namespace: ns.name, name, ...labels });
}

/** The chart's Argo CD health check run over the live object, as Argo CD runs it (Lua 5.1). */
function argoHealth(mj: MirrorJobObject): { status: string; message: string } {
  const input = join(inject("harnessDir"), `argocd-${randomBytes(3).toString("hex")}.json`);
  writeFileSync(input, JSON.stringify(mj));
  const result = spawnSync(
    "lua5.1",
    [
      join(repoRoot, "test/unit/argocd/sandbox.lua"),
      input,
      join(repoRoot, "charts/hub-mirror-operator/argocd/health.lua"),
    ],
    { encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`lua5.1: ${result.stderr}`);
  return JSON.parse(result.stdout) as { status: string; message: string };
}

/** The mirror sources of the ImageDigestMirrorSets the MirrorJob applied to the cluster. */
async function idmsSources(owner: string): Promise<string[]> {
  const list = (await custom.listClusterCustomObject({
    group: "config.openshift.io",
    version: "v1",
    plural: "imagedigestmirrorsets",
    labelSelector: `hubmirror.dev/owner-namespace=${ns.name},hubmirror.dev/owner-name=${owner}`,
  })) as { items: { spec?: { imageDigestMirrors?: { source: string }[] } }[] };
  return list.items.flatMap((i) => (i.spec?.imageDigestMirrors ?? []).map((m) => m.source));
}

async function pruneJobNames(name: string): Promise<string[]> {
  const jobs = await batch.listNamespacedJob({
    namespace: ns.name,
    labelSelector: `${LABELS.mirrorJob}=${name}`,
  });
  return jobs.items.filter(isPruneObject).map((j) => j.metadata?.name ?? "");
}

const RELEASES = (min: string): ImageSetParts => ({
  release: { minVersion: min, graph: true },
  additionalImages: ["tagOnly"],
});

describe("registry pruning (spec.prune)", () => {
  it("after a channel's minVersion is raised, deletes exactly the old release's manifests once the shown hash is approved; a wrong hash deletes nothing; the current set pulls by digest", async () => {
    const total = t0();
    await start();
    const NAME = "ocp";
    const repo = (path: string) => `${ns.name}/${path}`;
    const repositories = [
      "openshift/release-images",
      "openshift/release",
      "openshift/graph-image",
      "demo/busybox",
    ].map(repo);
    let step = t0();
    await mjs.create(
      ns.name,
      NAME,
      spec(RELEASES("4.19.1"), { apply: { mode: "Auto", disruptive: "Allow" }, prune: { enabled: true } }),
    );
    const a = await nextRun(
      NAME,
      [],
      "the first run applied, the baseline recorded",
      (mj) => pruned(mj)?.reason === "BaselineRecorded",
    );
    expect(a.status?.lastRun?.result).toBe("Succeeded");
    expect(a.status?.prune?.baselineRun).toBe(a.status?.lastRun?.id);
    console.log(`run A (4.19.1-4.19.3) applied, baseline recorded: ${step()}`);
    const client = target();
    const before = await tags(client, repositories);
    expect([...before.keys()].filter((k) => k.includes("4.19.1"))).toHaveLength(3);

    // Raise minVersion: run B, applied, then the prune's plan.
    step = t0();
    await mjs.patchSpec(ns.name, NAME, { imageSet: { inline: upstreamImageSet(RELEASES("4.19.2")) } });
    const runA = a.status?.lastRun?.id ?? "";
    const b = await nextRun(
      NAME,
      [runA],
      "run B and the prune plan",
      (mj) => mj.status?.pendingPrune !== undefined,
    );
    const runB = b.status?.lastRun?.id ?? "";
    const pending = b.status?.pendingPrune;
    console.log(`run B (4.19.2-4.19.3) applied, prune planned: ${step()}`);
    expect(b.status?.appliedRun).toBe(runB);
    expect(pruned(b)).toMatchObject({ status: "False", reason: "AwaitingPruneApproval" });
    expect(pruned(b)?.message).toContain(`set spec.prune.approvedPlan to ${pending?.hash ?? ""}`);
    const oldPayload = before.get(repo("openshift/release-images:4.19.1-x86_64")) ?? "";
    const oldCli = before.get(repo("openshift/release:4.19.1-x86_64-cli")) ?? "";
    const sharedPod = before.get(repo("openshift/release:4.19.1-x86_64-pod")) ?? "";
    expect(before.get(repo("openshift/release:4.19.2-x86_64-pod"))).toBe(sharedPod);
    expect(pending).toMatchObject({
      fromRun: runA,
      toRun: runB,
      manifests: 2,
      repositories: 2,
      keptShared: 0,
      absent: 0,
      sample: [
        `${registry.host}/${repo("openshift/release-images:4.19.1-x86_64")}`,
        `${registry.host}/${repo("openshift/release:4.19.1-x86_64-cli")}`,
      ],
    });
    expect(pending?.kept).toContainEqual({
      reference: `${registry.host}/${repo("openshift/release:4.19.1-x86_64-pod")}`,
      reason: "InCurrentSet",
    });
    expect(await pruneJobNames(NAME)).toHaveLength(1); // the generate step only
    expect(await metric(NAME, "hubmirror_prune_awaiting_approval")).toBe(1);
    expect(argoHealth(b)).toEqual({
      status: "Suspended",
      message: `Waiting for approval of a registry prune: ${pending?.summary ?? ""}; approve with spec.prune.approvedPlan: ${pending?.hash ?? ""}`,
    });

    // Deny: the plan stays shown, nothing is deleted.
    step = t0();
    await mjs.patchSpec(ns.name, NAME, { prune: { approval: "Deny" } });
    const denied = await wait(NAME, "the plan denied", (mj) => pruned(mj)?.reason === "PruneDenied");
    expect(pruned(denied)?.message).toContain(`plan ${pending?.hash ?? ""} is never carried out`);
    expect(denied.status?.pendingPrune?.hash).toBe(pending?.hash);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await tags(client, repositories)).toEqual(before);
    expect(await pruneJobNames(NAME)).toHaveLength(1);
    expect(await metric(NAME, "hubmirror_prune_awaiting_approval")).toBe(0);
    console.log(`Deny: nothing deleted: ${step()}`);

    // A wrong hash deletes nothing.
    step = t0();
    await mjs.patchSpec(ns.name, NAME, {
      prune: { approval: "RequireApproval", approvedPlan: "0123456789abcdef" },
    });
    await wait(
      NAME,
      "the wrong hash refused",
      (mj) => pruned(mj)?.message.includes("0123456789abcdef is not this plan's hash") === true,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await tags(client, repositories)).toEqual(before);
    expect((await mjs.get(ns.name, NAME)).status?.pendingPrune?.hash).toBe(pending?.hash);
    expect(await pruneJobNames(NAME)).toHaveLength(1);
    console.log(`wrong hash: nothing deleted: ${step()}`);

    // The shown hash.
    step = t0();
    await mjs.patchSpec(ns.name, NAME, { prune: { approvedPlan: pending?.hash } });
    const done = await wait(NAME, "the prune done", (mj) => pruned(mj)?.reason === "PruneSucceeded");
    console.log(`approved: pruned: ${step()}`);
    expect(done.status?.pendingPrune).toBeUndefined();
    expect(done.status?.prune?.baselineRun).toBe(runB);
    expect(done.status?.prune?.last).toMatchObject({
      fromRun: runA,
      toRun: runB,
      hash: pending?.hash,
      result: "Succeeded",
      deleted: 2,
      manifests: 2,
      failedAttempts: 0,
    });
    expect(condition(done, "Ready")?.status).toBe("True");
    const after = await tags(client, repositories);
    // Exactly the tags of the two manifests are gone; the shared pod's 4.19.1 tag stays with it.
    const removed = [...before.keys()].filter((k) => !after.has(k)).sort();
    expect(removed).toEqual([
      repo("openshift/release-images:4.19.1-x86_64"),
      repo("openshift/release:4.19.1-x86_64-cli"),
    ]);
    for (const [k, digest] of after) expect(before.get(k), k).toBe(digest);
    expect(await client.headManifest(repo("openshift/release-images"), oldPayload)).toBeUndefined();
    expect(await client.headManifest(repo("openshift/release"), oldCli)).toBeUndefined();
    expect(await client.headManifest(repo("openshift/release"), sharedPod)).toBeDefined();
    const current = await runImages(NAME, runB);
    expect(current.some((r) => r.endsWith("release-images:4.19.2-x86_64"))).toBe(true);
    expect(await expectPullable(client, current)).toBe(current.length);
    expect(await eventReasons(NAME)).toEqual(
      expect.arrayContaining([
        "PruneStarted",
        "PrunePlanned",
        "PruneApprovalRequired",
        "PruneDenied",
        "PruneDeleting",
        "Pruned",
      ]),
    );
    expect(await metric(NAME, "hubmirror_prune_awaiting_approval")).toBe(0);
    expect(await metric(NAME, "hubmirror_prune_failed")).toBe(0);
    expect(await metric(NAME, "hubmirror_prune_last_manifests", { state: "deleted" })).toBe(2);
    expect(await metric(NAME, "hubmirror_prune_last_manifests", { state: "kept_in_use" })).toBe(
      done.status?.prune?.last?.keptInUse,
    );
    expect(argoHealth(await mjs.get(ns.name, NAME)).status).toBe("Healthy");
    console.log(`test 1 total: ${total()}`);
  });

  it("keeps an image that a second MirrorJob on the same registry mirrors, and says why", async () => {
    const total = t0();
    await start();
    const toolbox = `${registry.host}/${ns.name}/demo/toolbox:1.0`;
    await mjs.create(
      ns.name,
      "tools",
      spec({ additionalImages: ["multiArch"] }, { apply: { mode: "None" } }),
    );
    await mjs.create(
      ns.name,
      "apps",
      spec(
        { additionalImages: ["multiArch", "digestPinned", "tagOnly"] },
        {
          apply: { mode: "None" },
          prune: { enabled: true, approval: "Auto" },
        },
      ),
    );
    await nextRun(
      "tools",
      [],
      "the second MirrorJob's run",
      (mj) => mj.status?.lastSuccessfulRun !== undefined,
    );
    const first = await nextRun(
      "apps",
      [],
      "the baseline",
      (mj) => pruned(mj)?.reason === "BaselineRecorded",
    );
    const client = target();
    const pause = await client.headManifest(
      `${ns.name}/demo/pause`,
      `sha256-${upstreamDigest("digestPinned").slice(7)}`,
    );
    expect(pause).toBeDefined();

    // Drop the toolbox and the pause image from "apps".
    await mjs.patchSpec(ns.name, "apps", {
      imageSet: { inline: upstreamImageSet({ additionalImages: ["tagOnly"] }) },
    });
    const done = await nextRun(
      "apps",
      [first.status?.lastRun?.id ?? ""],
      "the prune done",
      (mj) => pruned(mj)?.reason === "PruneSucceeded",
    );
    expect(done.status?.prune?.last).toMatchObject({
      result: "Succeeded",
      deleted: 1,
      manifests: 1,
      keptShared: 1,
    });
    expect(done.status?.prune?.last?.kept).toContainEqual({
      reference: toolbox,
      reason: "SharedWithMirrorJob",
      mirrorJob: `${ns.name}/tools`,
    });
    expect(pruned(done)?.message).toContain(`shared with MirrorJob ${ns.name}/tools`);
    expect(await metric("apps", "hubmirror_prune_last_manifests", { state: "kept_shared" })).toBe(1);
    expect(await metric("apps", "hubmirror_prune_last_manifests", { state: "deleted" })).toBe(1);
    // The pause image is gone; the toolbox (an index and its two platform manifests) still pulls.
    expect(await client.headManifest(`${ns.name}/demo/pause`, pause?.digest ?? "")).toBeUndefined();
    const tools = await mjs.get(ns.name, "tools");
    expect(
      await expectPullable(client, await runImages("tools", tools.status?.lastSuccessfulRun?.id ?? "")),
    ).toBe(1);
    expect(await expectPullable(client, await runImages("apps", done.status?.lastRun?.id ?? ""))).toBe(1);
    console.log(`test 2 total: ${total()}`);
  });

  it("retries a prune whose pod is killed mid-way until it converges; the current set is never missing meanwhile", async () => {
    const total = t0();
    // A proxy in front of the registry that holds every manifest DELETE for a while, so that the
    // delete step is still running when its container is killed.
    const dir = join(inject("harnessDir"), `prune-${randomBytes(3).toString("hex")}`);
    mkdirSync(dir, { recursive: true });
    const ca = createCertificateAuthority(dir, "prune-proxy-ca");
    const proxy: FaultServer = await startFaultServer({
      dir,
      name: "prune-proxy",
      ca,
      upstream: { host: registry.host, caPem: registry.caPem },
    });
    closers.push(() => proxy.stop());
    // Pushes through the proxy follow the registry's upload Location to the registry itself:
    // the push Secret and the CA bundle serve both.
    await start(
      JSON.stringify({
        auths: Object.fromEntries(
          [registry.host, proxy.host].map((h) => [
            h,
            { auth: Buffer.from(`${registry.username}:${registry.password}`).toString("base64") },
          ]),
        ),
      }),
    );
    await core.patchNamespacedConfigMap(
      {
        namespace: ns.name,
        name: "registry-ca",
        body: { data: { "ca-bundle.crt": `${registry.caPem}\n${ca.pem}` } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const NAME = "killed";
    const url = `${proxy.host}/${ns.name}`;
    await mjs.create(
      ns.name,
      NAME,
      spec(
        RELEASES("4.19.1"),
        {
          apply: { mode: "None" },
          mirror: { parallelImages: 1 },
          prune: { enabled: true, approval: "Auto" },
        },
        url,
      ),
    );
    const a = await nextRun(NAME, [], "the baseline", (mj) => pruned(mj)?.reason === "BaselineRecorded");

    // Kill the delete step's container once the registry has answered its first DELETE.
    let killed = 0;
    podRunner.behaviours.set(NAME, {
      beforeOcMirror: (pass: OcMirrorPass) => {
        const input = pass.volumes.get("input") ?? "";
        const isDelete = existsSync(join(input, "delete-images.yaml"));
        if (!isDelete || killed > 0) return;
        killed++;
        void (async () => {
          await waitFor(
            "the first DELETE answered",
            () => (proxy.log.some((r) => r.method === "DELETE" && r.status === 202) ? true : undefined),
            { timeoutMs: 60_000, intervalMs: 20 },
          );
          pass.kill("container");
        })();
      },
    });
    proxy.inject({ method: "DELETE", action: { delayMs: 1_500 } });

    // Read the current set from the registry itself (not through the proxy) all along.
    const client = target();
    const current = (await runImagesAfterRaise()).map((r) => r.replace(proxy.host, registry.host));
    let polls = 0;
    const missing: string[] = [];
    const polling = { on: true };
    const poller = (async () => {
      while (polling.on) {
        for (const reference of current) {
          const ref = parseReference(reference);
          const head = await client.headManifest(ref.repository, ref.tag ?? ref.digest ?? "");
          if (head === undefined) missing.push(`${reference} at poll ${String(polls)}`);
        }
        polls++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let done: MirrorJobObject;
    try {
      done = await wait(
        NAME,
        "the prune converged",
        (mj) => pruned(mj)?.reason === "PruneSucceeded",
        150_000,
      );
    } finally {
      polling.on = false;
      await poller;
    }
    console.log(
      `prune interrupted and converged after ${String(polls)} polls of ${String(current.length)} images: ${total()}`,
    );
    expect(killed).toBe(1);
    expect(missing).toEqual([]);
    expect(polls).toBeGreaterThan(10);
    expect(done.status?.prune?.last).toMatchObject({
      result: "Succeeded",
      deleted: 4,
      manifests: 4,
      failedAttempts: 1,
    });
    expect(await eventReasons(NAME)).toEqual(expect.arrayContaining(["PruneAttemptFailed", "Pruned"]));
    expect(await metric(NAME, "hubmirror_prune_failed_attempts")).toBe(1);
    expect(await metric(NAME, "hubmirror_prune_failed")).toBe(0);
    // Two delete Jobs: the killed one, with the plan's four manifests, and its retry, with only
    // what the registry still held after the kill (so the kill came mid-way).
    const jobs = await pruneJobNames(NAME);
    expect(jobs).toHaveLength(3);
    const lists: number[] = [];
    for (const job of jobs) {
      const input = await core.readNamespacedConfigMap({ namespace: ns.name, name: `${job}-input` });
      const list = input.data?.["delete-images.yaml"];
      if (list !== undefined) lists.push(list.split("imageReference:").length - 1);
    }
    lists.sort().reverse();
    expect(lists[0]).toBe(4);
    expect(lists[1]).toBeGreaterThan(0);
    expect(lists[1]).toBeLessThan(4);
    console.log(`delete lists: first attempt ${String(lists[0])} manifests, the retry ${String(lists[1])}`);
    expect(await expectPullable(client, current)).toBe(current.length);
    for (const version of ["4.19.1", "4.19.2"]) {
      const payload = await client.headManifest(`${ns.name}/openshift/release-images`, `${version}-x86_64`);
      expect(payload, version).toBeUndefined();
    }

    async function runImagesAfterRaise(): Promise<string[]> {
      await mjs.patchSpec(ns.name, NAME, { imageSet: { inline: upstreamImageSet(RELEASES("4.19.3")) } });
      const b = await nextRun(NAME, [a.status?.lastRun?.id ?? ""], "run B");
      return runImages(NAME, b.status?.lastRun?.id ?? "");
    }
  });

  it("refuses to prune to an image set that lists nothing; a typo'd image set fails its run and prunes nothing", async () => {
    await start();
    const NAME = "typo";
    await mjs.create(
      ns.name,
      NAME,
      spec(
        { additionalImages: ["tagOnly", "digestPinned"] },
        { apply: { mode: "None" }, prune: { enabled: true, approval: "Auto" } },
      ),
    );
    const a = await nextRun(NAME, [], "the baseline", (mj) => pruned(mj)?.reason === "BaselineRecorded");
    const client = target();
    const repositories = [`${ns.name}/demo/busybox`, `${ns.name}/demo/pause`];
    const before = await tags(client, repositories);
    expect(before.size).toBe(2);

    // A typo: oc-mirror cannot collect the image, the run fails, nothing is pruned.
    const typo = upstreamImageSet({ additionalImages: ["missing"] });
    await mjs.patchSpec(ns.name, NAME, { imageSet: { inline: typo } });
    const failed = await nextRun(NAME, [a.status?.lastRun?.id ?? ""], "the typo'd run");
    expect(failed.status?.lastRun?.result).toMatch(/Failed|PartiallyFailed/);
    expect(failed.status?.prune?.baselineRun).toBe(a.status?.lastRun?.id);
    expect(await pruneJobNames(NAME)).toEqual([]);

    // A run that succeeded with an empty image list (its result says it mirrored nothing).
    podRunner.behaviours.set(NAME, {
      beforeExit: async (pod) => {
        const name = `${pod.metadata?.labels?.["job-name"] ?? ""}-result`;
        const cm: V1ConfigMap = await core.readNamespacedConfigMap({ namespace: ns.name, name });
        cm.binaryData = { ...cm.binaryData, [RESULT_KEYS.mapping]: encodeJsonGzip([]) };
        await core.replaceNamespacedConfigMap({ namespace: ns.name, name, body: cm });
      },
    });
    await mjs.patchSpec(ns.name, NAME, {
      imageSet: { inline: upstreamImageSet({ additionalImages: ["tagOnly"] }) },
    });
    const refused = await nextRun(
      NAME,
      [a.status?.lastRun?.id ?? "", failed.status?.lastRun?.id ?? ""],
      "the prune refused",
      (mj) => pruned(mj)?.reason === "PruneRefused",
    );
    expect(refused.status?.lastSuccessfulRun?.result).toBe("Succeeded");
    expect(pruned(refused)?.message).toMatch(
      /lists no image in .*: a prune to it would delete everything this MirrorJob mirrored .*refused, nothing is deleted/,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await tags(client, repositories)).toEqual(before);
    expect(await pruneJobNames(NAME)).toEqual([]);
    expect(await eventReasons(NAME)).toContain("PruneRefused");
    expect(await metric(NAME, "hubmirror_prune_failed")).toBe(1);
    expect(argoHealth(refused)).toEqual({
      status: "Degraded",
      message: `Registry prune: PruneRefused: ${pruned(refused)?.message ?? ""}`,
    });
  });

  it("does not prune an image the applied IDMS still maps until the new mirror sets are applied", async () => {
    const total = t0();
    await start();
    const NAME = "gated";
    await mjs.create(
      ns.name,
      NAME,
      spec(
        { additionalImages: ["tagOnly", "digestPinned"] },
        {
          apply: { mode: "Auto", disruptive: "Allow" },
          prune: { enabled: true, approval: "Auto" },
        },
      ),
    );
    const a = await nextRun(NAME, [], "the baseline", (mj) => pruned(mj)?.reason === "BaselineRecorded");
    expect(a.status?.appliedRun).toBe(a.status?.lastRun?.id);
    const client = target();
    const pauseTag = `sha256-${upstreamDigest("digestPinned").slice(7)}`;
    const pause = await client.headManifest(`${ns.name}/demo/pause`, pauseTag);
    expect(pause).toBeDefined();
    // oc-mirror maps the pause image's repository by its namespace (<upstream>/demo): the only
    // digest-pinned image, so the only IDMS entry.
    const applied = await idmsSources(NAME);
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatch(/\/demo$/);

    // Drop the pause image; removing its IDMS entry drains nodes, and now needs approval.
    await mjs.patchSpec(ns.name, NAME, {
      imageSet: { inline: upstreamImageSet({ additionalImages: ["tagOnly"] }) },
      apply: { mode: "Auto", disruptive: "RequireApproval" },
    });
    const waiting = await nextRun(
      NAME,
      [a.status?.lastRun?.id ?? ""],
      "run B verified, its mirror sets waiting for approval",
      (mj) =>
        condition(mj, "Applied")?.reason === "AwaitingApproval" && pruned(mj)?.reason === "WaitingForApply",
    );
    const runB = waiting.status?.lastRun?.id ?? "";
    expect(waiting.status?.appliedRun).toBe(a.status?.lastRun?.id);
    expect(waiting.status?.pendingChange?.disruptive).toBe(true);
    expect(pruned(waiting)?.message).toContain(
      "the cluster may still pull run " +
        (a.status?.lastRun?.id ?? "") +
        "'s images through the applied ImageDigestMirrorSets",
    );
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await client.headManifest(`${ns.name}/demo/pause`, pause?.digest ?? "")).toBeDefined();
    expect(await pruneJobNames(NAME)).toEqual([]);
    expect(pruned(await mjs.get(ns.name, NAME))?.reason).toBe("WaitingForApply");
    expect(await idmsSources(NAME)).toEqual(applied);
    console.log(`prune held while the IDMS change waits: ${total()}`);

    // Approve the change: applied, then pruned.
    await mjs.patchSpec(ns.name, NAME, {
      apply: {
        mode: "Auto",
        disruptive: "RequireApproval",
        approvedChange: waiting.status?.pendingChange?.hash,
      },
    });
    const done = await wait(NAME, "applied, then pruned", (mj) => pruned(mj)?.reason === "PruneSucceeded");
    expect(done.status?.appliedRun).toBe(runB);
    expect(await idmsSources(NAME)).toEqual([]);
    expect(done.status?.prune?.last).toMatchObject({
      fromRun: a.status?.lastRun?.id,
      toRun: runB,
      deleted: 1,
    });
    expect(await client.headManifest(`${ns.name}/demo/pause`, pause?.digest ?? "")).toBeUndefined();
    expect(await expectPullable(client, await runImages(NAME, runB))).toBe(1);
    console.log(`test 5 total: ${total()}`);
  });
});

function upstreamDigest(name: "digestPinned" | "tagOnly" | "multiArch"): string {
  return inject("upstream").content.images[name].digest;
}
