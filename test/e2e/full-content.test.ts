/**
 * The acceptance on the real oc-mirror, through the operator's Job, on both lines:
 * one MirrorJob with a release channel range and `graph: true`, one operator package and three
 * additional images, `apply.mode: Auto` (default `disruptive: RequireApproval`), in a namespace
 * the operator lets change the cluster, on a control plane with the OpenShift stand-ins and
 * `openshift-config/pull-secret`.
 *
 * 1. The first run: the target registry holds every image of the dry run's mapping with the
 *    digest of its source (checked here with the project's registry client, image by image,
 *    down to the blobs and the children of an index); the status counts are oc-mirror's own
 *    Results lines (read from the reporter's log); its ImageTagMirrorSets drain nodes, so the
 *    operator waits for approval, and the approved change puts on the cluster exactly the
 *    objects oc-mirror wrote into `cluster-resources/`, renamed per MirrorJob.
 * 2. The same MirrorJob run again: oc-mirror copies every image again, and the operator writes
 *    nothing (resourceVersions of the applied objects and of the pull secret unchanged) and
 *    says so.
 * 3. The channel range shrinks (minVersion raised): on real output the mirror sets do not
 *    change (oc-mirror writes one entry per source repository, and every release of a stream
 *    lives in the same two), only the release-signature ConfigMap loses the dropped release's
 *    signature. That drains no node, so it is applied at once, and the change names the
 *    signature it removes.
 * 4. The image set shrinks further (the additional images dropped): their IDMS and ITMS go, which
 *    drains nodes: AwaitingApproval, status.pendingChange names what would be removed, nothing
 *    changes on the cluster until the hash is approved, then exactly that change is applied.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, EventsV1Api, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { appliedName, ANNOTATIONS } from "../../src/apply/desired.ts";
import { KINDS, OWNER_LABELS, PULL_SECRET, type KindInfo } from "../../src/apply/kinds.ts";
import { LABELS, MANAGER, mirrorJobNames } from "../../src/job/names.ts";
import type { OcMirrorLine } from "../../src/ocmirror/lines.ts";
import { noChangeMessage } from "../../src/reconcile/stages/apply.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { adminKubeConfig, useNamespace } from "../harness/kube.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  upstream,
  upstreamImageSet,
  upstreamSource,
  type MirrorJobObject,
  type RunningOperator,
} from "../harness/operator.ts";
import { waitFor } from "../../devkit/processes.ts";
import type { ImageSetParts } from "../../devkit/upstream-isc.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const events = kc.makeApiClient(EventsV1Api);
const objects = KubernetesObjectApi.makeApiClient(kc);
const mjs = mirrorJobs(kc);
const registry = inject("registry");
const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});
const podRunner = usePodRunner(ns);
let operator: RunningOperator | undefined;

beforeAll(async () => {
  await installOpenShiftStandIns(kc);
});
afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  await operator?.stop();
  operator = undefined;
});

const NAME = "full";
const FULL: ImageSetParts = { release: { graph: true }, operators: true, additionalImages: true };
const SHRUNK: ImageSetParts = { ...FULL, release: { minVersion: "4.19.2", graph: true } };

// ---------------------------------------------------------------------------------------------
// What oc-mirror itself said and wrote, read from the pod runner's logs and the workspace.

type Category = "release" | "operator" | "additional" | "helm";
type Counts = Partial<Record<Category, { copied: number; failed: number; total: number }>>;

/** The reporter's log of a run's pod (the reporter echoes oc-mirror's output). */
function reporterLog(jobName: string): string {
  const dir = join(podRunner.root(), "logs");
  const files = readdirSync(dir).filter(
    (f) => f.startsWith(`${ns.name}_${jobName}-`) && f.endsWith(".reporter.log"),
  );
  expect(files, `the reporter log of ${jobName}`).toHaveLength(1);
  return readFileSync(join(dir, files[0] ?? ""), "utf8");
}

/** oc-mirror's `=== Results ===` lines (the last block), as counts per category. */
function resultsLines(log: string): Counts {
  // eslint-disable-next-line no-control-regex
  const lines = log.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
  const start = lines.findLastIndex((l) => l.endsWith("=== Results ==="));
  expect(start, "a Results block in the reporter's log").toBeGreaterThanOrEqual(0);
  const counts: Counts = {};
  for (const line of lines.slice(start + 1)) {
    const m = / [✓✗] +(\d+) \/ (\d+) (release|operator|additional|helm) images mirrored/u.exec(line);
    if (m === null) break;
    const copied = Number(m[1]);
    const total = Number(m[2]);
    counts[m[3] as Category] = { copied, failed: total - copied, total };
  }
  return counts;
}

function workspace(): string {
  return join(podRunner.root(), "pvc", ns.name, mirrorJobNames(NAME).workspace);
}

interface Generated {
  readonly info: KindInfo;
  readonly name: string;
  readonly object: Record<string, unknown>;
}

/** The objects in `working-dir/cluster-resources/` (the signature ConfigMap once: JSON and YAML agree). */
function generatedObjects(): Generated[] {
  const dir = join(workspace(), "working-dir", "cluster-resources");
  const docs: Record<string, unknown>[] = [];
  for (const file of readdirSync(dir).sort()) {
    const text = readFileSync(join(dir, file), "utf8");
    if (file.endsWith(".json")) docs.push(JSON.parse(text) as Record<string, unknown>);
    else
      for (const doc of parseAllDocuments(text)) {
        const value = doc.toJS() as Record<string, unknown> | null;
        if (value !== null) docs.push(value);
      }
  }
  const byKey = new Map<string, Generated>();
  for (const object of docs) {
    const info = KINDS.find((k) => k.kind === object.kind && k.apiVersion === object.apiVersion);
    if (info === undefined) throw new Error(`oc-mirror wrote an unexpected ${String(object.kind)}`);
    const metadata = object.metadata as { name: string; namespace?: string };
    if (metadata.namespace !== undefined) expect(metadata.namespace).toBe(info.namespace);
    const key = `${info.kind}/${metadata.name}`;
    const seen = byKey.get(key);
    if (seen !== undefined)
      expect(normalize(seen.object), `${key} twice, the same`).toEqual(normalize(object));
    byKey.set(key, { info, name: metadata.name, object });
  }
  return [...byKey.values()];
}

/**
 * What is applied of an object: its spec with mirror entries by source, or a ConfigMap's
 * signatures by release digest (the `-<n>` of a key is a counter that oc-mirror hands out in a
 * different order each run, and that the cluster version operator ignores).
 */
function normalize(object: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (object.spec !== undefined) {
    const spec = structuredClone(object.spec) as Record<string, unknown>;
    for (const list of ["imageDigestMirrors", "imageTagMirrors"]) {
      const entries = spec[list] as { source: string }[] | undefined;
      entries?.sort((a, b) => a.source.localeCompare(b.source));
    }
    out.spec = spec;
  }
  for (const field of ["data", "binaryData"]) {
    const entries = object[field] as Record<string, string> | undefined;
    if (entries === undefined) continue;
    const byDigest: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(entries)) {
      const digest = /^(sha256-[a-f0-9]{64})-\d+$/.exec(k)?.[1];
      expect(digest, `${field} key ${k}`).toBeDefined();
      (byDigest[digest ?? ""] ??= []).push(v);
    }
    for (const values of Object.values(byDigest)) values.sort();
    out[field] = byDigest;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The cluster.

interface Live {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly object: KubernetesObject & Record<string, unknown>;
}

const key = (kind: string, namespace: string | undefined, name: string) =>
  `${kind} ${namespace ?? ""}/${name}`;

/** Every object on the cluster that carries this MirrorJob's owner labels. */
async function owned(): Promise<Map<string, Live>> {
  const selector = `${OWNER_LABELS.namespace}=${ns.name},${OWNER_LABELS.name}=${NAME}`;
  const found = new Map<string, Live>();
  for (const info of KINDS) {
    const list = await objects.list(
      info.apiVersion,
      info.kind,
      info.namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      selector,
    );
    for (const item of list.items) {
      const name = item.metadata?.name ?? "";
      found.set(key(info.kind, info.namespace, name), {
        kind: info.kind,
        name,
        ...(info.namespace !== undefined && { namespace: info.namespace }),
        object: item as KubernetesObject & Record<string, unknown>,
      });
    }
  }
  return found;
}

function resourceVersions(live: Map<string, Live>): Record<string, string> {
  return Object.fromEntries([...live].map(([k, l]) => [k, l.object.metadata?.resourceVersion ?? ""]));
}

async function pullSecret(): Promise<{ auths: Record<string, unknown>; resourceVersion: string }> {
  const secret = await core.readNamespacedSecret(PULL_SECRET);
  const text = Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8");
  return {
    auths: (JSON.parse(text) as { auths: Record<string, unknown> }).auths,
    resourceVersion: secret.metadata?.resourceVersion ?? "",
  };
}

/**
 * The cluster holds exactly what oc-mirror generated: the same set of objects, each under the
 * operator's per-MirrorJob name and namespace, with the same content. With `metadataOf` (the
 * run that applied them), also oc-mirror's labels and annotations plus the owner's.
 */
function expectExactly(live: Map<string, Live>, generated: Generated[], metadataOf?: string): void {
  const owner = { namespace: ns.name, name: NAME };
  const expected = new Map(
    generated.map((g) => [key(g.info.kind, g.info.namespace, appliedName(owner, g.name, g.info.maxName)), g]),
  );
  expect([...live.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [k, g] of expected) {
    const l = live.get(k);
    expect(l?.name).toMatch(new RegExp(`^${NAME}-${g.name.replace(/\./g, "-")}-[a-f0-9]{8}$`));
    expect(normalize(l?.object ?? {}), k).toEqual(normalize(g.object));
    if (metadataOf === undefined) continue;
    const meta = g.object.metadata as {
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    expect(l?.object.metadata?.labels, k).toEqual({
      ...meta.labels,
      [LABELS.managedBy]: MANAGER,
      [OWNER_LABELS.namespace]: ns.name,
      [OWNER_LABELS.name]: NAME,
    });
    expect(l?.object.metadata?.annotations, k).toEqual({
      ...meta.annotations,
      [ANNOTATIONS.sourceName]: g.name,
      [ANNOTATIONS.run]: metadataOf,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The registries.

interface MappingLine {
  readonly source: string;
  readonly destination: string;
}

function mappingLines(): MappingLine[] {
  const text = readFileSync(join(workspace(), "working-dir", "dry-run", "mapping.txt"), "utf8");
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [source = "", destination = ""] = l.split("=");
      return { source, destination };
    });
}

/** The digest the source of a mapping line has: named, looked up in the source, or in the OCI layout or cache. */
async function sourceDigest(source: string, upstreamClient: RegistryClient): Promise<string> {
  if (source.startsWith("oci://")) {
    const index = JSON.parse(readFileSync(join(source.slice("oci://".length), "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    expect(index.manifests).toHaveLength(1);
    return index.manifests[0]?.digest ?? "";
  }
  const ref = parseReference(source.replace(/^docker:\/\//, ""));
  if (ref.digest !== undefined) return ref.digest;
  if (ref.registry.startsWith("localhost:")) {
    // oc-mirror's cache registry (the rebuilt catalog): its storage on the cache volume says.
    const link = join(
      podRunner.root(),
      "pvc",
      ns.name,
      mirrorJobNames(NAME).cache,
      ".oc-mirror/.cache/docker/registry/v2/repositories",
      ref.repository,
      "_manifests/tags",
      ref.tag ?? "",
      "current/link",
    );
    return readFileSync(link, "utf8").trim();
  }
  expect(ref.registry).toBe(upstreamClient.registry);
  const head = await upstreamClient.headManifest(ref.repository, ref.tag ?? "");
  expect(head, `${source} in the source`).toBeDefined();
  return head?.digest ?? "";
}

/** The image is in the target by digest: its manifest, and what that names (children, config, layers). */
async function expectImage(target: RegistryClient, repository: string, digest: string, what: string) {
  const manifest = await target.getManifest(repository, digest);
  expect(manifest?.digest, what).toBe(digest);
  const body = JSON.parse(manifest?.body.toString("utf8") ?? "{}") as {
    manifests?: { digest: string }[];
    config?: { digest: string };
    layers?: { digest: string }[];
  };
  for (const child of body.manifests ?? []) await expectImage(target, repository, child.digest, what);
  for (const blob of [body.config, ...(body.layers ?? [])]) {
    if (blob !== undefined)
      expect(await target.blobExists(repository, blob.digest), `${what}: ${blob.digest}`).toBe(true);
  }
}

/** Every destination of the mapping in the target registry has its source's digest. Returns how many. */
async function expectMappingInTarget(): Promise<number> {
  const up = upstream();
  const upstreamClient = new RegistryClient({
    registry: up.source.host,
    credentials: { username: up.source.username, password: up.source.password },
    caBundle: up.source.caPem,
    timeoutMs: 10_000,
  });
  const target = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    timeoutMs: 10_000,
  });
  try {
    let checked = 0;
    for (const line of mappingLines()) {
      const destination = parseReference(line.destination.replace(/^docker:\/\//, ""));
      // The catalog's copy into oc-mirror's own cache registry is not a target image.
      if (destination.registry !== registry.host) {
        expect(destination.registry).toMatch(/^localhost:\d+$/);
        continue;
      }
      expect(destination.repository.startsWith(`${ns.name}/`)).toBe(true);
      const digest = await sourceDigest(line.source, upstreamClient);
      expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      const head = await target.headManifest(
        destination.repository,
        destination.tag ?? destination.digest ?? "",
      );
      expect(head?.digest, line.destination).toBe(digest);
      await expectImage(target, destination.repository, digest, line.destination);
      checked++;
    }
    return checked;
  } finally {
    await upstreamClient.close();
    await target.close();
  }
}

// ---------------------------------------------------------------------------------------------

async function appliedEvents(note: string) {
  const list = await events.listNamespacedEvent({ namespace: ns.name });
  return list.items.filter((e) => e.regarding?.name === NAME && e.reason === "Applied" && e.note === note);
}

/** Waits for a run that is not one of `earlier` to finish and returns the MirrorJob. */
async function nextRun(earlier: readonly string[], what: string, done: (mj: MirrorJobObject) => boolean) {
  return mjs
    .waitFor(
      ns.name,
      NAME,
      what,
      (mj) =>
        mj.status?.currentRun === undefined &&
        mj.status?.lastRun?.id !== undefined &&
        !earlier.includes(mj.status.lastRun.id) &&
        done(mj),
      90_000,
    )
    .catch(async (err: unknown) => {
      // What it is doing instead, for the failure message.
      const mj = await mjs.get(ns.name, NAME);
      throw new Error(`${String(err)}; status: ${JSON.stringify(mj.status)}`);
    });
}

/** The run's status counts are oc-mirror's Results lines, and it succeeded and was verified. */
function expectRun(mj: MirrorJobObject, counts: Counts): void {
  const run = mj.status?.lastRun;
  expect(run?.result).toBe("Succeeded");
  expect(run?.exitCode).toBe(0);
  expect(resultsLines(reporterLog(run?.jobName ?? ""))).toEqual(counts);
  expect(run?.images).toEqual(counts);
  expect(run?.verification).toMatchObject({
    reason: "AllImagesPresent",
    missing: 0,
    mismatched: 0,
    errors: 0,
  });
}

const t0 = () => {
  const start = Date.now();
  return () => `${((Date.now() - start) / 1000).toFixed(1)} s`;
};

describe.each(["4.20", "5"] as const)("oc-mirror %s", (line: OcMirrorLine) => {
  it("mirrors a release range with graph, an operator and three images, applies exactly what oc-mirror generated, changes nothing when run again, and asks before a shrink removes mirrors", async () => {
    const total = t0();
    operator = await startOperator(kc, { applyNamespaces: [ns.name] });
    await createPushSecret(kc, ns.name);
    await createPushSecret(kc, ns.name, "pull");
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    podRunner.behaviours.set(NAME, { line });
    const spec = (parts: ImageSetParts) => ({ imageSet: { inline: upstreamImageSet(parts) } });
    const up = upstream();
    const src = up.source.host;
    const srcPattern = src.replace(/\./g, "\\.");

    // 1. The first run, and the approval of its mirror sets. (Another test may have put the
    // registry's entry into the shared pull secret already.)
    const pullBefore = await pullSecret();
    const entryThere = pullBefore.auths[registry.host] !== undefined;
    let step = t0();
    await mjs.create(ns.name, NAME, {
      ...spec(FULL),
      source: upstreamSource(),
      registry: {
        url: `${registry.host}/${ns.name}`,
        pushSecretRef: { name: "push" },
        pullSecretRef: { name: "pull" },
        caBundleRef: { name: "registry-ca" },
      },
      mirror: { line },
      apply: { mode: "Auto" },
    });
    const first = await nextRun(
      [],
      "the first run awaits approval",
      (mj) => mj.status?.phase === "AwaitingApproval",
    );
    const firstRun = first.status?.lastRun?.id ?? "";
    expectRun(first, {
      release: { copied: 10, failed: 0, total: 10 },
      operator: { copied: 7, failed: 0, total: 7 },
      additional: { copied: 3, failed: 0, total: 3 },
    });
    const mapped = await expectMappingInTarget();
    expect(mapped).toBe(19);
    expect(first.status?.lastRun?.verification?.checked).toBe(mapped);
    const firstGenerated = generatedObjects();
    expect(firstGenerated.map((g) => `${g.info.kind} ${g.name}`).sort()).toEqual(
      [
        "ClusterCatalog cc-redhat-operator-index-v4-19",
        "ConfigMap mirrored-release-signatures",
        "ImageDigestMirrorSet idms-generic-0",
        "ImageDigestMirrorSet idms-operator-0",
        "ImageDigestMirrorSet idms-release-0",
        "ImageTagMirrorSet itms-generic-0",
        "ImageTagMirrorSet itms-release-0",
        "CatalogSource cs-redhat-operator-index-v4-19",
        "UpdateService update-service-oc-mirror",
      ].sort(),
    );
    // Creating ImageTagMirrorSets drains nodes: nothing is applied before the approval.
    expect(condition(first, "Applied")).toMatchObject({ status: "False", reason: "AwaitingApproval" });
    const pending = first.status?.pendingChange;
    expect(pending?.disruptive).toBe(true);
    expect(pending?.summary).toMatch(
      new RegExp(
        `create ImageTagMirrorSet ${NAME}-itms-release-0-[a-f0-9]{8}: adds mirrors for ${srcPattern}/openshift-release-dev/ocp-release \\(drains nodes\\)`,
      ),
    );
    expect(pending?.summary).toMatch(
      new RegExp(
        `create ImageTagMirrorSet ${NAME}-itms-generic-0-[a-f0-9]{8}: adds mirrors for ${srcPattern}/demo \\(drains nodes\\)`,
      ),
    );
    expect((await owned()).size).toBe(0);
    expect((await pullSecret()).resourceVersion).toBe(pullBefore.resourceVersion);
    await mjs.patchSpec(ns.name, NAME, { apply: { approvedChange: pending?.hash } });
    const applied = await mjs.waitFor(
      ns.name,
      NAME,
      "Ready after the approval",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    expect(applied.status?.appliedRun).toBe(firstRun);
    expect(applied.status?.pendingChange).toBeUndefined();
    expect(condition(applied, "Applied")?.message.endsWith("; pull secret entry updated)")).toBe(!entryThere);
    const afterFirst = await owned();
    expectExactly(afterFirst, firstGenerated, firstRun);
    expect(applied.status?.appliedResources).toHaveLength(afterFirst.size + 1);
    const secret = await pullSecret();
    expect(secret.auths[registry.host]).toEqual({
      auth: Buffer.from(`${registry.username}:${registry.password}`).toString("base64"),
    });
    console.log(`oc-mirror ${line}: first run, verified, approved and applied in ${step()}`);

    // 2. The same MirrorJob again: every image copied again, nothing written to the cluster.
    step = t0();
    await mjs.patchSpec(ns.name, NAME, { runRequest: "again" });
    const second = await nextRun(
      [firstRun],
      "the second run applied",
      (mj) => mj.status?.appliedRun === mj.status?.lastRun?.id && condition(mj, "Ready")?.status === "True",
    );
    const secondRun = second.status?.lastRun?.id ?? "";
    expect(second.status?.lastRun?.trigger).toBe("RunRequest");
    expectRun(second, {
      release: { copied: 10, failed: 0, total: 10 },
      operator: { copied: 7, failed: 0, total: 7 },
      additional: { copied: 3, failed: 0, total: 3 },
    });
    expect(await expectMappingInTarget()).toBe(19);
    const message = noChangeMessage(secondRun, afterFirst.size + 1);
    expect(condition(second, "Applied")).toMatchObject({ status: "True", reason: "Applied", message });
    expect(await appliedEvents(message)).toHaveLength(1);
    const afterSecond = await owned();
    expect(resourceVersions(afterSecond)).toEqual(resourceVersions(afterFirst));
    expect((await pullSecret()).resourceVersion).toBe(secret.resourceVersion);
    // What the cluster holds is still exactly what oc-mirror generated, this time too.
    expectExactly(afterSecond, generatedObjects());
    console.log(`oc-mirror ${line}: second run, nothing written, in ${step()}`);

    // 3. The channel range shrinks: only the release-signature ConfigMap changes.
    step = t0();
    await mjs.patchSpec(ns.name, NAME, spec(SHRUNK));
    const third = await nextRun(
      [firstRun, secondRun],
      "the shrunk run applied",
      (mj) => mj.status?.appliedRun === mj.status?.lastRun?.id && condition(mj, "Ready")?.status === "True",
    );
    const thirdRun = third.status?.lastRun?.id ?? "";
    expectRun(third, {
      release: { copied: 7, failed: 0, total: 7 },
      operator: { copied: 7, failed: 0, total: 7 },
      additional: { copied: 3, failed: 0, total: 3 },
    });
    expect(await expectMappingInTarget()).toBe(16);
    const dropped = up.content.release.versions.find((v) => v.version === "4.19.1")?.digest ?? "";
    const kept = up.content.release.versions.filter((v) => v.version !== "4.19.1").map((v) => v.digest);
    const thirdGenerated = generatedObjects();
    const signatures = thirdGenerated.find((g) => g.info.kind === "ConfigMap");
    const signatureKeys = Object.keys(signatures?.object.binaryData ?? {});
    expect(signatureKeys.map((k) => k.replace(/-\d+$/, "")).sort()).toEqual(
      kept.map((d) => d.replace(":", "-")).sort(),
    );
    const afterThird = await owned();
    expectExactly(afterThird, thirdGenerated);
    const signatureMap = [...afterThird.values()].find((l) => l.kind === "ConfigMap");
    expect(third.status?.pendingChange).toBeUndefined();
    expect(condition(third, "Applied")?.message).toMatch(
      new RegExp(
        `^run ${thirdRun}: ${String(afterThird.size + 1)} objects on the cluster \\(update ConfigMap openshift-config-managed/${signatureMap?.name ?? "?"}: .*removes [^;)]*${dropped.replace(":", "-")}`,
      ),
    );
    expect(condition(third, "Applied")?.message).not.toMatch(/drains nodes/);
    const changed = Object.entries(resourceVersions(afterThird))
      .filter(([k, rv]) => resourceVersions(afterSecond)[k] !== rv)
      .map(([k]) => k);
    expect(changed).toEqual([key("ConfigMap", "openshift-config-managed", signatureMap?.name ?? "")]);
    console.log(`oc-mirror ${line}: channel range shrunk, signatures updated, in ${step()}`);

    // 4. The additional images dropped: their mirror sets go, which waits for approval.
    step = t0();
    // A merge patch: null removes the list.
    await mjs.patchSpec(ns.name, NAME, { imageSet: { inline: { mirror: { additionalImages: null } } } });
    const fourth = await nextRun(
      [firstRun, secondRun, thirdRun],
      "the fourth run awaits approval",
      (mj) => mj.status?.phase === "AwaitingApproval",
    );
    const fourthRun = fourth.status?.lastRun?.id ?? "";
    expectRun(fourth, {
      release: { copied: 7, failed: 0, total: 7 },
      operator: { copied: 7, failed: 0, total: 7 },
    });
    expect(await expectMappingInTarget()).toBe(13);
    const fourthGenerated = generatedObjects();
    expect(fourthGenerated.map((g) => g.name)).not.toContain("idms-generic-0");
    expect(fourthGenerated.map((g) => g.name)).not.toContain("itms-generic-0");
    expect(condition(fourth, "Applied")).toMatchObject({ status: "False", reason: "AwaitingApproval" });
    const removal = fourth.status?.pendingChange;
    expect(removal?.disruptive).toBe(true);
    const generic = (prefix: string) =>
      [...afterThird.values()].find((l) => l.name.startsWith(`${NAME}-${prefix}-`))?.name ?? "?";
    expect(removal?.summary).toBe(
      [
        `delete ImageTagMirrorSet ${generic("itms-generic-0")}: removes the mirrors of ${src}/demo (drains nodes)`,
        `delete ImageDigestMirrorSet ${generic("idms-generic-0")}: removes the mirrors of ${src}/demo (drains nodes)`,
      ]
        .sort()
        .join("; "),
    );
    expect(condition(fourth, "Applied")?.message).toContain(removal?.hash ?? "?");
    // Nothing changed on the cluster meanwhile.
    expect(resourceVersions(await owned())).toEqual(resourceVersions(afterThird));
    expect((await pullSecret()).resourceVersion).toBe(secret.resourceVersion);
    await mjs.patchSpec(ns.name, NAME, { apply: { approvedChange: removal?.hash } });
    const approved = await mjs.waitFor(
      ns.name,
      NAME,
      "the removal applied",
      (mj) => mj.status?.appliedRun === fourthRun,
    );
    expect(condition(approved, "Applied")).toMatchObject({ status: "True", reason: "Applied" });
    expect(approved.status?.pendingChange).toBeUndefined();
    const afterFourth = await owned();
    expectExactly(afterFourth, fourthGenerated);
    // Exactly that change: the two mirror sets are gone, nothing else was written.
    const gone = [
      key("ImageTagMirrorSet", undefined, generic("itms-generic-0")),
      key("ImageDigestMirrorSet", undefined, generic("idms-generic-0")),
    ];
    const before = Object.entries(resourceVersions(afterThird)).filter(([k]) => !gone.includes(k));
    expect(resourceVersions(afterFourth)).toEqual(Object.fromEntries(before));
    console.log(`oc-mirror ${line}: additional images dropped, approved and applied in ${step()}`);

    // Deleting the MirrorJob removes what it applied (deletionPolicy Delete, the default).
    await mjs.delete(ns.name, NAME);
    await waitFor("the applied objects gone", async () => ((await owned()).size === 0 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    console.log(`oc-mirror ${line}: all in ${total()}`);
  }, 240_000);
});
