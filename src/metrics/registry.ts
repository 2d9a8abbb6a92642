/**
 * The operator's metrics: one prom-client Registry per manager (never prom-client's global
 * one, so several managers in one process, as in the e2e tests, do not share series), served
 * as `/metrics` on the health server.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Gauge, Registry } from "prom-client";
import { ControllerMetrics } from "./controller-metrics.ts";
import { MirrorJobMetrics } from "./mirrorjob-metrics.ts";
import type { MirrorJobLike } from "./mirrorjob-samples.ts";

/** controller-runtime names the controller after its kind; the queue has the same name. */
export const CONTROLLER_NAME = "mirrorjob";

export interface OperatorMetrics {
  readonly registry: Registry;
  readonly controller: ControllerMetrics;
  readonly mirrorJobs: MirrorJobMetrics;
  /** The `/metrics` route (Prometheus text format). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

export function createOperatorMetrics(options: {
  readonly mirrorJobs: () => Iterable<MirrorJobLike> | undefined;
  /** Runs in progress and due runs waiting for a slot (the leader's; undefined elsewhere). */
  readonly runs?: () => { readonly inProgress: number; readonly waiting: number } | undefined;
}): OperatorMetrics {
  const registry = new Registry();
  const runs = options.runs;
  for (const [name, help, field] of [
    ["hubmirror_runs_in_progress", "Runs in progress (HUBMIRROR_MAX_RUNS limits them).", "inProgress"],
    ["hubmirror_runs_waiting", "Due runs waiting for a run slot (phase Queued).", "waiting"],
  ] as const) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const counts = runs?.();
        if (counts === undefined) this.reset();
        else this.set(counts[field]);
      },
    });
  }
  const controller = new ControllerMetrics({ registry, controller: CONTROLLER_NAME, queue: CONTROLLER_NAME });
  const mirrorJobs = new MirrorJobMetrics({ registry, mirrorJobs: options.mirrorJobs });
  return {
    registry,
    controller,
    mirrorJobs,
    async handler(req, res) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
        res.end("method not allowed\n");
        return;
      }
      const body = await registry.metrics();
      res.writeHead(200, {
        "content-type": registry.contentType,
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    },
  };
}
