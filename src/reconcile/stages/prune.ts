/**
 * Stage "prune": registry pruning with oc-mirror's delete workflow (spec.prune, off by
 * default). When a verified run is applied and an earlier applied run (the baseline) mirrored
 * something it no longer does, the stage
 *
 * 1. runs `oc-mirror delete --generate` over the baseline run's image set as a Job (the
 *    `generate` step): oc-mirror lists every reference that set put into the registry;
 * 2. plans (reconcile/prune-plan.ts) with what the registry holds (the `planPrune` query):
 *    manifests by digest, minus everything this run or another MirrorJob's current run on the
 *    same registry references; the plan goes into a ConfigMap and `status.pendingPrune`;
 * 3. waits for approval (spec.prune.approval: Auto, RequireApproval with spec.prune.approvedPlan
 *    set to the plan's hash, or Deny);
 * 4. checks the plan against the registry again and runs `oc-mirror delete --delete-yaml-file`
 *    over what is still there and still unneeded, by digest, as a Job (a `delete` step); a failed
 *    or interrupted step is retried after the key's backoff (at most MAX_PRUNE_ATTEMPTS failures)
 *    and every retry deletes only what the approved plan holds and the registry still has;
 * 5. records the result; the run it pruned to becomes the baseline.
 *
 * Never while a run or another prune Job uses the workspace and cache; never before the run's
 * mirror sets are applied (apply.mode Auto: until then the cluster may pull the baseline's
 * images through the applied ImageDigestMirrorSets and ImageTagMirrorSets); never while a
 * MirrorJob on the same registry runs (its image list is not known yet). A run whose image list
 * is empty is never pruned to (everything would go): refused with the reason.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { MirrorJobStatus, Run } from "../../api/status.ts";
import { buildPruneObjects, ownerReference, pruneLabels, type MirrorJobRef } from "../../job/builders.ts";
import { pruneId, prunePlanName, pruneStepId, runNames } from "../../job/names.ts";
import {
  deleteImageListYaml,
  deleteImageSetConfiguration,
  withoutDockerTransport,
} from "../../ocmirror/delete.ts";
import { readPruneResult } from "../../report/prune-result.ts";
import { encodeJsonGzip, readResultConfigMap } from "../../report/result.ts";
import { gunzipSync } from "node:zlib";
import type { Draft } from "../draft.ts";
import {
  deletionCandidates,
  describePlan,
  digestReference,
  keptSample,
  pendingPrune,
  planCounts,
  planPrune,
  storedPlan,
  storedPlanSchema,
  underRegistry,
  type KeepSet,
  type PrunePlan,
  type StoredPlan,
} from "../prune-plan.ts";
import { after, BACKOFF, type Answer, type Decision, type Query } from "../protocol.ts";
import { expectedImages, jobFinished } from "../runs.ts";
import { applicableRun } from "./apply.ts";

/** How often a running prune Job is looked at without watch events. */
export const PRUNE_POLL_MS = 10_000;
/** How long a prune waits for MirrorJobs on the same registry before it checks again. */
export const NEIGHBOUR_WAIT_MS = 30_000;
/** Failed prune steps after which the prune gives up (until a new run is applied). */
export const MAX_PRUNE_ATTEMPTS = 5;

type PruneState = NonNullable<MirrorJobStatus["prune"]>;
type Current = NonNullable<PruneState["current"]>;

const MAX_MESSAGE = 4096;
const cut = (text: string) => text.slice(0, MAX_MESSAGE);

/** This run's references in the registry (its dry-run mapping), or undefined when its result is gone. */
function ownReferences(d: Draft, runId: string): string[] | undefined {
  const read = readResultConfigMap(
    d.observed.resultConfigMaps.get(runNames(d.mj.metadata.name, runId).result),
  );
  if (read.result === undefined) return undefined;
  return expectedImages(read)
    .map((i) => i.destination)
    .filter((r) => underRegistry(r, d.mj.spec.registry.url));
}

/** Why the baseline's images may still be in use through the cluster's mirror sets, if they may. */
function applyGate(d: Draft, target: Run, baseline: string): string | undefined {
  const mode = d.mj.spec.apply.mode;
  const applied = d.condition("Applied");
  if (mode === "None" || applied?.reason === "NamespaceNotAllowed") return undefined;
  if (mode === "Manual")
    return d.status.pendingChange !== undefined
      ? `run ${target.id}'s objects are not on the cluster yet (spec.apply.mode: Manual, status.pendingChange); ` +
          `until they are, the cluster may still pull run ${baseline}'s images through its mirror sets`
      : undefined;
  if (applied?.status === "True" && d.status.appliedRun === target.id) return undefined;
  return (
    `run ${target.id}'s mirror sets are not applied yet (Applied: ${applied?.reason ?? "not yet"}); until they are, ` +
    `the cluster may still pull run ${baseline}'s images through the applied ImageDigestMirrorSets and ImageTagMirrorSets`
  );
}

/** The stored plan of a prune (its ConfigMap), if the cache holds it. */
function readStoredPlan(d: Draft, id: string, hash: string): StoredPlan | undefined {
  const cm = d.observed.resultConfigMaps.get(prunePlanName(d.mj.metadata.name, id, hash));
  const data = cm?.binaryData?.["plan.json.gz"];
  if (data === undefined) return undefined;
  try {
    const parsed = storedPlanSchema.safeParse(
      JSON.parse(gunzipSync(Buffer.from(data, "base64"), { maxOutputLength: 64 << 20 }).toString("utf8")),
    );
    return parsed.success && parsed.data.hash === hash ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function planConfigMap(ref: MirrorJobRef, id: string, plan: PrunePlan): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: prunePlanName(ref.name, id, plan.hash),
      namespace: ref.namespace,
      labels: pruneLabels(ref.name, id, id),
      ownerReferences: [ownerReference(ref)],
    },
    immutable: true,
    data: { hash: plan.hash, summary: describePlan(plan) },
    binaryData: { "plan.json.gz": encodeJsonGzip(storedPlan(plan)) },
  } as KubernetesObject;
}

export function prune(d: Draft): Decision | undefined {
  const { mj, observed, status } = d;
  const spec = mj.spec.prune;
  const before = status.prune;
  delete status.pendingPrune;
  const running = (observed.pruneJobs ?? []).find((j) => jobFinished(j) === undefined);

  if (!spec.enabled) {
    d.remove("Pruned");
    const stop = before?.current?.id ?? running?.metadata?.labels?.["hubmirror.dev/prune"];
    if (stop !== undefined) {
      d.effect({ kind: "deletePrune", pruneId: stop });
      d.event("Normal", "PruneCancelled", "Prune", `prune ${stop} stopped: spec.prune.enabled is false`);
    }
    if (before?.last !== undefined) status.prune = { last: before.last };
    else delete status.prune;
    return undefined;
  }

  // A prune Job runs: nothing else may use the workspace and cache meanwhile.
  if (running !== undefined) {
    const current = before?.current;
    status.phase = "Pruning";
    d.set(
      "Reconciling",
      "True",
      "Pruning",
      current !== undefined
        ? `prune ${current.id} (run ${current.fromRun} -> ${current.toRun}): ${current.phase === "Generating" ? "listing what run " + current.fromRun + " mirrored" : "deleting"}, Job ${running.metadata?.name ?? ""}`
        : `prune Job ${running.metadata?.name ?? ""} is running`,
    );
    return d.decision(after(PRUNE_POLL_MS));
  }

  const state: { -readonly [K in keyof PruneState]: PruneState[K] } = { ...before };
  const commit = () => {
    const next: PruneState = {
      ...(state.baselineRun !== undefined && { baselineRun: state.baselineRun }),
      ...(state.current !== undefined && { current: state.current }),
      ...(state.last !== undefined && { last: state.last }),
    };
    status.prune = next;
  };
  const registry = mj.spec.registry.url;
  const name = mj.metadata.name;
  const ref: MirrorJobRef = {
    name,
    namespace: mj.metadata.namespace ?? "",
    uid: mj.metadata.uid ?? "",
    spec: mj.spec,
  };
  const baseline = state.baselineRun;

  const cancelCurrent = (why: string) => {
    const current = state.current;
    if (current === undefined) return;
    d.effect({ kind: "deletePrune", pruneId: current.id });
    d.event(
      "Normal",
      "PruneSuperseded",
      "Prune",
      `prune ${current.id} (run ${current.fromRun} -> ${current.toRun}) stopped: ${why}`,
    );
    delete state.current;
  };

  // An image set that lists nothing in the registry is never pruned to.
  const lastSuccess = status.lastSuccessfulRun;
  if (baseline !== undefined && lastSuccess !== undefined && lastSuccess.id !== baseline) {
    const own = ownReferences(d, lastSuccess.id);
    if (own?.length === 0) {
      cancelCurrent(`run ${lastSuccess.id} lists no image`);
      const message =
        `run ${lastSuccess.id} lists no image in ${registry}: a prune to it would delete everything this MirrorJob ` +
        `mirrored (run ${baseline}'s images); refused, nothing is deleted. Check spec.imageSet (a typo?) and start a new run`;
      d.set("Pruned", "False", "PruneRefused", message);
      d.eventOnChange("Warning", "PruneRefused", "Prune", {
        type: "Pruned",
        reason: "PruneRefused",
        message,
      });
      commit();
      return undefined;
    }
  }

  const target = applicableRun(mj, status);
  if (target === undefined) {
    if (baseline === undefined)
      d.set(
        "Pruned",
        "False",
        "NoVerifiedRun",
        "nothing to prune against yet: waiting for a run that succeeds and is verified",
      );
    commit();
    return undefined;
  }
  if (baseline === undefined) {
    state.baselineRun = target.id;
    d.set(
      "Pruned",
      "True",
      "BaselineRecorded",
      `run ${target.id}'s images are the baseline: what a later applied run no longer mirrors is pruned from ${registry}`,
    );
    commit();
    return undefined;
  }
  if (target.id === baseline) {
    cancelCurrent(`run ${baseline} is the baseline already`);
    if (d.condition("Pruned") === undefined)
      d.set("Pruned", "True", "UpToDate", `nothing left the image set since run ${baseline}`);
    commit();
    return undefined;
  }
  const gate = applyGate(d, target, baseline);
  if (gate !== undefined) {
    d.set("Pruned", "False", "WaitingForApply", `prune of run ${baseline}'s images waits: ${gate}`);
    commit();
    return undefined;
  }

  const id = pruneId(ref.uid, baseline, target.id);
  if (state.current !== undefined && state.current.id !== id)
    cancelCurrent(`run ${target.id} is applied now`);
  // A copy: the stored status is the decision's input and is never changed in place.
  const current: { -readonly [K in keyof Current]: Current[K] } =
    state.current !== undefined
      ? { ...state.current }
      : {
          id,
          fromRun: baseline,
          toRun: target.id,
          phase: "Generating",
          attempt: 1,
          failedAttempts: 0,
          startTime: d.now.toISOString(),
        };
  state.current = current;
  const label = `prune ${id} (run ${baseline} -> ${target.id})`;
  const own = ownReferences(d, target.id) ?? [];
  const keepSelf: KeepSet = { runId: target.id, references: own };
  const inputs = d.inputs;
  if (inputs === undefined) throw new Error("prune: the inputs are not resolved");

  const pruning = (message: string): Decision => {
    status.phase = "Pruning";
    d.set("Reconciling", "True", "Pruning", `${label}: ${message}`);
    current.message = cut(message);
    commit();
    return d.decision(after(PRUNE_POLL_MS));
  };
  const ask = (query: Query): Decision => {
    commit();
    return d.decision({ query });
  };
  /** A step failed: retry after the backoff, or give up after MAX_PRUNE_ATTEMPTS failures. */
  const failed = (what: string): Decision | undefined => {
    current.failedAttempts += 1;
    current.attempt += 1;
    delete current.jobName;
    const message = `${label}: ${what}`;
    d.event("Warning", "PruneAttemptFailed", "Prune", message);
    if (current.failedAttempts >= MAX_PRUNE_ATTEMPTS) {
      current.phase = "Failed";
      const final = `${message}; gave up after ${String(current.failedAttempts)} failures. Nothing the current image set needs was deleted; start a new run (change spec.runRequest) to prune again`;
      current.message = cut(final);
      state.last = {
        id,
        fromRun: baseline,
        toRun: target.id,
        ...(current.hash !== undefined && { hash: current.hash }),
        result: "Failed",
        deleted: 0,
        failedAttempts: current.failedAttempts,
        manifests: 0,
        tags: 0,
        keptInUse: 0,
        keptShared: 0,
        absent: 0,
        kept: [],
        completionTime: d.now.toISOString(),
        message: cut(final),
      };
      d.set("Pruned", "False", "PruneFailed", final);
      d.event("Warning", "PruneFailed", "Prune", final);
      commit();
      return undefined;
    }
    current.message = cut(
      `${message}; retrying (failure ${String(current.failedAttempts)} of at most ${String(MAX_PRUNE_ATTEMPTS)})`,
    );
    d.set("Pruned", "False", "PruneRetrying", current.message);
    d.pruneNext = BACKOFF;
    commit();
    return undefined;
  };
  const waitForNeighbours = (answer: Extract<Answer, { kind: "planPrune" }>): boolean => {
    const { busy, unknown } = answer.neighbours;
    if (busy.length === 0 && unknown.length === 0) return false;
    const why = [
      ...(busy.length > 0 ? [`MirrorJob ${busy.join(", ")} is mirroring into the same registry`] : []),
      ...(unknown.length > 0 ? [`the image list of ${unknown.join(", ")} is not available`] : []),
    ].join("; ");
    current.message = cut(`waiting: ${why}`);
    d.set("Pruned", "False", "WaitingForMirrorJobs", `${label} waits: ${why} (what it needs is not known)`);
    d.pruneNext = after(NEIGHBOUR_WAIT_MS);
    commit();
    return true;
  };
  const finish = (stored: StoredPlan, recheck: PrunePlan | undefined): Decision | undefined => {
    const gone = new Set(recheck?.absent ?? []);
    const deleted =
      recheck === undefined ? 0 : stored.deletions.filter((x) => gone.has(digestReference(x))).length;
    const kept = [...stored.kept, ...(recheck?.kept ?? [])];
    const counts = planCounts({ deletions: stored.deletions, kept: stored.kept, absent: stored.absent });
    const shared = [...new Set(kept.flatMap((k) => (k.mirrorJob !== undefined ? [k.mirrorJob] : [])))];
    const message = cut(
      stored.deletions.length === 0
        ? `${label}: nothing to delete: everything run ${baseline} mirrored is still used` +
            (shared.length > 0
              ? ` (${String(counts.keptShared)} references shared with MirrorJob ${shared.join(", ")})`
              : "")
        : `${label}: deleted ${String(deleted)} of ${String(stored.deletions.length)} manifests from ${registry}` +
            `; kept ${String(counts.keptInUse)} references run ${target.id} uses` +
            (counts.keptShared + (recheck?.kept.length ?? 0) > 0
              ? `; kept ${String(counts.keptShared + (recheck?.kept.length ?? 0))} shared with MirrorJob ${shared.join(", ")}`
              : "") +
            `. The registry's garbage collector reclaims their storage`,
    );
    state.last = {
      id,
      fromRun: baseline,
      toRun: target.id,
      hash: stored.hash,
      result: "Succeeded",
      deleted,
      failedAttempts: current.failedAttempts,
      ...counts,
      kept: keptSample(kept),
      completionTime: d.now.toISOString(),
      message,
    };
    state.baselineRun = target.id;
    delete state.current;
    d.set("Pruned", "True", stored.deletions.length === 0 ? "NothingToPrune" : "PruneSucceeded", message);
    d.event("Normal", "Pruned", "Prune", message);
    commit();
    return undefined;
  };
  const planQuery = (step: string, candidates: readonly string[]): Query => ({
    kind: "planPrune",
    step,
    registry,
    self: { namespace: ref.namespace, name },
    candidates,
    keep: keepSelf,
    dockerConfig: inputs.pushAuthFile,
    tlsVerify: mj.spec.registry.tlsVerify,
    ...(inputs.registryCaBundle !== undefined && { caBundle: inputs.registryCaBundle }),
  });
  /**
   * Plans against the registry and the other MirrorJobs (asked once per step): the plan, or
   * the decision to take meanwhile (the question, or waiting for a neighbour's run).
   */
  const checkRegistry = (
    step: string,
    candidates: Parameters<typeof planPrune>[0]["candidates"],
  ): { readonly plan: PrunePlan } | { readonly decision: Decision | undefined } => {
    const answer = observed.answers.planPrune;
    if (answer?.step !== step)
      return {
        decision: ask(
          planQuery(
            step,
            candidates.map((c) => c.reference),
          ),
        ),
      };
    if (waitForNeighbours(answer)) return { decision: undefined };
    return {
      plan: planPrune({
        registry,
        fromRun: baseline,
        toRun: target.id,
        candidates,
        keep: [keepSelf, ...answer.neighbours.keep],
        resolutions: answer.resolutions,
      }),
    };
  };
  /** Starts the Job of a step (its objects, then follow it). */
  const startStep = (step: "generate" | "delete", input: string, message: string): Decision | undefined => {
    const stepId = pruneStepId(id, step, current.attempt);
    const objects = buildPruneObjects(ref, { id: stepId, pruneId: id, step, input }, d.settings);
    const ensured = observed.answers.ensurePrune;
    if (ensured?.step !== stepId) {
      // The previous prune's objects (kept for inspection) go when the next one starts.
      if (step === "generate" && current.attempt === 1 && state.last !== undefined && state.last.id !== id)
        d.effect({ kind: "deletePrune", pruneId: state.last.id });
      return ask({
        kind: "ensurePrune",
        step: stepId,
        objects: [objects.input, objects.result, objects.role, objects.roleBinding, objects.job],
      });
    }
    if (!ensured.outcome.ok) {
      d.effect({ kind: "deletePrune", pruneId: id });
      return failed(
        `the API server refused ${ensured.outcome.refusal.kind} ${ensured.outcome.refusal.name}: ${ensured.outcome.refusal.message}`,
      );
    }
    current.jobName = objects.job.metadata?.name ?? "";
    d.event(
      "Normal",
      step === "generate" ? "PruneStarted" : "PruneDeleting",
      "Prune",
      `${label}: ${message} (Job ${current.jobName})`,
    );
    return pruning(`${message} (Job ${current.jobName})`);
  };
  /** The sealed result of the current step's Job, or the query that seals it. */
  const sealedStep = (step: "generate" | "delete"): Query | ReturnType<typeof readPruneResult> => {
    const stepId = pruneStepId(id, step, current.attempt);
    const names = runNames(name, stepId);
    const sealed = observed.answers.sealPrune;
    if (sealed?.step !== stepId)
      return { kind: "sealPrune", step: stepId, resultName: names.result, roleName: names.role };
    return readPruneResult(sealed.result);
  };
  const describeFailure = (read: ReturnType<typeof readPruneResult>, step: string): string => {
    const r = read.result;
    if (r === undefined)
      return `the ${step} Job ended without a result${read.problems.length > 0 ? ` (${read.problems.join("; ")})` : ""}; see kubectl logs job/${current.jobName ?? ""} -c reporter`;
    const first = r.failedImages[0];
    return (
      `oc-mirror delete${step === "generate" ? " --generate" : ""} failed: ${r.exit.description}` +
      (first !== undefined ? `; first failure: ${first.image}: ${first.error}` : "") +
      (r.listProblem !== undefined ? `; ${r.listProblem}` : "")
    );
  };

  /** A plan waits for approval, is denied, or goes on to deletion. */
  const planned = (stored: StoredPlan): Decision | undefined => {
    if (stored.deletions.length === 0) return finish(stored, undefined);
    const pending = pendingPrune({
      ...stored,
      rejected: [],
      errors: [],
      deletions: stored.deletions,
      kept: stored.kept,
      absent: stored.absent,
    });
    if (spec.approval === "Deny") {
      status.pendingPrune = pending;
      const message = `${label}: plan ${stored.hash} is never carried out (spec.prune.approval: Deny): ${pending.summary}`;
      d.set("Pruned", "False", "PruneDenied", message);
      d.eventOnChange("Normal", "PruneDenied", "Prune", { type: "Pruned", reason: "PruneDenied", message });
      commit();
      return undefined;
    }
    if (spec.approval === "RequireApproval" && spec.approvedPlan !== stored.hash) {
      status.pendingPrune = pending;
      const wrong =
        spec.approvedPlan !== undefined
          ? ` (spec.prune.approvedPlan ${spec.approvedPlan} is not this plan's hash)`
          : "";
      const message = `${label} waits for approval${wrong}: set spec.prune.approvedPlan to ${stored.hash} to ${pending.summary}`;
      d.set("Pruned", "False", "AwaitingPruneApproval", cut(message));
      d.eventOnChange("Normal", "PruneApprovalRequired", "Prune", {
        type: "Pruned",
        reason: "AwaitingPruneApproval",
        message: cut(message),
      });
      commit();
      return undefined;
    }
    current.phase = "Deleting";
    current.attempt = 1;
    delete current.jobName;
    if (observed.answers.planPrune?.step.startsWith("plan:") === true) {
      // Planned in this reconcile: the registry is checked again in the next one (a reconcile
      // holds one answer per query kind).
      status.phase = "Pruning";
      d.set("Reconciling", "True", "Pruning", `${label}: plan ${stored.hash} approved; deleting next`);
      commit();
      return d.decision(after(1_000));
    }
    return deleting(stored);
  };

  /** An attempt of the delete step: its result, then check the registry and start the next one. */
  const deleting = (plan?: StoredPlan): Decision | undefined => {
    const stored = plan ?? (current.hash !== undefined ? readStoredPlan(d, id, current.hash) : undefined);
    if (stored === undefined) {
      current.phase = "Planning";
      delete current.hash;
      delete current.jobName;
      commit();
      return d.decision(after(1_000));
    }
    if (current.jobName !== undefined) {
      const read = sealedStep("delete");
      if ("kind" in read) return ask(read);
      if (read.result?.exit.outcome !== "success") return failed(describeFailure(read, "delete"));
      // It succeeded: what is left (nothing, unless something appeared meanwhile) is checked below.
      current.attempt += 1;
      delete current.jobName;
    }
    const checked = checkRegistry(
      `check:${pruneStepId(id, "delete", current.attempt)}`,
      deletionCandidates(stored.deletions),
    );
    if (!("plan" in checked)) return checked.decision;
    const recheck = checked.plan;
    if (recheck.errors.length > 0) {
      const first = recheck.errors[0];
      return failed(
        `${String(recheck.errors.length)} planned manifests could not be checked in ${registry} (first: ${first?.reference ?? ""}: ${first?.message ?? ""})`,
      );
    }
    if (recheck.deletions.length === 0) return finish(stored, recheck);
    const list = deleteImageListYaml(
      recheck.deletions.map((x) => ({
        imageName: x.imageName,
        imageReference: `docker://${digestReference(x)}`,
        type: x.type,
      })),
    );
    return startStep(
      "delete",
      list,
      `deleting ${String(recheck.deletions.length)} of the plan's ${String(stored.deletions.length)} manifests (attempt ${String(current.attempt)}, oc-mirror delete)`,
    );
  };

  if (current.phase === "Failed") {
    d.set("Pruned", "False", "PruneFailed", current.message ?? `${label} failed`);
    commit();
    return undefined;
  }

  if (current.phase === "Generating") {
    if (current.jobName === undefined) {
      const isc = observed.resultConfigMaps.get(runNames(name, baseline).input)?.data?.[
        "imageset-config.yaml"
      ];
      let disc: string | undefined;
      try {
        disc = isc !== undefined ? deleteImageSetConfiguration(isc) : undefined;
      } catch {
        disc = undefined;
      }
      if (disc === undefined) {
        // The baseline's image set is gone (its input ConfigMap was deleted): start over from this run.
        delete state.current;
        state.baselineRun = target.id;
        const message =
          `run ${baseline}'s image set is no longer available (its input ConfigMap is gone), so what left the set cannot be listed; ` +
          `nothing was deleted and run ${target.id} is the new baseline`;
        d.set("Pruned", "False", "BaselineLost", message);
        d.event("Warning", "PruneBaselineLost", "Prune", message);
        commit();
        return undefined;
      }
      return startStep(
        "generate",
        disc,
        `listing what run ${baseline} mirrored (oc-mirror delete --generate)`,
      );
    }
    const read = sealedStep("generate");
    if ("kind" in read) return ask(read);
    if (read.items === undefined) return failed(describeFailure(read, "generate"));
    current.phase = "Planning";
  }

  if (current.phase === "Planning") {
    const generateStep = pruneStepId(id, "generate", current.attempt);
    const sealed = observed.answers.sealPrune;
    const read = readPruneResult(
      sealed?.step === generateStep
        ? sealed.result
        : observed.resultConfigMaps.get(runNames(name, generateStep).result),
    );
    const items = read.items;
    if (items === undefined) {
      // The generate step's result is gone: list again.
      current.phase = "Generating";
      current.attempt += 1;
      delete current.jobName;
      commit();
      return d.decision(after(1_000));
    }
    const candidates = items.map((i) => ({
      reference: withoutDockerTransport(i.imageReference),
      imageName: i.imageName,
      type: i.type,
    }));
    const checked = checkRegistry(`plan:${generateStep}`, candidates);
    if (!("plan" in checked)) return checked.decision;
    const plan = checked.plan;
    if (plan.refused !== undefined) {
      const message = `${plan.refused}; refused, nothing is deleted. Check spec.imageSet (a typo?) and start a new run`;
      delete state.current;
      d.set("Pruned", "False", "PruneRefused", message);
      d.eventOnChange("Warning", "PruneRefused", "Prune", {
        type: "Pruned",
        reason: "PruneRefused",
        message,
      });
      commit();
      return undefined;
    }
    if (plan.errors.length > 0) {
      const first = plan.errors[0];
      return failed(
        `${String(plan.errors.length)} listed references could not be checked in ${registry} (first: ${first?.reference ?? ""}: ${first?.message ?? ""}); nothing is planned on a guess`,
      );
    }
    const ensured = observed.answers.ensurePrune;
    const planStep = `plan:${id}:${plan.hash}`;
    if (ensured?.step !== planStep)
      return ask({ kind: "ensurePrune", step: planStep, objects: [planConfigMap(ref, id, plan)] });
    if (!ensured.outcome.ok)
      return failed(`the API server refused the plan's ConfigMap: ${ensured.outcome.refusal.message}`);
    current.phase = "Planned";
    current.hash = plan.hash;
    const warning =
      read.result?.exit.outcome !== "success"
        ? ` (oc-mirror's listing ended with errors: ${read.result?.exit.description ?? "unknown"}; the list may be incomplete)`
        : "";
    d.event(
      "Normal",
      "PrunePlanned",
      "Prune",
      `${label}: plan ${plan.hash}: ${describePlan(plan)}${warning}`,
    );
    return planned(storedPlan(plan));
  }

  if (current.phase === "Planned") {
    const stored = current.hash !== undefined ? readStoredPlan(d, id, current.hash) : undefined;
    if (stored === undefined) {
      // The plan's ConfigMap is not (yet) in the cache: plan again (the same plan is the same ConfigMap).
      current.phase = "Planning";
      delete current.hash;
      commit();
      return d.decision(after(1_000));
    }
    return planned(stored);
  }

  return deleting();
}
