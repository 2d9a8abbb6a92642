/**
 * The `report` subcommand, the second container of a run's pod. It follows the oc-mirror
 * wrapper's output (echoing it, so `kubectl logs -c reporter` is the run's log), writes
 * progress into the run's result ConfigMap at a bounded rate, and when oc-mirror is done
 * (an exit code in the state folder) or gone (a stale heartbeat), collects the mapping,
 * the errors file and cluster-resources/ and writes the compact result. It may update only
 * that ConfigMap (its Role names it).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { latestErrorsFile, parseErrorsFile, type MirrorError } from "../ocmirror/errors-file.ts";
import { destinationEntries, parseMapping } from "../ocmirror/mapping.ts";
import { parseClusterResources } from "../ocmirror/cluster-resources.ts";
import { initialProgress, parseLine, reduceProgress, type Progress } from "../ocmirror/progress.ts";
import { workspacePaths } from "../ocmirror/workspace.ts";
import { composeResult } from "./compose.ts";
import { MAX_RESULT_BYTES, RESULT_KEYS, encodeJsonGzip, type ReportedProgress } from "./result.ts";

export interface ResultWriter {
  /** Merges keys into the result ConfigMap. */
  write(data: Record<string, string>, binaryData?: Record<string, string>): Promise<void>;
}

export interface ReporterOptions {
  readonly stateDir: string;
  readonly workspace: string;
  /** The target registry (`host[:port][/path]`): the mapping is reduced to entries under it. */
  readonly registry: string;
  readonly heartbeatTimeoutSeconds: number;
  readonly writer: ResultWriter;
  readonly echo: (line: string) => void;
  /** `error`: echo only oc-mirror's error lines (spec.mirror.logLevel error); default all. */
  readonly echoLevel?: "all" | "error";
  /** Minimum time between progress writes. */
  readonly progressIntervalMs?: number;
  readonly pollIntervalMs?: number;
}

/** Reads a growing file from an offset, line by line. */
export class Follower {
  private offset = 0;
  private rest = "";
  private readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  lines(): string[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, "r");
    try {
      const buffer = Buffer.alloc(64 * 1024);
      const chunks: string[] = [];
      for (
        let n = readSync(fd, buffer, 0, buffer.length, this.offset);
        n > 0;
        n = readSync(fd, buffer, 0, buffer.length, this.offset)
      ) {
        this.offset += n;
        chunks.push(buffer.subarray(0, n).toString("utf8"));
      }
      const text = this.rest + chunks.join("");
      const parts = text.split("\n");
      this.rest = parts.pop() ?? "";
      return parts;
    } finally {
      closeSync(fd);
    }
  }

  flush(): string[] {
    const last = [...this.lines(), this.rest].filter((l) => l !== "");
    this.rest = "";
    return last;
  }
}

/** A number a file holds (an exit code, a time in seconds), or undefined. */
export function readNumber(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const code = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
  return Number.isNaN(code) ? undefined : code;
}

export function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

export function listDir(path: string): string[] {
  return existsSync(path) ? readdirSync(path) : [];
}

function toReported(progress: Progress, stage: string, now: Date): ReportedProgress {
  return {
    stage,
    copied: progress.copied,
    failed: progress.failed,
    total: progress.total,
    ...(progress.lastMessage !== undefined && { lastMessage: progress.lastMessage }),
    updateTime: now.toISOString(),
  };
}

export async function runReporter(options: ReporterOptions): Promise<number> {
  const { stateDir, writer, echo } = options;
  const progressInterval = options.progressIntervalMs ?? 2_000;
  const poll = options.pollIntervalMs ?? 500;
  const started = Date.now();
  const followers = {
    dryRun: new Follower(join(stateDir, "dry-run.out")),
    mirror: new Follower(join(stateDir, "mirror.out")),
  };
  let progress = initialProgress();
  let stage = "dry-run";
  let lastWrite = 0;
  let lastWritten = "";

  const consume = (lines: string[]) => {
    for (const line of lines) {
      const event = parseLine(line);
      if (options.echoLevel !== "error" || event?.level === "ERROR") echo(line);
      if (event !== undefined) progress = reduceProgress(progress, event);
    }
  };
  const writeProgress = async (force = false) => {
    const now = Date.now();
    if (!force && now - lastWrite < progressInterval) return;
    const text = JSON.stringify(toReported(progress, stage, new Date()));
    const comparable = text.replace(/"updateTime":"[^"]*"/, "");
    if (!force && comparable === lastWritten) return;
    await writer.write({ [RESULT_KEYS.progress]: text });
    lastWrite = now;
    lastWritten = comparable;
  };

  let dryRunExit: number | undefined;
  let mirrorExit: number | undefined;
  let crash: string | undefined;
  for (;;) {
    consume(followers.dryRun.lines());
    dryRunExit ??= readNumber(join(stateDir, "dry-run.exit"));
    if (dryRunExit !== undefined && stage === "dry-run") {
      consume(followers.dryRun.flush());
      // The mirror pass counts again from zero, its total too (the dry run's plan is not a copy).
      // A dry run that failed keeps why it could not collect the images: that is the run's result.
      progress = {
        ...initialProgress(),
        ...(progress.lastMessage !== undefined && { lastMessage: progress.lastMessage }),
        ...(dryRunExit !== 0 &&
          progress.collectionError !== undefined && { collectionError: progress.collectionError }),
      };
      stage = dryRunExit === 0 ? "mirroring" : "collecting";
    }
    if (stage === "mirroring") consume(followers.mirror.lines());
    mirrorExit ??= readNumber(join(stateDir, "mirror.exit"));
    if ((dryRunExit !== undefined && dryRunExit !== 0) || mirrorExit !== undefined) break;

    const heartbeat = join(stateDir, "heartbeat");
    const beatAge = existsSync(heartbeat) ? Date.now() - statSync(heartbeat).mtimeMs : Date.now() - started;
    if (beatAge > options.heartbeatTimeoutSeconds * 1000) {
      crash =
        `oc-mirror stopped without an exit code (no heartbeat for ${Math.round(beatAge / 1000)} s): ` +
        "the container was killed (out of memory, evicted or deadline exceeded)";
      break;
    }
    await writeProgress().catch((err: unknown) => {
      echo(`reporter: could not write progress: ${err instanceof Error ? err.message : String(err)}`);
    });
    await sleep(poll);
  }
  consume(followers.mirror.flush());
  stage = "collecting";

  const paths = workspacePaths(options.workspace);
  // This run's errors file only: one written before its mirror pass started is another run's.
  const mirrorStarted = readNumber(join(stateDir, "mirror.started"));
  const errorsFile = latestErrorsFile(
    listDir(paths.logs).filter(
      (name) =>
        mirrorStarted !== undefined && statSync(join(paths.logs, name)).mtimeMs >= (mirrorStarted - 1) * 1000,
    ),
  );
  const errors: MirrorError[] =
    errorsFile !== undefined ? parseErrorsFile(readText(join(paths.logs, errorsFile))) : [];
  const mapping = parseMapping(readText(join(stateDir, "mapping.txt")));
  const planned = destinationEntries(mapping.entries, options.registry);
  const resources =
    mirrorExit !== undefined
      ? parseClusterResources(
          listDir(paths.clusterResources).map((name) => ({
            name,
            content: readText(join(paths.clusterResources, name)),
          })),
        )
      : { objects: [], errors: [] };

  const result = composeResult({
    dryRunExit: dryRunExit ?? null,
    mirrorExit: mirrorExit ?? null,
    ...(crash !== undefined && { crash }),
    progress,
    errors,
    plannedImageCount: planned.length,
    completedAt: new Date(),
  });
  const problems = [
    ...mapping.errors.map((e) => `mapping.txt line ${e.line}: ${e.message}`),
    ...resources.errors.map((e) => `cluster-resources: ${e}`),
  ];
  const withProblems =
    problems.length > 0 ? { ...result, message: problems.join("; ").slice(0, 4096) } : result;
  const binaryData = {
    [RESULT_KEYS.mapping]: encodeJsonGzip(planned),
    [RESULT_KEYS.clusterResources]: encodeJsonGzip(resources.objects),
  };
  const size = Object.values(binaryData).reduce((n, v) => n + v.length, 0);
  stage = "done";
  const data = { [RESULT_KEYS.progress]: JSON.stringify(toReported(progress, stage, new Date())) };
  if (size > MAX_RESULT_BYTES) {
    const message = `the run's mapping and cluster resources are too large for a ConfigMap (${size} bytes encoded)`;
    await writer.write({ ...data, [RESULT_KEYS.result]: JSON.stringify({ ...withProblems, message }) });
    echo(`reporter: ${message}`);
    return 1;
  }
  await writer.write({ ...data, [RESULT_KEYS.result]: JSON.stringify(withProblems) }, binaryData);
  echo(`reporter: result written (${result.exit.outcome}, exit code ${String(result.exit.code)})`);
  return 0;
}
