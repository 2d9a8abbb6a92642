/**
 * Stage "follow rollout": after an apply, how the cluster takes the change up (the
 * `readRollout` query, looked at again every 30 s while it lasts): the MachineConfigPools for
 * a mirror set change, the applied CatalogSources and UpdateServices. `RolledOut` sums it up:
 * True when all have settled, False while rolling out, when a pool is degraded, or when the
 * rollout is stuck past spec.apply.rolloutDeadline (naming the object and its state). With
 * apply.mode Auto, `Ready` waits for it (schedule stage).
 */
import type { Rollout } from "../../api/status.ts";
import type { Draft } from "../draft.ts";
import { after, combineNext, type Decision } from "../protocol.ts";
import { judgeRollout, poolState } from "../rollout.ts";
import { parseGoDuration } from "../../ocmirror/progress.ts";
import { rolloutPollMs, rolloutQuery } from "./apply.ts";

const DEFAULT_DEADLINE_S = 2 * 3600;

/** The Event a rollout's new state is worth (the Applied Event already said it started). */
const EVENTS: Readonly<Record<Rollout["state"], readonly ["Normal" | "Warning", string] | undefined>> = {
  Waiting: undefined,
  RollingOut: undefined,
  RolledOut: ["Normal", "RolledOut"],
  Degraded: ["Warning", "RolloutDegraded"],
  Stuck: ["Warning", "RolloutStuck"],
};

export function followRollout(d: Draft): Decision | undefined {
  const { mj, status, observed } = d;
  const rollout = status.rollout;
  if (mj.spec.apply.mode !== "Auto" || rollout === undefined) {
    d.remove("RolledOut");
    if (mj.spec.apply.mode !== "Auto") delete status.rollout;
    return undefined;
  }
  if (rollout.state === "Waiting") {
    const applied = d.condition("Applied");
    d.set("RolledOut", "False", "Waiting", applied?.message ?? `run ${rollout.run} waits to be applied`);
    return undefined;
  }
  if (rollout.state === "RolledOut") return undefined;
  const seen = observed.answers.readRollout?.seen;
  if (seen === undefined) return d.decision({ query: rolloutQuery(status) });
  const verdict = judgeRollout(
    rollout,
    seen,
    d.now,
    (parseGoDuration(mj.spec.apply.rolloutDeadline) ?? DEFAULT_DEADLINE_S) * 1000,
  );
  status.rollout = {
    ...rollout,
    state: verdict.state,
    ...(verdict.state === "RolledOut" && { completionTime: d.now.toISOString() }),
    ...(rollout.mirrorSets &&
      seen.pools !== undefined && {
        pools: seen.pools.map((p) => ({
          name: p.name,
          state: poolState(p),
          machineCount: p.machineCount,
          updatedMachineCount: p.updatedMachineCount,
          degradedMachineCount: p.degradedMachineCount,
          ...(p.message !== undefined &&
            poolState(p) === "Degraded" && { message: p.message.slice(0, 1024) }),
        })),
      }),
    ...(seen.catalogSources.length > 0 && {
      catalogSources: seen.catalogSources.map((c) => ({
        namespace: c.namespace,
        name: c.name,
        state: c.state ?? "Unknown",
      })),
    }),
    ...(seen.updateServices.length > 0 && { updateServices: seen.updateServices.map((u) => ({ ...u })) }),
  };
  const condition = { type: "RolledOut", reason: verdict.state, message: verdict.message };
  const event = EVENTS[verdict.state];
  if (event !== undefined && d.stored("RolledOut")?.reason !== verdict.state)
    d.event(event[0], event[1], "Rollout", verdict.message);
  d.set(
    condition.type,
    verdict.state === "RolledOut" ? "True" : "False",
    condition.reason,
    condition.message,
  );
  if (verdict.state !== "RolledOut")
    d.applyNext = combineNext(d.applyNext, after(rolloutPollMs(mj.spec.apply.rolloutDeadline)));
  return undefined;
}
