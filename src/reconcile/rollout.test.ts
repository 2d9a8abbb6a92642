import { describe, expect, it } from "vitest";
import type { Rollout } from "../api/status.ts";
import { drainHold, judgeRollout, POOL_START_GRACE_MS, type PoolObservation } from "./rollout.ts";

const now = new Date("2026-11-27T12:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
const before = (ms: number) => new Date(now.getTime() - ms);

function pool(
  name: string,
  state: "Updated" | "Updating" | "Degraded",
  updatedSince = ago(10_000),
): PoolObservation {
  return {
    name,
    updating: state === "Updating",
    updated: state === "Updated",
    degraded: state === "Degraded",
    machineCount: 3,
    updatedMachineCount: state === "Updated" ? 3 : 1,
    degradedMachineCount: state === "Degraded" ? 1 : 0,
    ...(state === "Degraded" && { message: "Node worker-1 is reporting: failed to drain" }),
    updatedSince,
  };
}

describe("drainHold", () => {
  const window = 30_000;
  it("holds while a pool updates or is degraded", () => {
    const hold = drainHold(
      [pool("master", "Updated"), pool("worker", "Updating")],
      [],
      before(60_000),
      now,
      window,
    );
    expect(hold).toMatchObject({ hold: true, reason: "WaitingForPools" });
    expect(hold.hold && hold.message).toMatch(/worker is updating \(1\/3 machines updated\)/);
    expect(drainHold([pool("worker", "Degraded")], [], before(60_000), now, window)).toMatchObject({
      reason: "WaitingForPools",
    });
  });
  it("holds while another MirrorJob's drain-causing change rolls out", () => {
    const hold = drainHold(
      [pool("worker", "Updated")],
      [{ namespace: "a", name: "first", state: "RollingOut", drains: true }],
      before(60_000),
      now,
      window,
    );
    expect(hold).toMatchObject({ hold: true, reason: "WaitingForRollout" });
    expect(hold.hold && hold.message).toMatch(/a\/first is rolling out/);
  });
  it("waits out the batch window from the earliest change waiting in the fleet, so changes due together go together", () => {
    const fleet = [
      { namespace: "a", name: "first", state: "Waiting" as const, drains: true, waitingSince: ago(20_000) },
    ];
    const pools = [pool("worker", "Updated")];
    const hold = drainHold(pools, fleet, now, now, window);
    expect(hold).toMatchObject({ hold: true, reason: "BatchingDrainChanges", untilMs: 10_000 });
    expect(drainHold(pools, fleet, now, new Date(now.getTime() + 10_000), window)).toEqual({ hold: false });
  });
  it("lets a change go at once with no window and nothing else going on", () => {
    expect(drainHold([pool("worker", "Updated")], [], now, now, 0)).toEqual({ hold: false });
  });
  it("holds nothing on a cluster without MachineConfigPools (no node drains there)", () => {
    const fleet = [{ namespace: "a", name: "first", state: "RollingOut" as const, drains: true }];
    expect(drainHold(undefined, fleet, now, now, window)).toEqual({ hold: false });
    expect(drainHold([], fleet, now, now, window)).toEqual({ hold: false });
  });
});

describe("judgeRollout", () => {
  const rollout: Rollout = {
    state: "RollingOut",
    run: "r1",
    drains: true,
    mirrorSets: true,
    appliedTime: ago(120_000),
  };
  const deadline = 3_600_000;
  const seen = (pools: PoolObservation[], extra = {}) => ({
    pools,
    catalogSources: [],
    updateServices: [],
    ...extra,
  });

  it("is rolling out while a pool updates, and rolled out once every pool updated after the apply", () => {
    expect(judgeRollout(rollout, seen([pool("worker", "Updating")]), now, deadline)).toMatchObject({
      state: "RollingOut",
      message: "run r1: MachineConfigPool worker is updating (1/3 machines updated)",
    });
    expect(judgeRollout(rollout, seen([pool("worker", "Updated", ago(1_000))]), now, deadline)).toMatchObject(
      {
        state: "RolledOut",
        message: "run r1: the cluster has taken up the change in 120 s",
      },
    );
  });
  it("gives the MCO time to start: a pool still updated from before the apply is not rolled out yet", () => {
    const fresh: Rollout = { ...rollout, appliedTime: ago(5_000) };
    expect(
      judgeRollout(fresh, seen([pool("worker", "Updated", ago(POOL_START_GRACE_MS * 2))]), now, deadline)
        .state,
    ).toBe("RollingOut");
  });
  it("names a degraded pool", () => {
    expect(judgeRollout(rollout, seen([pool("worker", "Degraded")]), now, deadline)).toMatchObject({
      state: "Degraded",
      message:
        "MachineConfigPool worker is degraded (1 of 3 machines): Node worker-1 is reporting: failed to drain",
    });
  });
  it("reports a CatalogSource stuck in TRANSIENT_FAILURE past the deadline with its name and state", () => {
    const catalog: Rollout = { ...rollout, mirrorSets: false, appliedTime: ago(2 * deadline) };
    const verdict = judgeRollout(
      catalog,
      {
        catalogSources: [
          { namespace: "openshift-marketplace", name: "cs-index", state: "TRANSIENT_FAILURE" },
        ],
        updateServices: [],
      },
      now,
      deadline,
    );
    expect(verdict.state).toBe("Stuck");
    expect(verdict.message).toMatch(
      /not rolled out after 120 minutes .*CatalogSource openshift-marketplace\/cs-index is TRANSIENT_FAILURE/,
    );
  });
  it("waits for an UpdateService to become available", () => {
    const verdict = judgeRollout(
      { ...rollout, mirrorSets: false },
      {
        catalogSources: [],
        updateServices: [
          { namespace: "openshift-update-service", name: "us", available: false, reason: "graph not loaded" },
        ],
      },
      now,
      deadline,
    );
    expect(verdict).toMatchObject({
      state: "RollingOut",
      message: "run r1: UpdateService openshift-update-service/us is not available (graph not loaded)",
    });
  });
  it("says so when the cluster has no MachineConfigPools to follow", () => {
    const verdict = judgeRollout(rollout, { catalogSources: [], updateServices: [] }, now, deadline);
    expect(verdict.state).toBe("RolledOut");
    expect(verdict.message).toMatch(/no MachineConfigPools/);
  });
});
