/**
 * Stage "verify": the last run's images are checked in the registry once (the `verify`
 * query), from its own dry-run mapping; the result is kept in lastRun. Again every
 * REVERIFY_MS while the registry could not answer. Off with spec.verify.enabled false.
 */
import { runNames } from "../../job/names.ts";
import { verifiedCondition } from "../../registry/verify.ts";
import { readResultConfigMap } from "../../report/result.ts";
import type { Draft } from "../draft.ts";
import type { Run } from "../../api/status.ts";
import { after, combineNext, type Decision } from "../protocol.ts";
import { expectedImages, needsVerification } from "../runs.ts";

/**
 * A verification the registry could not answer (down, 503, 429, no answer in time: reason
 * RegistryUnreachable) runs again this long after it ended, until the registry answers. Each
 * verification is itself bounded (the client's few retries and timeouts).
 */
export const REVERIFY_MS = 60_000;

/** When the last run's verification runs again, if it could not reach the registry. */
export function reverifyAt(run: Run | undefined): number | undefined {
  const verification = run?.verification;
  if (verification?.reason !== "RegistryUnreachable") return undefined;
  if (run?.result !== "Succeeded" && run?.result !== "PartiallyFailed") return undefined;
  return Date.parse(verification.completionTime) + REVERIFY_MS;
}

export function verify(d: Draft): Decision | undefined {
  const { mj, observed, status } = d;
  const spec = mj.spec;
  if (!spec.verify.enabled) {
    d.remove("Verified");
    return undefined;
  }
  const last = status.lastRun;
  if (last === undefined) return undefined;
  const answer = observed.answers.verify;
  if (answer?.runId !== last.id) {
    const again = reverifyAt(last);
    if (!needsVerification(last) && (again === undefined || d.now.getTime() < again)) {
      if (again !== undefined) waitForRegistry(d, again);
      return undefined;
    }
    const inputs = d.inputs;
    if (inputs === undefined) throw new Error("verify: the inputs are not resolved");
    const read = readResultConfigMap(
      observed.resultConfigMaps.get(runNames(mj.metadata.name, last.id).result),
    );
    status.phase = "Verifying";
    d.set(
      "Reconciling",
      "True",
      "Verifying",
      `checking the images of run ${last.id} in ${spec.registry.url}`,
    );
    return d.decision({
      query: {
        kind: "verify",
        runId: last.id,
        images: expectedImages(read),
        dockerConfig: inputs.pushAuthFile,
        tlsVerify: spec.registry.tlsVerify,
        ...(inputs.registryCaBundle !== undefined && { caBundle: inputs.registryCaBundle }),
      },
    });
  }
  const r = answer.result;
  const condition = verifiedCondition(r);
  status.lastRun = {
    ...last,
    verification: {
      reason: condition.reason,
      checked: r.checked,
      present: r.present,
      missing: r.missing,
      mismatched: r.mismatched,
      errors: r.errors,
      completionTime: answer.completionTime,
    },
  };
  if (status.lastSuccessfulRun?.id === last.id) status.lastSuccessfulRun = status.lastRun;
  const message = `run ${last.id}: ${condition.message}`;
  d.set("Verified", condition.status, condition.reason, message);
  d.event(
    condition.status === "True" ? "Normal" : "Warning",
    condition.status === "True" ? "Verified" : "VerificationFailed",
    "Verify",
    message,
  );
  const again = reverifyAt(status.lastRun);
  if (again !== undefined) waitForRegistry(d, again);
  return undefined;
}

/** Waits for the registry, visibly: phase Verifying, Ready says why (schedule stage), and a timer. */
function waitForRegistry(d: Draft, again: number): void {
  d.applyPhase ??= "Verifying";
  d.applyNext = combineNext(d.applyNext, after(Math.max(1_000, again - d.now.getTime())));
}
