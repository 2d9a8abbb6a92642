/**
 * Vitest global setup for e2e tests: one control plane and one registry per test
 * run, torn down when the run ends (also after failures). If the runner itself is
 * killed, the kernel ends the harness processes (see processes.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { KubeConfig } from "@kubernetes/client-node";
import { startControlPlane } from "./control-plane.ts";
import { installCrds } from "./crds.ts";
import { stopAll } from "./processes.ts";
import { startRegistry } from "./registry.ts";

export interface RegistryInfo {
  host: string;
  caFile: string;
  caPem: string;
  username: string;
  password: string;
  authFile: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    harnessDir: string;
    kubeconfig: string;
    apiServer: string;
    /** The control plane's folder (its CA issues restricted identities: see kube.ts). */
    clusterDir: string;
    registry: RegistryInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), "hubmirror-harness-"));
  const keep = process.env.HUBMIRROR_KEEP_HARNESS === "1";
  const teardown = async () => {
    await stopAll();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [controlPlane, registry] = await Promise.all([
      startControlPlane(join(dir, "cluster")),
      startRegistry(join(dir, "registry")),
    ]);
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfigFile);
    await installCrds(kc);
    project.provide("harnessDir", dir);
    project.provide("kubeconfig", controlPlane.kubeconfigFile);
    project.provide("apiServer", controlPlane.server);
    project.provide("clusterDir", controlPlane.dir);
    project.provide("registry", {
      host: registry.host,
      caFile: registry.caFile,
      caPem: registry.caPem,
      username: registry.username,
      password: registry.password,
      authFile: registry.authFile,
    });
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
