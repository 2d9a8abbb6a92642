/**
 * Where the harness finds the programs it runs. Go-built binaries live in a cache
 * outside the repository, keyed by the version pinned in `hack/<name>/go.mod`;
 * `hack/setup.sh` builds them when missing.
 */
import { OC_MIRROR_LINES, type OcMirrorLine } from "../src/ocmirror/lines.ts";
import { accessSync, constants, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function cacheDir(): string {
  return process.env.HUBMIRROR_CACHE ?? join(homedir(), ".cache", "hub-mirror-operator");
}

/** The version a wrapper module pins, e.g. `pinnedVersion("k8s", "k8s.io/kubernetes")`. */
export function pinnedVersion(wrapper: string, module: string): string {
  const goMod = readFileSync(join(repoRoot, "hack", wrapper, "go.mod"), "utf8");
  const match = new RegExp(`^\\s*(?:require\\s+)?${module.replace(/[.]/g, "\\.")}\\s+(v\\S+)`, "m").exec(
    goMod,
  );
  if (!match?.[1]) throw new Error(`hack/${wrapper}/go.mod does not require ${module}`);
  return match[1];
}

function executable(path: string, hint: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`${path} is missing: ${hint}`);
  }
}

const BUILD_HINT = "run `bash hack/setup.sh` (builds and caches the test binaries)";

export type KubeCommand =
  "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kubelet" | "kube-proxy";

export function kubeBinary(name: KubeCommand): string {
  return executable(join(cacheDir(), "k8s", pinnedVersion("k8s", "k8s.io/kubernetes"), name), BUILD_HINT);
}

export function etcdBinary(): string {
  return executable(
    join(cacheDir(), "etcd", pinnedVersion("etcd", "go.etcd.io/etcd/server/v3"), "etcd"),
    BUILD_HINT,
  );
}

/** Helm, built from the module pinned in hack/helm/go.mod (chart lint and rendering tests). */
export function helmBinary(): string {
  return executable(join(cacheDir(), "helm", pinnedVersion("helm", "helm.sh/helm/v3"), "helm"), BUILD_HINT);
}

/** kubectl matching the control plane's minor version (preinstalled on these machines). */
export function kubectlBinary(): string {
  const candidates = [
    process.env.KUBECTL,
    "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
    "/usr/local/bin/kubectl",
  ];
  for (const c of candidates) {
    if (c === undefined) continue;
    try {
      return executable(c, "");
    } catch {
      // try the next one
    }
  }
  throw new Error("no kubectl found: set KUBECTL to a kubectl 1.31-1.33 binary");
}

/** An oc-mirror line pinned in hack/oc-mirror/versions. */
export type { OcMirrorLine };

export interface OcMirrorPin {
  readonly line: OcMirrorLine;
  readonly commit: string;
  /** The version stamped into the binary (`oc-mirror --v2 version`). */
  readonly version: string;
}

/** The oc-mirror lines pinned in hack/oc-mirror/versions, and the default one. */
export function ocMirrorPins(): {
  readonly defaultLine: OcMirrorLine;
  readonly pins: readonly OcMirrorPin[];
} {
  const text = readFileSync(join(repoRoot, "hack", "oc-mirror", "versions"), "utf8");
  const rows = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(/\s+/));
  const isLine = (s: string | undefined): s is OcMirrorLine =>
    (OC_MIRROR_LINES as readonly (string | undefined)[]).includes(s);
  const defaultLine = rows.find((r) => r[0] === "default")?.[1];
  const pins = rows
    .filter((r) => r.length === 6)
    .map(([line, commit, version]) => {
      if (!isLine(line) || commit === undefined || version === undefined) {
        throw new Error(`hack/oc-mirror/versions: unknown line ${line ?? ""}`);
      }
      return { line, commit, version };
    });
  if (!isLine(defaultLine)) throw new Error("hack/oc-mirror/versions names no default line");
  return { defaultLine, pins };
}

/**
 * The oc-mirror binary of a line (default: the default line), built by hack/build-oc-mirror.sh
 * into `$cache/oc-mirror/<commit>/oc-mirror`. HUBMIRROR_OC_MIRROR, if set, is the default line's
 * binary (nothing is built then).
 */
export function ocMirrorBinary(line?: OcMirrorLine): string {
  const { defaultLine, pins } = ocMirrorPins();
  const wanted = line ?? defaultLine;
  const given = process.env.HUBMIRROR_OC_MIRROR;
  if (wanted === defaultLine && given !== undefined && given !== "") {
    return executable(given, "HUBMIRROR_OC_MIRROR must name an executable oc-mirror binary");
  }
  const pin = pins.find((p) => p.line === wanted);
  if (pin === undefined) throw new Error(`hack/oc-mirror/versions pins no oc-mirror ${wanted}`);
  return executable(
    join(cacheDir(), "oc-mirror", pin.commit, "oc-mirror"),
    `run \`bash hack/build-oc-mirror.sh\` (or \`bash hack/setup.sh\`) to build oc-mirror ${wanted}`,
  );
}
