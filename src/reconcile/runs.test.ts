/**
 * finishRun with the run's pods: what the kubelet saw (a container OOMKilled) names the cause
 * of a crash, which the reporter inside the pod can only guess at.
 */
import type { V1ConfigMap, V1ContainerStatus, V1Job, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Run } from "../api/status.ts";
import { RESULT_KEYS } from "../report/result.ts";
import { finishRun, oomKills, podsOfJob, targetOf, targetRegistry } from "./runs.ts";

const now = new Date("2026-11-27T12:00:00Z");
const run: Run = {
  id: "r1",
  jobName: "mj-r1",
  trigger: "Created",
  generation: 1,
  startTime: "2026-11-27T11:00:00Z",
};
const failedJob: V1Job = {
  metadata: { name: "mj-r1" },
  status: {
    conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", lastTransitionTime: now }],
  },
};
const completeJob: V1Job = {
  metadata: { name: "mj-r1" },
  status: { conditions: [{ type: "Complete", status: "True", lastTransitionTime: now }] },
};

const oomKilled = (name: string): V1ContainerStatus => ({
  name,
  image: "i",
  imageID: "",
  ready: false,
  restartCount: 0,
  state: { terminated: { exitCode: 137, reason: "OOMKilled" } },
});
const exited = (
  name: string,
  exitCode: number,
  more: Partial<V1ContainerStatus> = {},
): V1ContainerStatus => ({
  name,
  image: "i",
  imageID: "",
  ready: false,
  restartCount: 0,
  state: { terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error" } },
  ...more,
});

/** A pod of a run's Job with the builders' containers and the given statuses. */
function pod(
  name: string,
  statuses: { init?: V1ContainerStatus[]; containers?: V1ContainerStatus[] },
  job = "mj-r1",
): V1Pod {
  return {
    metadata: {
      name,
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: job, uid: "j", controller: true }],
    },
    spec: {
      initContainers: [{ name: "merge-auth", resources: { limits: { memory: "128Mi" } } }],
      containers: [
        { name: "oc-mirror", resources: { limits: { memory: "64Mi" } } },
        { name: "reporter", resources: { limits: { memory: "256Mi" } } },
      ],
    },
    status: {
      phase: "Failed",
      initContainerStatuses: statuses.init ?? [exited("merge-auth", 0)],
      containerStatuses: statuses.containers ?? [],
    },
  };
}

function result(outcome: "success" | "crash", code: number): V1ConfigMap {
  return {
    metadata: { name: "mj-r1-result" },
    data: {
      [RESULT_KEYS.result]: JSON.stringify({
        version: 1,
        completedAt: now.toISOString(),
        dryRunExitCode: code,
        exit: {
          code,
          outcome,
          failedCategories: [],
          description:
            outcome === "crash"
              ? "oc-mirror was killed by SIGKILL (often the memory limit: raise spec.mirror.resources.limits.memory, or the pod was deleted); it reported no results."
              : "ok",
        },
        images: { additional: { copied: outcome === "success" ? 1 : 0, failed: 0, total: 1 } },
        failedImages: [],
        failedImageCount: 0,
        plannedImageCount: 1,
      }),
    },
  };
}

describe("targetOf and targetRegistry", () => {
  it("key the run slots: the host in lower case, the path as it is, no trailing slash", () => {
    expect(targetOf("Mirror.Example.com:8443/OCP/")).toBe("mirror.example.com:8443/OCP");
    expect(targetOf("mirror.example.com:8443")).toBe("mirror.example.com:8443");
    expect(targetOf("mirror.example.com:8443/")).toBe("mirror.example.com:8443");
    expect(targetRegistry(targetOf("Mirror.Example.com:8443/ocp"))).toBe("mirror.example.com:8443");
  });
});

describe("oomKills", () => {
  it("finds OOMKilled containers, init containers and restarted ones, with their memory limits", () => {
    const restarted = exited("reporter", 0, {
      restartCount: 1,
      lastState: { terminated: { exitCode: 137, reason: "OOMKilled" } },
    });
    expect(
      oomKills([
        pod("p1", { containers: [oomKilled("oc-mirror"), exited("reporter", 0)] }),
        pod("p2", { init: [oomKilled("merge-auth")] }),
        pod("p3", { containers: [exited("oc-mirror", 1), restarted] }),
      ]),
    ).toEqual([
      { pod: "p1", container: "oc-mirror", limit: "64Mi" },
      { pod: "p2", container: "merge-auth", limit: "128Mi" },
      { pod: "p3", container: "reporter", limit: "256Mi" },
    ]);
  });
  it("finds nothing in containers that exited, were killed otherwise, or still run", () => {
    const running = exited("reporter", 0, { state: { running: {} } });
    expect(oomKills([pod("p", { containers: [exited("oc-mirror", 137), running] })])).toEqual([]);
  });
  it("takes only the pods of the run's Job", () => {
    const pods = [pod("mine", {}), pod("other", {}, "mj-r0")];
    expect(podsOfJob(pods, failedJob).map((p) => p.metadata?.name)).toEqual(["mine"]);
    expect(podsOfJob(pods, undefined)).toEqual([]);
  });
});

describe("finishRun with the run's pods", () => {
  it("names an OOMKilled oc-mirror container and the field to raise when no result came (the whole container was killed)", () => {
    const pods = [pod("mj-r1-abcde", { containers: [oomKilled("oc-mirror"), exited("reporter", 0)] })];
    const { run: finished, event } = finishRun(run, failedJob, undefined, now, pods);
    expect(finished.result).toBe("Crashed");
    expect(finished.message).toBe(
      "run r1 crashed: container oc-mirror of pod mj-r1-abcde was OOMKilled: it exceeded its memory limit of 64Mi. " +
        "Raise spec.mirror.resources.limits.memory, then change spec.runRequest to run again",
    );
    expect(event).toMatchObject({
      type: "Warning",
      reason: "RunCrashed",
      note: finished.message,
      once: "run-r1-ended",
    });
  });

  it("names it too when the reporter saw oc-mirror end by SIGKILL, and keeps what the result says", () => {
    const pods = [pod("mj-r1-abcde", { containers: [oomKilled("oc-mirror"), exited("reporter", 0)] })];
    const { run: finished } = finishRun(run, failedJob, result("crash", 137), now, pods);
    expect(finished.result).toBe("Crashed");
    expect(finished.exitCode).toBe(137);
    expect(finished.images).toEqual({ additional: { copied: 0, failed: 0, total: 1 } });
    expect(finished.message).toMatch(/^run r1 crashed: container oc-mirror of pod mj-r1-abcde was OOMKilled/);
  });

  it("says when a container the operator sizes was OOMKilled, and counts the others", () => {
    const pods = [
      pod("p1", { init: [oomKilled("merge-auth")] }),
      pod("p2", { containers: [oomKilled("oc-mirror"), exited("reporter", 0)] }),
    ];
    const { run: finished } = finishRun(run, failedJob, undefined, now, pods);
    expect(finished.message).toBe(
      "run r1 crashed: container merge-auth of pod p1 was OOMKilled: it exceeded its memory limit of 128Mi, " +
        "which the operator sets; please report it (1 more OOMKilled container(s) in the run's pods)",
    );
  });

  it("leaves a run that succeeded after a retry as it is", () => {
    const pods = [
      pod("first", { containers: [oomKilled("oc-mirror"), exited("reporter", 0)] }),
      pod("second", { containers: [exited("oc-mirror", 0), exited("reporter", 0)] }),
    ];
    const { run: finished } = finishRun(run, completeJob, result("success", 0), now, pods);
    expect(finished.result).toBe("Succeeded");
  });

  it("ignores OOM kills of another run's pods", () => {
    const pods = [pod("old", { containers: [oomKilled("oc-mirror")] }, "mj-r0")];
    const { run: finished } = finishRun(run, failedJob, undefined, now, pods);
    expect(finished.result).toBe("Crashed");
    expect(finished.message).toMatch(/^run r1 ended without a usable result: no result was reported/);
    expect(finished.message).not.toMatch(/OOMKilled:/);
  });
});
