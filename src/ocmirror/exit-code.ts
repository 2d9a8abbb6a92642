/**
 * oc-mirror v2's exit code (4.19+): a bitmask of the categories that failed.
 * Source: internal/pkg/errcode/code.go (GenericErr 1, ReleaseErr 2, OperatorErr 4,
 * AdditionalImgErr 8, HelmErr 16), batch/common.go (BatchError.ExitCode: a bit per category
 * whose copied count differs from its total), cli/error.go (CollectionError.ExitCode) and
 * cmd/oc-mirror/main.go (any other error exits 1).
 *
 * Never trust the code alone: read the errors file too (see errors-file.ts). oc-mirror 4.18 and
 * older returned 1 for everything (and sometimes 0 on failure).
 */
import type { CATEGORIES } from "../api/status.ts";

export type Category = (typeof CATEGORIES)[number];

export type ExitOutcome = "success" | "partial" | "failure" | "crash";

export interface DecodedExit {
  readonly code: number | null;
  readonly outcome: ExitOutcome;
  /** Image categories the code reports as failed, in `CATEGORIES` order. */
  readonly failedCategories: Category[];
  readonly description: string;
}

export const EXIT_GENERIC = 1;
export const EXIT_RELEASE = 2;
export const EXIT_OPERATOR = 4;
export const EXIT_ADDITIONAL = 8;
export const EXIT_HELM = 16;
/** Go's log.Fatal / klog.Fatal. */
export const EXIT_FATAL = 255;
/** 128 + SIGTERM: the container was asked to stop. */
export const EXIT_SIGTERM = 143;

const CATEGORY_BITS: readonly (readonly [number, Category])[] = [
  [EXIT_RELEASE, "release"],
  [EXIT_OPERATOR, "operator"],
  [EXIT_ADDITIONAL, "additional"],
  [EXIT_HELM, "helm"],
];

const ALL_BITS = EXIT_GENERIC | EXIT_RELEASE | EXIT_OPERATOR | EXIT_ADDITIONAL | EXIT_HELM;

/** Signal numbers a container is commonly killed with (Linux numbering). */
const SIGNAL_NAMES: Readonly<Record<number, string>> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
};

function joinWords(words: readonly string[]): string {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} and ${words[words.length - 1] ?? ""}`;
}

function crash(code: number | null, description: string): DecodedExit {
  return { code, outcome: "crash", failedCategories: [], description };
}

function describeSignal(signal: string): string {
  const hint =
    signal === "SIGKILL"
      ? " (often the memory limit: raise spec.mirror.resources.limits.memory, or the pod was deleted)"
      : signal === "SIGTERM"
        ? " (the Job was stopped, hit activeDeadlineSeconds, or the pod was evicted)"
        : "";
  return `oc-mirror was killed by ${signal}${hint}`;
}

const NO_RESULTS = "; it reported no results.";

/**
 * Decode how the oc-mirror container ended. `signal` is the terminating signal when the process
 * itself was killed (Node's child_process reports it; Kubernetes reports 128+n as the code).
 */
export function decodeExitCode(code: number | null, signal?: string | null): DecodedExit {
  if (signal) return crash(code, describeSignal(signal) + NO_RESULTS);
  if (code === null) {
    return crash(null, "oc-mirror ended without an exit code (the container did not terminate normally).");
  }
  if (!Number.isInteger(code) || code < 0) {
    return crash(code, `oc-mirror ended with an invalid exit code ${code}.`);
  }
  if (code === 0) {
    return {
      code,
      outcome: "success",
      failedCategories: [],
      description: "oc-mirror copied every image.",
    };
  }
  if (code === EXIT_FATAL) {
    return crash(
      code,
      "oc-mirror stopped on a fatal error (exit code 255) before reporting results; see the last lines of its log.",
    );
  }
  if (code > 128 && code < 160) {
    // Kubernetes and shells report a process killed by signal n as 128 + n (143 = SIGTERM).
    const n = code - 128;
    return crash(
      code,
      `${describeSignal(SIGNAL_NAMES[n] ?? `signal ${n}`)} (exit code ${code})${NO_RESULTS}`,
    );
  }
  if (code > ALL_BITS) {
    return crash(
      code,
      `oc-mirror ended with exit code ${code}, which is not one of its result codes (0-31); treat the run as crashed and read its log.`,
    );
  }

  const failedCategories = CATEGORY_BITS.filter(([bit]) => (code & bit) !== 0).map(([, c]) => c);
  const generic = (code & EXIT_GENERIC) !== 0;
  const release = (code & EXIT_RELEASE) !== 0;
  const parts: string[] = [];
  if (generic) {
    parts.push(
      "a generic error (configuration, authentication to a registry, cache port in use, or cluster-resource generation)",
    );
  }
  if (release) {
    parts.push(
      "release images could not be collected or copied (the update graph, a release payload or its signature), which stops the run; " +
        "a Go panic exits 2 too, so look for 'panic:' in the log to tell them apart",
    );
  }
  const partialCats = failedCategories.filter((c) => c !== "release");
  if (generic || release) {
    if (partialCats.length > 0) parts.push(`${joinWords(partialCats)} images were not all copied`);
    return {
      code,
      outcome: "failure",
      failedCategories,
      description: `oc-mirror failed (exit code ${code}): ${parts.join("; ")}.`,
    };
  }
  return {
    code,
    outcome: "partial",
    failedCategories,
    description:
      `Some ${joinWords(partialCats)} images failed to mirror (exit code ${code}); the other images were ` +
      "copied and cluster resources were written for them. See the errors file for which images failed.",
  };
}
