/**
 * What the cluster holds of a MirrorJob's applied objects, and what an apply did: the data
 * the apply shell (runtime/applier.ts) hands back to the pure apply stage. Types only.
 */
import type { LiveObject } from "./plan.ts";

export interface LiveState {
  readonly objects: readonly LiveObject[];
  /** What the cluster lacks, e.g. `imagedigestmirrorsets.config.openshift.io`. */
  readonly missing: readonly string[];
}

export interface AppliedRecord {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly hash: string;
}

export interface ApplyOutcome {
  readonly applied: readonly AppliedRecord[];
  readonly missing: readonly string[];
  readonly errors: readonly string[];
  /** Whether the pull secret was written (false when it already held the entry). */
  readonly pullSecretWritten: boolean;
}
