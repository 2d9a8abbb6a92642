/**
 * The reconcile decision: `(mirrorJob, observed) -> Decision` (see protocol.ts). Pure: the
 * shell gathers the observations, answers the decision's query, carries out its effects,
 * records its Events and writes its status.
 *
 * A decision is made by named stages, in order, over one draft (draft.ts); each stage either
 * passes on or ends the decision:
 *   cleanup        a MirrorJob being deleted: its finalizer's work
 *   follow run     the run in progress (progress; sealing and finishing it when it ends)
 *   validate spec  what the API server cannot check
 *   resolve inputs preflight without the network (Secrets, ConfigMaps, the oc-mirror line)
 *   verify         the last run's images in the registry
 *   apply          the last good run's generated objects and the pull secret entry
 *   follow rollout how the cluster takes them up (MachineConfigPools, catalogs, update service)
 *   prune          registry content the applied run no longer mirrors (spec.prune; oc-mirror delete Jobs)
 *   schedule       is a run due? if not: Ready, phase and when to look again
 *   start run      preflight's network half, then the run's objects
 * Its conditions are settled against the stored ones at the end (conditions.ts): only a
 * status that moved changes a `lastTransitionTime`, so a decision that changes nothing yields
 * the stored status exactly and nothing is written.
 */
import type { MirrorJob } from "../api/validation.ts";
import { Draft } from "./draft.ts";
import type { DecideSettings, Decision, Observed } from "./protocol.ts";
import { apply } from "./stages/apply.ts";
import { cleanup } from "./stages/cleanup.ts";
import { followRollout } from "./stages/follow-rollout.ts";
import { followRun } from "./stages/follow-run.ts";
import { prune } from "./stages/prune.ts";
import { resolveInputs } from "./stages/resolve-inputs.ts";
import { schedule } from "./stages/schedule.ts";
import { startRun } from "./stages/start-run.ts";
import { validateSpec } from "./stages/validate-spec.ts";
import { verify } from "./stages/verify.ts";

export type Stage = (draft: Draft) => Decision | undefined;

/** The stages, in the order they run. The last one always decides. */
export const STAGES: readonly (readonly [string, Stage])[] = [
  ["cleanup", cleanup],
  ["follow run", followRun],
  ["validate spec", validateSpec],
  ["resolve inputs", resolveInputs],
  ["verify", verify],
  ["apply", apply],
  ["follow rollout", followRollout],
  ["prune", prune],
  ["schedule", schedule],
  ["start run", startRun],
];

export function decide(mj: MirrorJob, observed: Observed, settings: DecideSettings): Decision {
  const draft = new Draft(mj, observed, settings);
  for (const [, stage] of STAGES) {
    const decision = stage(draft);
    if (decision !== undefined) return decision;
  }
  throw new Error("decide: no stage decided");
}
