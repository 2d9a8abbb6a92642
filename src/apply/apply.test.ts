import { describe, expect, it } from "vitest";
import type { ResultGeneratedObject } from "../report/result.ts";
import { appliedName, desiredObjects, type DesiredObject } from "./desired.ts";
import { kindInfo } from "./kinds.ts";
import { contains, planChanges, type LiveObject } from "./plan.ts";
import { entryHash, mergePullSecret, pullEntry } from "./pull-secret.ts";
import { underRegistry, validateGenerated, type GeneratedResource } from "./validate.ts";

const REGISTRY = "reg.example.com:8443/mirror";
const owner = { namespace: "team-a", name: "ocp" };

function generated(object: Record<string, unknown>, file = "idms-oc-mirror.yaml"): ResultGeneratedObject {
  const metadata = object.metadata as { name: string; namespace?: string };
  return {
    file,
    apiVersion: object.apiVersion as string,
    kind: object.kind as string,
    name: metadata.name,
    ...(metadata.namespace !== undefined && { namespace: metadata.namespace }),
    object,
  };
}

function idms(name: string, entries: Record<string, string[]>, kind = "ImageDigestMirrorSet") {
  const field = kind === "ImageDigestMirrorSet" ? "imageDigestMirrors" : "imageTagMirrors";
  return generated({
    apiVersion: "config.openshift.io/v1",
    kind,
    metadata: { name, annotations: { createdBy: "oc-mirror v2" }, creationTimestamp: null },
    spec: { [field]: Object.entries(entries).map(([source, mirrors]) => ({ source, mirrors })) },
    status: {},
  });
}

const catalogSource = (image: string, namespace = "openshift-marketplace") =>
  generated(
    {
      apiVersion: "operators.coreos.com/v1alpha1",
      kind: "CatalogSource",
      metadata: { name: "cs-redhat-operator-index-v4-19", namespace },
      spec: { sourceType: "grpc", image },
    },
    "cs-redhat-operator-index-v4-19.yaml",
  );

function valid(objects: ResultGeneratedObject[]): GeneratedResource[] {
  const v = validateGenerated(objects, REGISTRY);
  if (!v.ok) throw new Error(v.problems.join("; "));
  return v.resources;
}

function live(d: DesiredObject, content = d.content): LiveObject {
  return {
    info: d.info,
    name: d.name,
    ...(d.namespace !== undefined && { namespace: d.namespace }),
    object: { ...d.manifest, ...content, metadata: { name: d.name, uid: "x", resourceVersion: "7" } },
  };
}

describe("validateGenerated", () => {
  it("accepts what oc-mirror generates, mirrors under the registry", () => {
    const resources = valid([
      idms("idms-release-0", {
        "quay.io/openshift-release-dev/ocp-release": [`${REGISTRY}/openshift/release-images`],
      }),
      catalogSource(`${REGISTRY}/redhat/redhat-operator-index:v4.19`),
    ]);
    expect(resources.map((r) => [r.info.kind, r.sourceName])).toEqual([
      ["ImageDigestMirrorSet", "idms-release-0"],
      ["CatalogSource", "cs-redhat-operator-index-v4-19"],
    ]);
  });

  it("rejects the whole result for an extra ClusterRoleBinding", () => {
    const v = validateGenerated(
      [
        idms("idms-release-0", { "quay.io/a": [`${REGISTRY}/a`] }),
        generated({
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: "pwn" },
          roleRef: { kind: "ClusterRole", name: "cluster-admin" },
        }),
      ],
      REGISTRY,
    );
    expect(v.ok).toBe(false);
    expect(!v.ok && v.problems.join()).toMatch(/ClusterRoleBinding is not one a run may apply/);
  });

  it("rejects a mirror outside the MirrorJob's registry, naming the field", () => {
    const v = validateGenerated([idms("idms-x", { "quay.io/a": ["evil.example.com/a"] })], REGISTRY);
    expect(!v.ok && v.problems[0]).toMatch(
      /spec.imageDigestMirrors\[0\].mirrors\[0\] evil.example.com\/a is not under the MirrorJob's registry reg.example.com:8443\/mirror/,
    );
    // A longer host or port sharing the prefix is not "under" the registry.
    expect(underRegistry("reg.example.com:84431/mirror/a", REGISTRY)).toBe(false);
    expect(underRegistry("reg.example.com:8443/mirrored/a", REGISTRY)).toBe(false);
    expect(underRegistry(`${REGISTRY}/a`, REGISTRY)).toBe(true);
  });

  it("rejects a CatalogSource in another namespace, unknown fields and bad metadata", () => {
    const other = validateGenerated([catalogSource(`${REGISTRY}/c:1`, "kube-system")], REGISTRY);
    expect(!other.ok && other.problems[0]).toMatch(
      /namespace kube-system is not allowed \(CatalogSource objects go to openshift-marketplace only\)/,
    );
    const extra = generated({
      apiVersion: "config.openshift.io/v1",
      kind: "ImageDigestMirrorSet",
      metadata: { name: "x", ownerReferences: [{}] },
      spec: { imageDigestMirrors: [] },
    });
    expect(validateGenerated([extra], REGISTRY).ok).toBe(false);
    const field = generated({
      apiVersion: "operators.coreos.com/v1alpha1",
      kind: "CatalogSource",
      metadata: { name: "c", namespace: "openshift-marketplace" },
      spec: { sourceType: "grpc", image: `${REGISTRY}/c:1`, secrets: ["steal"] },
    });
    const v = validateGenerated([field], REGISTRY);
    expect(!v.ok && v.problems[0]).toMatch(/secrets/);
  });

  it("accepts a signature ConfigMap only in openshift-config-managed with its label", () => {
    const signatures = (labels: Record<string, string>) =>
      generated({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "mirrored-release-signatures", namespace: "openshift-config-managed", labels },
        binaryData: { [`sha256-${"a".repeat(64)}-1`]: "c2ln" },
      });
    expect(
      validateGenerated([signatures({ "release.openshift.io/verification-signatures": "" })], REGISTRY).ok,
    ).toBe(true);
    expect(validateGenerated([signatures({})], REGISTRY).ok).toBe(false);
  });
});

function signatures(keys: string[], value = (k: string) => Buffer.from(k.slice(0, 71)).toString("base64")) {
  return desiredObjects(
    valid([
      generated(
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name: "mirrored-release-signatures",
            namespace: "openshift-config-managed",
            labels: { "release.openshift.io/verification-signatures": "" },
          },
          binaryData: Object.fromEntries(keys.map((k) => [k, value(k)])),
        },
        "signature-configmap.json",
      ),
    ]),
    owner,
    ["ReleaseSignatures"],
    "r",
  );
}

describe("desiredObjects", () => {
  const resources = () =>
    valid([
      idms("idms-release-0", { "quay.io/b": [`${REGISTRY}/b`], "quay.io/a": [`${REGISTRY}/a`] }),
      catalogSource(`${REGISTRY}/redhat/redhat-operator-index:v4.19`),
    ]);

  it("renames per MirrorJob, labels the owner, drops Argo CD tracking, sorts entries", () => {
    const [r] = resources();
    if (r === undefined) throw new Error("no resource");
    const tracked = {
      ...r,
      labels: { "app.kubernetes.io/instance": "argo-app", keep: "yes" },
      annotations: { "argocd.argoproj.io/tracking-id": "app:x", createdBy: "oc-mirror v2" },
    };
    const [d] = desiredObjects([tracked], owner, ["ImageDigestMirrorSet"], "run1");
    expect(d?.name).toBe(appliedName(owner, "idms-release-0", 253));
    expect(d?.name).toMatch(/^ocp-idms-release-0-[a-f0-9]{8}$/);
    const metadata = d?.manifest.metadata as {
      labels: Record<string, string>;
      annotations: Record<string, string>;
    };
    expect(metadata.labels).toEqual({
      keep: "yes",
      "app.kubernetes.io/managed-by": "hub-mirror-operator",
      "hubmirror.dev/owner-namespace": "team-a",
      "hubmirror.dev/owner-name": "ocp",
    });
    expect(Object.keys(metadata.annotations)).not.toContain("argocd.argoproj.io/tracking-id");
    expect(
      (d?.content.spec as { imageDigestMirrors: { source: string }[] }).imageDigestMirrors.map(
        (e) => e.source,
      ),
    ).toEqual(["quay.io/a", "quay.io/b"]);
  });

  it("gives two MirrorJobs different names and keeps CatalogSource names DNS labels", () => {
    const a = desiredObjects(resources(), owner, ["ImageDigestMirrorSet", "CatalogSource"], "r");
    const b = desiredObjects(
      resources(),
      { namespace: "team-b", name: "ocp" },
      ["ImageDigestMirrorSet", "CatalogSource"],
      "r",
    );
    expect(a.map((d) => d.name)).not.toEqual(expect.arrayContaining(b.map((d) => d.name)));
    const long = appliedName({ namespace: "n", name: "x".repeat(80) }, "cs-redhat-operator-index-v4-19", 63);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
  });

  it("numbers release signatures per digest, so the same signatures are the same content every run", () => {
    const key = (c: string, n: number) => `sha256-${c.repeat(64)}-${String(n)}`;
    // oc-mirror numbers across releases, in an order that changes from run to run.
    const [one] = signatures([key("a", 1), key("b", 2), key("c", 3)]);
    const [two] = signatures([key("c", 1), key("a", 2), key("b", 3)]);
    expect(Object.keys(one?.content.binaryData ?? {})).toEqual([key("a", 1), key("b", 1), key("c", 1)]);
    expect(two?.content).toEqual(one?.content);
    expect(two?.hash).toBe(one?.hash);
    // Two signatures of one release keep both, numbered 1 and 2.
    const [both] = signatures([key("a", 1), key("a", 7)], (k) => Buffer.from(k).toString("base64"));
    expect(Object.keys(both?.content.binaryData ?? {})).toEqual([key("a", 1), key("a", 2)]);
    expect(Object.values(both?.content.binaryData ?? {}).sort()).toEqual(
      [key("a", 1), key("a", 7)].map((k) => Buffer.from(k).toString("base64")).sort(),
    );
  });

  it("applies only the kinds asked for, with the same hash for the same content", () => {
    const one = desiredObjects(resources(), owner, ["CatalogSource"], "r1");
    const two = desiredObjects(resources(), owner, ["CatalogSource"], "r2");
    expect(one.map((d) => d.info.kind)).toEqual(["CatalogSource"]);
    expect(one[0]?.hash).toBe(two[0]?.hash);
  });
});

describe("planChanges", () => {
  const desired = (entries: Record<string, string[]>, kind = "ImageDigestMirrorSet") =>
    desiredObjects(
      valid([idms("idms-generic-0", entries, kind)]),
      owner,
      [kind as "ImageDigestMirrorSet"],
      "r",
    );

  it("creating or extending an IDMS does not drain nodes", () => {
    const [first] = desired({ "quay.io/a": [`${REGISTRY}/a`] });
    if (first === undefined) throw new Error("none");
    const create = planChanges([first], [], { prune: true });
    expect(create).toMatchObject({ disruptive: false, changes: [{ op: "create" }] });
    const [extended] = desired({
      "quay.io/a": [`${REGISTRY}/a`, `${REGISTRY}/a2`],
      "quay.io/b": [`${REGISTRY}/b`],
    });
    if (extended === undefined) throw new Error("none");
    const extend = planChanges([extended], [live(first)], { prune: true });
    expect(extend.disruptive).toBe(false);
    expect(extend.summary).toMatch(/adds mirrors for quay.io\/b; adds further mirrors for quay.io\/a/);
  });

  it("removing or changing an IDMS entry, and any ITMS change, drains nodes", () => {
    const [before] = desired({ "quay.io/a": [`${REGISTRY}/a`], "quay.io/b": [`${REGISTRY}/b`] });
    const [after] = desired({ "quay.io/a": [`${REGISTRY}/a`] });
    if (before === undefined || after === undefined) throw new Error("none");
    const shrink = planChanges([after], [live(before)], { prune: true });
    expect(shrink.disruptive).toBe(true);
    expect(shrink.summary).toMatch(/removes the mirrors of quay.io\/b.*\(drains nodes\)/);
    expect(shrink.hash).toMatch(/^[a-f0-9]{16}$/);
    const [itms] = desired({ "quay.io/a": [`${REGISTRY}/a`] }, "ImageTagMirrorSet");
    if (itms === undefined) throw new Error("none");
    expect(planChanges([itms], [], { prune: true }).disruptive).toBe(true);
    // Pruning an IDMS with entries removes mirrors: disruptive; without prune it stays.
    expect(planChanges([], [live(before)], { prune: true }).disruptive).toBe(true);
    expect(planChanges([], [live(before)], { prune: false }).changes).toEqual([]);
  });

  it("sees no change when the cluster already holds the content (plus server defaults)", () => {
    const [d] = desired({ "quay.io/a": [`${REGISTRY}/a`] });
    if (d === undefined) throw new Error("none");
    const withDefaults = { spec: { ...(d.content.spec as object), extra: "default" } };
    const plan = planChanges([d], [live(d, withDefaults)], { prune: true });
    expect(plan).toMatchObject({ changes: [], hash: "", apply: [], unchanged: [d] });
    expect(contains({ a: [1, 2] }, { a: [1] })).toBe(false);
  });

  it("names the signatures a ConfigMap update adds and removes, and sees a removed key as a change", () => {
    const key = (c: string, n: number) => `sha256-${c.repeat(64)}-${String(n)}`;
    const [three] = signatures([key("a", 1), key("b", 2), key("c", 3)]);
    const [fewer] = signatures([key("b", 1), key("c", 2)]);
    const [added] = signatures([key("d", 4), key("a", 1), key("b", 2), key("c", 3)]);
    if (three === undefined || fewer === undefined || added === undefined) throw new Error("none");
    // Every remaining key is on the cluster, yet the update must remove one.
    const shrink = planChanges([fewer], [live(three)], { prune: true });
    expect(shrink.disruptive).toBe(false);
    expect(shrink.summary).toBe(
      `update ConfigMap openshift-config-managed/${three.name}: removes ${key("a", 1)}`,
    );
    expect(planChanges([added], [live(three)], { prune: true }).summary).toMatch(
      new RegExp(`: adds ${key("d", 1)}$`),
    );
    expect(planChanges([fewer], [live(fewer)], { prune: true }).changes).toEqual([]);
  });

  it("names the same change with the same hash, and a different change differently", () => {
    const [before] = desired({ "quay.io/a": [`${REGISTRY}/a`], "quay.io/b": [`${REGISTRY}/b`] });
    const [after] = desired({ "quay.io/a": [`${REGISTRY}/a`] });
    const [other] = desired({ "quay.io/b": [`${REGISTRY}/b`] });
    if (before === undefined || after === undefined || other === undefined) throw new Error("none");
    const one = planChanges([after], [live(before)], { prune: true });
    expect(planChanges([after], [live(before)], { prune: true }).hash).toBe(one.hash);
    expect(planChanges([other], [live(before)], { prune: true }).hash).not.toBe(one.hash);
  });
});

describe("pull secret", () => {
  const auth = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString("base64");
  const pullSecret = JSON.stringify({
    auths: { "reg.example.com:8443": { auth: auth("reader", "r3ad") }, "other.io": { auth: auth("x", "y") } },
  });

  it("picks the mirror's entry from the pull Secret, normalized", () => {
    const entry = pullEntry(pullSecret, REGISTRY, "Secret pull");
    expect(entry).toEqual({ key: "reg.example.com:8443", entry: { auth: auth("reader", "r3ad") } });
    expect(pullEntry(pullSecret, "nowhere.example.com/x", "Secret pull")).toBe(
      "Secret pull has no credentials for nowhere.example.com/x",
    );
    const urlKey = JSON.stringify({
      auths: { "https://reg.example.com:8443/v1/": { auth: auth("a", "b") } },
    });
    expect(pullEntry(urlKey, REGISTRY, "s")).toMatchObject({ key: "reg.example.com:8443" });
  });

  it("adds or replaces only the mirror's entry, keeping every other entry and key", () => {
    const entry = pullEntry(pullSecret, REGISTRY, "s");
    if (typeof entry === "string") throw new Error(entry);
    const cluster = JSON.stringify({
      auths: { "quay.io": { auth: "cXVheQ==", email: "a@b.c" }, "reg.example.com:8443": { auth: "b2xk" } },
      credHelpers: { "x.io": "helper" },
    });
    const merged = mergePullSecret(cluster, entry);
    if (!merged.ok || !merged.changed) throw new Error("expected a change");
    expect(JSON.parse(merged.text)).toEqual({
      auths: {
        "quay.io": { auth: "cXVheQ==", email: "a@b.c" },
        "reg.example.com:8443": { auth: auth("reader", "r3ad") },
      },
      credHelpers: { "x.io": "helper" },
    });
    expect(mergePullSecret(merged.text, entry)).toEqual({ ok: true, changed: false });
    expect(mergePullSecret("{not json", entry)).toMatchObject({ ok: false });
    expect(entryHash(entry)).not.toContain("r3ad");
  });
});

describe("kindInfo", () => {
  it("knows where each kind lives", () => {
    expect(kindInfo("CatalogSource")).toMatchObject({ namespace: "openshift-marketplace", maxName: 63 });
    expect(kindInfo("ReleaseSignatures")).toMatchObject({
      kind: "ConfigMap",
      namespace: "openshift-config-managed",
    });
    expect(kindInfo("ImageDigestMirrorSet").namespace).toBeUndefined();
  });
});
