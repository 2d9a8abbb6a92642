/**
 * The oc-mirror command line of a run (mirror-to-registry). Credentials are never
 * arguments: oc-mirror reads the mounted authfile named by --authfile.
 */
import type { MirrorJobSpec } from "../api/mirrorjob.ts";
import { AUTH_FILE_NAME } from "./auth.ts";
import { workspacePaths } from "../ocmirror/workspace.ts";
import { GRAPH_IMAGE_LAYOUT, MOUNTS, STATE_DIR } from "./mounts.ts";

/** oc-mirror's default port for its local cache registry; the test pod runner rewrites it. */
export const OC_MIRROR_PORT = 55000;

export function ocMirrorArgs(spec: MirrorJobSpec): string[] {
  const m = spec.mirror;
  return [
    "--v2",
    "--config",
    `${MOUNTS.input}/imageset-config.yaml`,
    "--workspace",
    `file://${MOUNTS.workspace}`,
    "--cache-dir",
    MOUNTS.cache,
    "--authfile",
    `${MOUNTS.auth}/${AUTH_FILE_NAME}`,
    "--port",
    String(OC_MIRROR_PORT),
    "--parallel-images",
    String(m.parallelImages),
    "--parallel-layers",
    String(m.parallelLayers),
    "--retry-times",
    String(m.retryTimes),
    ...(m.retryDelay !== undefined ? ["--retry-delay", m.retryDelay] : []),
    ...(m.imageTimeout !== undefined ? ["--image-timeout", m.imageTimeout] : []),
    "--log-level",
    // The reporter reads oc-mirror's info lines (totals, copies, results): `error` is applied
    // to what the reporter echoes instead (see the reporter's --echo-level).
    m.logLevel === "error" ? "info" : m.logLevel,
    `--dest-tls-verify=${String(spec.registry.tlsVerify)}`,
    `--src-tls-verify=${String(spec.source.tlsVerify)}`,
    `docker://${spec.registry.url}`,
  ];
}

const WORKING_DIR = workspacePaths(MOUNTS.workspace);

/**
 * The oc-mirror container runs this POSIX shell wrapper around oc-mirror. It runs a
 * dry run first (the run's image list, for verification), keeps the mapping (the mirror
 * pass may replace dry-run/), then mirrors. It records each exit code and a heartbeat in
 * the state folder the reporter reads; the reporter treats a stale heartbeat without an
 * exit code as a crash (the whole container was killed). oc-mirror's output goes to a
 * file the reporter follows and echoes, so `kubectl logs -c reporter` shows it.
 *
 * Before the dry run it copies the update graph image the pull-graph-image init container
 * pulled (if it did) into `working-dir/graph-preparation`, where oc-mirror reads it: the
 * workspace is written by this container alone, whose user may differ from the init
 * container's (a plain kubelet runs each container as its image's user; an oc-mirror user
 * could not write into folders the init container made there).
 *
 * Between the passes it removes what is not the mirror pass's own: the cluster resources a
 * 5.x dry run writes, and the errors files of earlier runs (5.x keeps logs/ across runs), so
 * the reporter collects this run's and no other's. A dry run is not read-only: it contacts
 * the target with the push credentials (and, without an update graph of the user's, builds
 * and pushes the graph image), which is why it runs in this pod and nowhere else.
 */
export const WRAPPER_SCRIPT = `set -u
umask 0022
state="${STATE_DIR}"
mkdir -p "$state"
rm -f "$state"/*.exit "$state"/*.out "$state"/mapping.txt "$state"/mirror.started
( while :; do date +%s > "$state/heartbeat"; sleep 5; done ) &
beat=$!
if [ -d "${GRAPH_IMAGE_LAYOUT}" ]; then
  if ! { mkdir -p "${WORKING_DIR.workingDir}" && rm -rf "${WORKING_DIR.graphPreparation}" && cp -R "${GRAPH_IMAGE_LAYOUT}" "${WORKING_DIR.graphPreparation}"; } > "$state/dry-run.out" 2>&1; then
    echo "could not copy the update graph image into ${WORKING_DIR.graphPreparation}" >> "$state/dry-run.out"
    echo 1 > "$state/dry-run.exit"
    kill "$beat"
    exit 1
  fi
fi
oc-mirror "$@" --dry-run > "$state/dry-run.out" 2>&1
code=$?
echo "$code" > "$state/dry-run.exit"
if [ "$code" -ne 0 ]; then kill "$beat"; exit "$code"; fi
cp "${WORKING_DIR.mapping}" "$state/mapping.txt" 2>/dev/null || : > "$state/mapping.txt"
rm -rf "${WORKING_DIR.clusterResources}"
rm -f "${WORKING_DIR.logs}"/mirroring_errors_*.txt
date +%s > "$state/mirror.started"
oc-mirror "$@" > "$state/mirror.out" 2>&1
code=$?
echo "$code" > "$state/mirror.exit"
kill "$beat"
exit "$code"
`;

/** Files of a prune step's input ConfigMap (mounted at MOUNTS.input). */
export const PRUNE_INPUT = {
  /** `delete --generate`: the earlier run's image set as a DeleteImageSetConfiguration. */
  generate: "delete-imageset-config.yaml",
  /** `delete --delete-yaml-file`: the approved manifests, by digest. */
  delete: "delete-images.yaml",
} as const;

/** Flags both delete steps share: credentials by file, TLS as the spec says, the cache registry's port. */
function pruneCommonArgs(spec: MirrorJobSpec): string[] {
  return [
    "--cache-dir",
    MOUNTS.cache,
    "--authfile",
    `${MOUNTS.auth}/${AUTH_FILE_NAME}`,
    "--port",
    String(OC_MIRROR_PORT),
    "--log-level",
    spec.mirror.logLevel === "error" ? "info" : spec.mirror.logLevel,
    `--dest-tls-verify=${String(spec.registry.tlsVerify)}`,
    `--src-tls-verify=${String(spec.source.tlsVerify)}`,
  ];
}

/**
 * `oc-mirror --v2 delete --generate`: lists what the earlier run's image set put into the
 * registry (from the workspace and the cache, as a disk-to-mirror run would) into
 * `working-dir/delete/delete-images-<step id>.yaml`. Deletes nothing.
 */
export function pruneGenerateArgs(spec: MirrorJobSpec, stepId: string): string[] {
  return [
    "--v2",
    "delete",
    "--generate",
    "--config",
    `${MOUNTS.input}/${PRUNE_INPUT.generate}`,
    "--workspace",
    `file://${MOUNTS.workspace}`,
    "--delete-id",
    stepId,
    ...pruneCommonArgs(spec),
    `docker://${spec.registry.url}`,
  ];
}

/**
 * `oc-mirror --v2 delete --delete-yaml-file`: deletes the listed manifests from the registry.
 * No `--workspace`: without `--generate` oc-mirror does not add `working-dir` to it and writes
 * its logs to `./<the value>/logs` (docs/oc-mirror-offline.md §8); the wrapper runs it in the
 * step's own folder instead. No `--force-cache-delete`: in mirror-to-registry the cache holds
 * only rebuilt catalogs, and a release image missing there fails the whole delete.
 */
export function pruneDeleteArgs(spec: MirrorJobSpec): string[] {
  const m = spec.mirror;
  return [
    "--v2",
    "delete",
    "--delete-yaml-file",
    `${MOUNTS.input}/${PRUNE_INPUT.delete}`,
    "--parallel-images",
    String(m.parallelImages),
    "--retry-times",
    String(m.retryTimes),
    ...(m.retryDelay !== undefined ? ["--retry-delay", m.retryDelay] : []),
    ...pruneCommonArgs(spec),
    `docker://${spec.registry.url}`,
  ];
}

/**
 * The oc-mirror container of a prune Job runs this wrapper: one oc-mirror start in the step's
 * own folder (`<state>/prune-$HUBMIRROR_PRUNE_STEP`, fresh each time), its output to `out`,
 * its exit code to `exit`, a heartbeat every 5 s; the reporter reads them (report/prune-reporter.ts).
 */
export const PRUNE_WRAPPER_SCRIPT = `set -u
umask 0022
dir="${STATE_DIR}/prune-$HUBMIRROR_PRUNE_STEP"
rm -rf "$dir"
mkdir -p "$dir" || exit 1
cd "$dir" || exit 1
( while :; do date +%s > "$dir/heartbeat"; sleep 5; done ) &
beat=$!
oc-mirror "$@" > "$dir/out" 2>&1
code=$?
echo "$code" > "$dir/exit"
kill "$beat"
exit "$code"
`;
