/**
 * Stand-ins for the OpenShift APIs the operator applies to, for tests on a plain
 * kube-apiserver: CRDs for ImageDigestMirrorSet, ImageTagMirrorSet, CatalogSource,
 * ClusterCatalog, UpdateService and MachineConfigPool (whose status tests drive as the Machine
 * Config Operator would) with the real groups, versions, kinds, plurals and
 * scopes (the schemas only keep `spec` open: validation of content is the operator's job,
 * not the stand-in's), and the namespaces and global pull secret an OpenShift cluster has.
 */
import { CoreV1Api, type KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import { installCrds } from "./crds.ts";
import { isApiStatus } from "./kube-errors.ts";

interface StandIn {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly scope: "Cluster" | "Namespaced";
}

const STAND_INS: readonly StandIn[] = [
  {
    group: "config.openshift.io",
    version: "v1",
    kind: "ImageDigestMirrorSet",
    plural: "imagedigestmirrorsets",
    scope: "Cluster",
  },
  {
    group: "config.openshift.io",
    version: "v1",
    kind: "ImageTagMirrorSet",
    plural: "imagetagmirrorsets",
    scope: "Cluster",
  },
  {
    group: "operators.coreos.com",
    version: "v1alpha1",
    kind: "CatalogSource",
    plural: "catalogsources",
    scope: "Namespaced",
  },
  {
    group: "olm.operatorframework.io",
    version: "v1",
    kind: "ClusterCatalog",
    plural: "clustercatalogs",
    scope: "Cluster",
  },
  {
    group: "machineconfiguration.openshift.io",
    version: "v1",
    kind: "MachineConfigPool",
    plural: "machineconfigpools",
    scope: "Cluster",
  },
  {
    group: "updateservice.operator.openshift.io",
    version: "v1",
    kind: "UpdateService",
    plural: "updateservices",
    scope: "Namespaced",
  },
];

export const OPENSHIFT_NAMESPACES = [
  "openshift-config",
  "openshift-config-managed",
  "openshift-marketplace",
  "openshift-update-service",
] as const;

export function openshiftCrds(): V1CustomResourceDefinition[] {
  return STAND_INS.map((s) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${s.plural}.${s.group}` },
    spec: {
      group: s.group,
      scope: s.scope,
      names: { kind: s.kind, plural: s.plural, singular: s.kind.toLowerCase(), listKind: `${s.kind}List` },
      versions: [
        {
          name: s.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              },
            },
          },
        },
      ],
    },
  }));
}

/**
 * Makes a control plane look like OpenShift to the operator: the CRDs, the namespaces, and
 * `openshift-config/pull-secret` (empty `auths`). Idempotent, and safe for test files running
 * in parallel: what exists is kept.
 */
export async function installOpenShiftStandIns(kc: KubeConfig): Promise<void> {
  await installCrds(kc, openshiftCrds());
  const core = kc.makeApiClient(CoreV1Api);
  const ignoreExisting = (err: unknown) => {
    if (!isApiStatus(err, 409)) throw err;
  };
  for (const name of OPENSHIFT_NAMESPACES) {
    await core.createNamespace({ body: { metadata: { name } } }).catch(ignoreExisting);
  }
  await core
    .createNamespacedSecret({
      namespace: "openshift-config",
      body: {
        metadata: { name: "pull-secret" },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": JSON.stringify({ auths: {} }) },
      },
    })
    .catch(ignoreExisting);
}

/** Adds entries to the cluster pull secret (read, merge, write; retried when another writer wins). */
export async function addPullSecretEntries(kc: KubeConfig, entries: Record<string, unknown>): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (let attempt = 1; ; attempt++) {
    const secret = await core.readNamespacedSecret({ namespace: "openshift-config", name: "pull-secret" });
    const current = JSON.parse(
      Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8") || "{}",
    ) as { auths?: Record<string, unknown> };
    secret.data = {
      ".dockerconfigjson": Buffer.from(
        JSON.stringify({ ...current, auths: { ...current.auths, ...entries } }),
      ).toString("base64"),
    };
    try {
      await core.replaceNamespacedSecret({
        namespace: "openshift-config",
        name: "pull-secret",
        body: secret,
      });
      return;
    } catch (err) {
      if (!isApiStatus(err, 409) || attempt >= 5) throw err;
    }
  }
}
