/**
 * The real oc-mirror the local stack's Jobs run, one binary per line: where it is (built by
 * hack/setup.sh, or HUBMIRROR_OC_MIRROR for the default line) and what version it says it is.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { OC_MIRROR_LINES, type OcMirrorLine } from "../src/ocmirror/lines.ts";
import { cacheDir, ocMirrorBinary } from "./binaries.ts";
import { errorText, safeJson } from "./kube-errors.ts";

export interface OcMirrorBuild {
  readonly line: OcMirrorLine;
  readonly binary: string;
  /** What the binary says it is (`oc-mirror --v2 version`), e.g. v4.20.0-9b186403. */
  readonly version: string;
}

export const isLine = (value: unknown): value is OcMirrorLine =>
  (OC_MIRROR_LINES as readonly unknown[]).includes(value);

/** The real oc-mirror of a line and its version, or why not (`dir`: a scratch folder for it). */
export function ocMirrorBuild(
  line: OcMirrorLine,
  dir: string,
): OcMirrorBuild | { line: OcMirrorLine; problem: string } {
  let binary: string;
  try {
    binary = ocMirrorBinary(line);
  } catch (err) {
    return { line, problem: errorText(err) };
  }
  const home = join(dir, "oc-mirror-version");
  mkdirSync(home, { recursive: true });
  try {
    const out = execFileSync(binary, ["--v2", "version", "--output=json"], {
      encoding: "utf8",
      env: { HOME: home, TMPDIR: home, PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 30_000,
    });
    const json = safeJson(/\{[\s\S]*\}/.exec(out)?.[0] ?? "") as
      { clientVersion?: { gitVersion?: unknown } } | undefined;
    const version = json?.clientVersion?.gitVersion;
    return { line, binary, version: typeof version === "string" ? version : "(version not reported)" };
  } catch (err) {
    return { line, problem: `${binary} --v2 version failed: ${errorText(err)}` };
  }
}

/** Where a build comes from, in words. */
export const buildOrigin = (b: OcMirrorBuild) =>
  b.binary.startsWith(join(cacheDir(), "oc-mirror"))
    ? "built from source by hack/setup.sh"
    : "HUBMIRROR_OC_MIRROR";
