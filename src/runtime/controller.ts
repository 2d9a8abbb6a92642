/**
 * The MirrorJob controller: informers feed a work queue keyed by `namespace/name`; each
 * key is reconciled by gathering observations from the caches, calling the pure
 * `decide`, and executing its actions. Watches on Jobs, pods, ConfigMaps and Secrets map
 * back to the MirrorJobs that own or reference them.
 */
import {
  ApiException,
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
import { GROUP, KIND, PLURAL, VERSION } from "../api/mirrorjob.ts";
import type { Condition, MirrorJobStatus } from "../api/status.ts";
import { formatFieldErrors, validateMirrorJob } from "../api/validation.ts";
import { ApplyActions } from "../apply/cluster.ts";
import { LABELS, MANAGER, labelValue, ownerName } from "../job/names.ts";
import { setCondition, settleConditions } from "../reconcile/conditions.ts";
import {
  decide,
  type Action,
  type Decision,
  type DecideSettings,
  type EventSpec,
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
import { canonicalJson } from "../util/hash.ts";
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
    // One request per check, no retries of its own: the reconcile's backoff is the retry,
    // and a registry that counts failed logins sees one per try.
    retries: 0,
    preemptiveBasic: true,
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
 * Per-key backoff of failed reconciles: 10 s, doubling, at most 5 minutes. A failing
 * registry check costs the registry a request or two per try, so a MirrorJob with a wrong
 * password makes at most 6 a minute, then fewer (a registry that locks accounts after failed
 * logins must not lock the mirror's). What fixes a failure (a spec change, a changed Secret or
 * ConfigMap) is acted on at once through its watch event; the backoff bounds only the tries
 * nothing announces, such as a registry coming back.
 */
const BACKOFF = { baseDelayMs: 10_000, maxDelayMs: 5 * 60_000 } as const;

function queueOptions(options: ControllerOptions): WorkQueueOptions {
  return { ...BACKOFF, ...(options.queueObserver && { observer: options.queueObserver }) };
}

/** Upper bound of shell answers in one reconcile; more means decide asks in a circle. */
const MAX_QUERIES = 10;

/** How long a reconcile waits for the cache to show the operator's own last status write. */
const CACHE_CATCH_UP_MS = 5_000;

/** A short, secret-free description of a reconcile error, for status and logs. */
function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = (err as ApiException<unknown>).body as { message?: unknown } | undefined;
    const detail = typeof body?.message === "string" ? body.message : "";
    return `the API server answered ${String(err.code)}${detail !== "" ? `: ${detail}` : ""}`.slice(0, 1024);
  }
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n")[0] ?? "").slice(0, 1024);
}

function key(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

/** Equal content, whatever the key order. */
function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
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
  /**
   * Per key, what the object looks like after the operator's own last status write (see
   * `decisionInputs`): its watch event is not a reason to reconcile again (else every status
   * write would start the next reconcile at once, and a failing MirrorJob would never back
   * off). Recorded before the write: its event may come before the write's response.
   */
  private readonly ownWrites = new Map<string, string>();
  /**
   * Per key, the resourceVersion the last status write replaced, and when: until the cache
   * has moved past it, a reconcile would decide from an outdated status (and, say, start a
   * run it has already started), so it waits for the cache instead.
   */
  private readonly replaced = new Map<string, { resourceVersion: string; at: number }>();
  /**
   * Per key, Events recorded by a reconcile whose status write then lost a conflict: the
   * next reconcile decides again and finds the same facts, which are not recorded twice.
   */
  private readonly unconfirmedEvents = new Map<string, Set<string>>();

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
    // A run's objects are owned by their MirrorJob; its pods by its Job.
    const enqueueOwner = (_type: string, obj: KubernetesObject) => {
      const namespace = obj.metadata?.namespace ?? "";
      const job = ownerName(obj, "Job");
      const owner =
        job !== undefined ? ownerOf(this.informers?.jobs.get(namespace, job)) : ownerName(obj, KIND);
      if (owner !== undefined) this.queue.add(key(namespace, owner));
    };
    const ownerOf = (obj: KubernetesObject | undefined) =>
      obj === undefined ? undefined : ownerName(obj, KIND);
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
          const item = key(obj.metadata?.namespace, obj.metadata?.name);
          if (type === "delete") {
            this.forgetKey(item);
            this.options.onMirrorJobDeleted?.({
              namespace: obj.metadata?.namespace ?? "",
              name: obj.metadata?.name ?? "",
            });
          } else if (
            type === "update" &&
            this.ownWrites.get(item) === decisionInputs(obj.metadata, obj.status)
          ) {
            return; // the operator's own status write: nothing new to act on
          }
          this.queue.add(item);
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

  /** Drops what the controller remembers of a MirrorJob that is gone. */
  private forgetKey(item: string): void {
    this.ownWrites.delete(item);
    this.replaced.delete(item);
    this.unconfirmedEvents.delete(item);
    this.queue.forget(item);
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
          this.queue.addAfter(item, decision.retryAfterMs ?? this.queue.backoff(item));
        } else {
          this.queue.forget(item);
          if (decision?.requeueAfterMs !== undefined) {
            outcome = "requeue_after";
            this.queue.addAfter(item, decision.requeueAfterMs);
          }
        }
      } catch (err) {
        outcome = "error";
        const message = describeError(err);
        this.log.error({ key: item, err: message }, "reconcile failed");
        const delay = this.queue.backoff(item);
        await this.reportError(item, message, delay);
        this.queue.addAfter(item, delay);
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
    const label = labelValue(name);
    const jobs = informers.jobs
      .list()
      .filter((j) => j.metadata?.namespace === namespace && j.metadata.labels?.[LABELS.mirrorJob] === label);
    const resultConfigMaps = new Map(
      informers.configMaps
        .list()
        .filter((c) => c.metadata?.namespace === namespace && c.metadata.labels?.[LABELS.mirrorJob] === label)
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
      case "sealRun":
        return {
          ...observed,
          sealed: { runId: action.id, result: await this.actions.sealRun(owner.namespace, action) },
        };
      case "ensure":
        return {
          ...observed,
          ensured: { runId: action.runId, outcome: await this.actions.ensure(action.objects) },
        };
      default:
        throw new Error(`not a query: ${action.kind}`);
    }
  }

  /**
   * Carries out the effect actions; keeps `mj`'s resourceVersion and finalizers up to date
   * with the finalizer writes among them.
   */
  private async execute(
    mj: MirrorJobKey & { finalizers: readonly string[]; resourceVersion: string | undefined },
    actions: readonly Action[],
  ): Promise<void> {
    for (const action of actions) {
      if (action.kind === "deleteRun") await this.actions.deleteRun(mj.namespace, action.id, action.jobName);
      else if (action.kind === "addFinalizer" || action.kind === "removeFinalizer") {
        Object.assign(mj, await this.actions.setFinalizer(mj, FINALIZER, action.kind === "addFinalizer"));
      }
    }
  }

  /**
   * After a reconcile failed with an error: says so in the status, with the time of the
   * next try (best effort; the status write itself may fail for the same reason).
   */
  private async reportError(item: string, message: string, delayMs: number): Promise<void> {
    const [namespace = "", name = ""] = item.split("/");
    const raw = this.informers?.mirrorJobs.get(namespace, name);
    if (raw === undefined) return;
    const now = new Date();
    const generation = raw.metadata?.generation ?? 0;
    const stored = raw.status?.conditions ?? [];
    const conditions = settleConditions(
      stored,
      setCondition(
        stored,
        { type: "Reconciling", status: "True", reason: "RetryingAfterError", message },
        generation,
        now,
      ),
    );
    const status: MirrorJobStatus = {
      ...raw.status,
      conditions,
      nextRetryTime: new Date(now.getTime() + delayMs).toISOString(),
    };
    await this.writeStatus(item, { namespace, name, uid: raw.metadata?.uid ?? "" }, status, raw).catch(
      (err: unknown) => {
        this.log.debug({ key: item, err: describeError(err) }, "error not reported in status");
      },
    );
  }

  /**
   * Writes the status over exactly the version `basis` (a stale write fails with 409/422),
   * and remembers the write (see ownWrites and replaced). Returns false for a stale write.
   */
  private async writeStatus(
    item: string,
    mjKey: MirrorJobKey,
    status: MirrorJobStatus,
    basis: RawMirrorJob,
    resourceVersion = basis.metadata?.resourceVersion,
    finalizers = basis.metadata?.finalizers,
  ): Promise<boolean> {
    this.ownWrites.set(
      item,
      decisionInputs(
        {
          generation: basis.metadata?.generation,
          deletionTimestamp: basis.metadata?.deletionTimestamp,
          finalizers,
        },
        status,
      ),
    );
    try {
      await this.actions.replaceStatus(mjKey, status, resourceVersion);
      if (resourceVersion !== undefined) this.replaced.set(item, { resourceVersion, at: performance.now() });
      return true;
    } catch (err) {
      this.ownWrites.delete(item);
      if (isStaleWrite(err)) return false;
      throw err;
    }
  }

  /** True while the cache still holds the version the operator's last status write replaced. */
  private cacheBehind(item: string, resourceVersion: string | undefined): boolean {
    const replaced = this.replaced.get(item);
    if (replaced === undefined) return false;
    if (replaced.resourceVersion === resourceVersion && performance.now() - replaced.at < CACHE_CATCH_UP_MS)
      return true;
    this.replaced.delete(item);
    return false;
  }

  /** Records the decision's Events, each fact once (see unconfirmedEvents). */
  private async recordEvents(item: string, mjKey: MirrorJobKey, events: readonly EventSpec[]): Promise<void> {
    const unconfirmed = this.unconfirmedEvents.get(item);
    this.unconfirmedEvents.delete(item);
    for (const event of events) {
      if (unconfirmed?.has(eventFingerprint(event)) === true) continue;
      await this.actions.event(mjKey, event).catch((err: unknown) => {
        this.log.warn({ key: item, reason: event.reason, err: describeError(err) }, "event not recorded");
      });
    }
  }

  async reconcile(item: string): Promise<(Decision & { readonly retryAfterMs?: number }) | undefined> {
    const [namespace = "", name = ""] = item.split("/");
    const raw = this.informers?.mirrorJobs.get(namespace, name);
    if (raw === undefined) return undefined;
    if (this.cacheBehind(item, raw.metadata?.resourceVersion)) {
      this.log.debug({ key: item }, "waiting for the cache to show the last status write");
      return { status: raw.status ?? {}, actions: [], events: [], requeueAfterMs: 100 };
    }
    const mjKey = { namespace, name, uid: raw.metadata?.uid ?? "" };
    const parsed = validateMirrorJob(raw);
    if (!parsed.ok) {
      // Only possible for objects stored under an older schema: say so and stop.
      const message = formatFieldErrors(parsed.errors);
      const generation = raw.metadata?.generation ?? 0;
      const now = new Date();
      const stored = raw.status?.conditions ?? [];
      let conditions: Condition[] = setCondition(
        stored,
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
        conditions: settleConditions(stored, conditions),
      };
      if (!sameJson(status, raw.status)) await this.writeStatus(item, mjKey, status, raw);
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
    for (let queries = 0; ; queries++) {
      const query = decision.actions.find((a) => (QUERY_ACTIONS as readonly string[]).includes(a.kind));
      if (query === undefined) break;
      if (queries === MAX_QUERIES) throw new Error(`decide asked more than ${String(MAX_QUERIES)} queries`);
      // Other actions of the same pass (a finalizer before apply) go first.
      await this.execute(
        target,
        decision.actions.filter((a) => a !== query),
      );
      answered = await this.answer(query, owner, answered);
      decision = decide(mj, answered, this.options.settings);
    }
    await this.execute(target, decision.actions);
    // A failure backs off; the status says when the next try comes.
    const retryAfterMs = decision.retry === true ? this.queue.backoff(item) : undefined;
    const status: MirrorJobStatus = { ...decision.status };
    delete status.nextRetryTime;
    if (retryAfterMs !== undefined)
      status.nextRetryTime = new Date(observed.now.getTime() + retryAfterMs).toISOString();
    // Events before the status: whoever sees the new status finds the Events that explain it.
    await this.recordEvents(item, mjKey, decision.events);
    try {
      this.options.onDecision?.({ namespace, name }, decision, mj.status);
    } catch (err) {
      this.log.warn({ key: item, err: describeError(err) }, "onDecision failed");
    }
    if (!sameJson(status, mj.status)) {
      const written = await this.writeStatus(
        item,
        mjKey,
        status,
        raw,
        target.resourceVersion,
        target.finalizers,
      );
      if (!written) {
        // Decided from a stale cache: the watch brings the newer object and a new reconcile,
        // which will find the same facts: their Events are recorded already.
        this.unconfirmedEvents.set(item, new Set(decision.events.map(eventFingerprint)));
        this.log.debug({ key: item }, "status not written: the object changed meanwhile");
        return { ...decision, retry: false, requeueAfterMs: 200 };
      }
    }
    this.log.info(
      {
        key: item,
        phase: status.phase,
        actions: decision.actions.map((a) => a.kind),
        events: decision.events.map((e) => e.reason),
      },
      "reconciled",
    );
    return { ...decision, status, ...(retryAfterMs !== undefined && { retryAfterMs }) };
  }
}

/**
 * What a reconcile decides from, of the MirrorJob itself: its spec (by generation), its
 * deletion and finalizers, and its status. Two versions equal in these need no second look.
 */
function decisionInputs(
  meta:
    { generation?: number; deletionTimestamp?: Date | string; finalizers?: readonly string[] } | undefined,
  status: MirrorJobStatus | undefined,
): string {
  return canonicalJson({
    generation: meta?.generation,
    deletionTimestamp:
      meta?.deletionTimestamp === undefined ? undefined : new Date(meta.deletionTimestamp).toISOString(),
    finalizers: meta?.finalizers ?? [],
    status,
  });
}

/** What makes two Events the same fact. */
function eventFingerprint(event: EventSpec): string {
  return `${event.type}/${event.reason}/${event.note}`;
}
