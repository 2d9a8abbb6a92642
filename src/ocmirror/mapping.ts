/**
 * `working-dir/dry-run/mapping.txt`, written by `oc-mirror --dry-run`: one line per copy,
 * `<source>=<destination>`, both with their transport (`docker://`, `oci://`, `file://`).
 * Source: internal/pkg/cli/dryrun.go (processImageForDryRun writes `Source + "=" + Destination`).
 *
 * In mirror-to-mirror each operator catalog gives two lines: one into oc-mirror's local cache
 * (`docker://localhost:<port>/...`) and one from the cache to the destination. Use
 * `destinationEntries` to keep only what lands in the target registry.
 *
 * Errors: `parseMapping` never throws. Lines it cannot read are returned in `errors` with their
 * 1-based line number, and the other lines are still returned, so that a caller can decide
 * whether a partly unreadable mapping is acceptable (verification usually is not).
 */
import { DIGEST_PATTERN } from "../registry/reference.ts";
import { stripTransport } from "./errors-file.ts";

export interface MappingEntry {
  /** Source reference without transport. */
  readonly source: string;
  /** Destination reference without transport. */
  readonly destination: string;
  /** `sha256:<hex>` when the source is pinned by digest (the destination must then have it). */
  readonly sourceDigest?: string;
}

export interface MappingError {
  /** 1-based line number. */
  readonly line: number;
  readonly message: string;
}

export interface ParsedMapping {
  readonly entries: MappingEntry[];
  readonly errors: MappingError[];
}

/** Refuse absurd lines early: no image reference is anywhere near this long. */
const MAX_LINE_LENGTH = 4096;
const TRANSPORT = /^(?:docker|oci|file):\/\/|^oci:/;
const DIGEST_SUFFIX = new RegExp(`@${DIGEST_PATTERN}$`);
// host[:port]/path..., with optional :tag and/or @digest; a loose check, the registry client
// parses references strictly when it uses them.
const REFERENCE =
  /^[A-Za-z0-9.-]+(?::[0-9]+)?(?:\/[A-Za-z0-9._/-]+)?(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]+)?$/;

function checkSide(
  side: "source" | "destination",
  raw: string,
): { ref: string; error?: undefined } | { ref?: undefined; error: string } {
  if (raw === "") return { error: `empty ${side}` };
  if (!TRANSPORT.test(raw)) {
    return { error: `${side} "${raw}" has no transport (expected docker://, oci:// or file://)` };
  }
  const ref = stripTransport(raw);
  if (raw.startsWith("docker://") && !REFERENCE.test(ref)) {
    return { error: `${side} "${raw}" is not an image reference` };
  }
  if (ref === "") return { error: `empty ${side}` };
  return { ref };
}

export function parseMapping(text: string): ParsedMapping {
  const entries: MappingEntry[] = [];
  const errors: MappingError[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const lineNo = index + 1;
    if (line === "") return;
    if (line.length > MAX_LINE_LENGTH) {
      errors.push({ line: lineNo, message: `line is longer than ${MAX_LINE_LENGTH} characters` });
      return;
    }
    const parts = line.split("=");
    if (parts.length !== 2) {
      errors.push({
        line: lineNo,
        message: `expected "<source>=<destination>", got ${parts.length - 1} "=" in "${line}"`,
      });
      return;
    }
    const src = checkSide("source", parts[0] ?? "");
    const dst = checkSide("destination", parts[1] ?? "");
    const problem = src.error ?? dst.error;
    if (problem !== undefined || src.ref === undefined || dst.ref === undefined) {
      errors.push({ line: lineNo, message: problem ?? "unreadable line" });
      return;
    }
    const digest = DIGEST_SUFFIX.exec(src.ref)?.[1];
    entries.push(
      digest === undefined
        ? { source: src.ref, destination: dst.ref }
        : { source: src.ref, destination: dst.ref, sourceDigest: digest },
    );
  });
  return { entries, errors };
}

/** Host (lower-cased) and path components of a reference or of `host[:port][/path]`. */
function splitLocation(ref: string): { host: string; path: string[] } {
  const noDigest = ref.split("@")[0] ?? "";
  const slash = noDigest.indexOf("/");
  const host = (slash < 0 ? noDigest : noDigest.slice(0, slash)).toLowerCase();
  let path = slash < 0 ? "" : noDigest.slice(slash + 1);
  // A tag follows the last ":" of the last path component (a port only appears in the host).
  const lastSlash = path.lastIndexOf("/");
  const colon = path.lastIndexOf(":");
  if (colon > lastSlash) path = path.slice(0, colon);
  return { host, path: path.split("/").filter((c) => c !== "") };
}

/**
 * The entries whose destination lies under `registryUrl` (`host[:port][/path]`): same host and
 * port (compared as written, case-insensitively) and the URL's path as a prefix of whole path
 * components (`reg/mirror` holds `reg/mirror/ns/img`, not `reg/mirror2/img`). This drops the
 * copies into oc-mirror's local cache (`localhost:55000/...`).
 */
export function destinationEntries(entries: readonly MappingEntry[], registryUrl: string): MappingEntry[] {
  const base = splitLocation(registryUrl.replace(/^[a-z]+:\/\//, "").replace(/\/+$/, ""));
  return entries.filter((e) => {
    const dest = splitLocation(e.destination);
    return (
      dest.host === base.host &&
      dest.path.length > base.path.length &&
      base.path.every((component, i) => dest.path[i] === component)
    );
  });
}
