/**
 * Applying a run's generated configuration on the real control plane, made to look like
 * OpenShift by stand-in CRDs and namespaces (devkit/openshift.ts): per-MirrorJob
 * names and finalizer cleanup, rejection of tampered results, approval of disruptive
 * changes, the pull secret merge, and the tenant guard. Runs are the real oc-mirror (the
 * default line) mirroring additional images of the offline upstream; it writes one mirror entry
 * per source namespace (`<source>/demo`, `<source>/openshift`, ...), an ImageTagMirrorSet
 * `itms-generic-0` for images named by tag and an ImageDigestMirrorSet `idms-generic-0` for
 * images named by digest.
 */
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { Applier } from "../../src/runtime/applier.ts";
import { pullEntry } from "../../src/apply/pull-secret.ts";
import { MANAGER } from "../../src/job/names.ts";
import { encodeJsonGzip, readResultConfigMap, RESULT_KEYS } from "../../src/report/result.ts";
import { adminKubeConfig, useNamespace, waitFor } from "../harness/kube.ts";
import { addPullSecretEntries, installOpenShiftStandIns } from "../../devkit/openshift.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  dockerConfigJson,
  mirrorJobs,
  startOperator,
  upstream,
  upstreamSource,
  type MirrorJobObject,
  type RunningOperator,
} from "../harness/operator.ts";
import { type PodBehaviour } from "../../devkit/pod-runner.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const mjs = mirrorJobs(kc);
const registry = inject("registry");
const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});

const THIRD_PARTY = { "quay.io": { auth: Buffer.from("someone:else").toString("base64"), email: "x@y.z" } };
const { behaviours } = usePodRunner(ns);
let operator: RunningOperator | undefined;

beforeAll(async () => {
  await installOpenShiftStandIns(kc);
  // A third party's entry the operator must keep.
  await addPullSecretEntries(kc, THIRD_PARTY);
});
afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  await operator?.stop();
  operator = undefined;
});

/** The operator, allowed to apply for this test's namespace (or the given ones). */
async function start(applyNamespaces = [ns.name]) {
  operator = await startOperator(kc, { applyNamespaces });
  await createPushSecret(kc, ns.name);
  await createPushSecret(kc, ns.name, "pull");
  await createRegistryCa(kc, ns.name);
  await createSourceInputs(kc, ns.name);
}

/**
 * Images of the upstream in two namespaces, so that a mirror set has two entries: by tag
 * (`demo/busybox:stable`, `openshift/graph-image:latest`) and by digest (`demo/pause@…`, the
 * 4.19.1 release payload `openshift-release-dev/ocp-release@…`, here just an image).
 */
const up = upstream();
const SRC = up.source.host;
const TAGGED = { alpha: up.content.images.tagOnly.reference, beta: up.content.release.graphImageReference };
const TAGGED_SOURCES = { alpha: `${SRC}/demo`, beta: `${SRC}/openshift` };
const release = up.content.release.versions.find((v) => v.version === "4.19.1");
const DIGESTED = {
  alpha: up.content.images.digestPinned.reference,
  beta: `${SRC}/openshift-release-dev/ocp-release@${release?.digest ?? ""}`,
};
const DIGESTED_SOURCES = { alpha: `${SRC}/demo`, beta: `${SRC}/openshift-release-dev` };
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function spec(images: string[], apply: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    imageSet: { inline: { mirror: { additionalImages: images.map((name) => ({ name })) } } },
    source: upstreamSource(),
    registry: {
      url: `${registry.host}/${ns.name}`,
      pushSecretRef: { name: "push" },
      pullSecretRef: { name: "pull" },
      caBundleRef: { name: "registry-ca" },
    },
    apply,
    ...extra,
  };
}

interface Listed {
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, { source: string; mirrors: string[] }[]>;
}

async function owned(kind: "imagedigestmirrorsets" | "imagetagmirrorsets", owner: string): Promise<Listed[]> {
  const list = (await custom.listClusterCustomObject({
    group: "config.openshift.io",
    version: "v1",
    plural: kind,
    labelSelector: `hubmirror.dev/owner-namespace=${ns.name},hubmirror.dev/owner-name=${owner}`,
  })) as { items: Listed[] };
  return list.items;
}

async function pullSecretAuths(): Promise<{ auths: Record<string, unknown>; resourceVersion: string }> {
  const secret = await core.readNamespacedSecret({ namespace: "openshift-config", name: "pull-secret" });
  const json = JSON.parse(
    Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8"),
  ) as {
    auths: Record<string, unknown>;
  };
  return { auths: json.auths, resourceVersion: secret.metadata?.resourceVersion ?? "" };
}

const appliedTrue = (mj: MirrorJobObject) => condition(mj, "Applied")?.status === "True";

describe("applying a verified run", () => {
  it("applies two MirrorJobs' same-named objects side by side; deletion honours deletionPolicy", async () => {
    await start();
    const images = [TAGGED.alpha, TAGGED.beta];
    // ITMS creation drains nodes: allowed here, approval is the subject of another test.
    await mjs.create(ns.name, "deleter", spec(images, { disruptive: "Allow", deletionPolicy: "Delete" }));
    await mjs.create(ns.name, "orphaner", spec(images, { disruptive: "Allow", deletionPolicy: "Orphan" }));
    const done = await Promise.all(
      ["deleter", "orphaner"].map((name) =>
        mjs.waitFor(ns.name, name, "Ready=True", (mj) => condition(mj, "Ready")?.status === "True", 90_000),
      ),
    );
    for (const mj of done) {
      expect(condition(mj, "Verified")?.status).toBe("True");
      expect(condition(mj, "Applied")).toMatchObject({ status: "True", reason: "Applied" });
      expect(mj.status?.appliedRun).toBe(mj.status?.lastSuccessfulRun?.id);
      expect(mj.status?.appliedResources?.map((r) => r.kind).sort()).toEqual(["ImageTagMirrorSet", "Secret"]);
    }
    const [deleterItms, orphanerItms] = await Promise.all([
      owned("imagetagmirrorsets", "deleter"),
      owned("imagetagmirrorsets", "orphaner"),
    ]);
    expect(deleterItms).toHaveLength(1);
    expect(orphanerItms).toHaveLength(1);
    expect(deleterItms[0]?.metadata.name).not.toBe(orphanerItms[0]?.metadata.name);
    expect(deleterItms[0]?.metadata.name).toMatch(/^deleter-itms-generic-0-[a-f0-9]{8}$/);
    expect(deleterItms[0]?.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe(MANAGER);
    expect(deleterItms[0]?.spec.imageTagMirrors?.map((e) => e.source)).toEqual([
      TAGGED_SOURCES.alpha,
      TAGGED_SOURCES.beta,
    ]);
    for (const entry of deleterItms[0]?.spec.imageTagMirrors ?? []) {
      for (const mirror of entry.mirrors)
        expect(mirror.startsWith(`${registry.host}/${ns.name}/`)).toBe(true);
    }
    // The finalizer that cleans up cluster-scoped objects.
    expect(
      (
        (await custom.getNamespacedCustomObject({
          group: "hubmirror.dev",
          version: "v1alpha1",
          namespace: ns.name,
          plural: "mirrorjobs",
          name: "deleter",
        })) as { metadata: { finalizers?: string[] } }
      ).metadata.finalizers,
    ).toContain("hubmirror.dev/applied-resources");

    for (const name of ["deleter", "orphaner"]) {
      await mjs.delete(ns.name, name);
    }
    await waitFor(
      "both MirrorJobs gone",
      async () =>
        (await mjs.get(ns.name, "deleter").catch(() => undefined)) === undefined &&
        (await mjs.get(ns.name, "orphaner").catch(() => undefined)) === undefined
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(await owned("imagetagmirrorsets", "deleter")).toEqual([]);
    expect(await owned("imagetagmirrorsets", "orphaner")).toHaveLength(1);
    // Leave the cluster clean for the other tests.
    await custom.deleteClusterCustomObject({
      group: "config.openshift.io",
      version: "v1",
      plural: "imagetagmirrorsets",
      name: orphanerItms[0]?.metadata.name ?? "",
    });
  });
});

describe("a tampered result", () => {
  /** Rewrites the run's generated objects in its result ConfigMap, as a compromised pod could. */
  function tamper(change: (objects: Record<string, unknown>[]) => Record<string, unknown>[]): PodBehaviour {
    return {
      beforeExit: async (pod) => {
        const name = `${pod.metadata?.labels?.["job-name"] ?? ""}-result`;
        const cm = await core.readNamespacedConfigMap({ namespace: ns.name, name });
        const objects = readResultConfigMap(cm).clusterResources;
        const changed = change(objects.map((o) => o.object)).map((object) => {
          const metadata = object.metadata as { name: string; namespace?: string };
          return {
            file: "itms-oc-mirror.yaml",
            apiVersion: object.apiVersion,
            kind: object.kind,
            name: metadata.name,
            ...(metadata.namespace !== undefined && { namespace: metadata.namespace }),
            object,
          };
        });
        cm.binaryData = { ...cm.binaryData, [RESULT_KEYS.clusterResources]: encodeJsonGzip(changed) };
        await core.replaceNamespacedConfigMap({ namespace: ns.name, name, body: cm });
      },
    };
  }

  it("is rejected whole, with the reason, and nothing is applied", async () => {
    await start();
    const cases: Record<string, { behaviour: PodBehaviour; reason: RegExp }> = {
      "extra-crb": {
        behaviour: tamper((objects) => [
          ...objects,
          {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRoleBinding",
            metadata: { name: "take-over" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
            subjects: [{ kind: "Group", name: "system:authenticated" }],
          },
        ]),
        reason: /ClusterRoleBinding is not one a run may apply/,
      },
      "other-registry": {
        behaviour: tamper((objects) =>
          objects.map((o) => ({
            ...o,
            spec: { imageTagMirrors: [{ source: "quay.io/alpha", mirrors: ["evil.example.com/alpha"] }] },
          })),
        ),
        reason: /evil.example.com\/alpha is not under the MirrorJob's registry/,
      },
      "foreign-catalog": {
        behaviour: tamper((objects) => [
          ...objects,
          {
            apiVersion: "operators.coreos.com/v1alpha1",
            kind: "CatalogSource",
            metadata: { name: "cs-x", namespace: "kube-system" },
            spec: { sourceType: "grpc", image: `${registry.host}/${ns.name}/catalog:1` },
          },
        ]),
        reason:
          /namespace kube-system is not allowed \(CatalogSource objects go to openshift-marketplace only\)/,
      },
    };
    for (const [name, c] of Object.entries(cases)) {
      behaviours.set(name, c.behaviour);
      await mjs.create(ns.name, name, spec([TAGGED.alpha], { disruptive: "Allow" }));
    }
    for (const [name, c] of Object.entries(cases)) {
      const mj = await mjs.waitFor(
        ns.name,
        name,
        "Applied=False InvalidResult",
        (m) => condition(m, "Applied")?.reason === "InvalidResult",
        90_000,
      );
      expect(condition(mj, "Verified")?.status).toBe("True");
      expect(condition(mj, "Applied")?.message).toMatch(c.reason);
      expect(condition(mj, "Applied")?.message).toMatch(/rejected, nothing applied/);
      expect(condition(mj, "Ready")).toMatchObject({ status: "False", reason: "InvalidResult" });
      expect(mj.status?.appliedResources).toBeUndefined();
      expect(await owned("imagetagmirrorsets", name)).toEqual([]);
    }
    const crbs = await kc
      .makeApiClient(RbacAuthorizationV1Api)
      .listClusterRoleBinding({ fieldSelector: "metadata.name=take-over" });
    expect(crbs.items).toEqual([]);
  });
});

describe("disruptive changes", () => {
  const two = [DIGESTED.alpha, DIGESTED.beta];
  const one = [DIGESTED.alpha];

  it("applies IDMS additions at once; a shrinking image set waits for approval (or never, under Deny)", async () => {
    await start();
    await mjs.create(ns.name, "approve", spec(two, { disruptive: "RequireApproval" }));
    await mjs.create(ns.name, "deny", spec(two, { disruptive: "Deny" }));
    for (const name of ["approve", "deny"]) {
      await mjs.waitFor(ns.name, name, "Applied=True", appliedTrue, 90_000);
      const [idms] = await owned("imagedigestmirrorsets", name);
      expect(idms?.spec.imageDigestMirrors?.map((e) => e.source)).toEqual([
        DIGESTED_SOURCES.alpha,
        DIGESTED_SOURCES.beta,
      ]);
    }
    expect(await owned("imagetagmirrorsets", "approve")).toEqual([]);

    for (const name of ["approve", "deny"]) await mjs.patchSpec(ns.name, name, spec(one));
    const pending = await mjs.waitFor(
      ns.name,
      "approve",
      "AwaitingApproval",
      (mj) => condition(mj, "Applied")?.reason === "AwaitingApproval",
      90_000,
    );
    expect(pending.status?.phase).toBe("AwaitingApproval");
    expect(pending.status?.pendingChange).toMatchObject({ disruptive: true });
    expect(pending.status?.pendingChange?.summary).toMatch(
      new RegExp(`removes the mirrors of ${escape(DIGESTED_SOURCES.beta)}.*drains nodes`),
    );
    const denied = await mjs.waitFor(
      ns.name,
      "deny",
      "DisruptiveChangeDenied",
      (mj) => condition(mj, "Applied")?.reason === "DisruptiveChangeDenied",
      90_000,
    );
    expect(denied.status?.pendingChange?.disruptive).toBe(true);
    // Nothing applied for either.
    for (const name of ["approve", "deny"]) {
      const [idms] = await owned("imagedigestmirrorsets", name);
      expect(idms?.spec.imageDigestMirrors).toHaveLength(2);
    }

    const hash = pending.status?.pendingChange?.hash ?? "";
    await mjs.patchSpec(ns.name, "approve", {
      apply: { disruptive: "RequireApproval", approvedChange: hash },
    });
    const approved = await mjs.waitFor(
      ns.name,
      "approve",
      "Applied=True after approval",
      appliedTrue,
      60_000,
    );
    expect(approved.status?.pendingChange).toBeUndefined();
    const [idms] = await owned("imagedigestmirrorsets", "approve");
    expect(idms?.spec.imageDigestMirrors?.map((e) => e.source)).toEqual([DIGESTED_SOURCES.alpha]);
    // Deny still holds: the old IDMS stays as it was.
    const still = await mjs.get(ns.name, "deny");
    expect(condition(still, "Applied")?.reason).toBe("DisruptiveChangeDenied");
    expect((await owned("imagedigestmirrorsets", "deny"))[0]?.spec.imageDigestMirrors).toHaveLength(2);
    for (const name of ["approve", "deny"]) {
      await mjs.delete(ns.name, name);
    }
    await waitFor(
      "IDMS cleaned up",
      async () =>
        (await owned("imagedigestmirrorsets", "approve")).length +
          (await owned("imagedigestmirrorsets", "deny")).length ===
        0
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  });
});

describe("the pull secret", () => {
  it("gets the mirror's entry, keeps every other entry and a concurrent change, and is written once", async () => {
    await start();
    await mjs.create(ns.name, "pull", spec([TAGGED.alpha], { disruptive: "Allow" }));
    const first = await mjs.waitFor(ns.name, "pull", "Applied=True", appliedTrue, 90_000);
    const after = await pullSecretAuths();
    expect(after.auths["quay.io"]).toEqual(THIRD_PARTY["quay.io"]);
    expect(after.auths[registry.host]).toEqual({
      auth: Buffer.from(`${registry.username}:${registry.password}`).toString("base64"),
    });
    // A second run changes nothing in the pull secret: no write.
    await mjs.patchSpec(ns.name, "pull", { runRequest: "again" });
    await mjs.waitFor(
      ns.name,
      "pull",
      "the second run applied",
      (mj) => appliedTrue(mj) && mj.status?.appliedRun !== first.status?.appliedRun,
      90_000,
    );
    expect((await pullSecretAuths()).resourceVersion).toBe(after.resourceVersion);

    // A writer that changes the pull secret between the operator's read and write keeps its change.
    const entry = pullEntry(
      dockerConfigJson("mirror.example.com:5000", "r", "o"),
      "mirror.example.com:5000/x",
      "s",
    );
    if (typeof entry === "string") throw new Error(entry);
    let interleaved = false;
    const actions = new Applier(kc, {
      afterPullSecretRead: async () => {
        if (interleaved) return;
        interleaved = true;
        const { auths } = await pullSecretAuths();
        await core.replaceNamespacedSecret({
          namespace: "openshift-config",
          name: "pull-secret",
          body: {
            metadata: { name: "pull-secret", namespace: "openshift-config" },
            type: "kubernetes.io/dockerconfigjson",
            stringData: {
              ".dockerconfigjson": JSON.stringify({ auths: { ...auths, "concurrent.io": { auth: "Yzpk" } } }),
            },
          },
        });
      },
    });
    expect(await actions.mergePullSecret(entry)).toBe(true);
    expect(interleaved).toBe(true);
    const merged = await pullSecretAuths();
    expect(merged.auths).toMatchObject({
      "quay.io": THIRD_PARTY["quay.io"],
      "concurrent.io": { auth: "Yzpk" },
      "mirror.example.com:5000": entry.entry,
      [registry.host]: after.auths[registry.host],
    });
    expect(await actions.mergePullSecret(entry)).toBe(false);
  });
});

describe("the tenant guard", () => {
  it("lets a MirrorJob in a namespace not allowed mirror and verify, and change nothing cluster-wide", async () => {
    const before = await pullSecretAuths();
    await start(["somewhere-else"]);
    await mjs.create(ns.name, "tenant", spec([TAGGED.alpha], { disruptive: "Allow" }));
    const mj = await mjs.waitFor(
      ns.name,
      "tenant",
      "Applied=False NamespaceNotAllowed",
      (m) =>
        condition(m, "Applied")?.reason === "NamespaceNotAllowed" &&
        condition(m, "Verified")?.status === "True",
      90_000,
    );
    expect(condition(mj, "Mirrored")?.status).toBe("True");
    expect(condition(mj, "Applied")?.message).toMatch(
      new RegExp(`namespace ${ns.name} may not change the cluster`),
    );
    expect(mj.status?.appliedResources).toBeUndefined();
    expect(await owned("imagetagmirrorsets", "tenant")).toEqual([]);
    expect((await pullSecretAuths()).resourceVersion).toBe(before.resourceVersion);
  });
});
