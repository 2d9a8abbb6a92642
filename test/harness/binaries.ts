/**
 * Where the harness finds the programs it runs. Go-built binaries live in a cache
 * outside the repository, keyed by the version pinned in `hack/<name>/go.mod`;
 * `hack/setup.sh` builds them when missing.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

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

export function kubeBinary(name: "kube-apiserver" | "kube-controller-manager"): string {
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
