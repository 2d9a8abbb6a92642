/**
 * Deterministic names and labels of the objects a MirrorJob's runs create. A run's
 * identity is derived from the MirrorJob's uid and what triggered it, so an operator
 * that restarts mid-run computes the same names and adopts what exists.
 */
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  mirrorJob: "hubmirror.dev/mirrorjob",
  run: "hubmirror.dev/run",
  component: "app.kubernetes.io/component",
  /** On every object of a registry prune: the prune's id. */
  prune: "hubmirror.dev/prune",
} as const;

/** `app.kubernetes.io/component` of a prune's objects (its Jobs are not runs). */
export const PRUNE_COMPONENT = "prune";

/** Whether an object (a Job) belongs to a registry prune rather than a run. */
export function isPruneObject(obj: KubernetesObject): boolean {
  return obj.metadata?.labels?.[LABELS.component] === PRUNE_COMPONENT;
}

/** A prune's id: stable for one MirrorJob (uid) and the two runs it prunes between. */
export function pruneId(mirrorJobUid: string, fromRun: string, toRun: string): string {
  return shortHash(mirrorJobUid, "prune", fromRun, toRun);
}

/** The id of one step of a prune: generate or delete, and which attempt. */
export function pruneStepId(prune: string, step: "generate" | "delete", attempt: number): string {
  return shortHash(prune, step, String(attempt));
}

/** The ConfigMap holding a prune's plan (one per plan: a plan made again is another ConfigMap). */
export function prunePlanName(mirrorJobName: string, prune: string, hash: string): string {
  return `${runNames(mirrorJobName, prune).job}-plan-${hash.slice(0, 8)}`;
}

export const MANAGER = "hub-mirror-operator";

/** Kubernetes names of Jobs must leave room for the pod suffix: 63 - 11. */
const MAX_BASE = 40;

function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 10);
}

/** A prefix for names derived from a MirrorJob's name: the name itself, or cut and hashed. */
function base(mirrorJobName: string): string {
  return mirrorJobName.length <= MAX_BASE
    ? mirrorJobName
    : `${mirrorJobName.slice(0, MAX_BASE - 11).replace(/[-.]+$/, "")}-${shortHash(mirrorJobName)}`;
}

/**
 * The one way a name becomes a label value (at most 63 characters): as it is, or cut and
 * hashed. Every label that names a MirrorJob is written with it, and every lookup by such a
 * label computes its value with it too; the way back from an object to its MirrorJob is the
 * object's owner reference (`ownerName`), never the label.
 */
export function labelValue(value: string): string {
  if (value.length <= 63) return value;
  return `${value.slice(0, 52).replace(/[-.]+$/, "")}-${shortHash(value)}`;
}

/** The name of an Event about a MirrorJob (Event names are at most 253 characters too). */
export function eventName(mirrorJobName: string, unique: string): string {
  return `${base(mirrorJobName)}.${unique}`;
}

/** A run's id: stable for one MirrorJob (uid) and one trigger token. */
export function runId(mirrorJobUid: string, triggerToken: string): string {
  return shortHash(mirrorJobUid, triggerToken);
}

export interface RunNames {
  readonly job: string;
  readonly result: string;
  readonly input: string;
  readonly role: string;
}

export function runNames(mirrorJobName: string, id: string): RunNames {
  const job = `${base(mirrorJobName)}-${id}`;
  return {
    job,
    result: `${job}-result`,
    input: `${job}-input`,
    role: `${job}-reporter`,
  };
}

export function mirrorJobNames(mirrorJobName: string): {
  cache: string;
  workspace: string;
  serviceAccount: string;
} {
  const b = base(mirrorJobName);
  return { cache: `${b}-cache`, workspace: `${b}-workspace`, serviceAccount: `${b}-mirror` };
}

export function runLabels(mirrorJobName: string, id?: string): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGER,
    [LABELS.mirrorJob]: labelValue(mirrorJobName),
    ...(id !== undefined && { [LABELS.run]: id }),
  };
}

/** The name of the owner of `kind` that controls the object, from its owner references. */
export function ownerName(obj: KubernetesObject, kind: string): string | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.kind === kind && r.controller === true)?.name;
}
