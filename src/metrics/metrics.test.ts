import { Registry, type MetricValueWithName } from "prom-client";
import { describe, expect, it } from "vitest";
import type { MirrorJobStatus, Run } from "../api/status.ts";
import { ControllerMetrics } from "./controller-metrics.ts";
import { MirrorJobMetrics } from "./mirrorjob-metrics.ts";
import type { MirrorJobLike } from "./mirrorjob-samples.ts";
import { createOperatorMetrics } from "./registry.ts";

type Values = MetricValueWithName<string>[];

async function values(registry: Registry, name: string): Promise<Values> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return metric.values;
}

function value(
  vals: Values,
  labels: Record<string, string | number>,
  metricName?: string,
): number | undefined {
  return vals.find(
    (v) =>
      (metricName === undefined || v.metricName === metricName) &&
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  )?.value;
}

describe("ControllerMetrics", () => {
  it("counts reconciles as controller-runtime does, every result series starting at 0", async () => {
    const registry = new Registry();
    const m = new ControllerMetrics({ registry, controller: "mirrorjob", queue: "mirrorjob" });
    const total = await values(registry, "controller_runtime_reconcile_total");
    expect(total.map((v) => [v.labels.result, v.value])).toEqual([
      ["success", 0],
      ["error", 0],
      ["requeue", 0],
      ["requeue_after", 0],
    ]);
    expect(value(await values(registry, "controller_runtime_reconcile_errors_total"), {})).toBe(0);

    m.reconciled("error", 0.02);
    m.reconciled("requeue_after", 0.5);
    m.reconciled("success", 0.01);
    const after = await values(registry, "controller_runtime_reconcile_total");
    expect(value(after, { controller: "mirrorjob", result: "error" })).toBe(1);
    expect(value(after, { result: "requeue_after" })).toBe(1);
    expect(value(after, { result: "success" })).toBe(1);
    expect(value(after, { result: "requeue" })).toBe(0);
    expect(
      value(await values(registry, "controller_runtime_reconcile_errors_total"), { controller: "mirrorjob" }),
    ).toBe(1);
    const time = await values(registry, "controller_runtime_reconcile_time_seconds");
    expect(value(time, {}, "controller_runtime_reconcile_time_seconds_count")).toBe(3);
    expect(value(time, { le: 0.025 }, "controller_runtime_reconcile_time_seconds_bucket")).toBe(2);
  });

  it("follows the work queue and the Lease", async () => {
    const registry = new Registry();
    const m = new ControllerMetrics({ registry, controller: "mirrorjob", queue: "mirrorjob" });
    const q = m.queueObserver();
    q.onAdd?.("a/b");
    q.onAdd?.("a/c");
    q.onDepth?.(2);
    q.onRetry?.("a/b");
    q.onQueueDuration?.(0.001);
    q.onWorkDuration?.(0.3);
    expect(value(await values(registry, "workqueue_adds_total"), { name: "mirrorjob" })).toBe(2);
    expect(value(await values(registry, "workqueue_depth"), { name: "mirrorjob" })).toBe(2);
    expect(value(await values(registry, "workqueue_retries_total"), { name: "mirrorjob" })).toBe(1);
    const queued = await values(registry, "workqueue_queue_duration_seconds");
    expect(value(queued, { le: 0.001 }, "workqueue_queue_duration_seconds_bucket")).toBe(1);
    expect(value(queued, { le: 0.0001 }, "workqueue_queue_duration_seconds_bucket")).toBe(0);
    expect(
      value(
        await values(registry, "workqueue_work_duration_seconds"),
        {},
        "workqueue_work_duration_seconds_count",
      ),
    ).toBe(1);

    m.leading("hub-mirror-operator", true);
    expect(
      value(await values(registry, "leader_election_master_status"), { name: "hub-mirror-operator" }),
    ).toBe(1);
    m.leading("hub-mirror-operator", false);
    expect(
      value(await values(registry, "leader_election_master_status"), { name: "hub-mirror-operator" }),
    ).toBe(0);
  });
});

function run(id: string, result: Run["result"], start: string, end?: string): Run {
  return {
    id,
    jobName: `j-${id}`,
    trigger: "Created",
    generation: 1,
    startTime: start,
    ...(end !== undefined && { completionTime: end }),
    ...(result !== undefined && { result }),
  };
}

describe("MirrorJobMetrics", () => {
  const key = { namespace: "ns", name: "mj" };
  const cached = (status?: MirrorJobStatus): MirrorJobLike => ({
    metadata: { ...key, creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: {},
    ...(status !== undefined && { status }),
  });

  function setup() {
    const registry = new Registry();
    let cache: MirrorJobLike[] | undefined = [cached()];
    const m = new MirrorJobMetrics({ registry, mirrorJobs: () => cache });
    return {
      registry,
      m,
      setCache: (c: MirrorJobLike[] | undefined) => {
        cache = c;
      },
    };
  }

  it("observes a run's duration once, however often its decision repeats", async () => {
    const { registry, m } = setup();
    const running: MirrorJobStatus = { currentRun: run("r1", undefined, "2026-01-01T00:00:00Z") };
    const done: MirrorJobStatus = {
      lastRun: run("r1", "Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z"),
    };
    m.onDecision(key, { status: running, events: [] }, undefined);
    m.onDecision(key, { status: done, events: [] }, running);
    // The status write lost a race: the same decision is made again from the same old status.
    m.onDecision(key, { status: done, events: [] }, running);
    // Verification later updates lastRun with the same id.
    m.onDecision(key, { status: { lastRun: { ...done.lastRun, message: "v" } as Run }, events: [] }, done);
    const hist = await values(registry, "hubmirror_run_duration_seconds");
    expect(value(hist, { ...key, result: "Succeeded" }, "hubmirror_run_duration_seconds_count")).toBe(1);
    expect(value(hist, { ...key, result: "Succeeded" }, "hubmirror_run_duration_seconds_sum")).toBe(600);
    expect(
      value(hist, { ...key, result: "Succeeded", le: 600 }, "hubmirror_run_duration_seconds_bucket"),
    ).toBe(1);

    // A restarted operator sees the finished run in the old status too: no new observation.
    const { registry: fresh, m: restarted } = setup();
    restarted.onDecision(key, { status: done, events: [] }, done);
    expect(await values(fresh, "hubmirror_run_duration_seconds")).toEqual([]);
  });

  it("counts ApplyFailed Warning Events, from 0 for every cached MirrorJob", async () => {
    const { registry, m } = setup();
    expect(value(await values(registry, "hubmirror_apply_errors_total"), key)).toBe(0);
    const events = [
      { type: "Warning", reason: "ApplyFailed" },
      { type: "Warning", reason: "RunFailed" },
      { type: "Normal", reason: "ApplyFailed" },
    ];
    m.onDecision(key, { status: {}, events }, undefined);
    m.onDecision(key, { status: {}, events }, undefined);
    expect(value(await values(registry, "hubmirror_apply_errors_total"), key)).toBe(2);
  });

  it("drops a deleted MirrorJob's series: gauges by construction, the others on delete or at scrape", async () => {
    const { registry, m, setCache } = setup();
    const done: MirrorJobStatus = {
      phase: "Succeeded",
      lastRun: run("r1", "Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z"),
    };
    setCache([cached(done)]);
    m.onDecision(key, { status: done, events: [{ type: "Warning", reason: "ApplyFailed" }] }, {});
    expect(value(await values(registry, "hubmirror_mirrorjob_phase"), { ...key, phase: "Succeeded" })).toBe(
      1,
    );
    expect((await values(registry, "hubmirror_run_duration_seconds")).length).toBeGreaterThan(0);

    setCache([]);
    m.deleted(key);
    expect(await values(registry, "hubmirror_mirrorjob_phase")).toEqual([]);
    expect(await values(registry, "hubmirror_run_duration_seconds")).toEqual([]);
    expect(await values(registry, "hubmirror_apply_errors_total")).toEqual([]);

    // A delete missed while not leading: the next scrape with a synced cache removes the series.
    setCache([cached(done)]);
    m.onDecision(key, { status: done, events: [{ type: "Warning", reason: "ApplyFailed" }] }, {});
    m.onDecision(
      { namespace: "ns", name: "other" },
      { status: {}, events: [{ type: "Warning", reason: "ApplyFailed" }] },
      {},
    );
    expect(value(await values(registry, "hubmirror_apply_errors_total"), { name: "other" })).toBeUndefined();
    setCache(undefined);
    // Without a synced cache nothing is pruned (and no gauge is exported).
    expect(await values(registry, "hubmirror_mirrorjob_phase")).toEqual([]);
    expect(value(await values(registry, "hubmirror_apply_errors_total"), key)).toBe(1);
  });
});

describe("the /metrics handler", () => {
  it("serves the text format with every family, even before the cache synced", async () => {
    const metrics = createOperatorMetrics({ mirrorJobs: () => undefined });
    const text = await metrics.registry.metrics();
    for (const name of [
      "controller_runtime_reconcile_total",
      "workqueue_depth",
      "leader_election_master_status",
      "hubmirror_mirrorjob_phase",
      "hubmirror_apply_errors_total",
      "hubmirror_run_duration_seconds",
    ]) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} `, "m"));
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, "m"));
    }
    expect(metrics.registry.contentType).toMatch(/^text\/plain; version=0.0.4/);
  });
});
