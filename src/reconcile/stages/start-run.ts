/**
 * Stage "start run": a run is due. It needs a run slot first (the `runSlot` query): the
 * operator limits the runs in progress, in all, per target registry and per target (the same
 * repositories), and a run that finds
 * no free slot waits (phase Queued, `status.queued`), the oldest first. Then the registry must
 * answer with the push credentials (the `checkRegistry` query: preflight's network half); the image set is adapted to the
 * MirrorJob's oc-mirror line (the review checklist and the adaptations are shown, never
 * blocking); then the run's objects are created (the `ensure` query). An object the API
 * server refuses starts no run: the refusal names the spec field to correct, what was
 * created of the run is removed again, and the next try backs off.
 */
import { imageSetWarnings } from "../../api/semantic.ts";
import {
  buildRunObjects,
  buildServiceAccount,
  buildVolumeClaims,
  type MirrorJobRef,
} from "../../job/builders.ts";
import { runId } from "../../job/names.ts";
import { specFieldOfRefusal } from "../../job/spec-fields.ts";
import { adaptImageSet } from "../../ocmirror/lines.ts";
import type { Draft } from "../draft.ts";
import { after, BACKOFF, type Decision, type Refusal, type RunSlot } from "../protocol.ts";
import { targetOf, targetRegistry } from "../runs.ts";
import type { Trigger } from "../triggers.ts";
import { preflightFailed } from "./failures.ts";
import { RUN_POLL_MS } from "./follow-run.ts";

/** What the user reads when the API server refused an object of a run: which, why, and the field. */
export function describeRefusal(refusal: Refusal, mirrorJobName: string): string {
  const field = specFieldOfRefusal(refusal, mirrorJobName);
  return (
    `the API server refused ${refusal.kind} ${refusal.name}` +
    (field !== undefined ? ` (from ${field})` : "") +
    `: ${refusal.message}` +
    (field !== undefined
      ? `; correct ${field}`
      : "; the operator's own objects were refused: check its RBAC and version")
  );
}

/**
 * How often a waiting run looks again by itself. The operator wakes the oldest waiting runs
 * as soon as a slot frees; this only bounds the wait should that wake-up be missed.
 */
export const QUEUED_RECHECK_MS = 60_000;

/** The decision of a due run that found no free slot: it waits, and says for what. */
function waitForSlot(d: Draft, trigger: Trigger, since: string, slot: Exclude<RunSlot, { granted: true }>) {
  const url = d.mj.spec.registry.url;
  const runs = `${String(slot.max)} run${slot.max === 1 ? "" : "s"}`;
  const limit =
    slot.limit === "global"
      ? `at most ${runs} at once (HUBMIRROR_MAX_RUNS)`
      : slot.limit === "registry"
        ? `at most ${runs} at once to ${targetRegistry(url)} (HUBMIRROR_MAX_RUNS_PER_REGISTRY)`
        : `at most ${runs} at once into ${targetOf(url)} (HUBMIRROR_MAX_RUNS_PER_TARGET: runs that push into the same repositories take turns)`;
  // Stable while it waits (no counts): a message that changed with every run elsewhere would
  // rewrite the status of every waiting MirrorJob.
  const message = `a run is due (${trigger.kind}) and waits for a run slot: ${limit}; the runs due first start first`;
  if (d.stored("Reconciling")?.reason !== "RunQueued")
    d.event(
      "Normal",
      "RunQueued",
      "Mirror",
      `${message}: ${String(slot.inProgress)} in progress, ${String(slot.ahead)} waiting ahead of this one`,
    );
  d.status.queued = { trigger: trigger.kind, since };
  d.status.phase = "Queued";
  d.set("Reconciling", "True", "RunQueued", message);
  d.set("Ready", "False", "RunQueued", message);
  d.remove("Stalled");
  return d.decision(after(QUEUED_RECHECK_MS));
}

export function startRun(d: Draft): Decision {
  const { mj, observed, status, settings } = d;
  const spec = mj.spec;
  const inputs = d.inputs;
  const due = d.due;
  if (inputs === undefined || due === undefined) throw new Error("start run: no run is due");

  // A slot before anything else: a waiting run costs the registry nothing.
  const since = mj.status?.queued?.since ?? d.now.toISOString();
  const slot = observed.answers.runSlot?.slot;
  if (slot === undefined)
    return d.decision({ query: { kind: "runSlot", target: targetOf(spec.registry.url), since } });
  if (!slot.granted) return waitForSlot(d, due.trigger, since, slot);

  const check = observed.answers.checkRegistry?.result;
  if (check === undefined) {
    return d.decision({
      query: {
        kind: "checkRegistry",
        registry: spec.registry.url,
        credentials: inputs.pushCredentials,
        tlsVerify: spec.registry.tlsVerify,
        ...(inputs.registryCaBundle !== undefined && { caBundle: inputs.registryCaBundle }),
      },
    });
  }
  if (!check.ok) return preflightFailed(d, check.reason, check.message);
  const adapted = adaptImageSet(inputs.imageSet, d.line);
  const warnings = [...imageSetWarnings(inputs.imageSet), ...adapted.notes];
  d.set(
    "PreflightPassed",
    "True",
    warnings.length > 0 ? "PreflightSucceededWithWarnings" : "PreflightSucceeded",
    `referenced objects resolve and ${spec.registry.url} accepts the push credentials` +
      (warnings.length > 0 ? `; review: ${warnings.join("; ")}` : ""),
  );
  for (const warning of warnings) d.event("Warning", "ImageSetReview", "Validate", warning);

  const ref: MirrorJobRef = {
    name: mj.metadata.name,
    namespace: mj.metadata.namespace ?? "",
    uid: mj.metadata.uid ?? "",
    spec,
  };
  const { trigger, inputsHash } = due;
  const id = runId(ref.uid, trigger.token);
  const objects = buildRunObjects(
    ref,
    { id, trigger: trigger.kind, inputsHash, imageSet: adapted.imageSet },
    settings,
  );
  const jobName = objects.job.metadata?.name ?? "";
  const ensured = observed.answers.ensure;
  if (ensured?.runId !== id) {
    return d.decision({
      query: {
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
      },
    });
  }
  if (!ensured.outcome.ok) {
    const message = describeRefusal(ensured.outcome.refusal, mj.metadata.name);
    d.eventOnChange("Warning", "ObjectRejected", "Mirror", {
      type: "Stalled",
      reason: "ObjectRejected",
      message,
    });
    status.phase = "Failed";
    d.set("Stalled", "True", "ObjectRejected", message);
    d.set("Ready", "False", "ObjectRejected", message);
    d.remove("Reconciling");
    // What was created of the run before the refusal goes (never the volumes: they are not the run's).
    d.effect({ kind: "deleteRun", runId: id, jobName });
    return d.decision(BACKOFF);
  }
  status.currentRun = {
    id,
    jobName,
    trigger: trigger.kind,
    generation: d.generation,
    startTime: d.now.toISOString(),
    inputsHash,
  };
  if (spec.runRequest !== undefined) status.lastHandledRunRequest = spec.runRequest;
  status.phase = "Mirroring";
  d.set("Reconciling", "True", "RunStarted", `run ${id} started (${trigger.kind})`);
  d.set("Ready", "False", "RunInProgress", `run ${id} is in progress`);
  d.event(
    "Normal",
    "RunStarted",
    "Mirror",
    `run ${id} started by ${trigger.kind}: Job ${jobName}`,
    `run-${id}-started`,
  );
  return d.decision(after(RUN_POLL_MS));
}
