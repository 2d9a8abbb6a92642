/**
 * /metrics of the real manager (leader election on, informers, work queue, controller) after
 * a MirrorJob completed a run of the real oc-mirror through the test pod runner: every controller-runtime
 * compatible and every hubmirror_* family is there with values that follow from the run, and
 * the MirrorJob's series are gone once it is deleted.
 */
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import { PHASES } from "../../src/api/status.ts";
import { adminKubeConfig, useNamespace, waitFor } from "../harness/kube.ts";
import { scrapeMetrics, type Scrape } from "../harness/metrics.ts";
import {
  SOURCE_INPUTS,
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  upstreamImageSet,
  upstreamSource,
  type RunningOperator,
} from "../harness/operator.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const mjs = mirrorJobs(kc);
const registry = inject("registry");

const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});
usePodRunner(ns);

let operator: RunningOperator | undefined;

afterEach(async () => {
  await operator?.stop();
  operator = undefined;
});

const HISTOGRAMS = [
  "controller_runtime_reconcile_time_seconds",
  "workqueue_queue_duration_seconds",
  "workqueue_work_duration_seconds",
  "hubmirror_run_duration_seconds",
];

describe("/metrics", () => {
  it("exports every controller and MirrorJob metric, and forgets a deleted MirrorJob", async () => {
    const lease = `metrics-${ns.name}`;
    operator = await startOperator(kc, { leaderElection: true, leaseName: lease, namespace: ns.name });
    const op = operator;
    await waitFor("leadership", () => (op.isLeader() ? true : undefined), { timeoutMs: 30_000 });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    await mjs.create(ns.name, "weekly", {
      imageSet: { inline: upstreamImageSet({ additionalImages: ["multiArch", "tagOnly"] }) },
      source: upstreamSource(),
      registry: {
        url: `${registry.host}/${ns.name}`,
        pushSecretRef: { name: "push" },
        caBundleRef: { name: "registry-ca" },
      },
      schedule: "0 3 * * 0",
      timeZone: "Europe/Berlin",
      // Metrics of the run lifecycle; the apply stage is test/e2e/apply.test.ts's subject.
      apply: { mode: "None" },
    });
    const done = await mjs.waitFor(
      ns.name,
      "weekly",
      "Ready=True",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    const id = { namespace: ns.name, name: "weekly" };
    // The run's pod merged its authfile itself: the operator wrote no Secret.
    const secrets = await kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: ns.name });
    expect(secrets.items.map((s) => s.metadata?.name).sort()).toEqual(["push", SOURCE_INPUTS.secret].sort());

    // The histogram is fed by the decision that finished the run; gauges come from the cache,
    // which may lag the status just read by a watch event: wait for it.
    const m: Scrape = await waitFor(
      "metrics of the finished, verified run",
      async () => {
        const s = await scrapeMetrics(op.health.port);
        return s.find("hubmirror_verification_missing_images", id).length === 1 &&
          s.find("hubmirror_mirrorjob_phase", { ...id, phase: "Succeeded" })[0]?.value === 1
          ? s
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(m.contentType).toMatch(/^text\/plain; version=0.0.4/);

    // controller-runtime compatible
    const controller = { controller: "mirrorjob" };
    // A scheduled MirrorJob always asks to be looked at again (the next run, a running Job):
    // requeue_after. Every result series exists.
    expect(
      m.value("controller_runtime_reconcile_total", { ...controller, result: "requeue_after" }),
    ).toBeGreaterThan(0);
    for (const result of ["success", "error", "requeue"]) {
      expect(m.value("controller_runtime_reconcile_total", { ...controller, result })).toBeGreaterThanOrEqual(
        0,
      );
    }
    // Errors are counted in both families, as controller-runtime does.
    expect(m.value("controller_runtime_reconcile_errors_total", controller)).toBe(
      m.value("controller_runtime_reconcile_total", { ...controller, result: "error" }),
    );
    const reconciles = m
      .find("controller_runtime_reconcile_total", controller)
      .reduce((sum, s) => sum + s.value, 0);
    expect(m.value("controller_runtime_reconcile_time_seconds_count", controller)).toBe(reconciles);
    expect(m.value("controller_runtime_reconcile_time_seconds_bucket", { ...controller, le: "+Inf" })).toBe(
      reconciles,
    );
    const queue = { name: "mirrorjob" };
    expect(m.value("workqueue_depth", queue)).toBeGreaterThanOrEqual(0);
    expect(m.value("workqueue_adds_total", queue)).toBeGreaterThan(0);
    expect(m.value("workqueue_retries_total", queue)).toBeGreaterThanOrEqual(0);
    expect(m.value("workqueue_queue_duration_seconds_count", queue)).toBeGreaterThan(0);
    expect(m.value("workqueue_work_duration_seconds_count", queue)).toBeGreaterThan(0);
    expect(m.value("leader_election_master_status", { name: lease })).toBe(1);
    for (const name of HISTOGRAMS) expect(m.types.get(name), name).toBe("histogram");

    // hubmirror_*
    for (const phase of PHASES) {
      expect(m.value("hubmirror_mirrorjob_phase", { ...id, phase })).toBe(phase === "Succeeded" ? 1 : 0);
    }
    expect(m.value("hubmirror_mirrorjob_last_run_result", { ...id, result: "Succeeded" })).toBe(1);
    for (const result of ["PartiallyFailed", "Failed", "Crashed"]) {
      expect(m.value("hubmirror_mirrorjob_last_run_result", { ...id, result })).toBe(0);
    }
    const completed = Date.parse(done.status?.lastSuccessfulRun?.completionTime ?? "") / 1000;
    expect(m.value("hubmirror_mirrorjob_last_success_timestamp_seconds", id)).toBe(completed);
    const mj = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: ns.name,
      name: "weekly",
    })) as { metadata: { creationTimestamp: string } };
    expect(m.value("hubmirror_mirrorjob_created_timestamp_seconds", id)).toBe(
      Date.parse(mj.metadata.creationTimestamp) / 1000,
    );
    // Weekly in Europe/Berlin: a year ahead includes the week that gains an hour in autumn.
    expect(m.value("hubmirror_mirrorjob_schedule_interval_seconds", id)).toBe(7 * 24 * 3600 + 3600);
    const started = Date.parse(done.status?.lastRun?.startTime ?? "") / 1000;
    expect(m.value("hubmirror_run_duration_seconds_count", { ...id, result: "Succeeded" })).toBe(1);
    expect(m.value("hubmirror_run_duration_seconds_sum", { ...id, result: "Succeeded" })).toBeCloseTo(
      completed - started,
      3,
    );
    expect(m.value("hubmirror_run_images", { ...id, category: "additional", state: "copied" })).toBe(2);
    expect(m.value("hubmirror_run_images", { ...id, category: "additional", state: "failed" })).toBe(0);
    expect(m.value("hubmirror_verification_missing_images", id)).toBe(0);
    expect(m.value("hubmirror_verification_mismatched_images", id)).toBe(0);
    expect(m.value("hubmirror_registry_reachable", id)).toBe(1);
    expect(m.value("hubmirror_pending_disruptive_change", id)).toBe(0);
    expect(m.types.get("hubmirror_apply_errors_total")).toBe("counter");
    expect(m.help.get("hubmirror_apply_errors_total")).toMatch(/ApplyFailed/);
    expect(m.value("hubmirror_apply_errors_total", id)).toBe(0);

    // A standby replica: not the master, and no MirrorJob series (only the leader has the cache).
    const standby = await startOperator(kc, { leaderElection: true, leaseName: lease, namespace: ns.name });
    try {
      const s = await waitFor(
        "the standby to report its Lease status",
        async () => {
          const scrape = await scrapeMetrics(standby.health.port);
          return scrape.find("leader_election_master_status", { name: lease }).length === 1
            ? scrape
            : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 200 },
      );
      expect(s.value("leader_election_master_status", { name: lease })).toBe(0);
      expect(s.find("hubmirror_mirrorjob_phase")).toEqual([]);
      expect(s.types.get("hubmirror_mirrorjob_phase")).toBe("gauge");
    } finally {
      await standby.stop();
    }

    // Deleted: every series naming it goes (gauges with the cache, the others on the delete event).
    await mjs.delete(ns.name, "weekly");
    const after = await waitFor(
      "the deleted MirrorJob's series to vanish",
      async () => {
        const s = await scrapeMetrics(op.health.port);
        return s.samples.some((x) => x.labels.namespace === ns.name) ? undefined : s;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    // The families stay, with HELP and TYPE.
    for (const name of [
      "hubmirror_mirrorjob_phase",
      "hubmirror_run_duration_seconds",
      "hubmirror_apply_errors_total",
    ]) {
      expect(after.types.has(name), name).toBe(true);
    }
    expect(after.value("leader_election_master_status", { name: lease })).toBe(1);
  });
});
