/**
 * Stage "apply": which run's generated objects belong on the cluster, whether this
 * MirrorJob may change the cluster at all (tenant guard), whether the change drains nodes
 * and is approved, and what the `Applied` condition says. Reading the cluster and applying
 * are queries (`readApplied`, `apply`); the finalizer that cleans up on deletion is added
 * (an effect) before the first apply.
 *
 * Only a run that succeeded and was verified (or verification is off) is applied; a failed
 * or partial run never replaces or prunes what an earlier good run applied. The stage passes
 * on unless it waits for an answer; what it wants of `next` (a retry, a recheck) is left on
 * the draft for the schedule stage.
 */
import type { MirrorJobStatus, Run } from "../../api/status.ts";
import type { MirrorJob } from "../../api/validation.ts";
import { desiredObjects, type Owner } from "../../apply/desired.ts";
import { hasFinalizer, kindInfo, PULL_SECRET } from "../../apply/kinds.ts";
import type { ApplyOutcome } from "../../apply/live.ts";
import { planChanges, type Plan } from "../../apply/plan.ts";
import { entryHash, pullEntry, type PullEntry } from "../../apply/pull-secret.ts";
import { validateGenerated } from "../../apply/validate.ts";
import { runNames } from "../../job/names.ts";
import { readResultConfigMap } from "../../report/result.ts";
import type { Draft } from "../draft.ts";
import { after, BACKOFF, type Decision, type Query } from "../protocol.ts";
import { parseGoDuration } from "../../ocmirror/progress.ts";
import { drainHold } from "../rollout.ts";

/** A cluster without the OpenShift APIs is looked at again this rarely (no retry storm). */
export const MISSING_API_RECHECK_MS = 5 * 60_000;

/** The longest Applied message status holds. */
const MAX_APPLIED_MESSAGE = 4096;

/** The run whose objects should be on the cluster: succeeded, and verified when verification is on. */
export function applicableRun(mj: MirrorJob, status: MirrorJobStatus): Run | undefined {
  const run = status.lastSuccessfulRun;
  if (run === undefined) return undefined;
  if (mj.spec.verify.enabled && run.verification?.reason !== "AllImagesPresent") return undefined;
  return run;
}

/** What the `Applied` condition and Event say about a run that changed nothing on the cluster. */
export function noChangeMessage(runId: string, objects: number): string {
  return `run ${runId}: no change: the cluster already holds run ${runId}'s ${String(objects)} objects; nothing was written`;
}

/** Sets `Applied=False` and warns once per distinct message (the condition carries it while it lasts). */
function notApplied(d: Draft, reason: string, message: string, warning?: string): void {
  d.set("Applied", "False", reason, message);
  if (warning !== undefined)
    d.eventOnChange("Warning", warning, "Apply", { type: "Applied", reason, message });
}

export function apply(d: Draft): Decision | undefined {
  const { mj, observed, status } = d;
  const spec = mj.spec.apply;
  const namespace = mj.metadata.namespace ?? "";
  const owner: Owner = { namespace, name: mj.metadata.name };
  const inputs = d.inputs;
  if (inputs === undefined) throw new Error("apply: the inputs are not resolved");
  // A pending change is shown only while it is pending: the paths below that still wait for it
  // keep it (or set a new one).
  const pendingBefore = status.pendingChange;
  delete status.pendingChange;
  const keepPending = () => {
    if (pendingBefore !== undefined) status.pendingChange = pendingBefore;
  };

  if (spec.mode === "None") {
    d.remove("Applied");
    return undefined;
  }
  if (!d.settings.applyNamespaces.includes(namespace)) {
    notApplied(
      d,
      "NamespaceNotAllowed",
      `MirrorJobs in namespace ${namespace} may not change the cluster (the operator allows: ${d.settings.applyNamespaces.join(", ") || "none"}); ` +
        `runs still mirror and verify. Set spec.apply.mode: None to mirror only, or ask the operator's administrators to allow this namespace`,
      "ApplyNotAllowed",
    );
    return undefined;
  }
  const run = applicableRun(mj, status);
  const stored = d.stored("Applied");
  if (run === undefined) {
    // What an earlier run applied stays on the cluster, and its condition says so.
    if (status.appliedRun !== undefined && stored !== undefined) keepPending();
    else
      notApplied(d, "NoVerifiedRun", "nothing applied yet: waiting for a run that succeeds and is verified");
    return undefined;
  }
  // Applied already, for this run and this spec: nothing to look at.
  if (
    stored?.status === "True" &&
    stored.observedGeneration === d.generation &&
    status.appliedRun === run.id
  ) {
    keepPending();
    return undefined;
  }

  const read = readResultConfigMap(observed.resultConfigMaps.get(runNames(mj.metadata.name, run.id).result));
  if (read.result === undefined) {
    notApplied(
      d,
      "ResultUnavailable",
      `the result of run ${run.id} is no longer available; start a new run (change spec.runRequest)`,
    );
    return undefined;
  }
  const validation = validateGenerated(read.clusterResources, mj.spec.registry.url);
  if (!validation.ok) {
    notApplied(
      d,
      "InvalidResult",
      `run ${run.id}'s generated objects were rejected, nothing applied: ${validation.problems.join("; ")}`,
      "ApplyRejected",
    );
    return undefined;
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
      notApplied(d, "InvalidPullSecret", entry, "ApplyRejected");
      return undefined;
    }
    pull = entry;
  }

  const waitFor = (query: Query): Decision => {
    keepPending();
    status.phase = "Applying";
    d.set("Reconciling", "True", "Applying", `applying the generated objects of run ${run.id}`);
    return d.decision({ query });
  };
  const live = observed.answers.readApplied?.live;
  if (live === undefined) return waitFor({ kind: "readApplied", kinds: spec.kinds.map(kindInfo) });
  // Objects of kinds the cluster does not serve are not tried; they are named in the condition.
  const all = desiredObjects(validation.resources, owner, spec.kinds, run.id);
  const desired = all.filter((o) => !live.missing.includes(o.info.requires));
  const unavailable = [...new Set(all.filter((o) => !desired.includes(o)).map((o) => o.info.requires))];
  const plan = planChanges(desired, live.objects, { prune: spec.prune });
  const pending =
    plan.changes.length > 0
      ? { hash: plan.hash, disruptive: plan.disruptive, summary: plan.summary }
      : undefined;

  if (spec.mode === "Manual") {
    if (pending !== undefined) status.pendingChange = pending;
    notApplied(
      d,
      "ManualMode",
      pending !== undefined
        ? `run ${run.id}: ${String(plan.changes.length)} changes ready, nothing applied (spec.apply.mode: Manual): ${plan.summary}`
        : `run ${run.id}: the cluster already matches; nothing applied (spec.apply.mode: Manual)`,
    );
    return undefined;
  }
  if (
    plan.disruptive &&
    spec.disruptive !== "Allow" &&
    !(spec.disruptive === "RequireApproval" && spec.approvedChange === plan.hash)
  ) {
    const denied = spec.disruptive === "Deny";
    if (pending !== undefined) status.pendingChange = pending;
    notApplied(
      d,
      denied ? "DisruptiveChangeDenied" : "AwaitingApproval",
      denied
        ? `run ${run.id} would drain nodes and spec.apply.disruptive is Deny; nothing applied: ${plan.summary}`
        : `run ${run.id} would drain nodes; nothing applied until spec.apply.approvedChange is set to ${plan.hash}: ${plan.summary}`,
      denied ? "DisruptiveChangeDenied" : "ApprovalRequired",
    );
    if (!denied) d.applyPhase = "AwaitingApproval";
    return undefined;
  }

  const outcome = observed.answers.apply?.outcome;
  if (outcome === undefined) {
    // A change that drains nodes waits for the pools, for other MirrorJobs' rollouts, and for
    // the changes due together with it (one drain, not one per MirrorJob).
    if (plan.disruptive) {
      const seen = observed.answers.readRollout?.seen;
      if (seen === undefined) return waitFor(rolloutQuery(status));
      const waiting =
        status.rollout?.state === "Waiting" && status.rollout.run === run.id ? status.rollout : undefined;
      const readySince = waiting?.waitingSince !== undefined ? new Date(waiting.waitingSince) : d.now;
      const hold = drainHold(seen.pools, observed.fleet, readySince, d.now, d.settings.drainBatchWindowMs);
      if (hold.hold) {
        status.rollout = {
          state: "Waiting",
          run: run.id,
          drains: true,
          mirrorSets: true,
          waitingSince: readySince.toISOString(),
        };
        status.phase = "Applying";
        notApplied(d, hold.reason, `run ${run.id}: ${hold.message}`);
        d.applyNext = after(hold.untilMs ?? rolloutPollMs(spec.rolloutDeadline));
        return undefined;
      }
    }
    if (!hasFinalizer(mj)) d.effect({ kind: "addFinalizer" });
    return waitFor({ kind: "apply", plan, ...(pull !== undefined && { pull }) });
  }
  finishApply(d, run, plan, pull, { ...outcome, missing: [...unavailable, ...outcome.missing] });
  return undefined;
}

/**
 * How often a rollout (or a change waiting for one) is looked at: a tenth of the deadline,
 * between 1 s and 30 s (the pools, catalogs and update services are read, not watched).
 */
export function rolloutPollMs(rolloutDeadline: string): number {
  const deadlineMs = (parseGoDuration(rolloutDeadline) ?? 7200) * 1000;
  return Math.min(30_000, Math.max(1_000, Math.round(deadlineMs / 10)));
}

/** What the cluster is asked about a rollout: the pools, and the catalogs and update services applied. */
export function rolloutQuery(status: MirrorJobStatus): Extract<Query, { kind: "readRollout" }> {
  const of = (kind: string) =>
    (status.appliedResources ?? [])
      .filter((r) => r.kind === kind && r.namespace !== undefined)
      .map((r) => ({ namespace: r.namespace ?? "", name: r.name }));
  return { kind: "readRollout", catalogSources: of("CatalogSource"), updateServices: of("UpdateService") };
}

const MIRROR_SET_KINDS = new Set(["ImageDigestMirrorSet", "ImageTagMirrorSet"]);
const FOLLOWED_KINDS = new Set([...MIRROR_SET_KINDS, "CatalogSource", "UpdateService"]);

function finishApply(
  d: Draft,
  run: Run,
  plan: Plan,
  pull: PullEntry | undefined,
  outcome: ApplyOutcome,
): void {
  const { status } = d;
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
  status.appliedResources = applied;
  if (outcome.errors.length > 0) {
    const message = `run ${run.id}: ${outcome.errors.slice(0, 5).join("; ")}`;
    d.set("Applied", "False", "ApplyFailed", message);
    // Every failed attempt is an Event of its own (the alert counts them).
    d.event("Warning", "ApplyFailed", "Apply", message);
    d.applyNext = BACKOFF;
    return;
  }
  if (outcome.missing.length > 0) {
    notApplied(
      d,
      "MissingAPIs",
      `run ${run.id}: the cluster lacks ${outcome.missing.join(", ")}; ` +
        `${applied.length > 0 ? `applied the other ${String(applied.length)} objects` : "nothing applied"} ` +
        "(is this an OpenShift cluster? set spec.apply.kinds, or spec.apply.mode: None to mirror only)",
      "MissingAPIs",
    );
    d.applyNext = after(MISSING_API_RECHECK_MS);
    return;
  }
  const changed = plan.changes.length + (outcome.pullSecretWritten ? 1 : 0);
  const message =
    changed > 0
      ? `run ${run.id}: ${String(applied.length)} objects on the cluster ` +
        `(${plan.summary || "pull secret entry updated"}${plan.summary && outcome.pullSecretWritten ? "; pull secret entry updated" : ""})`
      : noChangeMessage(run.id, applied.length);
  d.set("Applied", "True", "Applied", message.slice(0, MAX_APPLIED_MESSAGE));
  // A run whose objects the cluster already holds is reported once, like any other apply;
  // looking again for a new generation of the same run (say an apply setting changed) is no
  // new fact.
  if (changed > 0 || status.appliedRun !== run.id) d.event("Normal", "Applied", "Apply", message);
  status.appliedRun = run.id;
  // What the cluster must now take up: followed until it has (stage follow-rollout).
  if (plan.changes.some((c) => FOLLOWED_KINDS.has(c.kind))) {
    status.rollout = {
      state: "RollingOut",
      run: run.id,
      drains: plan.disruptive,
      mirrorSets: plan.changes.some((c) => MIRROR_SET_KINDS.has(c.kind)),
      appliedTime: d.now.toISOString(),
      ...(status.rollout?.waitingSince !== undefined &&
        status.rollout.run === run.id && { waitingSince: status.rollout.waitingSince }),
    };
  }
}
