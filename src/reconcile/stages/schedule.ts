/**
 * Stage "schedule": is a run due (the spec changed, a new runRequest, the schedule's time)?
 * If so, the start-run stage goes on. If not, the decision ends here: `Ready` says whether
 * the last run is mirrored, verified and applied (as far as apply.mode asks), the phase sums
 * it up, and `next` is the next scheduled run (or the apply stage's retry or recheck).
 */
import type { Draft } from "../draft.ts";
import { after, AWAIT_CHANGE, combineNext, type Decision } from "../protocol.ts";
import { dueTrigger, inputsHash, nextScheduledRun } from "../triggers.ts";

/** The phase while a change waits to be applied or rolls out. */
const rolloutPhase: Readonly<Record<string, "Applying" | "RollingOut" | undefined>> = {
  Waiting: "Applying",
  RollingOut: "RollingOut",
};

export function schedule(d: Draft): Decision | undefined {
  const { mj, status, now } = d;
  const spec = mj.spec;
  const inputs = d.inputs;
  if (inputs === undefined) throw new Error("schedule: the inputs are not resolved");
  const created = new Date(mj.metadata.creationTimestamp ?? now);
  const hash = inputsHash(spec, inputs.imageSet);
  const next = nextScheduledRun(spec, status, created);
  if (next !== undefined) status.nextScheduledRun = next.toISOString();
  else delete status.nextScheduledRun;
  const trigger = dueTrigger(spec, status, hash, created, now);
  if (trigger !== undefined) {
    d.due = { trigger, inputsHash: hash };
    return undefined;
  }

  if (status.rollout?.state === "RollingOut" && spec.apply.mode === "Auto")
    d.set("Reconciling", "True", "RollingOut", d.condition("RolledOut")?.message ?? "rolling out");
  else d.remove("Reconciling");
  const last = status.lastRun;
  const applied = d.condition("Applied");
  const rolledOut = d.condition("RolledOut");
  if (last === undefined)
    d.set(
      "Ready",
      "False",
      spec.suspend ? "Suspended" : "NotYetRun",
      spec.suspend ? "suspended before the first run" : "no run has finished yet",
    );
  else if (last.result !== "Succeeded")
    d.set("Ready", "False", `Run${last.result ?? "Crashed"}`, last.message ?? "");
  else if (spec.verify.enabled && last.verification?.reason !== "AllImagesPresent") {
    const verified = d.condition("Verified");
    d.set(
      "Ready",
      "False",
      verified?.reason ?? "NotVerified",
      verified?.message ?? "the run is not verified yet",
    );
  } else if (spec.apply.mode === "Auto" && applied?.status !== "True")
    d.set("Ready", "False", applied?.reason ?? "NotApplied", applied?.message ?? "not applied yet");
  else if (spec.apply.mode === "Auto" && rolledOut !== undefined && rolledOut.status !== "True")
    d.set("Ready", "False", rolledOut.reason, rolledOut.message);
  else d.set("Ready", "True", "RunSucceeded", last.message ?? "");
  const ready = d.condition("Ready")?.status === "True";
  status.phase = spec.suspend
    ? "Suspended"
    : last === undefined
      ? "Pending"
      : ready
        ? "Succeeded"
        : (d.applyPhase ?? rolloutPhase[status.rollout?.state ?? "Degraded"] ?? "Failed");
  const wait = next !== undefined ? after(Math.max(1_000, next.getTime() - now.getTime())) : AWAIT_CHANGE;
  return d.decision(combineNext(combineNext(d.applyNext, d.pruneNext), wait));
}
