/**
 * The reconcile decision: `(mirrorJob, observed) -> status, actions, events`. Pure; the
 * shell (runtime/executor.ts) gathers the observations and carries out the actions.
 *
 * One pass: follow or finish the run in progress (adopting a running Job the status does
 * not know, e.g. after an operator restart), then decide whether a new run is due. A new
 * run needs preflight: the referenced objects resolve (pure), then the registry answers
 * with the push credentials (the shell's `checkRegistry` action, answered in
 * `observed.registryCheck` on a second pass).
 */
import type { KubernetesObject, V1ConfigMap, V1Job } from "@kubernetes/client-node";
import type { Condition, MirrorJobStatus, Run } from "../api/status.ts";
import { imageSetWarnings, semanticErrors } from "../api/semantic.ts";
import { formatFieldErrors, type FieldError, type MirrorJob } from "../api/validation.ts";
import type { ImageSetConfiguration } from "../api/imageset.ts";
import { adaptImageSet, lineErrors } from "../ocmirror/lines.ts";
import {
  buildRunObjects,
  buildServiceAccount,
  buildVolumeClaims,
  needsGraphImage,
  type JobSettings,
  type MirrorJobRef,
} from "../job/builders.ts";
import { LABELS, runId, runNames } from "../job/names.ts";
import { specFieldOfRefusal } from "../job/spec-fields.ts";
import type { Credentials } from "../registry/credentials.ts";
import { parseReference } from "../registry/reference.ts";
import { verifiedCondition, type ExpectedImage, type VerifyResult } from "../registry/verify.ts";
import { readResultConfigMap, type ReadResult, type RunResult } from "../report/result.ts";
import type { ApplyOutcome, LiveState } from "../apply/cluster.ts";
import type { KindInfo } from "../apply/kinds.ts";
import type { Plan } from "../apply/plan.ts";
import type { PullEntry } from "../apply/pull-secret.ts";
import { applyStep, hasFinalizer } from "./apply.ts";
import { removeCondition, setCondition, settleConditions } from "./conditions.ts";
import { resolveInputs, type Referenced } from "./preflight.ts";
import { dueTrigger, inputsHash, nextScheduledRun } from "./triggers.ts";

export type RegistryCheck =
  | { ok: true }
  | {
      ok: false;
      reason: "RegistryUnreachable" | "RegistryAuthFailed" | "RegistryTLSFailed";
      message: string;
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

export interface Observed {
  readonly now: Date;
  readonly referenced: Referenced;
  /** The MirrorJob's run Jobs (by label). */
  readonly jobs: readonly V1Job[];
  /** Result ConfigMaps of runs, by name. */
  readonly resultConfigMaps: ReadonlyMap<string, V1ConfigMap>;
  /** The shell's answer to a `checkRegistry` action. */
  readonly registryCheck?: RegistryCheck;
  /** The shell's answer to a `verify` action. */
  readonly verification?: { readonly runId: string; readonly result: VerifyResult };
  /** The shell's answer to a `readApplied` action. */
  readonly applied?: LiveState;
  /** The shell's answer to an `apply` action. */
  readonly applyOutcome?: ApplyOutcome;
  /** The shell's answer to a `deleteApplied` action. */
  readonly deletedApplied?: { readonly deleted: number; readonly errors: readonly string[] };
  /** The shell's answer to a `sealRun` action: the run's result as the API server holds it, sealed. */
  readonly sealed?: { readonly runId: string; readonly result: V1ConfigMap | undefined };
  /** The shell's answer to an `ensure` action (the objects that start a run). */
  readonly ensured?: { readonly runId: string; readonly outcome: EnsureOutcome };
}

export interface DecideSettings extends JobSettings {
  /** Namespaces whose MirrorJobs may change the cluster (tenant guard). */
  readonly applyNamespaces: readonly string[];
}

export type Action =
  | {
      kind: "checkRegistry";
      registry: string;
      credentials: Credentials;
      caBundle?: string;
      tlsVerify: boolean;
    }
  | {
      kind: "verify";
      runId: string;
      images: ExpectedImage[];
      /** The push Secret's dockerconfigjson (credentials per repository). */
      dockerConfig: string;
      caBundle?: string;
      tlsVerify: boolean;
    }
  | { kind: "readApplied"; kinds: KindInfo[] }
  | { kind: "apply"; plan: Plan; pull?: PullEntry }
  | { kind: "deleteApplied" }
  | { kind: "addFinalizer" }
  | { kind: "removeFinalizer" }
  | { kind: "ensure"; runId: string; objects: KubernetesObject[] }
  /**
   * A run has ended: revoke its pod's rights (its Role and RoleBinding) and make its result
   * ConfigMap immutable, then answer with that result. What verify and apply later read can
   * then change no more, whoever holds the run's identity.
   */
  | { kind: "sealRun"; id: string; resultName: string; roleName: string }
  | { kind: "deleteRun"; id: string; jobName: string };

/** Actions whose answer the next decide pass needs (the shell answers, then decides again). */
export const QUERY_ACTIONS = [
  "checkRegistry",
  "verify",
  "readApplied",
  "apply",
  "deleteApplied",
  "sealRun",
  "ensure",
] as const;

export interface EventSpec {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly action: string;
  readonly note: string;
}

export interface Decision {
  readonly status: MirrorJobStatus;
  readonly actions: Action[];
  readonly events: EventSpec[];
  /** Reconcile again after this long (a running Job, the next scheduled run). */
  readonly requeueAfterMs?: number;
  /** A failure that needs the user or time (preflight): retry with per-key backoff. */
  readonly retry?: boolean;
}

/** How often a running Job is looked at even without watch events. */
const RUN_POLL_MS = 30_000;

/**
 * Timestamps from informer caches are Dates (from lists) or strings (from watch events):
 * read both.
 */
function toDate(value: Date | string | undefined, fallback: Date): Date {
  return value === undefined ? fallback : new Date(value);
}

function jobFinished(job: V1Job): "Complete" | "Failed" | undefined {
  const done = job.status?.conditions?.find(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
  return done?.type as "Complete" | "Failed" | undefined;
}

function jobFailureMessage(job: V1Job): string | undefined {
  const failed = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
  return failed ? `${failed.reason ?? "Failed"}: ${failed.message ?? ""}`.trim() : undefined;
}

/** A run record for a Job the status does not know (adoption after a restart). */
function runFromJob(job: V1Job, generation: number): Run {
  const annotations = job.metadata?.annotations ?? {};
  const trigger = annotations["hubmirror.dev/trigger"];
  return {
    id: job.metadata?.labels?.[LABELS.run] ?? "",
    jobName: job.metadata?.name ?? "",
    trigger:
      trigger === "Created" || trigger === "SpecChanged" || trigger === "RunRequest" || trigger === "Schedule"
        ? trigger
        : "SpecChanged",
    generation,
    startTime: toDate(job.metadata?.creationTimestamp, new Date()).toISOString(),
    ...(annotations["hubmirror.dev/inputs-hash"] !== undefined && {
      inputsHash: annotations["hubmirror.dev/inputs-hash"],
    }),
  };
}

function totals(result: RunResult): { copied: number; failed: number; total: number } {
  return Object.values(result.images).reduce(
    (sum, c) => ({
      copied: sum.copied + c.copied,
      failed: sum.failed + c.failed,
      total: sum.total + c.total,
    }),
    { copied: 0, failed: 0, total: 0 },
  );
}

function describeCategories(result: RunResult): string {
  return Object.entries(result.images)
    .map(([cat, c]) => `${cat} ${c.copied}/${c.total}`)
    .join(", ");
}

/** Finishes a run from its Job and its result ConfigMap. */
function finishRun(
  run: Run,
  job: V1Job | undefined,
  cm: V1ConfigMap | undefined,
  now: Date,
): { run: Run; event: EventSpec } {
  const finishedAt =
    job?.status?.completionTime ??
    job?.status?.conditions?.find((c) => c.status === "True")?.lastTransitionTime;
  const completionTime = toDate(finishedAt, now).toISOString();
  const base: Run = { ...run, completionTime };
  delete base.progress;
  const logs = `kubectl logs job/${run.jobName} -c reporter`;
  if (job === undefined) {
    const message = `run ${run.id} ended without a result: its Job ${run.jobName} was deleted`;
    return {
      run: { ...base, result: "Crashed", message },
      event: { type: "Warning", reason: "RunCrashed", action: "Mirror", note: message },
    };
  }
  const read = readResultConfigMap(cm);
  const result = read.result;
  if (result === undefined) {
    const why =
      read.problems.length > 0
        ? `its result is invalid (${read.problems.join("; ")})`
        : "no result was reported";
    const jobMessage = jobFailureMessage(job);
    const message =
      `run ${run.id} ended without a usable result: ${why}${jobMessage !== undefined ? `; Job: ${jobMessage}` : ""}. ` +
      `Check the pod (OOMKilled, evicted, deadline) and \`kubectl logs job/${run.jobName} -c oc-mirror\``;
    return {
      run: { ...base, result: "Crashed", message: message.slice(0, 4096) },
      event: { type: "Warning", reason: "RunCrashed", action: "Mirror", note: message.slice(0, 1024) },
    };
  }
  const sum = totals(result);
  const record: Run = {
    ...base,
    exitCode: result.exit.code ?? undefined,
    failedCategories: result.exit.failedCategories,
    images: result.images,
    failedImages: result.failedImages,
  };
  if (record.exitCode === undefined) delete record.exitCode;
  const firstFailures = result.failedImages
    .slice(0, 3)
    .map((f) => `${f.image}: ${f.error}`)
    .join("; ");
  switch (result.exit.outcome) {
    case "success": {
      const message = `run ${run.id} mirrored ${sum.copied} images (${describeCategories(result)})`;
      return {
        run: { ...record, result: "Succeeded", message },
        event: { type: "Normal", reason: "RunSucceeded", action: "Mirror", note: message },
      };
    }
    case "partial": {
      const message =
        `run ${run.id}: ${result.failedImageCount} of ${sum.total} images failed (${result.exit.failedCategories.join(", ")}; ${describeCategories(result)}). ` +
        `First failures: ${firstFailures}. The other images were mirrored. Fix the failing images, then change spec.runRequest to retry`;
      return {
        run: { ...record, result: "PartiallyFailed", message: message.slice(0, 4096) },
        event: {
          type: "Warning",
          reason: "RunPartiallyFailed",
          action: "Mirror",
          note: message.slice(0, 1024),
        },
      };
    }
    case "failure":
    case "crash": {
      const crashed = result.exit.outcome === "crash";
      const message =
        `run ${run.id} ${crashed ? "crashed" : "failed"}: ${result.exit.description.replace(/\.+$/, "")}` +
        (firstFailures !== "" ? `. First failures: ${firstFailures}` : "") +
        `. See \`${logs}\``;
      return {
        run: { ...record, result: crashed ? "Crashed" : "Failed", message: message.slice(0, 4096) },
        event: {
          type: "Warning",
          reason: crashed ? "RunCrashed" : "RunFailed",
          action: "Mirror",
          note: message.slice(0, 1024),
        },
      };
    }
  }
}

/** `host/repository` of a reference (no tag or digest), or undefined when it does not parse. */
function repositoryOf(reference: string): string | undefined {
  try {
    const ref = parseReference(reference);
    return `${ref.registry}/${ref.repository}`;
  } catch {
    return undefined;
  }
}

/**
 * The images a run was to put into the registry, from its dry-run mapping, corrected by what
 * only the mirror pass knows: an operator catalog is rebuilt (filtered) during the run, and a
 * catalog pinned by digest without targetTag is pushed under `sha256-<digest of the rebuilt
 * catalog>`, which the dry run cannot name (it names another tag). The CatalogSource and
 * ClusterCatalog oc-mirror generated name the pushed catalog: the mapping's entry for that
 * repository is checked there instead (without a source digest: the content is new).
 */
function expectedImages(read: ReadResult): ExpectedImage[] {
  const catalogs = new Map<string, string>();
  for (const o of read.clusterResources) {
    const spec = o.object.spec as { image?: unknown; source?: { image?: { ref?: unknown } } } | undefined;
    for (const image of [spec?.image, spec?.source?.image?.ref]) {
      const repository = typeof image === "string" ? repositoryOf(image) : undefined;
      if (typeof image === "string" && repository !== undefined) catalogs.set(repository, image);
    }
  }
  const seen = new Set<string>();
  return read.mapping.flatMap((entry): ExpectedImage[] => {
    const catalog = catalogs.get(repositoryOf(entry.destination) ?? "");
    const destination = catalog ?? entry.destination;
    if (seen.has(destination)) return [];
    seen.add(destination);
    if (catalog !== undefined) return [{ destination, kind: "catalog" }];
    return [
      {
        destination,
        ...(entry.sourceDigest !== undefined && { expectedDigest: entry.sourceDigest }),
        kind: /\/openshift\/release-images:/.test(destination) ? "release" : "image",
      },
    ];
  });
}

/** Runs that copied something are verified (a failed or crashed run has nothing to check). */
function needsVerification(run: Run | undefined): run is Run {
  return (
    run !== undefined &&
    run.verification === undefined &&
    (run.result === "Succeeded" || run.result === "PartiallyFailed")
  );
}

function mirroredCondition(run: Run): { status: "True" | "False"; reason: string; message: string } {
  const result = run.result ?? "Crashed";
  return {
    status: result === "Succeeded" ? "True" : "False",
    reason: result === "Succeeded" ? "RunSucceeded" : `Run${result}`,
    message: run.message ?? "",
  };
}

/** `graph: true` with the user's update graph needs the graph image from somewhere (see needsGraphImage). */
function graphImageErrors(spec: MirrorJob["spec"], imageSet: ImageSetConfiguration): FieldError[] {
  if (!needsGraphImage(spec, imageSet) || spec.source.release?.graphImage !== undefined) return [];
  return [
    {
      field: "spec.source.release.graphImage",
      message:
        "platform.graph: true with source.release.updateGraphURL needs the update graph image: oc-mirror builds it only from Red Hat's service. " +
        "Name one you have (e.g. <registry.url>/openshift/graph-image:latest from an earlier run), or set platform.graph to false",
    },
  ];
}

/** What the user reads when the API server refused an object of a run: which, why, and the field. */
function describeRefusal(refusal: Refusal, mirrorJobName: string): string {
  const field = specFieldOfRefusal(refusal, mirrorJobName);
  return (
    `the API server refused ${refusal.kind} ${refusal.name}` +
    (field !== undefined ? ` (from ${field})` : "") +
    `: ${refusal.message}` +
    (field !== undefined
      ? `; correct ${field}`
      : "; the operator's own objects were refused: check its RBAC and version")
  ).slice(0, 1024);
}

/** Finished runs beyond the history limits, oldest first. */
function expiredRuns(jobs: readonly V1Job[], keep: { successful: number; failed: number }): V1Job[] {
  const finished = jobs
    .filter((j) => jobFinished(j) !== undefined)
    .sort(
      (a, b) =>
        toDate(b.metadata?.creationTimestamp, new Date(0)).getTime() -
        toDate(a.metadata?.creationTimestamp, new Date(0)).getTime(),
    );
  const successful = finished.filter((j) => jobFinished(j) === "Complete");
  const failed = finished.filter((j) => jobFinished(j) === "Failed");
  return [...successful.slice(keep.successful), ...failed.slice(keep.failed)];
}

/**
 * The decision for one MirrorJob. Its conditions are settled against the stored ones
 * (see settleConditions): only a status that moved changes a `lastTransitionTime`, so a
 * decision that changes nothing yields the stored status exactly and nothing is written.
 */
export function decide(mj: MirrorJob, observed: Observed, settings: DecideSettings): Decision {
  const decision = decideOnce(mj, observed, settings);
  const conditions = decision.status.conditions;
  if (conditions === undefined) return decision;
  return {
    ...decision,
    status: { ...decision.status, conditions: settleConditions(mj.status?.conditions ?? [], conditions) },
  };
}

function decideOnce(mj: MirrorJob, observed: Observed, settings: DecideSettings): Decision {
  const { now } = observed;
  const generation = mj.metadata.generation ?? 0;
  const spec = mj.spec;
  const status: MirrorJobStatus = { ...mj.status, observedGeneration: generation };
  let conditions: Condition[] = status.conditions ?? [];
  /** A condition as stored before this decision (what an Event is "new" against). */
  const stored = (type: string) => mj.status?.conditions?.find((c) => c.type === type);
  const set = (type: string, s: "True" | "False" | "Unknown", reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status: s, reason, message }, generation, now);
  };
  const actions: Action[] = [];
  const events: EventSpec[] = [];
  const done = (extra: Partial<Decision> = {}): Decision => ({
    status: { ...status, conditions },
    actions,
    events,
    ...extra,
  });
  const ref: MirrorJobRef = {
    name: mj.metadata.name,
    namespace: mj.metadata.namespace ?? "",
    uid: mj.metadata.uid ?? "",
    spec,
  };
  const created = new Date(mj.metadata.creationTimestamp ?? now);

  // 0. Deleted: clean up what was applied (the finalizer's job), then let it go.
  if (mj.metadata.deletionTimestamp !== undefined) {
    if (!hasFinalizer(mj)) return { status: mj.status ?? {}, actions, events };
    if (spec.apply.deletionPolicy === "Delete") {
      const deleted = observed.deletedApplied;
      if (deleted === undefined)
        return { status: mj.status ?? {}, actions: [{ kind: "deleteApplied" }], events };
      if (deleted.errors.length > 0) {
        const message = `deleting what this MirrorJob applied failed: ${deleted.errors.slice(0, 5).join("; ")}`;
        set("Applied", "False", "CleanupFailed", message);
        events.push({
          type: "Warning",
          reason: "CleanupFailed",
          action: "Delete",
          note: message.slice(0, 1024),
        });
        return done({ retry: true });
      }
      events.push({
        type: "Normal",
        reason: "AppliedResourcesDeleted",
        action: "Delete",
        note: `deleted ${deleted.deleted} objects this MirrorJob applied (spec.apply.deletionPolicy: Delete)`,
      });
    } else {
      events.push({
        type: "Normal",
        reason: "AppliedResourcesOrphaned",
        action: "Delete",
        note: "left the objects this MirrorJob applied on the cluster (spec.apply.deletionPolicy: Orphan)",
      });
    }
    return { status: mj.status ?? {}, actions: [{ kind: "removeFinalizer" }], events };
  }

  // 1. The run in progress: known from status, or a running Job to adopt.
  let current = status.currentRun;
  if (current === undefined) {
    const running = observed.jobs.find((j) => jobFinished(j) === undefined);
    if (running !== undefined) current = runFromJob(running, generation);
  }
  if (current !== undefined) {
    const job = observed.jobs.find((j) => j.metadata?.name === current.jobName);
    const cm = observed.resultConfigMaps.get(runNames(mj.metadata.name, current.id).result);
    if (job !== undefined && jobFinished(job) === undefined) {
      const progress = readResultConfigMap(cm).progress;
      status.currentRun = {
        ...current,
        ...(progress !== undefined && {
          progress: {
            copied: progress.copied,
            failed: progress.failed,
            total: progress.total,
            stage: progress.stage,
            updateTime: progress.updateTime,
            ...(progress.lastMessage !== undefined && { lastMessage: progress.lastMessage }),
          },
        }),
      };
      status.phase = "Mirroring";
      set("Reconciling", "True", "RunInProgress", `run ${current.id} (Job ${current.jobName}) is mirroring`);
      set("Ready", "False", "RunInProgress", `run ${current.id} is in progress`);
      conditions = removeCondition(conditions, "Stalled");
      return done({ requeueAfterMs: RUN_POLL_MS });
    }
    // The result is read once more, from the API server, after it has been sealed.
    const sealed = observed.sealed;
    if (sealed?.runId !== current.id) {
      const names = runNames(mj.metadata.name, current.id);
      actions.push({ kind: "sealRun", id: current.id, resultName: names.result, roleName: names.role });
      return done();
    }
    const finished = finishRun(current, job, sealed.result, now);
    status.lastRun = finished.run;
    if (finished.run.result === "Succeeded") status.lastSuccessfulRun = finished.run;
    delete status.currentRun;
    const mirrored = mirroredCondition(finished.run);
    set("Mirrored", mirrored.status, mirrored.reason, mirrored.message);
    events.push(finished.event);
    for (const job of expiredRuns(observed.jobs, spec.historyLimit)) {
      actions.push({
        kind: "deleteRun",
        id: job.metadata?.labels?.[LABELS.run] ?? "",
        jobName: job.metadata?.name ?? "",
      });
    }
  }

  // 2. The spec itself (what the API server cannot check). Waits for a change of the spec
  // (or of the ConfigMap holding the image set), which starts a reconcile anyway.
  const invalidSpec = (errors: readonly FieldError[]): Decision => {
    const message = formatFieldErrors(errors);
    const previous = stored("Stalled");
    if (previous?.reason !== "InvalidSpec" || previous.message !== message) {
      events.push({
        type: "Warning",
        reason: "InvalidSpec",
        action: "Validate",
        note: message.slice(0, 1024),
      });
    }
    status.phase = "Failed";
    set("Stalled", "True", "InvalidSpec", message);
    set("Ready", "False", "InvalidSpec", message);
    conditions = removeCondition(conditions, "Reconciling");
    return done();
  };
  const invalid = semanticErrors(spec);
  if (invalid.length > 0) return invalidSpec(invalid);

  // 3. Preflight, the part without network: referenced objects exist and parse.
  const resolved = resolveInputs(spec, observed.referenced);
  const preflightFailed = (reason: string, message: string): Decision => {
    const previous = stored("PreflightPassed");
    if (previous?.status !== "False" || previous.message !== message) {
      events.push({
        type: "Warning",
        reason: "PreflightFailed",
        action: "Preflight",
        note: message.slice(0, 1024),
      });
    }
    status.phase = "Preflight";
    set("PreflightPassed", "False", reason, message);
    set("Stalled", "True", "PreflightFailed", message);
    set("Ready", "False", "PreflightFailed", message);
    conditions = removeCondition(conditions, "Reconciling");
    return done({ retry: true });
  };
  if (!resolved.ok) return preflightFailed(resolved.failure.reason, resolved.failure.message);
  // What the oc-mirror line of this MirrorJob's Jobs cannot run, and what it needs in addition.
  const line = spec.mirror.line ?? settings.defaultOcMirrorLine;
  const imageSetAt =
    spec.imageSet.configMapRef !== undefined
      ? `configmap/${spec.imageSet.configMapRef.name}[${spec.imageSet.configMapRef.key}]`
      : "spec.imageSet.inline";
  const runnable = [
    ...lineErrors(resolved.inputs.imageSet, line, imageSetAt),
    ...graphImageErrors(spec, resolved.inputs.imageSet),
  ];
  if (runnable.length > 0) return invalidSpec(runnable);
  conditions = removeCondition(conditions, "Stalled");

  // 4. Verify the last run's images in the registry (once; the result is kept in lastRun).
  if (!spec.verify.enabled) {
    conditions = removeCondition(conditions, "Verified");
  } else if (needsVerification(status.lastRun)) {
    const last = status.lastRun;
    const verification = observed.verification;
    if (verification?.runId !== last.id) {
      const read = readResultConfigMap(
        observed.resultConfigMaps.get(runNames(mj.metadata.name, last.id).result),
      );
      actions.push({
        kind: "verify",
        runId: last.id,
        images: expectedImages(read),
        dockerConfig: resolved.inputs.pushAuthFile,
        tlsVerify: spec.registry.tlsVerify,
        ...(resolved.inputs.registryCaBundle !== undefined && { caBundle: resolved.inputs.registryCaBundle }),
      });
      status.phase = "Verifying";
      set(
        "Reconciling",
        "True",
        "Verifying",
        `checking the images of run ${last.id} in ${spec.registry.url}`,
      );
      return done();
    }
    const condition = verifiedCondition(verification.result);
    const r = verification.result;
    status.lastRun = {
      ...last,
      verification: {
        reason: condition.reason,
        checked: r.checked,
        present: r.present,
        missing: r.missing,
        mismatched: r.mismatched,
        errors: r.errors,
        completionTime: now.toISOString(),
      },
    };
    if (status.lastSuccessfulRun?.id === last.id) status.lastSuccessfulRun = status.lastRun;
    set("Verified", condition.status, condition.reason, `run ${last.id}: ${condition.message}`);
    events.push({
      type: condition.status === "True" ? "Normal" : "Warning",
      reason: condition.status === "True" ? "Verified" : "VerificationFailed",
      action: "Verify",
      note: `run ${last.id}: ${condition.message}`.slice(0, 1024),
    });
  }

  // 4b. Apply the last good run's generated objects (and the pull secret entry).
  const applied = applyStep(mj, { ...status, conditions }, observed, {
    applyNamespaces: settings.applyNamespaces,
    ...(resolved.inputs.pullAuthFile !== undefined && { pullAuthFile: resolved.inputs.pullAuthFile }),
  });
  delete status.appliedResources;
  delete status.pendingChange;
  delete status.appliedRun;
  Object.assign(status, applied.status);
  const c = applied.condition;
  if (c === "remove") conditions = removeCondition(conditions, "Applied");
  else if (c !== undefined) set(c.type, c.status, c.reason, c.message);
  events.push(...applied.events);
  actions.push(...applied.actions);
  if (applied.waiting) {
    status.phase = applied.phase ?? "Applying";
    set(
      "Reconciling",
      "True",
      "Applying",
      `applying the generated objects of run ${status.lastSuccessfulRun?.id ?? ""}`,
    );
    return done();
  }
  const applyTiming = {
    ...(applied.retry === true && { retry: true }),
    ...(applied.requeueAfterMs !== undefined && { requeueAfterMs: applied.requeueAfterMs }),
  };

  // 5. Is a run due?
  const hash = inputsHash(spec, resolved.inputs.imageSet);
  const next = nextScheduledRun(spec, status, created);
  if (next !== undefined) status.nextScheduledRun = next.toISOString();
  else delete status.nextScheduledRun;
  const trigger = dueTrigger(spec, status, hash, created, now);
  const appliedCondition = () => conditions.find((c) => c.type === "Applied");
  if (trigger === undefined) {
    conditions = removeCondition(conditions, "Reconciling");
    const last = status.lastRun;
    if (last === undefined)
      set(
        "Ready",
        "False",
        spec.suspend ? "Suspended" : "NotYetRun",
        spec.suspend ? "suspended before the first run" : "no run has finished yet",
      );
    else if (last.result !== "Succeeded")
      set("Ready", "False", `Run${last.result ?? "Crashed"}`, last.message ?? "");
    else if (spec.verify.enabled && last.verification?.reason !== "AllImagesPresent") {
      const verified = conditions.find((c) => c.type === "Verified");
      set(
        "Ready",
        "False",
        verified?.reason ?? "NotVerified",
        verified?.message ?? "the run is not verified yet",
      );
    } else if (spec.apply.mode === "Auto" && appliedCondition()?.status !== "True") {
      const notApplied = appliedCondition();
      set("Ready", "False", notApplied?.reason ?? "NotApplied", notApplied?.message ?? "not applied yet");
    } else set("Ready", "True", "RunSucceeded", last.message ?? "");
    const ready = conditions.find((c) => c.type === "Ready")?.status === "True";
    status.phase = spec.suspend
      ? "Suspended"
      : last === undefined
        ? "Pending"
        : ready
          ? "Succeeded"
          : applied.phase === "AwaitingApproval"
            ? "AwaitingApproval"
            : "Failed";
    const wait = next !== undefined ? Math.max(1_000, next.getTime() - now.getTime()) : undefined;
    const requeueAfterMs = Math.min(wait ?? Infinity, applyTiming.requeueAfterMs ?? Infinity);
    return done({
      ...(applyTiming.retry === true && { retry: true }),
      ...(requeueAfterMs !== Infinity && { requeueAfterMs }),
    });
  }

  // 6. Preflight, the network part, then start the run.
  const check = observed.registryCheck;
  if (check === undefined) {
    actions.push({
      kind: "checkRegistry",
      registry: spec.registry.url,
      credentials: resolved.inputs.pushCredentials,
      tlsVerify: spec.registry.tlsVerify,
      ...(resolved.inputs.registryCaBundle !== undefined && { caBundle: resolved.inputs.registryCaBundle }),
    });
    return done();
  }
  if (!check.ok) return preflightFailed(check.reason, check.message);
  // The runbook's review checklist, and what the operator changed for the oc-mirror line:
  // shown, never blocking.
  const adapted = adaptImageSet(resolved.inputs.imageSet, line);
  const warnings = [...imageSetWarnings(resolved.inputs.imageSet), ...adapted.notes];
  set(
    "PreflightPassed",
    "True",
    warnings.length > 0 ? "PreflightSucceededWithWarnings" : "PreflightSucceeded",
    `referenced objects resolve and ${spec.registry.url} accepts the push credentials` +
      (warnings.length > 0 ? `; review: ${warnings.join("; ")}` : ""),
  );
  for (const warning of warnings) {
    events.push({
      type: "Warning",
      reason: "ImageSetReview",
      action: "Validate",
      note: warning.slice(0, 1024),
    });
  }

  const id = runId(ref.uid, trigger.token);
  const objects = buildRunObjects(
    ref,
    {
      id,
      trigger: trigger.kind,
      inputsHash: hash,
      imageSet: adapted.imageSet,
    },
    settings,
  );
  const jobName = objects.job.metadata?.name ?? "";
  const ensured = observed.ensured;
  if (ensured?.runId !== id) {
    actions.push({
      kind: "ensure",
      runId: id,
      objects: [
        buildServiceAccount(ref),
        ...buildVolumeClaims(ref, settings),
        objects.input,
        objects.result,
        objects.role,
        objects.roleBinding,
        objects.job,
      ],
    });
    return done();
  }
  if (!ensured.outcome.ok) {
    const message = describeRefusal(ensured.outcome.refusal, mj.metadata.name);
    const previous = stored("Stalled");
    if (previous?.reason !== "ObjectRejected" || previous.message !== message) {
      events.push({ type: "Warning", reason: "ObjectRejected", action: "Mirror", note: message });
    }
    status.phase = "Failed";
    set("Stalled", "True", "ObjectRejected", message);
    set("Ready", "False", "ObjectRejected", message);
    conditions = removeCondition(conditions, "Reconciling");
    // What was created of the run before the refusal goes (never the volumes: they are not the run's).
    actions.push({ kind: "deleteRun", id, jobName });
    return done({ retry: true });
  }
  status.currentRun = {
    id,
    jobName,
    trigger: trigger.kind,
    generation,
    startTime: now.toISOString(),
    inputsHash: hash,
  };
  if (spec.runRequest !== undefined) status.lastHandledRunRequest = spec.runRequest;
  status.phase = "Mirroring";
  set("Reconciling", "True", "RunStarted", `run ${id} started (${trigger.kind})`);
  set("Ready", "False", "RunInProgress", `run ${id} is in progress`);
  events.push({
    type: "Normal",
    reason: "RunStarted",
    action: "Mirror",
    note: `run ${id} started by ${trigger.kind}: Job ${jobName}`,
  });
  return done({ requeueAfterMs: RUN_POLL_MS });
}
