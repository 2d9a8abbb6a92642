/**
 * Following how the cluster takes up what a MirrorJob applied, pure: MachineConfigPools roll
 * a mirror set change out to every node (a drain-causing one drains and reboots them),
 * CatalogSources become READY once their registry pod serves, an UpdateService becomes
 * Available. And when a change that drains nodes may be applied: never while a pool still
 * updates or another MirrorJob's drain-causing change rolls out, and changes of several
 * MirrorJobs that become ready close together are applied together (one drain, not one per
 * MirrorJob).
 */
import type { Rollout } from "../api/status.ts";

/** A MachineConfigPool as the shell read it (machineconfiguration.openshift.io/v1). */
export interface PoolObservation {
  readonly name: string;
  readonly updating: boolean;
  readonly updated: boolean;
  readonly degraded: boolean;
  readonly machineCount: number;
  readonly updatedMachineCount: number;
  readonly degradedMachineCount: number;
  /** The Degraded (or NodeDegraded/RenderDegraded) condition's message. */
  readonly message?: string;
  /** When the Updated condition last changed. */
  readonly updatedSince?: string;
}

/** What the shell read of the cluster's rollout state. */
export interface RolloutObservation {
  /** The MachineConfigPools; undefined when the cluster serves no such API (no MCO: plain Kubernetes). */
  readonly pools?: readonly PoolObservation[];
  /** The applied CatalogSources: their lastObservedState (undefined: none yet, or the object is gone). */
  readonly catalogSources: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly state?: string;
  }[];
  readonly updateServices: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly available: boolean;
    readonly reason?: string;
  }[];
}

/** Another MirrorJob's rollout, as the cache holds its status. */
export interface FleetRollout {
  readonly namespace: string;
  readonly name: string;
  readonly state: Rollout["state"];
  readonly drains: boolean;
  readonly waitingSince?: string;
}

/** How long MachineConfigPools get to start updating after a mirror set change (the MCO renders first). */
export const POOL_START_GRACE_MS = 60_000;

export function poolState(pool: PoolObservation): "Updating" | "Updated" | "Degraded" {
  if (pool.degraded) return "Degraded";
  return pool.updating || !pool.updated ? "Updating" : "Updated";
}

export type Hold =
  | { readonly hold: false }
  | {
      readonly hold: true;
      readonly reason: "WaitingForPools" | "WaitingForRollout" | "BatchingDrainChanges";
      readonly message: string;
      readonly untilMs?: number;
    };

/**
 * Whether a drain-causing change that is ready (`readySince`) may be applied now, given the
 * pools and the other MirrorJobs' rollouts: not while a pool updates or is degraded, not
 * while another MirrorJob's drain-causing change rolls out, and not before the batch window
 * since the earliest such change waiting in the fleet has passed (so those due together go
 * together).
 */
export function drainHold(
  pools: readonly PoolObservation[] | undefined,
  fleet: readonly FleetRollout[],
  readySince: Date,
  now: Date,
  batchWindowMs: number,
): Hold {
  // Without MachineConfigPools (no Machine Config Operator, or its API and no pool) no node
  // drains: nothing to wait for, and nothing to batch.
  if (pools === undefined || pools.length === 0) return { hold: false };
  const busy = pools.filter((p) => poolState(p) !== "Updated");
  if (busy.length > 0) {
    return {
      hold: true,
      reason: "WaitingForPools",
      message: `MachineConfigPool ${busy.map((p) => `${p.name} is ${poolState(p).toLowerCase()} (${String(p.updatedMachineCount)}/${String(p.machineCount)} machines updated)`).join(", ")}; the change that drains nodes is applied when the pools have settled`,
    };
  }
  const rolling = fleet.filter((f) => f.drains && f.state === "RollingOut");
  if (rolling.length > 0) {
    return {
      hold: true,
      reason: "WaitingForRollout",
      message: `MirrorJob ${rolling.map((f) => `${f.namespace}/${f.name}`).join(", ")} is rolling out a change that drains nodes; this one follows when it has rolled out (one rollout at a time)`,
    };
  }
  const waiting = fleet.filter((f) => f.drains && f.state === "Waiting" && f.waitingSince !== undefined);
  const earliest = Math.min(readySince.getTime(), ...waiting.map((f) => Date.parse(f.waitingSince ?? "")));
  const until = earliest + batchWindowMs;
  if (now.getTime() < until) {
    return {
      hold: true,
      reason: "BatchingDrainChanges",
      message: `waiting until ${new Date(until).toISOString()} so that changes draining nodes that are due together are applied together (nodes drain once)${waiting.length > 0 ? `; due with it: ${waiting.map((f) => `${f.namespace}/${f.name}`).join(", ")}` : ""}`,
      untilMs: until - now.getTime(),
    };
  }
  return { hold: false };
}

export type RolloutVerdict =
  | { readonly state: "RolledOut"; readonly message: string }
  | { readonly state: "RollingOut"; readonly message: string }
  | { readonly state: "Degraded"; readonly message: string }
  | { readonly state: "Stuck"; readonly message: string };

/** Where a rollout stands: settled, still going, degraded, or stuck past its deadline. */
export function judgeRollout(
  rollout: Rollout,
  seen: RolloutObservation,
  now: Date,
  deadlineMs: number,
): RolloutVerdict {
  const appliedAt = Date.parse(rollout.appliedTime ?? "") || now.getTime();
  const elapsed = now.getTime() - appliedAt;
  const pending: string[] = [];
  if (rollout.mirrorSets && seen.pools !== undefined) {
    const degraded = seen.pools.filter((p) => poolState(p) === "Degraded");
    if (degraded.length > 0) {
      return {
        state: "Degraded",
        message: `MachineConfigPool ${degraded.map((p) => `${p.name} is degraded (${String(p.degradedMachineCount)} of ${String(p.machineCount)} machines)${p.message !== undefined ? `: ${p.message}` : ""}`).join("; ")}`,
      };
    }
    for (const pool of seen.pools) {
      // The MCO renders the new configuration first: a pool that has not started updating yet
      // has not taken the change up, for a little while.
      const sinceApply = pool.updatedSince !== undefined && Date.parse(pool.updatedSince) >= appliedAt;
      if (poolState(pool) === "Updating")
        pending.push(
          `MachineConfigPool ${pool.name} is updating (${String(pool.updatedMachineCount)}/${String(pool.machineCount)} machines updated)`,
        );
      else if (!sinceApply && elapsed < POOL_START_GRACE_MS)
        pending.push(`MachineConfigPool ${pool.name} has not started updating yet`);
    }
  }
  for (const cs of seen.catalogSources) {
    if (cs.state !== "READY")
      pending.push(`CatalogSource ${cs.namespace}/${cs.name} is ${cs.state ?? "not reporting a state yet"}`);
  }
  for (const us of seen.updateServices) {
    if (!us.available)
      pending.push(
        `UpdateService ${us.namespace}/${us.name} is not available${us.reason !== undefined ? ` (${us.reason})` : ""}`,
      );
  }
  if (pending.length === 0) {
    const took = Math.max(0, Math.round(elapsed / 1000));
    const missing =
      rollout.mirrorSets && seen.pools === undefined
        ? "; the cluster has no MachineConfigPools (no Machine Config Operator): nothing to follow for the mirror sets"
        : "";
    return {
      state: "RolledOut",
      message: `run ${rollout.run}: the cluster has taken up the change in ${String(took)} s${missing}`,
    };
  }
  if (elapsed > deadlineMs) {
    return {
      state: "Stuck",
      message: `run ${rollout.run}: not rolled out after ${String(Math.round(elapsed / 60_000))} minutes (spec.apply.rolloutDeadline): ${pending.join("; ")}`,
    };
  }
  return { state: "RollingOut", message: `run ${rollout.run}: ${pending.join("; ")}` };
}
