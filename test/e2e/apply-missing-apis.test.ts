/**
 * A cluster without the OpenShift APIs (kind, vanilla Kubernetes): its own control plane,
 * with only the project's CRD and none of the stand-ins the other apply tests install.
 * The MirrorJob mirrors (the real oc-mirror, an image of the offline upstream named by tag, so
 * oc-mirror generates an ImageTagMirrorSet) and verifies, then names what the cluster lacks,
 * and the operator stays healthy without retrying in a loop.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../devkit/control-plane.ts";
import { installCrds } from "../../devkit/crds.ts";
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

const registry = inject("registry");
const NAMESPACE = "mirrors";
let dir: string;
let cluster: ControlPlane;
let kc: KubeConfig;
let runner: PodRunner;
let operator: RunningOperator;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hubmirror-harness-plain-"));
  cluster = await startControlPlane(join(dir, "cluster"));
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigFile);
  await installCrds(kc);
  await kc.makeApiClient(CoreV1Api).createNamespace({
    body: {
      metadata: {
        name: NAMESPACE,
        labels: { "pod-security.kubernetes.io/enforce": "restricted" },
      },
    },
  });
  runner = startPodRunner({ kc, root: join(dir, "pods"), namespaces: () => [NAMESPACE] });
  operator = await startOperator(kc, { applyNamespaces: [NAMESPACE] });
}, 180_000);

afterAll(async () => {
  await operator.stop();
  await runner.stop();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("names the missing kinds, keeps mirroring and verifying, and stays healthy", async () => {
  await createPushSecret(kc, NAMESPACE);
  await createPushSecret(kc, NAMESPACE, "pull");
  await createRegistryCa(kc, NAMESPACE);
  await createSourceInputs(kc, NAMESPACE);
  const mjs = mirrorJobs(kc);
  await mjs.create(NAMESPACE, "plain", {
    imageSet: { inline: upstreamImageSet({ additionalImages: ["tagOnly"] }) },
    source: upstreamSource(),
    registry: {
      url: `${registry.host}/plain-cluster`,
      pushSecretRef: { name: "push" },
      pullSecretRef: { name: "pull" },
      caBundleRef: { name: "registry-ca" },
    },
    apply: { disruptive: "Allow" },
  });
  const mj = await mjs.waitFor(
    NAMESPACE,
    "plain",
    "Applied=False MissingAPIs",
    (m) => condition(m, "Applied")?.reason === "MissingAPIs",
    90_000,
  );
  expect(condition(mj, "Mirrored")?.status).toBe("True");
  expect(condition(mj, "Verified")?.status).toBe("True");
  expect(condition(mj, "Applied")?.message).toMatch(
    /the cluster lacks imagetagmirrorsets.config.openshift.io, secret openshift-config\/pull-secret; nothing applied/,
  );
  expect(condition(mj, "Ready")).toMatchObject({ status: "False", reason: "MissingAPIs" });

  // No retry storm: over a few seconds the key is reconciled at most a couple of times.
  const reconciles = () =>
    operator.logs.filter((l) => l.includes('"key":"mirrors/plain"') && l.includes('"msg":"reconciled"'))
      .length;
  const before = reconciles();
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  expect(reconciles() - before).toBeLessThanOrEqual(2);
  expect(operator.logs.join("")).not.toMatch(/"msg":"reconcile failed"/);
  const health = await fetch(`http://127.0.0.1:${operator.health.port}/healthz`);
  expect(health.status).toBe(200);
  const ready = await fetch(`http://127.0.0.1:${operator.health.port}/readyz`);
  expect(ready.status).toBe(200);
});
