/**
 * The layout oc-mirror v2 gives its workspace (`--workspace file://<ws>`), so that no other
 * module spells these paths. Source: internal/pkg/cli/const.go and executor.go
 * (setupWorkingDir, setupLogsLevelAndDir), batch/common.go (saveErrors), cli/dryrun.go,
 * clusterresources/const.go.
 *
 * All functions are pure string operations on POSIX paths (the workspace lives on a Linux
 * volume inside the Job's pod).
 */
import { posix } from "node:path";

/** oc-mirror appends this to `--workspace` unless the path already ends with it. */
export const WORKING_DIR = "working-dir";
export const LOGS_DIR = "logs";
export const CLUSTER_RESOURCES_DIR = "cluster-resources";
export const DRY_RUN_DIR = "dry-run";
export const MAPPING_FILE = "mapping.txt";
/** Mirror-to-disk only; a mirror-to-mirror dry run never writes it. */
export const MISSING_FILE = "missing.txt";
export const SIGNATURES_DIR = "signatures";
/** An OCI layout of the update graph image, read with `graph: true` and UPDATE_URL_OVERRIDE. */
export const GRAPH_PREPARATION_DIR = "graph-preparation";

/** The cache lives at `<--cache-dir or $OC_MIRROR_CACHE or $HOME>/.oc-mirror/.cache`. */
export const CACHE_RELATIVE_PATH = ".oc-mirror/.cache";
/** Default port of oc-mirror's local cache registry (`-p/--port`). */
export const DEFAULT_CACHE_PORT = 55000;

/** Files oc-mirror writes into `cluster-resources/`. */
export const IDMS_FILE = "idms-oc-mirror.yaml";
export const ITMS_FILE = "itms-oc-mirror.yaml";
export const UPDATE_SERVICE_FILE = "updateService.yaml";
export const SIGNATURE_CONFIGMAP_JSON = "signature-configmap.json";
export const SIGNATURE_CONFIGMAP_YAML = "signature-configmap.yaml";
export const CATALOG_SOURCE_FILE_PATTERN = /^cs-[a-z0-9][a-z0-9-]*\.yaml$/;
export const CLUSTER_CATALOG_FILE_PATTERN = /^cc-[a-z0-9][a-z0-9-]*\.yaml$/;

/** `mirroring_errors_<YYYYMMDD_HHMMSS>.txt` in `logs/` (one line per failed image). */
export const ERRORS_FILE_PATTERN = /^mirroring_errors_(\d{8}_\d{6})\.txt$/;
/** `oc-mirror-<YYYYMMDD_HHMMSS>.log` in `logs/` (4.20+); `oc-mirror.log` before. */
export const LOG_FILE_PATTERN = /^oc-mirror(?:-(\d{8}_\d{6}))?\.log$/;

/** Where oc-mirror keeps everything for a `--workspace` value (with or without `file://`). */
export function workingDirOf(workspace: string): string {
  const dir = workspace.replace(/^file:\/\//, "");
  return posix.basename(dir) === WORKING_DIR ? dir : posix.join(dir, WORKING_DIR);
}

export interface WorkspacePaths {
  readonly workingDir: string;
  readonly logs: string;
  readonly clusterResources: string;
  readonly dryRun: string;
  readonly mapping: string;
  readonly signatures: string;
  readonly graphPreparation: string;
}

export function workspacePaths(workspace: string): WorkspacePaths {
  const workingDir = workingDirOf(workspace);
  const dryRun = posix.join(workingDir, DRY_RUN_DIR);
  return {
    workingDir,
    logs: posix.join(workingDir, LOGS_DIR),
    clusterResources: posix.join(workingDir, CLUSTER_RESOURCES_DIR),
    dryRun,
    mapping: posix.join(dryRun, MAPPING_FILE),
    signatures: posix.join(workingDir, SIGNATURES_DIR),
    graphPreparation: posix.join(workingDir, GRAPH_PREPARATION_DIR),
  };
}

/** oc-mirror's run timestamp (Go layout `20060102_150405`, local time). */
export function runTimestamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}_` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
  );
}

export function errorsFileName(timestamp: string): string {
  return `mirroring_errors_${timestamp}.txt`;
}

export function logFileName(timestamp: string): string {
  return `oc-mirror-${timestamp}.log`;
}

/**
 * The newest oc-mirror log among `fileNames` (base names or paths); `oc-mirror.log` (before
 * 4.20) counts as the oldest. Used to follow the log of the run in progress.
 */
export function latestLogFile(fileNames: readonly string[]): string | undefined {
  return newestByStamp(fileNames, LOG_FILE_PATTERN);
}

/** Picks the entry whose base name matches `pattern` with the greatest timestamp group. */
export function newestByStamp(fileNames: readonly string[], pattern: RegExp): string | undefined {
  let best: { name: string; stamp: string } | undefined;
  for (const name of fileNames) {
    const m = pattern.exec(posix.basename(name));
    if (!m) continue;
    // The stamp is fixed-width digits, so string order is time order.
    const stamp = m[1] ?? "";
    if (best === undefined || stamp > best.stamp) best = { name, stamp };
  }
  return best?.name;
}
