/**
 * The two ways a MirrorJob's own input stops a decision: a spec the API server could not
 * check is wrong (InvalidSpec: wait for the spec, or the ConfigMap with the image set, to
 * change: that change starts a reconcile), or a preflight check fails (retry with backoff:
 * a Secret or the registry may come right by itself).
 */
import type { FieldError } from "../../api/validation.ts";
import { formatFieldErrors } from "../../api/validation.ts";
import type { Draft } from "../draft.ts";
import { AWAIT_CHANGE, BACKOFF, type Decision } from "../protocol.ts";

export function invalidSpec(d: Draft, errors: readonly FieldError[]): Decision {
  const message = formatFieldErrors(errors);
  d.eventOnChange("Warning", "InvalidSpec", "Validate", { type: "Stalled", reason: "InvalidSpec", message });
  d.status.phase = "Failed";
  d.set("Stalled", "True", "InvalidSpec", message);
  d.set("Ready", "False", "InvalidSpec", message);
  d.remove("Reconciling");
  return d.decision(AWAIT_CHANGE);
}

export function preflightFailed(d: Draft, reason: string, message: string): Decision {
  const before = d.stored("PreflightPassed");
  if (before?.status !== "False" || before.message !== message)
    d.event("Warning", "PreflightFailed", "Preflight", message);
  d.status.phase = "Preflight";
  d.set("PreflightPassed", "False", reason, message);
  d.set("Stalled", "True", "PreflightFailed", message);
  d.set("Ready", "False", "PreflightFailed", message);
  d.remove("Reconciling");
  return d.decision(BACKOFF);
}
