/**
 * Turns what oc-mirror left behind (exit codes, progress, the errors file, the dry-run
 * mapping) into the compact run result the controller reads. Pure.
 */
import { decodeExitCode, type DecodedExit } from "../ocmirror/exit-code.ts";
import type { MirrorError } from "../ocmirror/errors-file.ts";
import type { Progress } from "../ocmirror/progress.ts";
import type { RunResult } from "./result.ts";

export interface RunOutcome {
  /** Exit code of the dry run (null: it never ended). */
  readonly dryRunExit: number | null;
  /** Exit code of the mirror pass; null when it never ran or never reported one. */
  readonly mirrorExit: number | null;
  /** Why there is no exit code, when the container stopped without one. */
  readonly crash?: string;
  readonly progress: Progress;
  readonly errors: readonly MirrorError[];
  readonly plannedImageCount: number;
  readonly completedAt: Date;
}

/**
 * How the run ended. A failed dry run copied nothing, and neither did a mirror pass that
 * stopped at collection (a catalog, an image reference, the release graph or a signature
 * could not be collected: oc-mirror then prints no Results and writes no errors file), nor a
 * mirror pass whose every copy failed (its Results count 0 copied). Such runs failed, whatever
 * category bits their exit code carries: reporting them as "partially failed, the other images
 * were mirrored" would be false.
 */
function exitOf(outcome: RunOutcome): DecodedExit {
  if (outcome.crash !== undefined) {
    return { code: null, outcome: "crash", failedCategories: [], description: outcome.crash };
  }
  const collection = outcome.progress.collectionError;
  const nothingCopied = (decoded: DecodedExit, what: string): DecodedExit => ({
    ...decoded,
    outcome: "failure",
    description:
      collection !== undefined
        ? `${what}: oc-mirror could not collect the ${decoded.failedCategories.length > 0 ? `${decoded.failedCategories.join(" and ")} ` : ""}images (exit code ${String(decoded.code)}) and copied nothing: ${collection}`
        : `${what}, so nothing was copied: ${decoded.description}`,
  });
  if (outcome.dryRunExit !== 0) {
    const decoded = decodeExitCode(outcome.dryRunExit);
    return decoded.outcome === "crash"
      ? { ...decoded, description: `the dry run failed: ${decoded.description}` }
      : nothingCopied(decoded, "the dry run failed");
  }
  const decoded = decodeExitCode(outcome.mirrorExit);
  const results = Object.values(outcome.progress.results);
  if (
    (decoded.outcome === "partial" || decoded.outcome === "failure") &&
    collection !== undefined &&
    results.length === 0
  )
    return nothingCopied(decoded, "the mirror pass stopped at collection");
  // Every copy failed: not "partially failed, the other images were copied".
  const total = results.reduce((sum, c) => sum + c.total, 0);
  if (decoded.outcome === "partial" && total > 0 && results.every((c) => c.copied === 0)) {
    return {
      ...decoded,
      outcome: "failure",
      description:
        `oc-mirror copied none of the ${String(total)} images (exit code ${String(decoded.code)}: ` +
        `${decoded.failedCategories.join(" and ")} images failed to mirror); see the errors file for why each failed.`,
    };
  }
  return decoded;
}

export function composeResult(outcome: RunOutcome): RunResult {
  const exit = exitOf(outcome);
  const failed = outcome.errors.filter((e) => e.image !== "" || e.error !== "");
  return {
    version: 1,
    completedAt: outcome.completedAt.toISOString(),
    dryRunExitCode: outcome.dryRunExit,
    exit: {
      code: exit.code,
      outcome: exit.outcome,
      failedCategories: [...exit.failedCategories],
      description: exit.description.slice(0, 1024),
    },
    images: { ...outcome.progress.results },
    failedImages: failed
      .slice(0, 20)
      .map((e) => ({ image: e.image.slice(0, 1024), error: e.error.slice(0, 2048) })),
    failedImageCount: Math.max(failed.length, outcome.progress.failed),
    plannedImageCount: outcome.plannedImageCount,
  };
}
