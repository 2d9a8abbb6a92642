/**
 * config/rbac/ rendered from the Helm chart, so that the chart stays the one source of the
 * operator's RBAC: `helm template` with the default values (release and namespace
 * `hub-mirror-operator`), one file per chart template, without Helm's own labels.
 * Used by `npm run generate` (generate-crd.ts) and by the staleness test.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";

export const CHART_DIR = "charts/hub-mirror-operator";
export const RBAC_DIR = "config/rbac";
/** The chart templates config/rbac/ holds, in apply order. */
export const RBAC_TEMPLATES = [
  "serviceaccount.yaml",
  "rbac-manager.yaml",
  "rbac-apply.yaml",
  "rbac-leader-election.yaml",
  "rbac-watch-namespaces.yaml",
  "rbac-openshift.yaml",
] as const;
const RELEASE = "hub-mirror-operator";
/** Labels that describe a Helm release, not the objects. */
const HELM_LABELS = ["helm.sh/chart", "app.kubernetes.io/managed-by"];

/** The helm binary hack/build-binaries.sh caches (version pinned in hack/helm/go.mod), or $HELM. */
export function cachedHelm(): string {
  if (process.env.HELM !== undefined) return process.env.HELM;
  const version = /^require helm\.sh\/helm\/v3 (v\S+)/m.exec(readFileSync("hack/helm/go.mod", "utf8"))?.[1];
  if (version === undefined) throw new Error("hack/helm/go.mod does not require helm.sh/helm/v3");
  const cache = process.env.HUBMIRROR_CACHE ?? join(homedir(), ".cache", "hub-mirror-operator");
  return join(cache, "helm", version, "helm");
}

export interface RenderOptions {
  readonly release?: string;
  readonly namespace?: string;
  /** --set values, e.g. `{ "openshift.enabled": "false" }`. */
  readonly set?: Readonly<Record<string, string>>;
  /** --show-only templates, relative to the chart's templates/ folder. */
  readonly showOnly?: readonly string[];
  readonly kubeVersion?: string;
}

/** `helm template` of the chart; throws with Helm's message when rendering fails. */
export function renderChart(helm: string, options: RenderOptions = {}): string {
  const args = [
    "template",
    options.release ?? RELEASE,
    CHART_DIR,
    "--namespace",
    options.namespace ?? RELEASE,
    ...(options.kubeVersion !== undefined ? ["--kube-version", options.kubeVersion] : []),
    ...Object.entries(options.set ?? {}).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
    ...(options.showOnly ?? []).flatMap((t) => ["--show-only", `templates/${t}`]),
  ];
  return execFileSync(helm, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function withoutHelmLabels(doc: Record<string, unknown>): Record<string, unknown> {
  const metadata = doc.metadata as { labels?: Record<string, string> } | undefined;
  if (metadata?.labels !== undefined) {
    for (const label of HELM_LABELS) Reflect.deleteProperty(metadata.labels, label);
  }
  return doc;
}

/** The files of config/rbac/ (path -> content) as the chart renders them. */
export function renderRbacFiles(helm: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const template of RBAC_TEMPLATES) {
    const docs = parseAllDocuments(renderChart(helm, { showOnly: [template] }))
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .filter((d) => d !== null)
      .map(withoutHelmLabels);
    const header =
      `# Generated from ${CHART_DIR}/templates/${template} (default values, namespace ${RELEASE})\n` +
      "# by `npm run generate`. Do not edit: change the chart and regenerate.\n";
    const body = docs.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
    files.set(join(RBAC_DIR, basename(template)), header + body);
  }
  return files;
}
