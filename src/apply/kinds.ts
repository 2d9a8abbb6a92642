/**
 * The kinds of cluster configuration a run may apply, where each lives, and the pull
 * secret. This table is the allowlist: anything in a run's result that is not one of
 * these (at this apiVersion, in this namespace) is rejected.
 */
import type { APPLY_KINDS } from "../api/mirrorjob.ts";

export type ApplyKind = (typeof APPLY_KINDS)[number];

export interface KindInfo {
  readonly applyKind: ApplyKind;
  readonly apiVersion: string;
  readonly kind: string;
  /** The fixed namespace objects of this kind go to; undefined for cluster-scoped kinds. */
  readonly namespace?: string;
  /** What the cluster needs for this kind (named when it is missing). */
  readonly requires: string;
  /** Longest name the kind allows (a CatalogSource's name becomes a Service name). */
  readonly maxName: number;
}

export const KINDS: readonly KindInfo[] = [
  {
    applyKind: "ImageDigestMirrorSet",
    apiVersion: "config.openshift.io/v1",
    kind: "ImageDigestMirrorSet",
    requires: "imagedigestmirrorsets.config.openshift.io",
    maxName: 253,
  },
  {
    applyKind: "ImageTagMirrorSet",
    apiVersion: "config.openshift.io/v1",
    kind: "ImageTagMirrorSet",
    requires: "imagetagmirrorsets.config.openshift.io",
    maxName: 253,
  },
  {
    applyKind: "CatalogSource",
    apiVersion: "operators.coreos.com/v1alpha1",
    kind: "CatalogSource",
    namespace: "openshift-marketplace",
    requires: "catalogsources.operators.coreos.com",
    maxName: 63,
  },
  {
    applyKind: "ClusterCatalog",
    apiVersion: "olm.operatorframework.io/v1",
    kind: "ClusterCatalog",
    requires: "clustercatalogs.olm.operatorframework.io",
    maxName: 253,
  },
  {
    applyKind: "UpdateService",
    apiVersion: "updateservice.operator.openshift.io/v1",
    kind: "UpdateService",
    namespace: "openshift-update-service",
    requires: "updateservices.updateservice.operator.openshift.io",
    maxName: 63,
  },
  {
    applyKind: "ReleaseSignatures",
    apiVersion: "v1",
    kind: "ConfigMap",
    namespace: "openshift-config-managed",
    requires: "namespace openshift-config-managed",
    maxName: 253,
  },
];

export function kindInfo(applyKind: ApplyKind): KindInfo {
  const info = KINDS.find((k) => k.applyKind === applyKind);
  if (info === undefined) throw new Error(`unknown apply kind ${applyKind}`);
  return info;
}

/** The cluster's global pull secret (what nodes pull with). */
export const PULL_SECRET = { namespace: "openshift-config", name: "pull-secret" } as const;

/** Labels that mark an applied object as a MirrorJob's (values are the owner's namespace and name). */
export const OWNER_LABELS = {
  namespace: "hubmirror.dev/owner-namespace",
  name: "hubmirror.dev/owner-name",
} as const;

/** Finalizer that lets the operator clean up cluster-scoped objects when a MirrorJob is deleted. */
export const FINALIZER = "hubmirror.dev/applied-resources";

/** Whether the object carries the finalizer that cleans up what a MirrorJob applied. */
export function hasFinalizer(obj: {
  readonly metadata: { readonly finalizers?: readonly string[] };
}): boolean {
  return obj.metadata.finalizers?.includes(FINALIZER) ?? false;
}
