/**
 * Where a run's volumes are mounted in its pod. Every path sits under one root, so
 * the test pod runner can map a container path to a local folder by its prefix.
 */
export const MOUNT_ROOT = "/hubmirror";

export const MOUNTS = {
  workspace: `${MOUNT_ROOT}/workspace`,
  cache: `${MOUNT_ROOT}/cache`,
  home: `${MOUNT_ROOT}/home`,
  tmp: `${MOUNT_ROOT}/tmp`,
  input: `${MOUNT_ROOT}/input`,
  /** The merged authfile (an in-memory emptyDir the merge-auth init container writes). */
  auth: `${MOUNT_ROOT}/auth`,
  /** The push Secret's .dockerconfigjson (read by merge-auth only). */
  pushSecret: `${MOUNT_ROOT}/secrets/push`,
  /** The source pull Secret's .dockerconfigjson (read by merge-auth only). */
  sourceSecret: `${MOUNT_ROOT}/secrets/source`,
  registryCa: `${MOUNT_ROOT}/ca/registry`,
  sourceCa: `${MOUNT_ROOT}/ca/source`,
  /** spec.source.release.signatureKeyRef, as `key.asc`. */
  releaseKey: `${MOUNT_ROOT}/release-key`,
  /** spec.source.registriesConfRef, as `registries.conf`. */
  registriesConf: `${MOUNT_ROOT}/registries`,
  /**
   * The update graph image the pull-graph-image init container pulls (an emptyDir, as the OCI
   * layout `layout/`), which the oc-mirror container's wrapper copies into the workspace.
   */
  graphImage: `${MOUNT_ROOT}/graph-image`,
} as const;

/** The OCI layout of the update graph image inside MOUNTS.graphImage. */
export const GRAPH_IMAGE_LAYOUT = `${MOUNTS.graphImage}/layout`;

/** The reporter reads the wrapper's exit codes, heartbeat and output here. */
export const STATE_DIR = `${MOUNTS.workspace}/.hubmirror`;
