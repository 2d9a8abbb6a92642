/**
 * Stage "verify": the last run's images are checked in the registry once (the `verify`
 * query), from its own dry-run mapping; the result is kept in lastRun. Off with
 * spec.verify.enabled false.
 */
import { runNames } from "../../job/names.ts";
import { verifiedCondition } from "../../registry/verify.ts";
import { readResultConfigMap } from "../../report/result.ts";
import type { Draft } from "../draft.ts";
import type { Decision } from "../protocol.ts";
import { expectedImages, needsVerification } from "../runs.ts";

export function verify(d: Draft): Decision | undefined {
  const { mj, observed, status } = d;
  const spec = mj.spec;
  if (!spec.verify.enabled) {
    d.remove("Verified");
    return undefined;
  }
  const last = status.lastRun;
  if (!needsVerification(last)) return undefined;
  const inputs = d.inputs;
  if (inputs === undefined) throw new Error("verify: the inputs are not resolved");
  const answer = observed.answers.verify;
  if (answer?.runId !== last.id) {
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
      completionTime: d.now.toISOString(),
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
  return undefined;
}
