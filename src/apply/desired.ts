/**
 * The objects a MirrorJob wants on the cluster, from a validated run result: oc-mirror's
 * names (`idms-release-0`, `cs-redhat-operator-index-v4-19`) are the same for every
 * MirrorJob, so each object is renamed deterministically per MirrorJob, labelled with its
 * owner, and stripped of Argo CD's tracking labels and annotations (Argo CD would otherwise
 * think it owns them and prune them).
 */
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { LABELS, MANAGER, labelValue } from "../job/names.ts";
import { contentHash } from "../util/hash.ts";
import { OWNER_LABELS, type ApplyKind, type KindInfo } from "./kinds.ts";
import type { GeneratedResource } from "./validate.ts";

export interface Owner {
  readonly namespace: string;
  readonly name: string;
}

export interface DesiredObject {
  readonly info: KindInfo;
  readonly name: string;
  readonly namespace?: string;
  /** The complete manifest to apply. */
  readonly manifest: KubernetesObject & Record<string, unknown>;
  /** Hash of the content (spec, data): equal content, equal hash, whatever the run. */
  readonly hash: string;
  readonly content: Readonly<Record<string, unknown>>;
}

export const ANNOTATIONS = {
  sourceName: "hubmirror.dev/generated-name",
  run: "hubmirror.dev/run",
} as const;

/** Argo CD tracks resources by this label (default) or these annotations: never copy them. */
function isTrackingKey(key: string): boolean {
  return (
    key.startsWith("argocd.argoproj.io/") ||
    key === "app.kubernetes.io/instance" ||
    key === "kubectl.kubernetes.io/last-applied-configuration"
  );
}

function withoutTracking(map: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).filter(([key]) => !isTrackingKey(key)));
}

/**
 * `<owner>-<generated>-<hash>`: readable, unique per MirrorJob (the hash covers the owner's
 * namespace and name and the generated name, so truncation cannot make two collide), and
 * a valid DNS label when the kind needs one (`maxName` 63).
 */
export function appliedName(owner: Owner, sourceName: string, maxName: number): string {
  const hash = createHash("sha256")
    .update(`${owner.namespace}/${owner.name}/${sourceName}`)
    .digest("hex")
    .slice(0, 8);
  let base = `${owner.name}-${sourceName}`.replace(/\./g, "-");
  if (!/^[a-z]/.test(base)) base = `m-${base}`;
  base = base.slice(0, maxName - hash.length - 1).replace(/-+$/, "");
  return `${base}-${hash}`;
}

const SIGNATURE_KEY = /^(sha256-[a-f0-9]{64})-[0-9]+$/;

/**
 * Release signatures keyed `sha256-<digest>-<n>`, numbered per digest from 1 (values in a
 * stable order). oc-mirror numbers them with one counter across all releases, in an order
 * that changes from run to run (clusterresources.go GenerateSignatureConfigMap), so the
 * same signatures would come under other keys each run. The cluster version operator takes
 * every key that starts with the digest, so the number carries no meaning.
 */
export function renumberSignatures(entries: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const byDigest = new Map<string, unknown[]>();
  const other: [string, unknown][] = [];
  for (const [key, value] of Object.entries(entries)) {
    const digest = SIGNATURE_KEY.exec(key)?.[1];
    if (digest === undefined) other.push([key, value]);
    else byDigest.set(digest, [...(byDigest.get(digest) ?? []), value]);
  }
  const renumbered = [...byDigest].flatMap(([digest, values]) =>
    values
      .map((v) => [JSON.stringify(v), v] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, v], i) => [`${digest}-${String(i + 1)}`, v] as const),
  );
  return Object.fromEntries([...other, ...renumbered].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Content as it is applied, the same for the same configuration whatever the run: mirror
 * entries sorted by source (oc-mirror's order changes from run to run) and release
 * signatures renumbered (see renumberSignatures).
 */
function normalized(kind: string, content: Readonly<Record<string, unknown>>): Record<string, unknown> {
  if (kind === "ConfigMap") {
    const out: Record<string, unknown> = { ...content };
    for (const field of ["data", "binaryData"] as const) {
      const entries = content[field];
      if (entries !== null && typeof entries === "object") {
        out[field] = renumberSignatures(entries as Record<string, unknown>);
      }
    }
    return out;
  }
  const field =
    kind === "ImageDigestMirrorSet"
      ? "imageDigestMirrors"
      : kind === "ImageTagMirrorSet"
        ? "imageTagMirrors"
        : "";
  const spec = content.spec as Record<string, unknown> | undefined;
  const entries = spec?.[field] as { source: string }[] | undefined;
  if (spec === undefined || entries === undefined) return { ...content };
  const sorted = [...entries].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  return { ...content, spec: { ...spec, [field]: sorted } };
}

export function ownerLabels(owner: Owner): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGER,
    [OWNER_LABELS.namespace]: owner.namespace,
    [OWNER_LABELS.name]: labelValue(owner.name),
  };
}

/** The selector for everything a MirrorJob applied. */
export function ownerSelector(owner: Owner): string {
  return Object.entries(ownerLabels(owner))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

export function desiredObjects(
  resources: readonly GeneratedResource[],
  owner: Owner,
  kinds: readonly ApplyKind[],
  runId: string,
): DesiredObject[] {
  return resources
    .filter((r) => kinds.includes(r.info.applyKind))
    .map((r) => {
      const name = appliedName(owner, r.sourceName, r.info.maxName);
      const content = normalized(r.info.kind, r.content);
      const manifest = {
        apiVersion: r.info.apiVersion,
        kind: r.info.kind,
        metadata: {
          name,
          ...(r.info.namespace !== undefined && { namespace: r.info.namespace }),
          labels: {
            ...withoutTracking(r.labels),
            ...ownerLabels(owner),
          },
          annotations: {
            ...withoutTracking(r.annotations),
            [ANNOTATIONS.sourceName]: r.sourceName,
            [ANNOTATIONS.run]: runId,
          },
        },
        ...content,
      };
      return {
        info: r.info,
        name,
        ...(r.info.namespace !== undefined && { namespace: r.info.namespace }),
        manifest,
        hash: contentHash(content),
        content,
      };
    });
}
