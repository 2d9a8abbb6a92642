/**
 * oc-mirror's authfile without any Secret written by the operator: the Job's pod mounts the
 * push Secret and the source pull Secret, and its `merge-auth` init container (the real CLI,
 * run by the test pod runner) merges them into an in-memory volume. Proven by a run of the
 * real oc-mirror whose pulls only succeed with the source Secret's credentials and whose
 * pushes only succeed if the push Secret won the merge, and by a run of an operator whose
 * identity may only read Secrets.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import { LABELS } from "../../src/job/names.ts";
import {
  adminKubeConfig,
  isApiStatus,
  restrictedKubeConfig,
  useNamespace,
  waitFor,
} from "../harness/kube.ts";
import {
  SOURCE_INPUTS,
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  upstream,
  upstreamImageSet,
  upstreamSource,
  type RunningOperator,
} from "../harness/operator.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const mjs = mirrorJobs(kc);
const registry = inject("registry");

const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});
const podRunner = usePodRunner(ns);

let operator: RunningOperator | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await operator?.stop();
  operator = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function spec(extra: Record<string, unknown> = {}) {
  return {
    imageSet: { inline: upstreamImageSet({ additionalImages: ["multiArch", "tagOnly"] }) },
    source: upstreamSource(),
    registry: {
      url: `${registry.host}/${ns.name}`,
      pushSecretRef: { name: "push" },
      caBundleRef: { name: "registry-ca" },
    },
    // The run's authfile only; the apply stage is test/e2e/apply.test.ts's subject.
    apply: { mode: "None" },
    ...extra,
  };
}

async function secretNames(): Promise<string[]> {
  return (await core.listNamespacedSecret({ namespace: ns.name })).items.map((s) => s.metadata?.name ?? "");
}

describe("the run's authfile", () => {
  it("is merged in the pod from the source pull Secret and the push Secret, the push Secret winning", async () => {
    operator = await startOperator(kc);
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    // The source pull Secret holds the source registry's credentials (the real oc-mirror pulls
    // only with them) and also (wrong) credentials for the target registry: if they won the
    // merge, oc-mirror's pushes would be refused and the run would fail.
    const up = upstream();
    const source = JSON.stringify({
      auths: {
        "registry.redhat.io": { auth: Buffer.from("rh:token").toString("base64") },
        [up.source.host]: {
          auth: Buffer.from(`${up.source.username}:${up.source.password}`).toString("base64"),
        },
        [registry.host]: { auth: Buffer.from(`${registry.username}:wrong`).toString("base64") },
      },
    });
    await createPushSecret(kc, ns.name, "redhat-pull", source);
    await mjs.create(
      ns.name,
      "merged",
      spec({ source: { ...upstreamSource(), pullSecretRef: { name: "redhat-pull" } } }),
    );
    const done = await mjs.waitFor(
      ns.name,
      "merged",
      "Ready=True",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    expect(done.status?.lastRun).toMatchObject({
      result: "Succeeded",
      images: { additional: { copied: 2, failed: 0, total: 2 } },
    });
    expect(condition(done, "Verified")?.status).toBe("True");
    expect((await secretNames()).sort()).toEqual(["push", "redhat-pull", SOURCE_INPUTS.secret].sort());

    // The Job mounts only the .dockerconfigjson of each Secret, and only into merge-auth.
    const [job] = (
      await batch.listNamespacedJob({ namespace: ns.name, labelSelector: `${LABELS.mirrorJob}=merged` })
    ).items;
    const pod = job?.spec?.template.spec;
    expect(pod?.volumes?.filter((v) => v.secret !== undefined).map((v) => v.secret)).toEqual([
      {
        secretName: "push",
        items: [{ key: ".dockerconfigjson", path: ".dockerconfigjson" }],
        defaultMode: 0o444,
      },
      {
        secretName: "redhat-pull",
        items: [{ key: ".dockerconfigjson", path: ".dockerconfigjson" }],
        defaultMode: 0o444,
      },
    ]);
    expect(pod?.initContainers?.map((c) => c.name)).toEqual(["merge-auth"]);

    // What the init container wrote, where oc-mirror read it (the runner's folder of that volume).
    const started = podRunner.runner().started.find((p) => p.startsWith(`${ns.name}/merged-`)) ?? "";
    // (containers/auth.json: also where containers/image looks under XDG_RUNTIME_DIR.)
    const authFile = join(podRunner.root(), "pods", started, "volumes", "auth", "containers", "auth.json");
    const merged = JSON.parse(readFileSync(authFile, "utf8")) as { auths: Record<string, { auth: string }> };
    expect(Object.keys(merged.auths).sort()).toEqual(
      [registry.host, "registry.redhat.io", upstream().source.host].sort(),
    );
    expect(Buffer.from(merged.auths[registry.host]?.auth ?? "", "base64").toString()).toBe(
      `${registry.username}:${registry.password}`,
    );
    expect(statSync(authFile).mode & 0o777).toBe(0o444);
  });

  it("needs no write access to Secrets: a run completes for an operator that may only read them", async () => {
    const user = `hubmirror-operator-${ns.name}`;
    const name = `hubmirror-e2e-${ns.name}`;
    await rbac.createClusterRole({
      body: {
        metadata: { name },
        rules: [
          { apiGroups: ["hubmirror.dev"], resources: ["mirrorjobs"], verbs: ["get", "list", "watch"] },
          {
            apiGroups: ["hubmirror.dev"],
            resources: ["mirrorjobs/status"],
            verbs: ["get", "patch", "update"],
          },
          { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
          {
            apiGroups: [""],
            resources: ["configmaps"],
            verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
          },
          { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
          {
            apiGroups: [""],
            resources: ["serviceaccounts", "persistentvolumeclaims"],
            verbs: ["get", "create"],
          },
          { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "delete"] },
          {
            apiGroups: ["rbac.authorization.k8s.io"],
            resources: ["roles", "rolebindings"],
            verbs: ["get", "create", "delete", "deletecollection"],
          },
          { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create"] },
        ],
      },
    });
    cleanups.push(() => rbac.deleteClusterRole({ name }));
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      },
    });
    cleanups.push(() => rbac.deleteClusterRoleBinding({ name }));
    const restricted = restrictedKubeConfig(user);
    // RBAC caches converge within a moment of the binding's creation.
    await waitFor(
      "the operator identity to be allowed to list Jobs",
      async () => (await restricted.makeApiClient(BatchV1Api).listJobForAllNamespaces()).items,
      { timeoutMs: 10_000 },
    );
    const denied = await restricted
      .makeApiClient(CoreV1Api)
      .createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: "x" } } })
      .then(
        () => "created",
        (err: unknown) => err,
      );
    expect(isApiStatus(denied, 403)).toBe(true);

    operator = await startOperator(restricted);
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    await mjs.create(ns.name, "readonly", spec());
    const done = await mjs.waitFor(
      ns.name,
      "readonly",
      "Ready=True",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    expect(done.status?.lastRun?.result).toBe("Succeeded");
    expect(done.status?.lastRun?.images).toEqual({ additional: { copied: 2, failed: 0, total: 2 } });
    expect(condition(done, "Verified")?.status).toBe("True");
    // Only the Secrets the test made.
    expect((await secretNames()).sort()).toEqual(["push", SOURCE_INPUTS.secret].sort());
    // No request of the operator was refused by RBAC (others' namespaces being deleted may refuse
    // Events with "forbidden: unable to create new content", which is not about permissions).
    expect(operator.logs.join("")).not.toMatch(/forbidden: User/);
  });
});
