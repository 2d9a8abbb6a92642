/**
 * The operator as the Helm chart installs it, as far as RBAC goes: the chart's
 * ServiceAccount and RBAC are rendered and applied for real, the operator runs in-process
 * with a token of that ServiceAccount (TokenRequest), and a full run of the real oc-mirror (an
 * image of the offline upstream named by tag, with every `spec.source` input: pull Secret, CA
 * bundle, release signing key) succeeds: mirrored, verified, applied (its ImageTagMirrorSet,
 * the pull secret entry) and cleaned up on deletion. The same
 * identity may not read Secrets where no MirrorJob is served, nor write any Secret but the
 * pull secret. Any request RBAC refuses during the run fails the test.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { renderChart } from "../../src/cli/generate-rbac.ts";
import { helmBinary, kubectlBinary } from "../../devkit/binaries.ts";
import { adminKubeConfig, isApiStatus, statusMessage, waitFor } from "../harness/kube.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  upstreamImageSet,
  upstreamSource,
  type RunningOperator,
} from "../harness/operator.ts";
import { startPodRunner, type PodRunner } from "../../devkit/pod-runner.ts";

const admin = adminKubeConfig();
const core = admin.makeApiClient(CoreV1Api);
const registry = inject("registry");
const suffix = randomBytes(3).toString("hex");
const release = `hmo-${suffix}`;
const operatorNs = `hmo-op-${suffix}`;
const mirrorNs = `hmo-mirrors-${suffix}`;
const otherNs = `hmo-other-${suffix}`;
let rendered = "";
let serviceAccount = "";
let operatorKc: KubeConfig;
let operator: RunningOperator | undefined;
let runner: PodRunner | undefined;
let root = "";

function kubectl(args: readonly string[], input?: string): string {
  const result = spawnSync(kubectlBinary(), ["--kubeconfig", inject("kubeconfig"), ...args], {
    encoding: "utf8",
    input,
  });
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

beforeAll(async () => {
  await installOpenShiftStandIns(admin);
  for (const name of [operatorNs, mirrorNs, otherNs]) {
    await core.createNamespace({
      body: { metadata: { name, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
    });
  }
  rendered = renderChart(helmBinary(), {
    release,
    namespace: operatorNs,
    set: {
      watchNamespaces: `{${operatorNs},${mirrorNs}}`,
      applyNamespaces: `{${mirrorNs}}`,
      "openshift.enabled": "true",
    },
    showOnly: [
      "serviceaccount.yaml",
      "rbac-manager.yaml",
      "rbac-apply.yaml",
      "rbac-leader-election.yaml",
      "rbac-watch-namespaces.yaml",
      "rbac-openshift.yaml",
    ],
  });
  kubectl(["apply", "-f", "-"], rendered);
  const sa = parseAllDocuments(rendered)
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .find((d) => d?.kind === "ServiceAccount");
  serviceAccount = sa?.metadata?.name ?? "";
  const token = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace: operatorNs,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = admin.getCurrentCluster();
  if (cluster === null) throw new Error("no cluster in the admin kubeconfig");
  operatorKc = new KubeConfig();
  operatorKc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: serviceAccount, token: token.status?.token ?? "" }],
    contexts: [{ name: "chart", cluster: cluster.name, user: serviceAccount }],
    currentContext: "chart",
  });
  root = mkdtempSync(join(tmpdir(), "hubmirror-pods-"));
  runner = startPodRunner({ kc: admin, root, namespaces: () => [mirrorNs] });
});

afterAll(async () => {
  await operator?.stop();
  await runner?.stop();
  rmSync(root, { recursive: true, force: true });
  if (rendered !== "") kubectl(["delete", "--ignore-not-found", "-f", "-"], rendered);
  for (const name of [operatorNs, mirrorNs, otherNs])
    await core.deleteNamespace({ name }).catch(() => undefined);
});

it("runs a full mirror run, verification and apply as the chart's ServiceAccount, and nothing more", async () => {
  operator = await startOperator(operatorKc, {
    namespace: operatorNs,
    leaseName: release,
    leaderElection: true,
    watchNamespaces: [operatorNs, mirrorNs],
    applyNamespaces: [mirrorNs],
  });
  await createPushSecret(admin, mirrorNs);
  await createPushSecret(admin, mirrorNs, "pull");
  await createRegistryCa(admin, mirrorNs);
  await createSourceInputs(admin, mirrorNs);
  const mjs = mirrorJobs(admin);
  await mjs.create(mirrorNs, "chart", {
    imageSet: { inline: upstreamImageSet({ additionalImages: ["tagOnly"] }) },
    source: upstreamSource(),
    registry: {
      url: `${registry.host}/${mirrorNs}`,
      pushSecretRef: { name: "push" },
      pullSecretRef: { name: "pull" },
      caBundleRef: { name: "registry-ca" },
    },
    apply: { disruptive: "Allow" },
  });
  const done = await mjs.waitFor(
    mirrorNs,
    "chart",
    "Ready=True",
    (mj) => condition(mj, "Ready")?.status === "True",
    90_000,
  );
  expect(condition(done, "Verified")?.status).toBe("True");
  expect(condition(done, "Applied")).toMatchObject({ status: "True", reason: "Applied" });
  expect(done.status?.appliedResources?.map((r) => r.kind).sort()).toEqual(["ImageTagMirrorSet", "Secret"]);

  // Deletion: the finalizer's cleanup, as the same identity.
  await mjs.delete(mirrorNs, "chart");
  await waitFor(
    "the MirrorJob and its ITMS gone",
    async () => {
      const gone = (await mjs.get(mirrorNs, "chart").catch(() => undefined)) === undefined;
      const itms = (await admin.makeApiClient(CustomObjectsApi).listClusterCustomObject({
        group: "config.openshift.io",
        version: "v1",
        plural: "imagetagmirrorsets",
        labelSelector: `hubmirror.dev/owner-namespace=${mirrorNs}`,
      })) as { items: unknown[] };
      return gone && itms.items.length === 0 ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  const refused = operator.logs.filter((l) => /forbidden|\b403\b/i.test(l));
  expect(refused).toEqual([]);

  // What the identity may not do.
  const asOperator = operatorKc.makeApiClient(CoreV1Api);
  await core.createNamespacedSecret({
    namespace: otherNs,
    body: { metadata: { name: "private" }, stringData: { k: "v" } },
  });
  await core
    .createNamespacedSecret({
      namespace: "openshift-config",
      body: { metadata: { name: `other-${suffix}` }, stringData: { k: "v" } },
    })
    .catch((err: unknown) => {
      if (!isApiStatus(err, 409)) throw err;
    });
  const denied = async (what: string, call: () => Promise<unknown>) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isApiStatus(err, 403), `${what}: ${err === undefined ? "allowed" : statusMessage(err)}`).toBe(
      true,
    );
  };
  await denied("read a Secret where no MirrorJob is served", () =>
    asOperator.readNamespacedSecret({ namespace: otherNs, name: "private" }),
  );
  await denied("list Secrets where no MirrorJob is served", () =>
    asOperator.listNamespacedSecret({ namespace: otherNs }),
  );
  await denied("create a Secret where MirrorJobs are served", () =>
    asOperator.createNamespacedSecret({
      namespace: mirrorNs,
      body: { metadata: { name: "x" }, stringData: { k: "v" } },
    }),
  );
  await denied("update a Secret where MirrorJobs are served", async () => {
    const push = await asOperator.readNamespacedSecret({ namespace: mirrorNs, name: "push" });
    return asOperator.replaceNamespacedSecret({ namespace: mirrorNs, name: "push", body: push });
  });
  await denied("update another Secret in openshift-config", () =>
    asOperator.replaceNamespacedSecret({
      namespace: "openshift-config",
      name: `other-${suffix}`,
      body: { metadata: { name: `other-${suffix}` }, stringData: { k: "changed" } },
    }),
  );
  await denied("list Secrets in openshift-config", () =>
    asOperator.listNamespacedSecret({ namespace: "openshift-config" }),
  );
  // And what it may: the pull secret.
  const pull = await asOperator.readNamespacedSecret({ namespace: "openshift-config", name: "pull-secret" });
  expect(pull.metadata?.name).toBe("pull-secret");
  await core.deleteNamespacedSecret({ namespace: "openshift-config", name: `other-${suffix}` });
});
