/**
 * The `report-prune` subcommand: the reporter of a prune Job's pod (oc-mirror's delete
 * workflow). Like a run's reporter it follows oc-mirror's output (echoing it, so
 * `kubectl logs -c reporter` is the step's log) until the wrapper records an exit code or its
 * heartbeat stops (the container was killed), then writes a compact result into the step's
 * result ConfigMap: the exit, oc-mirror's counts and failed images, and for `generate` the
 * DeleteImageList oc-mirror wrote. It may update only that ConfigMap (its Role names it).
 *
 * The wrapper (job/argv.ts PRUNE_WRAPPER_SCRIPT) keeps each step in `<state>/prune-<step id>/`:
 * `out` (oc-mirror's output), `exit`, `heartbeat`, and oc-mirror's `logs/` (a delete without
 * `--workspace` writes its logs and errors file into its working directory).
 */
import { existsSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { deleteListFileName, DELETE_DIR, parseDeleteImageList, type DeleteItem } from "../ocmirror/delete.ts";
import { parseErrorsFile } from "../ocmirror/errors-file.ts";
import { initialProgress, parseLine, reduceProgress } from "../ocmirror/progress.ts";
import { workspacePaths } from "../ocmirror/workspace.ts";
import { Follower, listDir, readNumber, readText, type ResultWriter } from "./reporter.ts";
import { PRUNE_RESULT_KEYS, type PruneResult } from "./prune-result.ts";
import { encodeJsonGzip, MAX_RESULT_BYTES } from "./result.ts";

export interface PruneReporterOptions {
  readonly stateDir: string;
  readonly workspace: string;
  readonly step: "generate" | "delete";
  /** The step's id: its folder under the state folder and oc-mirror's `--delete-id`. */
  readonly stepId: string;
  readonly heartbeatTimeoutSeconds: number;
  readonly writer: ResultWriter;
  readonly echo: (line: string) => void;
  readonly pollIntervalMs?: number;
}

/** Where a prune step keeps its files. */
export function pruneStepDir(stateDir: string, stepId: string): string {
  return posix.join(stateDir, `prune-${stepId}`);
}

const ERRORS_FILE = /^mirroring_errors_.*\.txt$/;

export async function runPruneReporter(options: PruneReporterOptions): Promise<number> {
  const dir = pruneStepDir(options.stateDir, options.stepId);
  const poll = options.pollIntervalMs ?? 500;
  const started = Date.now();
  const follower = new Follower(join(dir, "out"));
  let progress = initialProgress();
  const consume = (lines: string[]) => {
    for (const line of lines) {
      options.echo(line);
      const event = parseLine(line);
      if (event !== undefined) progress = reduceProgress(progress, event);
    }
  };
  let exit: number | undefined;
  let crash: string | undefined;
  for (;;) {
    consume(follower.lines());
    exit = readNumber(join(dir, "exit"));
    if (exit !== undefined) break;
    const heartbeat = join(dir, "heartbeat");
    const beatAge = existsSync(heartbeat) ? Date.now() - statSync(heartbeat).mtimeMs : Date.now() - started;
    if (beatAge > options.heartbeatTimeoutSeconds * 1000) {
      crash =
        `oc-mirror stopped without an exit code (no heartbeat for ${String(Math.round(beatAge / 1000))} s): ` +
        "the container was killed (out of memory, evicted or deadline exceeded)";
      break;
    }
    await sleep(poll);
  }
  consume(follower.flush());

  const logs = join(dir, "logs");
  const errorsFile = listDir(logs).find((name) => ERRORS_FILE.test(name));
  const errors = errorsFile !== undefined ? parseErrorsFile(readText(join(logs, errorsFile))) : [];
  const failed = errors.filter((e) => e.image !== "" || e.error !== "");

  let items: DeleteItem[] | undefined;
  let listProblem: string | undefined;
  if (options.step === "generate" && crash === undefined) {
    const file = posix.join(
      workspacePaths(options.workspace).workingDir,
      DELETE_DIR,
      deleteListFileName(options.stepId),
    );
    if (existsSync(file)) {
      const parsed = parseDeleteImageList(readText(file));
      if ("error" in parsed) listProblem = `${deleteListFileName(options.stepId)}: ${parsed.error}`;
      else items = parsed.items;
    } else if (exit === 0) listProblem = `oc-mirror wrote no ${deleteListFileName(options.stepId)}`;
  }

  const outcome: PruneResult["exit"]["outcome"] =
    crash !== undefined ? "crash" : exit === 0 ? "success" : "failure";
  const description =
    crash ??
    (exit === 0
      ? "oc-mirror exited 0"
      : `oc-mirror exited ${String(exit)}${progress.lastMessage !== undefined ? `: ${progress.lastMessage}` : ""}`);
  const result: PruneResult = {
    version: 1,
    step: options.step,
    completedAt: new Date().toISOString(),
    exit: { code: exit ?? null, outcome, description: description.slice(0, 1024) },
    images: { ...progress.results },
    failedImages: failed
      .slice(0, 20)
      .map((e) => ({ image: e.image.slice(0, 1024), error: e.error.slice(0, 2048) })),
    failedImageCount: Math.max(failed.length, progress.failed),
    ...(items !== undefined && { listed: items.length }),
    ...(listProblem !== undefined && { listProblem: listProblem.slice(0, 1024) }),
    ...(progress.lastMessage !== undefined && { lastMessage: progress.lastMessage }),
  };
  const list = items !== undefined ? encodeJsonGzip(items) : undefined;
  const binaryData = list !== undefined ? { [PRUNE_RESULT_KEYS.deleteList]: list } : undefined;
  const size = list?.length ?? 0;
  if (size > MAX_RESULT_BYTES) {
    const problem = `the delete list is too large for a ConfigMap (${String(size)} bytes encoded)`;
    await options.writer.write({
      [PRUNE_RESULT_KEYS.result]: JSON.stringify({ ...result, listProblem: problem }),
    });
    options.echo(`reporter: ${problem}`);
    return 1;
  }
  await options.writer.write({ [PRUNE_RESULT_KEYS.result]: JSON.stringify(result) }, binaryData);
  options.echo(
    `reporter: prune ${options.step} result written (${outcome}, exit code ${String(exit ?? null)})`,
  );
  return 0;
}
