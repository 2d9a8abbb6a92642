/**
 * Vitest global setup for e2e tests: one cluster and one registry per test run, torn down
 * when the run ends (also after failures). If the runner itself is killed, the kernel ends
 * the harness processes (see devkit/processes.ts).
 *
 * The cluster is the local control plane this harness starts (etcd, kube-apiserver,
 * kube-controller-manager), or, when HUBMIRROR_E2E_KUBECONFIG names a kubeconfig, the
 * cluster of its current context (e.g. kind). Against such a cluster the setup starts no
 * control plane; it still starts the registry on 127.0.0.1, installs or updates the
 * project's CRDs, and at the end deletes the namespaces this run created (labelled
 * `hubmirror.dev/e2e-run=<run id>`). The test pod runner still runs our Jobs' pods: the
 * harness gives every test MirrorJob a node selector no node has (see
 * TEST_POD_RUNNER_NODE_SELECTOR), so the scheduler leaves their pods Pending for it.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { startControlPlane } from "../../devkit/control-plane.ts";
import { installCrds } from "../../devkit/crds.ts";
import { stopAll, waitFor } from "../../devkit/processes.ts";
import { startRegistry } from "../../devkit/registry.ts";
import { startUpstream, upstreamInfo, type UpstreamInfo } from "../../devkit/upstream.ts";

export interface RegistryInfo {
  host: string;
  caFile: string;
  caPem: string;
  username: string;
  password: string;
  authFile: string;
}

/** Names an existing cluster to test against instead of the local control plane. */
export const EXTERNAL_KUBECONFIG_ENV = "HUBMIRROR_E2E_KUBECONFIG";
/** Every namespace a test run creates carries this label, valued with the run's id. */
export const RUN_LABEL = "hubmirror.dev/e2e-run";

declare module "vitest" {
  export interface ProvidedContext {
    harnessDir: string;
    kubeconfig: string;
    apiServer: string;
    /** `local`: the control plane this run started; `external`: HUBMIRROR_E2E_KUBECONFIG's cluster. */
    clusterMode: "local" | "external";
    /** The local control plane's folder (its CA issues restricted identities: see kube.ts); "" if external. */
    clusterDir: string;
    /** Labels this run's namespaces (RUN_LABEL). */
    runId: string;
    registry: RegistryInfo;
    /** The offline upstream every test mirrors from (see devkit/upstream.ts). */
    upstream: UpstreamInfo;
  }
}

/** Deletes the namespaces of one run and waits (bounded) until they are gone. */
async function deleteRunNamespaces(kc: KubeConfig, runId: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const labelSelector = `${RUN_LABEL}=${runId}`;
  const list = await core.listNamespace({ labelSelector });
  for (const ns of list.items) {
    await core.deleteNamespace({ name: ns.metadata?.name ?? "" }).catch(() => undefined);
  }
  await waitFor(
    `namespaces labelled ${labelSelector} to be deleted`,
    async () => ((await core.listNamespace({ labelSelector })).items.length === 0 ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 500 },
  ).catch((err: unknown) => {
    // Teardown must not fail the run for a slow namespace controller; say what is left.
    console.warn(String(err));
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), "hubmirror-harness-"));
  const keep = process.env.HUBMIRROR_KEEP_HARNESS === "1";
  const external = process.env[EXTERNAL_KUBECONFIG_ENV];
  const runId = randomBytes(6).toString("hex");
  let externalKc: KubeConfig | undefined;
  // The upstream's update-graph server runs in this process: without stop() it keeps it alive.
  let stopUpstream: (() => Promise<void>) | undefined;
  const teardown = async () => {
    if (externalKc !== undefined) await deleteRunNamespaces(externalKc, runId).catch(() => undefined);
    await stopUpstream?.().catch(() => undefined);
    await stopAll();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const useExternal = external !== undefined && external !== "";
    const [controlPlane, registry, upstream] = await Promise.all([
      useExternal ? undefined : startControlPlane(join(dir, "cluster")),
      startRegistry(join(dir, "registry")),
      startUpstream(join(dir, "upstream")).then((u) => {
        stopUpstream = () => u.stop();
        return u;
      }),
    ]);
    let kubeconfigFile: string;
    let server: string;
    if (controlPlane === undefined) {
      kubeconfigFile = resolve(external ?? "");
      externalKc = new KubeConfig();
      externalKc.loadFromFile(kubeconfigFile);
      server = externalKc.getCurrentCluster()?.server ?? "";
      if (server === "") throw new Error(`${EXTERNAL_KUBECONFIG_ENV}=${external ?? ""}: no current cluster`);
    } else {
      kubeconfigFile = controlPlane.kubeconfigFile;
      server = controlPlane.server;
    }
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigFile);
    await installCrds(kc);
    project.provide("harnessDir", dir);
    project.provide("kubeconfig", kubeconfigFile);
    project.provide("apiServer", server);
    project.provide("clusterMode", externalKc !== undefined ? "external" : "local");
    project.provide("clusterDir", controlPlane?.dir ?? "");
    project.provide("runId", runId);
    project.provide("registry", {
      host: registry.host,
      caFile: registry.caFile,
      caPem: registry.caPem,
      username: registry.username,
      password: registry.password,
      authFile: registry.authFile,
    });
    project.provide("upstream", upstreamInfo(upstream));
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
