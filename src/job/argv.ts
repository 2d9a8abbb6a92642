/**
 * The oc-mirror command line of a run (mirror-to-registry). Credentials are never
 * arguments: oc-mirror reads the mounted authfile named by --authfile.
 */
import type { MirrorJobSpec } from "../api/mirrorjob.ts";
import { AUTH_FILE_NAME } from "./auth.ts";
import { MOUNTS } from "./mounts.ts";

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
    m.logLevel,
    `--dest-tls-verify=${String(spec.registry.tlsVerify)}`,
    `--src-tls-verify=${String(spec.source.tlsVerify)}`,
    `docker://${spec.registry.url}`,
  ];
}

/**
 * The oc-mirror container runs this POSIX shell wrapper around oc-mirror. It runs a
 * dry run first (the run's image list, for verification), keeps the mapping (the mirror
 * pass may replace dry-run/), then mirrors. It records each exit code and a heartbeat in
 * the state folder the reporter reads; the reporter treats a stale heartbeat without an
 * exit code as a crash (the whole container was killed). oc-mirror's output goes to a
 * file the reporter follows and echoes, so `kubectl logs -c reporter` shows it.
 */
export const WRAPPER_SCRIPT = `set -u
umask 0022
state="${MOUNTS.workspace}/.hubmirror"
mkdir -p "$state"
rm -f "$state"/*.exit "$state"/*.out "$state"/mapping.txt
( while :; do date +%s > "$state/heartbeat"; sleep 5; done ) &
beat=$!
oc-mirror "$@" --dry-run > "$state/dry-run.out" 2>&1
code=$?
echo "$code" > "$state/dry-run.exit"
if [ "$code" -ne 0 ]; then kill "$beat"; exit "$code"; fi
cp "${MOUNTS.workspace}/working-dir/dry-run/mapping.txt" "$state/mapping.txt" 2>/dev/null || : > "$state/mapping.txt"
oc-mirror "$@" > "$state/mirror.out" 2>&1
code=$?
echo "$code" > "$state/mirror.exit"
kill "$beat"
exit "$code"
`;
