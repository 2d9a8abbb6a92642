/**
 * The demo's sample: config/samples/release-and-operator.yaml pointed at the stack's upstream
 * and target, and the namespace, Secrets and ConfigMaps it refers to.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { parse } from "yaml";
import { repoRoot } from "../../devkit/binaries.ts";
import type { TestRegistry } from "../../devkit/registry.ts";
import {
  createSourceInputs,
  dockerConfigJson,
  upstreamSource,
  type SourceInputNames,
} from "../../devkit/source-inputs.ts";
import type { RunningStack } from "../../devkit/stack.ts";
import { upstreamInfo, type OfflineUpstream } from "../../devkit/upstream.ts";
import { NAMESPACE } from "./common.ts";

/** The user sample the stack's sample is made from (its metadata and Secret/ConfigMap names). */
export const SAMPLE_FILE = "config/samples/release-and-operator.yaml";

/** The Secrets and ConfigMaps the sample refers to (the registry's as in the sample file). */
export const INPUTS = {
  push: "mirror-registry-push",
  pull: "mirror-registry-pull",
  registryCa: "mirror-registry-ca",
  source: {
    secret: "source-pull-secret",
    ca: "source-ca",
    key: "release-verification-key",
  } satisfies SourceInputNames,
} as const;

/**
 * config/samples/release-and-operator.yaml, pointed at the upstream and the target: the whole
 * release channel with its update graph, the catalog's demo-operator package and the three
 * additional images, applied to the stand-in OpenShift APIs.
 */
export function sampleMirrorJob(up: OfflineUpstream, target: TestRegistry): Record<string, unknown> {
  const sample = parse(readFileSync(join(repoRoot, SAMPLE_FILE), "utf8")) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  };
  return {
    ...sample,
    metadata: { ...sample.metadata, namespace: NAMESPACE },
    spec: {
      ...sample.spec,
      imageSet: {
        inline: up.imageSetConfig({ release: true, operators: true, additionalImages: true }),
      },
      registry: {
        url: `${target.host}/mirror`,
        pushSecretRef: { name: INPUTS.push },
        pullSecretRef: { name: INPUTS.pull },
        caBundleRef: { name: INPUTS.registryCa },
      },
      source: upstreamSource(upstreamInfo(up), INPUTS.source),
      // A new ImageTagMirrorSet drains nodes on OpenShift, so it needs approval by default;
      // this cluster has no nodes.
      apply: { mode: "Auto", disruptive: "Allow" },
    },
  };
}

/** The sample's namespace, its registry's Secrets and CA, and its source inputs (source-inputs.ts). */
export async function createSampleObjects(stack: RunningStack): Promise<void> {
  const { kc, upstream: up, target, reader } = stack;
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: {
      metadata: {
        name: NAMESPACE,
        labels: {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/enforce-version": "latest",
        },
      },
    },
  });
  const secret = (name: string, host: string, username: string, password: string) =>
    core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: {
        metadata: { name },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": dockerConfigJson(host, username, password) },
      },
    });
  await Promise.all([
    secret(INPUTS.push, target.host, target.username, target.password),
    secret(INPUTS.pull, target.host, reader.username, reader.password),
    core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: { metadata: { name: INPUTS.registryCa }, data: { "ca-bundle.crt": target.caPem } },
    }),
    // The source registry's pull secret, its CA and the update graph and signature server's,
    // and the release key.
    createSourceInputs(kc, NAMESPACE, upstreamInfo(up), { names: INPUTS.source }),
  ]);
}
