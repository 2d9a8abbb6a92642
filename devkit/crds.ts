/** Installs the project's CRDs (from config/crd/) and waits until the API serves them. */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { parse } from "yaml";
import { repoRoot } from "./binaries.ts";
import { waitFor } from "./processes.ts";

/** The CRDs in `dir`: this checkout's config/crd/, or another build's (a benchmark's baseline). */
export function projectCrds(dir = join(repoRoot, "config", "crd")): V1CustomResourceDefinition[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => parse(readFileSync(join(dir, f), "utf8")) as V1CustomResourceDefinition);
}

export async function installCrds(
  kc: KubeConfig,
  crds: readonly V1CustomResourceDefinition[] = projectCrds(),
): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const crd of crds) {
    const name = crd.metadata?.name ?? "";
    await api.patchCustomResourceDefinition(
      { name, body: crd, fieldManager: "hubmirror-test-harness", force: true },
      setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
    );
    await waitFor(
      `CRD ${name} to be established`,
      async () => {
        const current = await api.readCustomResourceDefinition({ name });
        return current.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")
          ? true
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // Established comes before the resource's storage is ready: until then a list answers
    // 429 "storage is (re)initializing". Served means a list succeeds.
    const version = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name ?? "";
    await waitFor(
      `CRD ${name} to be served`,
      async () => {
        await custom.listClusterCustomObject({
          group: crd.spec.group,
          version,
          plural: crd.spec.names.plural,
          limit: 1,
        });
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }
}
