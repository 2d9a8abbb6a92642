/**
 * Deterministic names and labels of the objects a MirrorJob's runs create. A run's
 * identity is derived from the MirrorJob's uid and what triggered it, so an operator
 * that restarts mid-run computes the same names and adopts what exists.
 */
import { createHash } from "node:crypto";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  mirrorJob: "hubmirror.dev/mirrorjob",
  run: "hubmirror.dev/run",
  component: "app.kubernetes.io/component",
} as const;

export const MANAGER = "hub-mirror-operator";

/** Kubernetes names of Jobs must leave room for the pod suffix: 63 - 11. */
const MAX_BASE = 40;

function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 10);
}

function base(mirrorJobName: string): string {
  return mirrorJobName.length <= MAX_BASE
    ? mirrorJobName
    : `${mirrorJobName.slice(0, MAX_BASE - 11)}-${shortHash(mirrorJobName)}`;
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
    [LABELS.mirrorJob]: mirrorJobName.length <= 63 ? mirrorJobName : base(mirrorJobName),
    ...(id !== undefined && { [LABELS.run]: id }),
  };
}
