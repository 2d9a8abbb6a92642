/**
 * The `hubmirror_*` domain metrics.
 *
 * - Gauges are computed at scrape time (prom-client `collect`) from the MirrorJob informer
 *   cache through `mirrorJobSamples`: a deleted MirrorJob's series vanish by construction.
 *   Only the leader has the cache, so only the leader exports them (no double counting
 *   across replicas); a standby exports the families with no series.
 * - `hubmirror_run_duration_seconds` (one observation per finished run) and
 *   `hubmirror_apply_errors_total` (Warning Events with reason ApplyFailed) are fed by the
 *   controller's decision hook. Their series are removed when the MirrorJob is deleted (the
 *   informer's delete event), and also at scrape time for any MirrorJob no longer in a synced
 *   cache (a delete missed while this replica was not leading).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { MirrorJobStatus } from "../api/status.ts";
import {
  GAUGES,
  RUN_RESULTS,
  epochSeconds,
  mirrorJobSamples,
  type GaugeKey,
  type GaugeSamples,
  type MirrorJobLike,
} from "./mirrorjob-samples.ts";

export const RUN_DURATION = "hubmirror_run_duration_seconds";
export const APPLY_ERRORS = "hubmirror_apply_errors_total";
/** The Warning Event reason counted by hubmirror_apply_errors_total. */
export const APPLY_FAILED_REASON = "ApplyFailed";

/** Runs last minutes to hours; the buckets span 1 minute to 1 day. */
const RUN_DURATION_BUCKETS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

const HELP: Record<GaugeKey, { help: string; labels: string[] }> = {
  phase: {
    help: "The MirrorJob's status.phase: 1 for the current phase, 0 for the others.",
    labels: ["namespace", "name", "phase"],
  },
  lastRunResult: {
    help: "Result of the MirrorJob's last finished run: 1 for its result, 0 for the others (absent before the first run).",
    labels: ["namespace", "name", "result"],
  },
  lastSuccess: {
    help: "When the MirrorJob's last successful run finished, in seconds since the epoch (absent if none).",
    labels: ["namespace", "name"],
  },
  created: {
    help: "When the MirrorJob was created, in seconds since the epoch.",
    labels: ["namespace", "name"],
  },
  scheduleInterval: {
    help: "Longest gap between two consecutive scheduled runs of spec.schedule (and spec.timeZone), in seconds (absent without a schedule).",
    labels: ["namespace", "name"],
  },
  runImages: {
    help: "Images of the MirrorJob's last finished run per category, copied or failed.",
    labels: ["namespace", "name", "category", "state"],
  },
  verificationMissing: {
    help: "Images of the last verified run missing from the registry.",
    labels: ["namespace", "name"],
  },
  verificationMismatched: {
    help: "Images of the last verified run present in the registry with another digest than their source.",
    labels: ["namespace", "name"],
  },
  registryReachable: {
    help: "1 unless preflight found the target registry unreachable, refusing the push credentials or failing TLS (absent before preflight).",
    labels: ["namespace", "name"],
  },
  pendingDisruptiveChange: {
    help: "1 while a change that would drain nodes waits for approval (status.pendingChange.disruptive).",
    labels: ["namespace", "name"],
  },
  rolloutState: {
    help: "The state of the cluster's rollout of what the MirrorJob applied (status.rollout.state): 1 for the current state, 0 for the others (absent before the first apply).",
    labels: ["namespace", "name", "state"],
  },
  rolloutStart: {
    help: "When the current rollout was applied (or began to wait to be), in seconds since the epoch.",
    labels: ["namespace", "name"],
  },
  pruneAwaitingApproval: {
    help: "1 while a registry prune waits for spec.prune.approvedPlan (status.pendingPrune, Pruned reason AwaitingPruneApproval); absent without spec.prune.",
    labels: ["namespace", "name"],
  },
  pruneFailed: {
    help: "1 while the last registry prune failed (retries exhausted) or was refused (Pruned reason PruneFailed or PruneRefused); absent without spec.prune.",
    labels: ["namespace", "name"],
  },
  pruneFailedAttempts: {
    help: "Prune Jobs (or checks) that failed in the prune in progress, or else in the last prune (each failed one is retried).",
    labels: ["namespace", "name"],
  },
  pruneLastManifests: {
    help: "Manifests of the last registry prune: planned for deletion, deleted, kept (in this MirrorJob's current set, or shared with another MirrorJob) and already absent.",
    labels: ["namespace", "name", "state"],
  },
};

export interface MirrorJobKeyLike {
  readonly namespace: string;
  readonly name: string;
}

/** What the metrics read of a reconcile decision. */
export interface DecisionLike {
  readonly status: MirrorJobStatus;
  readonly events: readonly { readonly type: string; readonly reason: string }[];
}

export interface MirrorJobMetricsOptions {
  readonly registry: Registry;
  /** The MirrorJobs in the informer cache; undefined while there is no synced cache (not leading). */
  readonly mirrorJobs: () => Iterable<MirrorJobLike> | undefined;
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Seconds a finished run took, if it has a start and a completion time. */
function runSeconds(run: MirrorJobStatus["lastRun"]): number | undefined {
  const start = epochSeconds(run?.startTime);
  const end = epochSeconds(run?.completionTime);
  return start !== undefined && end !== undefined && end >= start ? end - start : undefined;
}

export class MirrorJobMetrics {
  private readonly runDuration: Histogram<"namespace" | "name" | "result">;
  private readonly applyErrors: Counter<"namespace" | "name">;
  /** The last run id observed into the duration histogram, per MirrorJob (never observe a run twice). */
  private readonly observedRuns = new Map<string, string>();
  /** MirrorJobs with hook-fed series (to remove them). */
  private readonly fed = new Map<string, MirrorJobKeyLike>();

  constructor(options: MirrorJobMetricsOptions) {
    const registers = [options.registry];
    const liveSamples = (): GaugeSamples[] | undefined => {
      const live = options.mirrorJobs();
      return live === undefined ? undefined : Array.from(live, (mj) => mirrorJobSamples(mj));
    };
    for (const key of Object.keys(GAUGES) as GaugeKey[]) {
      const gauge: Gauge = new Gauge({
        name: GAUGES[key],
        help: HELP[key].help,
        labelNames: HELP[key].labels,
        registers,
        collect: () => {
          gauge.reset();
          for (const samples of liveSamples() ?? [])
            for (const s of samples[key]) gauge.set(s.labels, s.value);
        },
      });
    }
    this.runDuration = new Histogram({
      name: RUN_DURATION,
      help: "Duration of finished mirror runs (Job start to completion), observed once per run.",
      labelNames: ["namespace", "name", "result"],
      buckets: RUN_DURATION_BUCKETS,
      registers,
      // Registered before the counter: the sync below serves both.
      collect: () => {
        this.sync(options.mirrorJobs());
      },
    });
    this.applyErrors = new Counter({
      name: APPLY_ERRORS,
      help: `Warning Events with reason ${APPLY_FAILED_REASON} the controller recorded for the MirrorJob.`,
      labelNames: ["namespace", "name"],
      registers,
    });
  }

  /** Feeds the hook-based metrics from one reconcile decision. */
  onDecision(mj: MirrorJobKeyLike, decision: DecisionLike, previous: MirrorJobStatus | undefined): void {
    const key = keyOf(mj.namespace, mj.name);
    const labels = { namespace: mj.namespace, name: mj.name };
    const applyFailures = decision.events.filter(
      (e) => e.type === "Warning" && e.reason === APPLY_FAILED_REASON,
    ).length;
    if (applyFailures > 0) {
      this.applyErrors.inc(labels, applyFailures);
      this.fed.set(key, mj);
    }
    const run = decision.status.lastRun;
    if (run?.completionTime === undefined) return;
    // A run finishes in the decision whose lastRun it first becomes; later decisions (verification,
    // a repeated decision after a stale status write, a restarted operator) see the same id.
    const before = previous?.lastRun;
    const newlyFinished = before?.id !== run.id || before.completionTime === undefined;
    if (!newlyFinished || this.observedRuns.get(key) === run.id) return;
    const seconds = runSeconds(run);
    if (seconds === undefined) return;
    this.observedRuns.set(key, run.id);
    this.runDuration.observe({ ...labels, result: run.result ?? "Crashed" }, seconds);
    this.fed.set(key, mj);
  }

  /**
   * At scrape time: every cached MirrorJob gets an apply-error series starting at 0 (so
   * `increase()` sees the first error), and hook-fed series of MirrorJobs no longer in a synced
   * cache are removed (a delete event missed while this replica was not leading).
   */
  private sync(live: Iterable<MirrorJobLike> | undefined): void {
    if (live === undefined) return;
    const keys = new Set<string>();
    for (const mj of live) {
      const { namespace, name } = mj.metadata ?? {};
      if (namespace === undefined || name === undefined) continue;
      keys.add(keyOf(namespace, name));
      this.applyErrors.inc({ namespace, name }, 0);
      this.fed.set(keyOf(namespace, name), { namespace, name });
    }
    for (const [key, mj] of this.fed) if (!keys.has(key)) this.deleted(mj);
  }

  /** Removes the hook-fed series of a deleted MirrorJob. */
  deleted(mj: MirrorJobKeyLike): void {
    const key = keyOf(mj.namespace, mj.name);
    this.observedRuns.delete(key);
    this.fed.delete(key);
    this.applyErrors.remove({ namespace: mj.namespace, name: mj.name });
    for (const result of RUN_RESULTS)
      this.runDuration.remove({ namespace: mj.namespace, name: mj.name, result });
  }
}
