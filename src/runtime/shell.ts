/**
 * The shell: every read and write a reconcile does beyond the informer caches, behind one
 * interface. The controller talks to the cluster and the registries only through it, so its
 * loop can be tested with an in-memory shell (src/runtime/controller.test.ts), and the real
 * one (KubeShell) is the only place that knows the APIs.
 */
import { BatchV1Api, type KubeConfig, type V1Job } from "@kubernetes/client-node";
import type { Owner } from "../apply/desired.ts";
import { FINALIZER } from "../apply/kinds.ts";
import type { MirrorJobStatus } from "../api/status.ts";
import type { Answer, Effect, EventSpec, Query, RegistryCheck } from "../reconcile/protocol.ts";
import { Applier, type ApplierOptions } from "./applier.ts";
import { isStaleWrite, isStatus } from "./kube-api.ts";
import { MirrorJobWriter, type MirrorJobKey, type MirrorJobVersion } from "./mirrorjob-writer.ts";
import { planPrune, type CacheView } from "./prune-checks.ts";
import { pingRegistry, verifyRun } from "./registry-checks.ts";
import { RolloutReader } from "./rollout-reader.ts";
import { RunObjects } from "./run-objects.ts";

/** The queries the shell answers (a run slot is the controller's own: see run-slots.ts). */
export type ShellQuery = Exclude<Query, { readonly kind: "runSlot" }>;

export interface Shell {
  /** Answers a decision's query. */
  answer(mj: MirrorJobKey, query: ShellQuery): Promise<Answer>;
  /** Carries out an effect; finalizer effects update `mj` to the version they wrote. */
  effect(mj: MirrorJobVersion, effect: Effect): Promise<void>;
  /** A Job by name from the API server (the cache may not hold one created a moment ago). */
  readJob(namespace: string, name: string): Promise<V1Job | undefined>;
  /** Replaces the status over exactly `resourceVersion`; `stale` when the object changed meanwhile. */
  writeStatus(
    mj: MirrorJobKey,
    status: MirrorJobStatus,
    resourceVersion: string | undefined,
  ): Promise<"written" | "stale">;
  recordEvent(mj: MirrorJobKey, event: EventSpec): Promise<void>;
}

export interface KubeShellOptions extends ApplierOptions {
  /** Replaces preflight's registry check (tests). */
  readonly checkRegistry?: (query: Extract<Query, { kind: "checkRegistry" }>) => Promise<RegistryCheck>;
  /** The controller's cache, read by registry pruning (the other MirrorJobs on a registry). */
  readonly cache?: CacheView;
}

export class KubeShell implements Shell {
  private readonly runs: RunObjects;
  private readonly writer: MirrorJobWriter;
  private readonly applier: Applier;
  private readonly rollouts: RolloutReader;
  private readonly batch: BatchV1Api;
  private readonly checkRegistry: NonNullable<KubeShellOptions["checkRegistry"]>;
  private readonly cache: CacheView | undefined;

  constructor(kc: KubeConfig, identity: string, options: KubeShellOptions = {}) {
    this.runs = new RunObjects(kc);
    this.writer = new MirrorJobWriter(kc, identity);
    this.applier = new Applier(kc, options);
    this.rollouts = new RolloutReader(kc);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.checkRegistry = options.checkRegistry ?? pingRegistry;
    this.cache = options.cache;
  }

  async answer(mj: MirrorJobKey, query: ShellQuery): Promise<Answer> {
    const owner: Owner = { namespace: mj.namespace, name: mj.name };
    switch (query.kind) {
      case "checkRegistry":
        return { kind: "checkRegistry", result: await this.checkRegistry(query) };
      case "verify": {
        const result = await verifyRun(query);
        return { kind: "verify", runId: query.runId, result, completionTime: new Date().toISOString() };
      }
      case "readApplied":
        return { kind: "readApplied", live: await this.applier.readLive(owner, query.kinds) };
      case "apply":
        return { kind: "apply", outcome: await this.applier.apply(query.plan, query.pull) };
      case "deleteApplied":
        return { kind: "deleteApplied", ...(await this.applier.deleteAll(owner)) };
      case "sealRun":
        return { kind: "sealRun", runId: query.runId, result: await this.runs.sealRun(mj.namespace, query) };
      case "ensure":
        return { kind: "ensure", runId: query.runId, outcome: await this.runs.ensure(query.objects) };
      case "readRollout":
        return { kind: "readRollout", seen: await this.rollouts.read(query) };
      case "planPrune":
        return planPrune(query, this.cache);
      case "ensurePrune":
        return { kind: "ensurePrune", step: query.step, outcome: await this.runs.ensure(query.objects) };
      case "sealPrune":
        return { kind: "sealPrune", step: query.step, result: await this.runs.sealRun(mj.namespace, query) };
    }
  }

  async effect(mj: MirrorJobVersion, effect: Effect): Promise<void> {
    switch (effect.kind) {
      case "deleteRun":
        await this.runs.deleteRun(mj.namespace, effect.runId, effect.jobName);
        return;
      case "deletePrune":
        await this.runs.deletePrune(mj.namespace, effect.pruneId);
        return;
      case "addFinalizer":
      case "removeFinalizer":
        await this.writer.setFinalizer(mj, FINALIZER, effect.kind === "addFinalizer");
        return;
    }
  }

  async readJob(namespace: string, name: string): Promise<V1Job | undefined> {
    return this.batch.readNamespacedJob({ namespace, name }).catch((err: unknown) => {
      if (isStatus(err, 404)) return undefined;
      throw err;
    });
  }

  async writeStatus(
    mj: MirrorJobKey,
    status: MirrorJobStatus,
    resourceVersion: string | undefined,
  ): Promise<"written" | "stale"> {
    try {
      await this.writer.replaceStatus(mj, status, resourceVersion);
      return "written";
    } catch (err) {
      if (isStaleWrite(err)) return "stale";
      throw err;
    }
  }

  recordEvent(mj: MirrorJobKey, event: EventSpec): Promise<void> {
    return this.writer.event(mj, event);
  }
}
