/**
 * `working-dir/logs/mirroring_errors_<YYYYMMDD_HHMMSS>.txt`: one line per image that failed.
 * Source: internal/pkg/batch/common.go (saveErrors, formatErrorMsg) and
 * batch/concurrent_chan_worker.go (skippingMsg). The lines are:
 *
 *   error mirroring image <origin> error: <err>
 *   error mirroring image <origin> (Operator bundles: [b1 b2] - Operators: [op1]) error: <err>
 *
 * A bundle skipped because one of its related images failed is written with the first form and
 * `<err>` = `skipping operator bundle <origin> because one of its related images failed to
 * mirror`; the bare form `error: skipping operator bundle ...` (as some docs show it) is also
 * understood.
 *
 * `<origin>` of operator images carries a transport (`docker://...`); it is removed here so
 * that every image reads like the dry-run mapping's references.
 */
import { ERRORS_FILE_PATTERN, newestByStamp } from "./workspace.ts";

export interface MirrorError {
  /** The image as written in the ImageSetConfiguration or catalog, without transport; "" when the line was not understood. */
  readonly image: string;
  /** Why it failed (or the whole line when it was not understood). */
  readonly error: string;
  /** Bundle names that need the image (operator images only). */
  readonly bundles?: string[];
  /** Operator package names that need the image (operator images only). */
  readonly operators?: string[];
}

const WITH_CONTEXT =
  /^error mirroring image (\S+) \(Operator bundles: \[([^\]]*)\] - Operators: \[([^\]]*)\]\) error: (.*)$/;
const PLAIN = /^error mirroring image (\S+) error: (.*)$/;
const BARE_SKIP =
  /^error: (skipping operator bundle (\S+) because one of its related images failed to mirror)$/;

/** `docker://quay.io/x` -> `quay.io/x`; also `oci://`, `oci:` and `file://`. */
export function stripTransport(ref: string): string {
  return ref.replace(/^(?:docker|oci|file):\/\//, "").replace(/^oci:/, "");
}

/** Go prints a []string with %v as `[a b c]`. */
function goList(text: string): string[] {
  return text.split(/\s+/).filter((s) => s !== "");
}

/**
 * Every line of the file becomes one entry, in file order. Lines this parser does not understand
 * are kept as `{ image: "", error: line }` so that nothing oc-mirror reported is lost.
 */
export function parseErrorsFile(text: string): MirrorError[] {
  const out: MirrorError[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line.trim() === "") continue;
    let m = WITH_CONTEXT.exec(line);
    if (m) {
      out.push({
        image: stripTransport(m[1] ?? ""),
        error: m[4] ?? "",
        bundles: goList(m[2] ?? ""),
        operators: goList(m[3] ?? ""),
      });
      continue;
    }
    m = PLAIN.exec(line);
    if (m) {
      out.push({ image: stripTransport(m[1] ?? ""), error: m[2] ?? "" });
      continue;
    }
    m = BARE_SKIP.exec(line);
    if (m) {
      out.push({ image: stripTransport(m[2] ?? ""), error: m[1] ?? "" });
      continue;
    }
    out.push({ image: "", error: line });
  }
  return out;
}

/**
 * The newest `mirroring_errors_<ts>.txt` among `fileNames` (base names or paths, returned as
 * given). A workspace is reused across runs, so older runs' files are still there: callers must
 * also check the stamp is not older than the run they collect.
 */
export function latestErrorsFile(fileNames: readonly string[]): string | undefined {
  return newestByStamp(fileNames, ERRORS_FILE_PATTERN);
}
