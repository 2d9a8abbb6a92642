/**
 * The `manager` subcommand: health endpoints, Lease-based leader election, and the
 * MirrorJob controller, run only while this replica leads. Configuration comes from the
 * environment (the Helm chart sets it); bad values stop the process with a message.
 */
import { startWatches } from "../runtime/cache.ts";
import { KubeShell } from "../runtime/shell.ts";
import { OC_MIRROR_LINES } from "../ocmirror/lines.ts";
import { hostname } from "node:os";
import { readFileSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { z } from "zod";
import { createOperatorMetrics, type OperatorMetrics } from "../metrics/registry.ts";
import { MirrorJobController } from "../runtime/controller.ts";
import { DEFAULT_RUN_LIMITS } from "../runtime/run-slots.ts";
import { startHealthServer, type HealthServer } from "../runtime/health.ts";
import { startLeaderElection, type LeaderElector } from "../runtime/leader-election.ts";
import { shareConnections } from "../runtime/kube-connections.ts";

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

function podNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim();
  } catch {
    return undefined;
  }
}

const namespaceName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name");

const configSchema = z.object({
  namespace: z.string().min(1),
  identity: z.string().min(1),
  leaseName: z.string().min(1),
  leaderElection: z.boolean(),
  healthPort: z.number().int().min(0).max(65535),
  operatorImage: z.string().min(1),
  defaultOcMirrorImage: z.string().min(1),
  defaultOcMirrorLine: z.enum(OC_MIRROR_LINES),
  storageClassName: z.string().min(1).optional(),
  heartbeatTimeoutSeconds: z.number().int().min(5),
  drainBatchSeconds: z.number().int().min(0).max(3600),
  workers: z.number().int().min(1).max(32),
  maxRuns: z.number().int().min(1).max(10_000),
  maxRunsPerRegistry: z.number().int().min(1).max(10_000),
  maxRunsPerTarget: z.number().int().min(1).max(10_000),
  watchNamespaces: z.array(namespaceName),
  applyNamespaces: z.array(namespaceName),
});
export type ManagerConfig = z.output<typeof configSchema>;

/** Reads the manager's configuration from HUBMIRROR_* variables (see docs/operations.md). */
export function configFromEnv(env: NodeJS.ProcessEnv): ManagerConfig {
  const int = (name: string, fallback: number) => (env[name] !== undefined ? Number(env[name]) : fallback);
  const namespace = env.HUBMIRROR_NAMESPACE ?? env.POD_NAMESPACE ?? podNamespace() ?? "hub-mirror-operator";
  const list = (value: string | undefined) =>
    value
      ?.split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
  const result = configSchema.safeParse({
    namespace,
    // Only these namespaces' MirrorJobs may change the cluster (default: the operator's own).
    applyNamespaces: list(env.HUBMIRROR_APPLY_NAMESPACES) ?? [namespace],
    // MirrorJobs (and the Secrets they reference) are served in these namespaces; empty: all.
    watchNamespaces: list(env.HUBMIRROR_WATCH_NAMESPACES) ?? [],
    identity: env.POD_NAME ?? hostname(),
    leaseName: env.HUBMIRROR_LEASE_NAME ?? "hub-mirror-operator",
    leaderElection: (env.HUBMIRROR_LEADER_ELECTION ?? "true") !== "false",
    healthPort: int("HUBMIRROR_HEALTH_PORT", 8081),
    operatorImage: env.HUBMIRROR_OPERATOR_IMAGE ?? "ghcr.io/hubmirror/hub-mirror-operator:latest",
    defaultOcMirrorImage:
      env.HUBMIRROR_OC_MIRROR_IMAGE ?? "registry.redhat.io/openshift4/oc-mirror-plugin-rhel9:v4.20",
    defaultOcMirrorLine: env.HUBMIRROR_OC_MIRROR_LINE ?? "4.20",
    storageClassName: env.HUBMIRROR_STORAGE_CLASS,
    heartbeatTimeoutSeconds: int("HUBMIRROR_HEARTBEAT_TIMEOUT_SECONDS", 120),
    // Changes that drain nodes and become ready within this long of each other are applied together.
    drainBatchSeconds: int("HUBMIRROR_DRAIN_BATCH_SECONDS", 60),
    // Reconciles mostly wait on the API server and registries, not the CPU: with 2 workers,
    // 100 completions waited 4-5 s (p50) in the queue; with 8, 0.4-0.5 s (BENCHMARKS.md).
    workers: int("HUBMIRROR_WORKERS", 8),
    maxRuns: int("HUBMIRROR_MAX_RUNS", DEFAULT_RUN_LIMITS.maxRuns),
    maxRunsPerRegistry: int("HUBMIRROR_MAX_RUNS_PER_REGISTRY", DEFAULT_RUN_LIMITS.maxRunsPerRegistry),
    maxRunsPerTarget: int("HUBMIRROR_MAX_RUNS_PER_TARGET", DEFAULT_RUN_LIMITS.maxRunsPerTarget),
  });
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`invalid configuration: ${problems}`);
  }
  return result.data;
}

export interface Manager {
  readonly health: HealthServer;
  readonly elector: LeaderElector | undefined;
  /** Served as /metrics on the health server. */
  readonly metrics: OperatorMetrics;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export async function runManager(config: ManagerConfig, kc: KubeConfig, logger: Logger): Promise<Manager> {
  // One connection pool for every request and watch (client-node makes one per request).
  shareConnections(kc);
  const metrics: OperatorMetrics = createOperatorMetrics({
    mirrorJobs: () => controller.mirrorJobs(),
    runs: () => (leading && controller.synced() ? controller.slots.counts() : undefined),
  });
  const controller: MirrorJobController = new MirrorJobController({
    logger,
    shell: new KubeShell(kc, config.identity, {
      // Registry pruning reads the other MirrorJobs on a registry from the controller's cache.
      cache: {
        mirrorJobs: () => controller.mirrorJobs(),
        configMap: (namespace, name) => controller.cachedConfigMap(namespace, name),
      },
    }),
    watch: (cache, listener) => startWatches(kc, logger, config.watchNamespaces, cache, listener),
    workers: config.workers,
    runLimits: {
      maxRuns: config.maxRuns,
      maxRunsPerRegistry: config.maxRunsPerRegistry,
      maxRunsPerTarget: config.maxRunsPerTarget,
    },
    queueObserver: metrics.controller.queueObserver(),
    onReconciled: (result, seconds) => {
      metrics.controller.reconciled(result, seconds);
    },
    onDecision: (mj, decision, previous) => {
      metrics.mirrorJobs.onDecision(mj, decision, previous);
    },
    onMirrorJobDeleted: (mj) => {
      metrics.mirrorJobs.deleted(mj);
    },
    settings: {
      operatorImage: config.operatorImage,
      defaultOcMirrorImage: config.defaultOcMirrorImage,
      defaultOcMirrorLine: config.defaultOcMirrorLine,
      heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
      drainBatchWindowMs: config.drainBatchSeconds * 1000,
      applyNamespaces: config.applyNamespaces,
      ...(config.storageClassName !== undefined && { storageClassName: config.storageClassName }),
    },
  });
  let leading = false;
  const health = await startHealthServer({
    port: config.healthPort,
    // A standby replica is ready (it serves health and waits); a leader once its caches synced.
    ready: () => (!leading || controller.synced() ? true : "caches not synced yet"),
    routes: { "/metrics": metrics.handler },
  });
  let elector: LeaderElector | undefined;
  if (config.leaderElection) {
    elector = startLeaderElection({
      kc,
      namespace: config.namespace,
      name: config.leaseName,
      identity: config.identity,
      logger,
      onMasterStatus: (isMaster) => {
        metrics.controller.leading(config.leaseName, isMaster);
      },
      onStartedLeading: async (signal) => {
        logger.info({ identity: config.identity }, "leading: starting the controller");
        leading = true;
        controller.start();
        await new Promise<void>((resolve) => {
          signal.addEventListener("abort", () => {
            resolve();
          });
        });
        await controller.stop();
        leading = false;
      },
      onStoppedLeading: () => {
        logger.warn({ identity: config.identity }, "lost leadership: controller stopped");
      },
    });
  } else {
    // The only replica always leads: report it so "no leader" alerts hold without election too.
    metrics.controller.leading(config.leaseName, true);
    leading = true;
    controller.start();
  }
  return {
    health,
    elector,
    metrics,
    isLeader: () => leading,
    async stop() {
      if (elector !== undefined) await elector.release();
      else await controller.stop();
      await health.close();
    },
  };
}
