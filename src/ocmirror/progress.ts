/**
 * oc-mirror's output (stdout when not a TTY, and the same lines in
 * `working-dir/logs/oc-mirror-<ts>.log`), turned into progress events and reduced into a
 * `Progress` by a pure reducer.
 *
 * Line format (github.com/microlib/simple, through Go's `log` with its default date flags):
 *   `2025/03/19 08:20:23 \x1b[1;34m [INFO] \x1b[0m  : <msg>` (the level is wrapped in ANSI colour
 *   codes; WARN/INFO have two spaces before the colon, ERROR/DEBUG/TRACE one).
 *
 * Messages recognised, with the oc-mirror source that prints them:
 * - `🔀 workflow mode: mirrorToMirror `                        internal/pkg/cli/executor.go (Complete)
 * - `🕵  going to discover the necessary images...`            cli/executor.go (CollectAll)
 * - `📌 images to copy 42 `                                    batch/concurrent_chan_worker.go (Worker)
 * - `Success copying <origin> ➡️ <host/ns/ or cache>`          batch/concurrent_chan_worker.go (logImageSuccess)
 * - `[ERROR] : Failed to copy <type> <origin>`                 batch/concurrent_chan_worker.go (logImageError)
 * - `=== Results ===` then per category with images
 *   `\x1b[1;92m ✓ \x1b[0m 5 / 5 release images mirrored successfully` or
 *   `\x1b[1;91m ✗ \x1b[0m 3 / 4 operator images mirrored: Some operator images failed to be mirrored - please check the logs`
 *                                                               batch/concurrent_chan_worker.go (logResults)
 * - `📄 list of all images for mirroring in : <path>`          cli/dryrun.go
 * - `mirror time     : 1m2.5s`                                 cli/executor.go (Run)
 * - `[ERROR] : [Executor] collection error: <why>`             cli/executor.go (RunMirrorToMirror)
 *
 * Every line's text becomes `lastMessage`, sanitised: ANSI codes and control characters
 * removed, anything that looks like a credential replaced with `***`, at most 1024 characters.
 */
import type { Category } from "./exit-code.ts";

export type LogLevel = "INFO" | "WARN" | "ERROR" | "DEBUG" | "TRACE";

interface EventBase {
  /** The line's message, sanitised (see `sanitizeMessage`). */
  readonly message: string;
  /** Absent for lines not in oc-mirror's log format (e.g. continuation lines of an error). */
  readonly level?: LogLevel;
  /** `YYYY/MM/DD hh:mm:ss` as printed (the pod's local time). */
  readonly time?: string;
}

export type ProgressEvent = EventBase &
  (
    | { readonly kind: "workflow"; readonly mode: string }
    | { readonly kind: "collecting" }
    | { readonly kind: "total"; readonly total: number }
    | { readonly kind: "copied"; readonly image: string; readonly destination: string }
    | {
        readonly kind: "failed";
        readonly image: string;
        /** oc-mirror's image type, e.g. `operatorBundle`, `generic`, `ocpRelease`. */
        readonly imageType: string;
        readonly category?: Category;
      }
    | { readonly kind: "results" }
    | {
        readonly kind: "result";
        readonly category: Category;
        readonly copied: number;
        readonly total: number;
      }
    | { readonly kind: "dryRunMapping"; readonly path: string }
    | { readonly kind: "mirrorTime"; readonly duration: string; readonly seconds?: number }
    | { readonly kind: "collectionError"; readonly error: string }
    | { readonly kind: "message" }
  );

export interface CategoryCounts {
  readonly copied: number;
  readonly total: number;
  readonly failed: number;
}

export interface Progress {
  readonly stage?: string;
  /** Images to copy (mirror-to-mirror counts each operator catalog twice: cache and destination). */
  readonly total: number;
  readonly copied: number;
  readonly failed: number;
  readonly lastMessage?: string;
  /** Final per-category counts from the `=== Results ===` block. */
  readonly results: Partial<Record<Category, CategoryCounts>>;
  /** oc-mirror's own run time, as printed (Go duration), once it has finished. */
  readonly mirrorTime?: string;
  /** Why oc-mirror could not collect the images (then it copied none). */
  readonly collectionError?: string;
}

export const STAGE_COLLECTING = "collecting";
export const STAGE_MIRRORING = "mirroring";
export const STAGE_GENERATING = "generating cluster resources";
export const STAGE_DRY_RUN = "dry-run";
export const STAGE_FINISHED = "finished";

export const MAX_MESSAGE_LENGTH = 1024;

export function initialProgress(): Progress {
  return { total: 0, copied: 0, failed: 0, results: {} };
}

// oc-mirror colours its level tags; progress bars (TTY only) add cursor movements.
// eslint-disable-next-line no-control-regex -- matching ANSI escape sequences is the point
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;
// eslint-disable-next-line no-control-regex -- control characters must not reach status or logs
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** Secret shapes that may appear in oc-mirror / containers-image messages. */
const REDACTIONS: readonly (readonly [RegExp, string])[] = [
  // scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1***@"],
  // user:password@host without scheme (but not name:tag@sha256:... digests)
  [/(^|[\s"'(=,])[^\s/@:"'(=,]+:[^\s/@"']+@(?!sha\d+:)(?=[A-Za-z0-9[])/g, "$1***@"],
  // Authorization: Basic xxx / Bearer xxx (headers, also inside JSON or dumps)
  [/(authorization["']?\s*[:=]\s*["']?)(?:(?:basic|bearer|negotiate|token)\s+)?[^\s"',;]+/gi, "$1***"],
  // {"auth": "..."} and friends in auth.json / dockerconfigjson dumps
  [
    /("(?:auth|password|token|identitytoken|registrytoken|access_token|refresh_token|secret)"\s*:\s*")[^"]*(")/gi,
    "$1***$2",
  ],
  // password=..., token: ..., --creds user:pass
  [/\b((?:password|passwd|secret|token|apikey|api_key)\s*[=:]\s*)[^\s,;&"']+/gi, "$1***"],
  [/(--(?:src-|dest-)?(?:creds|password|registry-token)[=\s]+)\S+/gi, "$1***"],
];

/** Remove ANSI escapes and control characters (tabs kept). */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "").replace(CONTROL, "");
}

/** Replace anything that looks like a credential with `***`. */
export function redactSecrets(text: string): string {
  return REDACTIONS.reduce((acc, [pattern, replacement]) => acc.replace(pattern, replacement), text);
}

/** A line made safe for status, events and logs: no escapes, no credentials, bounded length. */
export function sanitizeMessage(text: string, max = MAX_MESSAGE_LENGTH): string {
  const clean = redactSecrets(stripAnsi(text)).trim();
  if (clean.length <= max) return clean;
  let cut = clean.slice(0, max - 1);
  // Do not leave half of a surrogate pair behind.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

const LINE = /^(\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2})\s+\[(INFO|WARN|ERROR|DEBUG|TRACE)\]\s+:\s?(.*)$/;
const WORKFLOW = /workflow mode: (\S+(?: \/ \S+)?)/;
// Only the batch's own line ("📌 images to copy 20 "): at debug level the collectors also print
// "[CollectAll] total release images to copy 10", a per-category count that is not the total.
const TOTAL = /^(?:\u{1F4CC}\s*)?images to (?:copy|delete) (\d+)\s*$/u;
// A collection failure: nothing is copied, no Results follow (internal/pkg/cli/executor.go).
const COLLECTION_ERROR = /^\[Executor\] collection error: (.*)$/;
const SUCCESS = /^Success (?:copying|deleting) (\S+) \u27a1\ufe0f?\s*(.*)$/;
const FAILED = /^Failed to (?:copy|delete) (\S+) (\S+)$/;
const RESULT = /^[✓✗]\s+(\d+) \/ (\d+) (release|operator|additional|helm) images (?:mirrored|deleted)\b/;
const MAPPING = /list of all images for mirroring in : (.+)$/;
const MIRROR_TIME = /^mirror time\s*:\s*(\S+)/;

const TYPE_CATEGORY: Readonly<Record<string, Category>> = {
  ocpRelease: "release",
  ocpReleaseContent: "release",
  cincinnatiGraph: "release",
  operatorBundle: "operator",
  operatorCatalog: "operator",
  operatorRelatedImage: "operator",
  generic: "additional",
  helmImage: "helm",
};

const DURATION_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|µs|us|ns)/g;
const UNIT_SECONDS: Readonly<Record<string, number>> = {
  h: 3600,
  m: 60,
  s: 1,
  ms: 1e-3,
  µs: 1e-6,
  us: 1e-6,
  ns: 1e-9,
};

/** Seconds in a Go duration string (`1h2m3.5s`, `850.2ms`), or undefined if it is not one. */
export function parseGoDuration(text: string): number | undefined {
  if (!/^(?:\d+(?:\.\d+)?(?:h|ms|m|s|µs|us|ns))+$/.test(text)) return text === "0s" ? 0 : undefined;
  let seconds = 0;
  for (const m of text.matchAll(DURATION_PART)) {
    seconds += Number(m[1]) * (UNIT_SECONDS[m[2] ?? ""] ?? 0);
  }
  return seconds;
}

function classify(msg: string, level: LogLevel | undefined): ProgressEvent | { readonly kind: "message" } {
  let m = WORKFLOW.exec(msg);
  if (m) return { kind: "workflow", mode: m[1] ?? "", message: msg };
  if (msg.includes("going to discover the necessary images")) return { kind: "collecting", message: msg };
  m = TOTAL.exec(msg);
  if (m) return { kind: "total", total: Number(m[1]), message: msg };
  m = SUCCESS.exec(msg);
  if (m) return { kind: "copied", image: m[1] ?? "", destination: m[2] ?? "", message: msg };
  m = level === "ERROR" ? FAILED.exec(msg) : null;
  if (m) {
    const imageType = m[1] ?? "";
    const category = TYPE_CATEGORY[imageType];
    return {
      kind: "failed",
      imageType,
      image: m[2] ?? "",
      ...(category === undefined ? {} : { category }),
      message: msg,
    };
  }
  if (msg === "=== Results ===") return { kind: "results", message: msg };
  m = RESULT.exec(msg);
  if (m) {
    return {
      kind: "result",
      copied: Number(m[1]),
      total: Number(m[2]),
      category: m[3] as Category,
      message: msg,
    };
  }
  m = MAPPING.exec(msg);
  if (m) return { kind: "dryRunMapping", path: (m[1] ?? "").trim(), message: msg };
  m = level === "ERROR" ? COLLECTION_ERROR.exec(msg) : null;
  if (m) return { kind: "collectionError", error: sanitizeMessage(m[1] ?? ""), message: msg };
  m = MIRROR_TIME.exec(msg);
  if (m) {
    const duration = m[1] ?? "";
    const seconds = parseGoDuration(duration);
    return {
      kind: "mirrorTime",
      duration,
      ...(seconds === undefined ? {} : { seconds }),
      message: msg,
    };
  }
  return { kind: "message" };
}

/**
 * One line of oc-mirror output as an event; undefined for blank lines. Lines not in the log
 * format (continuations of multi-line errors, panics) become `message` events without level.
 */
export function parseLine(line: string): ProgressEvent | undefined {
  // Redact the whole line first: parsed fields (image names) must not carry secrets either.
  const clean = redactSecrets(stripAnsi(line)).trim();
  if (clean === "") return undefined;
  const m = LINE.exec(clean);
  const level = m?.[2] as LogLevel | undefined;
  const time = m?.[1];
  const text = m ? (m[3] ?? "").trim() : clean;
  const event = classify(text, level);
  const message = sanitizeMessage(text);
  return {
    ...event,
    message,
    ...(level === undefined ? {} : { level }),
    ...(time === undefined ? {} : { time }),
  };
}

/** Fold one event into the progress (pure: returns a new object). */
export function reduceProgress(state: Progress, event: ProgressEvent): Progress {
  const next: Progress = event.message === "" ? state : { ...state, lastMessage: event.message };
  switch (event.kind) {
    case "workflow":
    case "collecting":
      return { ...next, stage: STAGE_COLLECTING };
    case "total":
      return { ...next, stage: STAGE_MIRRORING, total: event.total };
    case "copied":
      return { ...next, copied: state.copied + 1 };
    case "failed":
      return { ...next, failed: state.failed + 1 };
    case "results":
      return { ...next, stage: STAGE_GENERATING };
    case "result":
      return {
        ...next,
        results: {
          ...state.results,
          [event.category]: {
            copied: event.copied,
            total: event.total,
            failed: Math.max(0, event.total - event.copied),
          },
        },
      };
    case "dryRunMapping":
      return { ...next, stage: STAGE_DRY_RUN };
    case "mirrorTime":
      return { ...next, stage: STAGE_FINISHED, mirrorTime: event.duration };
    case "collectionError":
      return { ...next, collectionError: event.error };
    case "message":
      return next;
  }
}

/** Progress after all `lines` (convenience for whole logs). */
export function progressOf(lines: Iterable<string>): Progress {
  let state = initialProgress();
  for (const line of lines) {
    const event = parseLine(line);
    if (event !== undefined) state = reduceProgress(state, event);
  }
  return state;
}
