/**
 * The protocol between the pure reconcile core (`decide`) and the shell that does its I/O.
 *
 * A decision carries the status it wants, the Events that explain it, effects the shell
 * carries out (fire and forget), at most one query, and when to look again (`next`). A query
 * is a question only the shell can answer (the network, the cluster): the shell carries out
 * the decision's effects, answers the query, adds the answer to what decide observes and asks
 * decide again, until a decision has no query (bounded: see runtime/controller.ts). Answers
 * form one tagged union, keyed like the queries, so decide reads `observed.answers.<kind>`.
 *
 * Types only: both sides import this module, neither imports the other's implementation.
 */
import type { KubernetesObject, V1ConfigMap, V1Job, V1Pod } from "@kubernetes/client-node";
import type { MirrorJobStatus } from "../api/status.ts";
import type { KindInfo } from "../apply/kinds.ts";
import type { ApplyOutcome, LiveState } from "../apply/live.ts";
import type { Plan } from "../apply/plan.ts";
import type { PullEntry } from "../apply/pull-secret.ts";
import type { JobSettings } from "../job/builders.ts";
import type { Credentials } from "../registry/credentials.ts";
import type { ExpectedImage, VerifyResult } from "../registry/verify.ts";
import type { Referenced } from "./preflight.ts";
import type { FleetRollout, RolloutObservation } from "./rollout.ts";

export interface DecideSettings extends JobSettings {
  /** Namespaces whose MirrorJobs may change the cluster (tenant guard). */
  readonly applyNamespaces: readonly string[];
  /**
   * Changes that drain nodes and become ready within this long of each other are applied
   * together (see reconcile/rollout.ts drainHold).
   */
  readonly drainBatchWindowMs: number;
}

export type RegistryCheck =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: "RegistryUnreachable" | "RegistryAuthFailed" | "RegistryTLSFailed";
      readonly message: string;
    };

/**
 * The API server refused an object the operator created (a 4xx other than "already
 * exists"): its kind and name, and what the API server said, with the fields it named.
 */
export interface Refusal {
  readonly kind: string;
  readonly name: string;
  readonly code: number;
  readonly message: string;
  /** `details.causes[].field` of the API server's Status, e.g. `spec.resources.requests[storage]`. */
  readonly fields: readonly string[];
}

export type EnsureOutcome = { readonly ok: true } | { readonly ok: false; readonly refusal: Refusal };

/** What the registry holds for a reference (a manifest HEAD). */
export type Resolution =
  | { readonly state: "present"; readonly digest: string }
  | { readonly state: "absent" }
  | { readonly state: "error"; readonly message: string };

/** References one MirrorJob's run needs in the registry (registry pruning keeps them). */
export interface KeepSet {
  /** `namespace/name` of another MirrorJob; undefined for this one. */
  readonly mirrorJob?: string;
  readonly runId: string;
  readonly references: readonly string[];
}

/** What registry pruning needs to know of the other MirrorJobs on a registry. */
export interface RegistryNeighbours {
  /** Their current runs' references. */
  readonly keep: readonly KeepSet[];
  /** MirrorJobs with a run in progress (`namespace/name`): their references are not known yet. */
  readonly busy: readonly string[];
  /** MirrorJobs whose current run's image list is gone (`namespace/name (run id)`). */
  readonly unknown: readonly string[];
}
/** Which limit keeps a due run waiting. */
export type RunSlotLimit = "global" | "registry" | "target";

/**
 * The answer to a `runSlot` query: a slot (held until the run's Job exists or the reconcile
 * ends without one), or why not: the limit that is reached, and how many runs are waiting
 * ahead of this one (oldest due first).
 */
export type RunSlot =
  | { readonly granted: true }
  | {
      readonly granted: false;
      readonly limit: RunSlotLimit;
      /** The limit's value. */
      readonly max: number;
      /** Runs in progress under that limit. */
      readonly inProgress: number;
      /** Due runs that get a slot before this one. */
      readonly ahead: number;
    };

/** Questions only the shell can answer. */
export type Query =
  /**
   * A run is due: may it start now? Answered at once from the operator's own count of runs in
   * progress (its cache's run Jobs, plus runs being started), atomically, so that two workers
   * never both take the last slot. `target` is targetOf(spec.registry.url); `since` orders the
   * waiting runs (oldest first).
   */
  | { readonly kind: "runSlot"; readonly target: string; readonly since: string }
  /** The registry answers `/v2/` and accepts the push credentials (the network half of preflight). */
  | {
      readonly kind: "checkRegistry";
      readonly registry: string;
      readonly credentials: Credentials;
      readonly caBundle?: string;
      readonly tlsVerify: boolean;
    }
  /** Every image of a run is in the registry, with the expected digests. */
  | {
      readonly kind: "verify";
      readonly runId: string;
      readonly images: readonly ExpectedImage[];
      /** The push Secret's dockerconfigjson (credentials per repository). */
      readonly dockerConfig: string;
      readonly caBundle?: string;
      readonly tlsVerify: boolean;
    }
  /** What this MirrorJob applied earlier (by its owner labels). */
  | { readonly kind: "readApplied"; readonly kinds: readonly KindInfo[] }
  /** Carry out an apply plan (and the pull secret entry). */
  | { readonly kind: "apply"; readonly plan: Plan; readonly pull?: PullEntry }
  /** Delete everything this MirrorJob applied (its finalizer's work). */
  | { readonly kind: "deleteApplied" }
  /**
   * A run has ended: revoke its pod's rights (its Role and RoleBinding) and make its result
   * ConfigMap immutable, then answer with that result. What verify and apply later read can
   * then change no more, whoever holds the run's identity.
   */
  | {
      readonly kind: "sealRun";
      readonly runId: string;
      readonly resultName: string;
      readonly roleName: string;
    }
  /** Create the objects that start a run (each unless it exists), in order. */
  | { readonly kind: "ensure"; readonly runId: string; readonly objects: readonly KubernetesObject[] }
  /** How the cluster takes up what was applied: the MachineConfigPools, and these objects' state. */
  | {
      readonly kind: "readRollout";
      readonly catalogSources: readonly { readonly namespace: string; readonly name: string }[];
      readonly updateServices: readonly { readonly namespace: string; readonly name: string }[];
    }
  /**
   * Registry pruning: the other MirrorJobs on the same registry (from the cache) and what
   * the registry holds (manifest HEADs, bounded concurrency) for the candidates and for every
   * kept reference in the candidates' repositories (see reconcile/prune-plan.ts).
   */
  | {
      readonly kind: "planPrune";
      /** Which check this is (the prune's step), so an answer is never taken for another's. */
      readonly step: string;
      readonly registry: string;
      readonly self: { readonly namespace: string; readonly name: string };
      readonly candidates: readonly string[];
      /** This MirrorJob's kept run. */
      readonly keep: KeepSet;
      readonly dockerConfig: string;
      readonly caBundle?: string;
      readonly tlsVerify: boolean;
    }
  /** Create the objects of a prune step (a Job with its ConfigMaps and RBAC, or the plan), in order. */
  | { readonly kind: "ensurePrune"; readonly step: string; readonly objects: readonly KubernetesObject[] }
  /** A prune Job has ended: revoke its pod's rights and make its result immutable (as sealRun). */
  | {
      readonly kind: "sealPrune";
      readonly step: string;
      readonly resultName: string;
      readonly roleName: string;
    };

/** The shell's answers, one per query kind. */
export type Answer =
  | { readonly kind: "runSlot"; readonly slot: RunSlot }
  | { readonly kind: "checkRegistry"; readonly result: RegistryCheck }
  | {
      readonly kind: "verify";
      readonly runId: string;
      readonly result: VerifyResult;
      /** When the verification ended: a slow registry takes minutes, and the next look counts from its end. */
      readonly completionTime: string;
    }
  | { readonly kind: "readApplied"; readonly live: LiveState }
  | { readonly kind: "apply"; readonly outcome: ApplyOutcome }
  | { readonly kind: "deleteApplied"; readonly deleted: number; readonly errors: readonly string[] }
  | { readonly kind: "sealRun"; readonly runId: string; readonly result: V1ConfigMap | undefined }
  | { readonly kind: "ensure"; readonly runId: string; readonly outcome: EnsureOutcome }
  | { readonly kind: "readRollout"; readonly seen: RolloutObservation }
  | {
      readonly kind: "planPrune";
      readonly step: string;
      readonly neighbours: RegistryNeighbours;
      readonly resolutions: ReadonlyMap<string, Resolution>;
    }
  | { readonly kind: "ensurePrune"; readonly step: string; readonly outcome: EnsureOutcome }
  | { readonly kind: "sealPrune"; readonly step: string; readonly result: V1ConfigMap | undefined };

/** The answers decide has been given so far in one reconcile. */
export type Answers = { readonly [K in Answer["kind"]]?: Extract<Answer, { kind: K }> };

/** Effects: the shell carries them out and reports nothing back. */
export type Effect =
  | { readonly kind: "addFinalizer" }
  | { readonly kind: "removeFinalizer" }
  /** Delete a run's Job (its pods with it) and the run's ConfigMaps and RBAC. */
  | { readonly kind: "deleteRun"; readonly runId: string; readonly jobName: string }
  /** Delete every object of a prune (its Jobs, ConfigMaps and RBAC, by its label). */
  | { readonly kind: "deletePrune"; readonly pruneId: string };

/**
 * When to reconcile again, besides watch events (which always do):
 * - `backoff`: something failed that needs time or the user; retry after the key's
 *   exponential backoff (10 s doubling to 5 minutes, runtime/controller.ts);
 * - `after`: look again after `ms` (a running Job, the next scheduled run, a recheck);
 * - `awaitChange`: nothing to do until something changes.
 *
 * Precedence when stages ask for several (combineNext): `backoff` wins over `after`, and the
 * earliest `after` wins over `awaitChange`. A failure therefore retries on its backoff even if
 * a later timer was asked for; the backoff is at most 5 minutes, so a timer is postponed by
 * no more than that. (controller-runtime lets RequeueAfter win over Requeue; here a failing
 * MirrorJob must never be looked at more often than its backoff allows.)
 */
export type Next =
  | { readonly kind: "backoff" }
  | { readonly kind: "after"; readonly ms: number }
  | { readonly kind: "awaitChange" };

export const AWAIT_CHANGE: Next = { kind: "awaitChange" };
export const BACKOFF: Next = { kind: "backoff" };
export const after = (ms: number): Next => ({ kind: "after", ms });

/** The one `next` of two asks (see Next for the precedence). */
export function combineNext(a: Next, b: Next): Next {
  if (a.kind === "backoff" || b.kind === "backoff") return BACKOFF;
  if (a.kind === "after" && b.kind === "after") return a.ms <= b.ms ? a : b;
  return a.kind === "after" ? a : b;
}

export interface EventSpec {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly action: string;
  /** At most 1024 characters (events.k8s.io's limit); see reconcile/events.ts. */
  readonly note: string;
  /**
   * The one fact this Event states, unique within its MirrorJob (a DNS label, e.g.
   * `run-<id>-started`). The Event is named after it, so a decision repeated by an operator
   * that restarted between recording the Event and writing the status states it only once.
   */
  readonly once?: string;
}

export interface Decision {
  readonly status: MirrorJobStatus;
  readonly events: readonly EventSpec[];
  readonly effects: readonly Effect[];
  /** A question to answer before the decision is final. */
  readonly query?: Query;
  readonly next: Next;
}

/** What decide sees: the MirrorJob's world from the cache, the clock, and the shell's answers. */
export interface Observed {
  readonly now: Date;
  readonly referenced: Referenced;
  /** The MirrorJob's run Jobs. */
  readonly jobs: readonly V1Job[];
  /** The MirrorJob's prune Jobs (oc-mirror delete), kept apart from its runs. */
  readonly pruneJobs?: readonly V1Job[];
  /**
   * The pods of those Jobs (their container statuses say what the kubelet saw: a container
   * OOMKilled, which the reporter in the same pod can only guess at).
   */
  readonly pods: readonly V1Pod[];
  /** Result ConfigMaps of runs, by name. */
  readonly resultConfigMaps: ReadonlyMap<string, V1ConfigMap>;
  /** The other MirrorJobs whose changes wait to be applied or roll out (from the cache). */
  readonly fleet: readonly FleetRollout[];
  readonly answers: Answers;
}

/** `observed` with one more answer. */
export function withAnswer(observed: Observed, answer: Answer): Observed {
  return { ...observed, answers: { ...observed.answers, [answer.kind]: answer } };
}
