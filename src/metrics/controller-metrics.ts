/**
 * Metrics with controller-runtime's names, labels and semantics, so dashboards and alerts
 * written for Go operators work unchanged:
 *
 * - `controller_runtime_reconcile_total{controller,result}`: result is `error` (the reconcile
 *   threw; also counted in `controller_runtime_reconcile_errors_total`), `requeue_after` (it
 *   asked to be looked at again after a delay), `requeue` (it asked for a rate-limited retry)
 *   or `success`. All four start at 0, as controller-runtime's `initMetrics` does.
 * - `controller_runtime_reconcile_time_seconds{controller}`: controller-runtime's buckets.
 * - `workqueue_*{name}`: client-go's workqueue metrics as controller-runtime registers them,
 *   with its buckets (10 ns to 1000 s, ×10).
 * - `leader_election_master_status{name}`: 1 while this replica leads the Lease `name`, else 0
 *   (client-go's leader-election metric).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { WorkQueueObserver } from "../runtime/workqueue.ts";

export type ReconcileResult = "success" | "error" | "requeue" | "requeue_after";
const RESULTS: readonly ReconcileResult[] = ["success", "error", "requeue", "requeue_after"];

/** controller-runtime's reconcile_time_seconds buckets. */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
  1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go workqueue buckets as controller-runtime registers them: ExponentialBuckets(10e-9, 10, 12). */
const QUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));

export interface ControllerMetricsOptions {
  readonly registry: Registry;
  /** The controller's name (label `controller`). */
  readonly controller: string;
  /** The work queue's name (label `name` of workqueue_*). */
  readonly queue: string;
}

export class ControllerMetrics {
  private readonly controller: string;
  private readonly queue: string;
  private readonly reconcileTotal: Counter<"controller" | "result">;
  private readonly reconcileErrors: Counter<"controller">;
  private readonly reconcileTime: Histogram<"controller">;
  private readonly depth: Gauge<"name">;
  private readonly adds: Counter<"name">;
  private readonly retries: Counter<"name">;
  private readonly queueDuration: Histogram<"name">;
  private readonly workDuration: Histogram<"name">;
  private readonly leader: Gauge<"name">;

  constructor(options: ControllerMetricsOptions) {
    const registers = [options.registry];
    this.controller = options.controller;
    this.queue = options.queue;
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.depth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name"],
      registers,
    });
    this.adds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name"],
      registers,
    });
    this.retries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name"],
      registers,
    });
    this.queueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name"],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.workDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes.",
      labelNames: ["name"],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.leader = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
      labelNames: ["name"],
      registers,
    });
    // Every series exists from the start, so rate() and increase() see the first event.
    for (const result of RESULTS) this.reconcileTotal.inc({ controller: this.controller, result }, 0);
    this.reconcileErrors.inc({ controller: this.controller }, 0);
    this.depth.set({ name: this.queue }, 0);
    this.adds.inc({ name: this.queue }, 0);
    this.retries.inc({ name: this.queue }, 0);
  }

  /** Records one reconcile: its result and how long it took. */
  reconciled(result: ReconcileResult, seconds: number): void {
    const controller = this.controller;
    this.reconcileTotal.inc({ controller, result });
    if (result === "error") this.reconcileErrors.inc({ controller });
    this.reconcileTime.observe({ controller }, seconds);
  }

  /** Hooks for the controller's work queue. */
  queueObserver(): WorkQueueObserver {
    const name = this.queue;
    return {
      onAdd: () => {
        this.adds.inc({ name });
      },
      onDepth: (depth) => {
        this.depth.set({ name }, depth);
      },
      onRetry: () => {
        this.retries.inc({ name });
      },
      onQueueDuration: (seconds) => {
        this.queueDuration.observe({ name }, seconds);
      },
      onWorkDuration: (seconds) => {
        this.workDuration.observe({ name }, seconds);
      },
    };
  }

  /** Whether this replica leads the Lease `lease`. */
  leading(lease: string, leading: boolean): void {
    this.leader.set({ name: lease }, leading ? 1 : 0);
  }
}
