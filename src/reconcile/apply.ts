/**
 * The apply stage of a reconcile, pure: which run's generated objects belong on the
 * cluster, whether this MirrorJob may change the cluster at all (tenant guard), whether the
 * change drains nodes and is approved, and what the `Applied` condition says. Reading the
 * cluster and applying are the shell's (`readApplied` and `apply` actions, answered in
 * `observed.applied` and `observed.applyOutcome`).
 *
 * Only a run that succeeded and was verified (or verification is off) is applied; a failed
 * or partial run never replaces or prunes what an earlier good run applied.
 */
import type { MirrorJobStatus, Run } from "../api/status.ts";
import type { MirrorJob } from "../api/validation.ts";
import type { ApplyOutcome, LiveState } from "../apply/cluster.ts";
import { desiredObjects, type Owner } from "../apply/desired.ts";
import { FINALIZER, kindInfo, PULL_SECRET, type KindInfo } from "../apply/kinds.ts";
import { planChanges, type Plan } from "../apply/plan.ts";
import { entryHash, pullEntry, type PullEntry } from "../apply/pull-secret.ts";
import { validateGenerated } from "../apply/validate.ts";
import { runNames } from "../job/names.ts";
import { readResultConfigMap } from "../report/result.ts";
import type { ConditionInput } from "./conditions.ts";
import type { Action, EventSpec, Observed } from "./decide.ts";

export interface ApplyInputs {
  /** Namespaces whose MirrorJobs may change the cluster (the operator's configuration). */
  readonly applyNamespaces: readonly string[];
  /** The `spec.registry.pullSecretRef` Secret's dockerconfigjson, if set. */
  readonly pullAuthFile?: string;
}

export interface ApplyStep {
  /** The `Applied` condition: set, removed (apply.mode None), or left as it is (undefined). */
  readonly condition?: ConditionInput | "remove";
  readonly actions: Action[];
  /** An action needs its answer before the stage can finish. */
  readonly waiting: boolean;
  readonly events: EventSpec[];
  /** Status fields this stage owns, as they should be after it. */
  readonly status: Pick<MirrorJobStatus, "appliedResources" | "pendingChange" | "appliedRun">;
  readonly phase?: "Applying" | "AwaitingApproval";
  readonly requeueAfterMs?: number;
  readonly retry?: boolean;
}

/** A cluster without the OpenShift APIs is looked at again this rarely (no retry storm). */
export const MISSING_API_RECHECK_MS = 5 * 60_000;

/** The run whose objects should be on the cluster: succeeded, and verified when verification is on. */
export function applicableRun(mj: MirrorJob, status: MirrorJobStatus): Run | undefined {
  const run = status.lastSuccessfulRun;
  if (run === undefined) return undefined;
  if (mj.spec.verify.enabled && run.verification?.reason !== "AllImagesPresent") return undefined;
  return run;
}

export function hasFinalizer(mj: MirrorJob): boolean {
  return mj.metadata.finalizers?.includes(FINALIZER) ?? false;
}

function keep(status: MirrorJobStatus): ApplyStep["status"] {
  return {
    ...(status.appliedResources !== undefined && { appliedResources: status.appliedResources }),
    ...(status.pendingChange !== undefined && { pendingChange: status.pendingChange }),
    ...(status.appliedRun !== undefined && { appliedRun: status.appliedRun }),
  };
}

function withoutPending(status: MirrorJobStatus): ApplyStep["status"] {
  const { pendingChange: _pending, ...rest } = keep(status);
  return rest;
}

/** Warns once per distinct message (the condition carries it while it lasts). */
function warnOnce(
  previous: ConditionInput | undefined,
  condition: ConditionInput,
  reason: string,
): EventSpec[] {
  if (previous?.reason === condition.reason && previous.message === condition.message) return [];
  return [{ type: "Warning", reason, action: "Apply", note: condition.message.slice(0, 1024) }];
}

export function applyStep(
  mj: MirrorJob,
  status: MirrorJobStatus,
  observed: Observed,
  inputs: ApplyInputs,
): ApplyStep {
  const spec = mj.spec.apply;
  const previous = status.conditions?.find((c) => c.type === "Applied");
  const generation = mj.metadata.generation ?? 0;
  const namespace = mj.metadata.namespace ?? "";
  const owner: Owner = { namespace, name: mj.metadata.name };
  const base = { actions: [], waiting: false, events: [] };
  const stop = (
    condition: ConditionInput,
    extra: Partial<ApplyStep> = {},
    statusFields: ApplyStep["status"] = withoutPending(status),
  ): ApplyStep => ({ ...base, condition, status: statusFields, ...extra });

  if (spec.mode === "None") return { ...base, condition: "remove", status: withoutPending(status) };
  if (!inputs.applyNamespaces.includes(namespace)) {
    const condition: ConditionInput = {
      type: "Applied",
      status: "False",
      reason: "NamespaceNotAllowed",
      message:
        `MirrorJobs in namespace ${namespace} may not change the cluster (the operator allows: ${inputs.applyNamespaces.join(", ") || "none"}); ` +
        `runs still mirror and verify. Set spec.apply.mode: None to mirror only, or ask the operator's administrators to allow this namespace`,
    };
    return stop(condition, { events: warnOnce(previous, condition, "ApplyNotAllowed") });
  }
  const run = applicableRun(mj, status);
  if (run === undefined) {
    if (status.appliedRun !== undefined && previous !== undefined) return { ...base, status: keep(status) };
    return stop({
      type: "Applied",
      status: "False",
      reason: "NoVerifiedRun",
      message: "nothing applied yet: waiting for a run that succeeds and is verified",
    });
  }
  // Applied already, for this run and this spec: nothing to look at.
  if (
    previous?.status === "True" &&
    previous.observedGeneration === generation &&
    status.appliedRun === run.id
  ) {
    return { ...base, status: keep(status) };
  }

  const read = readResultConfigMap(observed.resultConfigMaps.get(runNames(mj.metadata.name, run.id).result));
  if (read.result === undefined) {
    return stop({
      type: "Applied",
      status: "False",
      reason: "ResultUnavailable",
      message: `the result of run ${run.id} is no longer available; start a new run (change spec.runRequest)`,
    });
  }
  const validation = validateGenerated(read.clusterResources, mj.spec.registry.url);
  if (!validation.ok) {
    const condition: ConditionInput = {
      type: "Applied",
      status: "False",
      reason: "InvalidResult",
      message: `run ${run.id}'s generated objects were rejected, nothing applied: ${validation.problems.join("; ")}`,
    };
    return stop(condition, { events: warnOnce(previous, condition, "ApplyRejected") });
  }
  let pull: PullEntry | undefined;
  const pullRef = mj.spec.registry.pullSecretRef;
  if (spec.pullSecret === "Merge" && pullRef !== undefined && inputs.pullAuthFile !== undefined) {
    const entry = pullEntry(
      inputs.pullAuthFile,
      mj.spec.registry.url,
      `Secret ${pullRef.name} (spec.registry.pullSecretRef)`,
    );
    if (typeof entry === "string") {
      const condition: ConditionInput = {
        type: "Applied",
        status: "False",
        reason: "InvalidPullSecret",
        message: entry,
      };
      return stop(condition, { events: warnOnce(previous, condition, "ApplyRejected") });
    }
    pull = entry;
  }

  const kinds: KindInfo[] = spec.kinds.map(kindInfo);
  const live: LiveState | undefined = observed.applied;
  if (live === undefined) {
    return { ...base, actions: [{ kind: "readApplied", kinds }], waiting: true, status: keep(status) };
  }
  // Objects of kinds the cluster does not serve are not tried; they are named in the condition.
  const all = desiredObjects(validation.resources, owner, spec.kinds, run.id);
  const desired = all.filter((d) => !live.missing.includes(d.info.requires));
  const unavailable = [...new Set(all.filter((d) => !desired.includes(d)).map((d) => d.info.requires))];
  const plan = planChanges(desired, live.objects, { prune: spec.prune });
  const pending =
    plan.changes.length > 0
      ? { hash: plan.hash, disruptive: plan.disruptive, summary: plan.summary }
      : undefined;

  if (spec.mode === "Manual") {
    return stop(
      {
        type: "Applied",
        status: "False",
        reason: "ManualMode",
        message:
          pending !== undefined
            ? `run ${run.id}: ${plan.changes.length} changes ready, nothing applied (spec.apply.mode: Manual): ${plan.summary}`
            : `run ${run.id}: the cluster already matches; nothing applied (spec.apply.mode: Manual)`,
      },
      {},
      { ...withoutPending(status), ...(pending !== undefined && { pendingChange: pending }) },
    );
  }
  if (
    plan.disruptive &&
    spec.disruptive !== "Allow" &&
    !(spec.disruptive === "RequireApproval" && spec.approvedChange === plan.hash)
  ) {
    const denied = spec.disruptive === "Deny";
    const condition: ConditionInput = {
      type: "Applied",
      status: "False",
      reason: denied ? "DisruptiveChangeDenied" : "AwaitingApproval",
      message: denied
        ? `run ${run.id} would drain nodes and spec.apply.disruptive is Deny; nothing applied: ${plan.summary}`
        : `run ${run.id} would drain nodes; nothing applied until spec.apply.approvedChange is set to ${plan.hash}: ${plan.summary}`,
    };
    return stop(
      condition,
      {
        events: warnOnce(previous, condition, denied ? "DisruptiveChangeDenied" : "ApprovalRequired"),
        ...(!denied && { phase: "AwaitingApproval" as const }),
      },
      { ...withoutPending(status), ...(pending !== undefined && { pendingChange: pending }) },
    );
  }

  const outcome = observed.applyOutcome;
  if (outcome === undefined) {
    const actions: Action[] = [];
    if (!hasFinalizer(mj)) actions.push({ kind: "addFinalizer" });
    actions.push({ kind: "apply", plan, ...(pull !== undefined && { pull }) });
    return { ...base, actions, waiting: true, status: keep(status), phase: "Applying" };
  }
  return finishApply(
    mj,
    status,
    run,
    plan,
    pull,
    { ...outcome, missing: [...unavailable, ...outcome.missing] },
    previous,
  );
}

function finishApply(
  mj: MirrorJob,
  status: MirrorJobStatus,
  run: Run,
  plan: Plan,
  pull: PullEntry | undefined,
  outcome: ApplyOutcome,
  previous: ConditionInput | undefined,
): ApplyStep {
  const applied = [
    ...(pull !== undefined && !outcome.missing.some((m) => m.includes(PULL_SECRET.name))
      ? [
          {
            kind: "Secret" as const,
            namespace: PULL_SECRET.namespace,
            name: PULL_SECRET.name,
            hash: entryHash(pull),
          },
        ]
      : []),
    ...outcome.applied.map((a) => ({
      ...a,
      kind: a.kind as NonNullable<MirrorJobStatus["appliedResources"]>[number]["kind"],
    })),
  ];
  const statusFields = { ...withoutPending(status), appliedResources: applied };
  const base = { actions: [], waiting: false };
  if (outcome.errors.length > 0) {
    const condition: ConditionInput = {
      type: "Applied",
      status: "False",
      reason: "ApplyFailed",
      message: `run ${run.id}: ${outcome.errors.slice(0, 5).join("; ")}`,
    };
    return {
      ...base,
      condition,
      status: statusFields,
      events: warnOnce(undefined, condition, "ApplyFailed"),
      retry: true,
    };
  }
  if (outcome.missing.length > 0) {
    const condition: ConditionInput = {
      type: "Applied",
      status: "False",
      reason: "MissingAPIs",
      message:
        `run ${run.id}: the cluster lacks ${outcome.missing.join(", ")}; ` +
        `${applied.length > 0 ? `applied the other ${applied.length} objects` : "nothing applied"} ` +
        "(is this an OpenShift cluster? set spec.apply.kinds, or spec.apply.mode: None to mirror only)",
    };
    return {
      ...base,
      condition,
      status: statusFields,
      events: warnOnce(previous, condition, "MissingAPIs"),
      requeueAfterMs: MISSING_API_RECHECK_MS,
    };
  }
  const changed = plan.changes.length + (outcome.pullSecretWritten ? 1 : 0);
  const message =
    changed > 0
      ? `run ${run.id}: ${applied.length} objects on the cluster ` +
        `(${plan.summary || "pull secret entry updated"}${plan.summary && outcome.pullSecretWritten ? "; pull secret entry updated" : ""})`
      : noChangeMessage(run.id, applied.length);
  // A run whose objects the cluster already holds is reported once, like any other apply;
  // looking again for a new generation of the same run (say an apply setting changed) is no
  // new fact.
  const report = changed > 0 || status.appliedRun !== run.id;
  return {
    ...base,
    condition: { type: "Applied", status: "True", reason: "Applied", message: message.slice(0, 4096) },
    status: { ...statusFields, appliedRun: run.id },
    events: report
      ? [{ type: "Normal", reason: "Applied", action: "Apply", note: message.slice(0, 1024) }]
      : [],
  };
}

/** What the `Applied` condition and Event say about a run that changed nothing on the cluster. */
export function noChangeMessage(runId: string, objects: number): string {
  return `run ${runId}: no change: the cluster already holds run ${runId}'s ${objects} objects; nothing was written`;
}
