/**
 * The MirrorJob controller: informers feed a work queue keyed by `namespace/name`; each
 * key is reconciled by gathering observations from the caches, calling the pure
 * `decide`, and executing its actions. Watches on Jobs, pods, ConfigMaps and Secrets map
 * back to the MirrorJobs that own or reference them.
 */
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Job,
  type V1Pod,
  type V1Secret,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, PLURAL, VERSION } from "../api/mirrorjob.ts";
import type { Condition, MirrorJobStatus } from "../api/status.ts";
import { formatFieldErrors, validateMirrorJob } from "../api/validation.ts";
import { ApplyActions } from "../apply/cluster.ts";
import { LABELS, MANAGER } from "../job/names.ts";
import { setCondition } from "../reconcile/conditions.ts";
import {
  decide,
  type Action,
  type Decision,
  type DecideSettings,
  type Observed,
  type RegistryCheck,
  QUERY_ACTIONS,
} from "../reconcile/decide.ts";
import { referencedNames } from "../reconcile/preflight.ts";
import { RegistryClient } from "../registry/client.ts";
import { RegistryClients } from "../registry/clients.ts";
import { RegistryError } from "../registry/errors.ts";
import { verifyImages, type VerifyResult } from "../registry/verify.ts";
import { ClusterActions, isStaleWrite, isStatus, type MirrorJobKey } from "./cluster.ts";
import { FINALIZER } from "../apply/kinds.ts";
import { startScopedInformer, type InformerHandle } from "./informer.ts";
import { WorkQueue, type WorkQueueObserver, type WorkQueueOptions } from "./workqueue.ts";

type CheckRegistry = (action: Extract<Action, { kind: "checkRegistry" }>) => Promise<RegistryCheck>;

export interface ControllerOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  readonly settings: DecideSettings;
  /** Names this replica in Events. */
  readonly identity: string;
  readonly workers?: number;
  /** Namespaces whose MirrorJobs are served (and whose Secrets are read); empty: all. */
  readonly watchNamespaces?: readonly string[];
  readonly checkRegistry?: CheckRegistry;
  readonly queueObserver?: WorkQueueObserver;
  /** Called after each reconcile (metrics; results as controller-runtime counts them). */
  readonly onReconciled?: (
    result: "success" | "error" | "requeue" | "requeue_after",
    seconds: number,
  ) => void;
  /** Called with each decision once its actions and Events are done (metrics). */
  readonly onDecision?: (
    mirrorJob: { readonly namespace: string; readonly name: string },
    decision: Decision,
    previousStatus: MirrorJobStatus | undefined,
  ) => void;
  /** Called when the MirrorJob informer sees a MirrorJob deleted (metrics). */
  readonly onMirrorJobDeleted?: (mirrorJob: { readonly namespace: string; readonly name: string }) => void;
}

export interface RawMirrorJob extends KubernetesObject {
  spec?: unknown;
  status?: MirrorJobStatus;
}

/** The registry half of preflight: `GET /v2/` with the push credentials. */
export const pingRegistry: CheckRegistry = async (action) => {
  const host = action.registry.split("/")[0] ?? action.registry;
  const client = new RegistryClient({
    registry: host,
    credentials: action.credentials,
    tlsVerify: action.tlsVerify,
    timeoutMs: 10_000,
    ...(action.caBundle !== undefined && { caBundle: action.caBundle }),
  });
  try {
    await client.ping();
    return { ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof RegistryError && (err.kind === "unauthorized" || err.kind === "forbidden")) {
      return { ok: false, reason: "RegistryAuthFailed", message: `${message} (spec.registry.pushSecretRef)` };
    }
    if (err instanceof RegistryError && err.kind === "tls")
      return { ok: false, reason: "RegistryTLSFailed", message };
    return { ok: false, reason: "RegistryUnreachable", message };
  } finally {
    await client.close();
  }
};

/** Checks in flight, one connection each (bench/verify.ts measured 16 to 64 alike). */
const VERIFY_CONCURRENCY = 32;

/** Verification: every image of the run's mapping, HEAD with bounded concurrency. */
export async function verifyRun(action: Extract<Action, { kind: "verify" }>): Promise<VerifyResult> {
  const clients = new RegistryClients(action.dockerConfig, {
    tlsVerify: action.tlsVerify,
    timeoutMs: 15_000,
    connections: VERIFY_CONCURRENCY,
    ...(action.caBundle !== undefined && { caBundle: action.caBundle }),
  });
  try {
    return await verifyImages(action.images, clients.clientFor, { concurrency: VERIFY_CONCURRENCY });
  } finally {
    await clients.close();
  }
}

/**
 * Per-key backoff from 1 s up to 30 s: a failing preflight is re-checked at least every
 * 30 s, so a fix is picked up even if the watch event that announced it was lost.
 */
function queueOptions(options: ControllerOptions): WorkQueueOptions {
  return { maxDelayMs: 30_000, ...(options.queueObserver && { observer: options.queueObserver }) };
}

function key(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class MirrorJobController {
  private readonly options: ControllerOptions;
  private readonly log: Logger;
  /** A queue per leadership term: a shut-down queue hands out nothing again. */
  private queue: WorkQueue;
  private readonly actions: ClusterActions;
  private readonly applyActions: ApplyActions;
  private readonly checkRegistry: CheckRegistry;
  private informers:
    | {
        mirrorJobs: InformerHandle<RawMirrorJob>;
        jobs: InformerHandle<V1Job>;
        pods: InformerHandle<V1Pod>;
        configMaps: InformerHandle<V1ConfigMap>;
        secrets: InformerHandle<V1Secret>;
      }
    | undefined;
  private workers: Promise<void>[] = [];

  constructor(options: ControllerOptions) {
    this.options = options;
    this.log = options.logger.child({ controller: "mirrorjob" });
    this.queue = new WorkQueue(queueOptions(options));
    this.actions = new ClusterActions(options.kc, options.identity);
    this.applyActions = new ApplyActions(options.kc);
    this.checkRegistry = options.checkRegistry ?? pingRegistry;
  }

  /** True once every cache has synced. */
  synced(): boolean {
    return this.informers !== undefined && Object.values(this.informers).every((i) => i.hasSynced());
  }

  start(): void {
    const { kc, logger } = this.options;
    this.queue = new WorkQueue(queueOptions(this.options));
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const owned = `${LABELS.managedBy}=${MANAGER}`;
    const enqueueOwner = (_type: string, obj: KubernetesObject) => {
      const owner = obj.metadata?.labels?.[LABELS.mirrorJob];
      if (owner !== undefined) this.queue.add(key(obj.metadata?.namespace, owner));
    };
    const enqueueReferrers = (_type: string, obj: KubernetesObject, kind: "secrets" | "configMaps") => {
      if (obj.metadata?.labels?.[LABELS.managedBy] === MANAGER) {
        enqueueOwner(_type, obj);
        return;
      }
      for (const mj of this.informers?.mirrorJobs.list() ?? []) {
        if (mj.metadata?.namespace !== obj.metadata?.namespace) continue;
        const parsed = validateMirrorJob(mj);
        if (parsed.ok && referencedNames(parsed.value.spec)[kind].includes(obj.metadata?.name ?? "")) {
          this.queue.add(key(mj.metadata?.namespace, mj.metadata?.name));
        }
      }
    };
    const scope = this.options.watchNamespaces ?? [];
    // Watch paths for all namespaces (ns undefined) or one.
    const at = (prefix: string, ns: string | undefined, resource: string) =>
      ns === undefined ? `${prefix}/${resource}` : `${prefix}/namespaces/${ns}/${resource}`;
    this.informers = {
      mirrorJobs: startScopedInformer<RawMirrorJob>(scope, (ns) => ({
        kc,
        logger,
        path: at(`/apis/${GROUP}/${VERSION}`, ns, PLURAL),
        list: async () =>
          (ns === undefined
            ? await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
            : await custom.listNamespacedCustomObject({
                group: GROUP,
                version: VERSION,
                namespace: ns,
                plural: PLURAL,
              })) as KubernetesListObject<RawMirrorJob>,
        onEvent: (type, obj) => {
          this.queue.add(key(obj.metadata?.namespace, obj.metadata?.name));
          if (type === "delete")
            this.options.onMirrorJobDeleted?.({
              namespace: obj.metadata?.namespace ?? "",
              name: obj.metadata?.name ?? "",
            });
        },
      })),
      jobs: startScopedInformer<V1Job>(scope, (ns) => ({
        kc,
        logger,
        path: at("/apis/batch/v1", ns, "jobs"),
        labelSelector: owned,
        list: () =>
          ns === undefined
            ? batch.listJobForAllNamespaces({ labelSelector: owned })
            : batch.listNamespacedJob({ namespace: ns, labelSelector: owned }),
        onEvent: enqueueOwner,
      })),
      pods: startScopedInformer<V1Pod>(scope, (ns) => ({
        kc,
        logger,
        path: at("/api/v1", ns, "pods"),
        labelSelector: owned,
        list: () =>
          ns === undefined
            ? core.listPodForAllNamespaces({ labelSelector: owned })
            : core.listNamespacedPod({ namespace: ns, labelSelector: owned }),
        onEvent: enqueueOwner,
      })),
      configMaps: startScopedInformer<V1ConfigMap>(scope, (ns) => ({
        kc,
        logger,
        path: at("/api/v1", ns, "configmaps"),
        list: () =>
          ns === undefined
            ? core.listConfigMapForAllNamespaces()
            : core.listNamespacedConfigMap({ namespace: ns }),
        onEvent: (type, obj) => {
          enqueueReferrers(type, obj, "configMaps");
        },
      })),
      secrets: startScopedInformer<V1Secret>(scope, (ns) => ({
        kc,
        logger,
        path: at("/api/v1", ns, "secrets"),
        list: () =>
          ns === undefined ? core.listSecretForAllNamespaces() : core.listNamespacedSecret({ namespace: ns }),
        onEvent: (type, obj) => {
          enqueueReferrers(type, obj, "secrets");
        },
      })),
    };
    for (let i = 0; i < (this.options.workers ?? 2); i++) this.workers.push(this.work());
  }

  /** The MirrorJobs in the informer cache (read-only), or undefined until it has synced. */
  mirrorJobs(): readonly Readonly<RawMirrorJob>[] | undefined {
    const informer = this.informers?.mirrorJobs;
    return informer?.hasSynced() === true ? informer.list() : undefined;
  }

  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    await Promise.all(Object.values(this.informers ?? {}).map((i) => i.stop()));
    this.informers = undefined;
    this.workers = [];
  }

  private async work(): Promise<void> {
    for (let item = await this.queue.get(); item !== undefined; item = await this.queue.get()) {
      // Reconciling before the caches are complete would act on a partial picture.
      if (!this.synced()) {
        this.queue.done(item);
        this.queue.addAfter(item, 200);
        continue;
      }
      const started = performance.now();
      let outcome: "success" | "error" | "requeue" | "requeue_after" = "success";
      try {
        const decision = await this.reconcile(item);
        if (decision?.retry === true) {
          outcome = "requeue";
          this.queue.addRateLimited(item);
        } else {
          this.queue.forget(item);
          if (decision?.requeueAfterMs !== undefined) {
            outcome = "requeue_after";
            this.queue.addAfter(item, decision.requeueAfterMs);
          }
        }
      } catch (err) {
        outcome = "error";
        this.log.error(
          { key: item, err: err instanceof Error ? err.message : String(err) },
          "reconcile failed",
        );
        this.queue.addRateLimited(item);
      } finally {
        this.queue.done(item);
        this.options.onReconciled?.(outcome, (performance.now() - started) / 1000);
      }
    }
  }

  private observe(
    namespace: string,
    name: string,
    status: MirrorJobStatus | undefined,
    refs: { secrets: string[]; configMaps: string[] },
  ) {
    const informers = this.informers;
    if (informers === undefined) throw new Error("controller not started");
    const jobs = informers.jobs
      .list()
      .filter((j) => j.metadata?.namespace === namespace && j.metadata.labels?.[LABELS.mirrorJob] === name);
    const resultConfigMaps = new Map(
      informers.configMaps
        .list()
        .filter((c) => c.metadata?.namespace === namespace && c.metadata.labels?.[LABELS.mirrorJob] === name)
        .map((c) => [c.metadata?.name ?? "", c]),
    );
    return {
      jobs,
      resultConfigMaps,
      referenced: {
        secrets: new Map(refs.secrets.map((n) => [n, informers.secrets.get(namespace, n)])),
        configMaps: new Map(refs.configMaps.map((n) => [n, informers.configMaps.get(namespace, n)])),
      },
      currentJobName: status?.currentRun?.jobName,
    };
  }

  /** Carries out a query action and adds its answer to what decide observes. */
  private async answer(
    action: Action,
    owner: { namespace: string; name: string },
    observed: Observed,
  ): Promise<Observed> {
    switch (action.kind) {
      case "checkRegistry":
        return { ...observed, registryCheck: await this.checkRegistry(action) };
      case "verify":
        return { ...observed, verification: { runId: action.runId, result: await verifyRun(action) } };
      case "readApplied":
        return { ...observed, applied: await this.applyActions.readLive(owner, action.kinds) };
      case "apply":
        return { ...observed, applyOutcome: await this.applyActions.apply(action.plan, action.pull) };
      case "deleteApplied":
        return { ...observed, deletedApplied: await this.applyActions.deleteAll(owner) };
      default:
        throw new Error(`not a query: ${action.kind}`);
    }
  }

  /** Carries out the effect actions; returns the MirrorJob's resourceVersion after them. */
  private async execute(
    mj: MirrorJobKey & { finalizers: readonly string[]; resourceVersion: string | undefined },
    actions: readonly Action[],
  ): Promise<string | undefined> {
    let resourceVersion = mj.resourceVersion;
    for (const action of actions) {
      if (action.kind === "ensure") await this.actions.ensure(action.objects);
      else if (action.kind === "deleteRun")
        await this.actions.deleteRun(mj.namespace, action.id, action.jobName);
      else if (action.kind === "addFinalizer" || action.kind === "removeFinalizer") {
        resourceVersion = await this.actions.setFinalizer(
          { ...mj, resourceVersion },
          FINALIZER,
          action.kind === "addFinalizer",
        );
      }
    }
    return resourceVersion;
  }

  async reconcile(item: string): Promise<Decision | undefined> {
    const [namespace = "", name = ""] = item.split("/");
    const raw = this.informers?.mirrorJobs.get(namespace, name);
    if (raw === undefined) return undefined;
    const mjKey = { namespace, name, uid: raw.metadata?.uid ?? "" };
    const parsed = validateMirrorJob(raw);
    if (!parsed.ok) {
      // Only possible for objects stored under an older schema: say so and stop.
      const message = formatFieldErrors(parsed.errors);
      const generation = raw.metadata?.generation ?? 0;
      const now = new Date();
      let conditions: Condition[] = raw.status?.conditions ?? [];
      conditions = setCondition(
        conditions,
        { type: "Stalled", status: "True", reason: "InvalidSpec", message },
        generation,
        now,
      );
      conditions = setCondition(
        conditions,
        { type: "Ready", status: "False", reason: "InvalidSpec", message },
        generation,
        now,
      );
      const status: MirrorJobStatus = {
        ...raw.status,
        observedGeneration: generation,
        phase: "Failed",
        conditions,
      };
      if (!sameJson(status, raw.status))
        await this.actions.replaceStatus(mjKey, status, raw.metadata?.resourceVersion);
      return undefined;
    }
    const mj = parsed.value;
    const seen = this.observe(namespace, name, mj.status, referencedNames(mj.spec));
    const jobs = [...seen.jobs];
    // A Job created a moment ago may not be in the cache yet: ask the API before concluding it is gone.
    if (seen.currentJobName !== undefined && !jobs.some((j) => j.metadata?.name === seen.currentJobName)) {
      const job = await this.options.kc
        .makeApiClient(BatchV1Api)
        .readNamespacedJob({ namespace, name: seen.currentJobName })
        .catch((err: unknown) => {
          if (isStatus(err, 404)) return undefined;
          throw err;
        });
      if (job !== undefined) jobs.push(job);
    }
    const observed: Observed = {
      now: new Date(),
      referenced: seen.referenced,
      jobs,
      resultConfigMaps: seen.resultConfigMaps,
    };
    // Network checks and cluster reads are the shell's: decide asks, gets the answer, decides again.
    const owner = { namespace, name };
    const target = {
      ...mjKey,
      finalizers: mj.metadata.finalizers ?? [],
      resourceVersion: mj.metadata.resourceVersion,
    };
    let answered: Observed = observed;
    let decision = decide(mj, answered, this.options.settings);
    for (let pass = 0; pass < 6; pass++) {
      const query = decision.actions.find((a) => (QUERY_ACTIONS as readonly string[]).includes(a.kind));
      if (query === undefined) break;
      // Other actions of the same pass (a finalizer before apply) go first.
      target.resourceVersion = await this.execute(
        target,
        decision.actions.filter((a) => a !== query),
      );
      answered = await this.answer(query, owner, answered);
      decision = decide(mj, answered, this.options.settings);
    }
    target.resourceVersion = await this.execute(target, decision.actions);
    // Events before the status: whoever sees the new status finds the Events that explain it.
    for (const event of decision.events) {
      await this.actions.event(mjKey, event).catch((err: unknown) => {
        this.log.warn(
          { key: item, reason: event.reason, err: err instanceof Error ? err.message : String(err) },
          "event not recorded",
        );
      });
    }
    try {
      this.options.onDecision?.({ namespace, name }, decision, mj.status);
    } catch (err) {
      this.log.warn(
        { key: item, err: err instanceof Error ? err.message : String(err) },
        "onDecision failed",
      );
    }
    if (!sameJson(decision.status, mj.status)) {
      try {
        await this.actions.replaceStatus(mjKey, decision.status, target.resourceVersion);
      } catch (err) {
        // Decided from a stale cache: the watch brings the newer object and a new reconcile.
        if (!isStaleWrite(err)) throw err;
        this.log.debug({ key: item }, "status not written: the object changed meanwhile");
        return { ...decision, requeueAfterMs: 200 };
      }
    }
    this.log.info(
      {
        key: item,
        phase: decision.status.phase,
        actions: decision.actions.map((a) => a.kind),
        events: decision.events.map((e) => e.reason),
      },
      "reconciled",
    );
    return decision;
  }
}
