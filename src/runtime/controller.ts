/**
 * The MirrorJob controller: watches (cache.ts) feed a work queue keyed by `namespace/name`;
 * workers, started once the caches have synced, reconcile each key: observe it from the
 * cache, ask the pure `decide`, let the shell (shell.ts) answer its queries and carry out its
 * effects, record its Events, write its status, and queue the key again as its `next` says.
 *
 * The loop's bookkeeping, each for a reason written where it is kept:
 * - the operator's own status writes are not a reason to reconcile again (ownWrites);
 * - a reconcile does not decide from a cache older than its own last write (replaced);
 * - Events recorded before a status write that lost a conflict are not recorded again when
 *   the next reconcile finds the same facts (unconfirmedEvents);
 * - a failure backs off per key, and the status says when the next try comes;
 * - runs in progress are limited (run-slots.ts): the controller answers decide's `runSlot`
 *   query itself, holds a granted slot until the run's Job is in the cache, and wakes the
 *   oldest waiting runs when a run ends.
 */
import type { KubernetesObject, V1ConfigMap, V1Job } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { KIND } from "../api/mirrorjob.ts";
import type { Condition, MirrorJobStatus } from "../api/status.ts";
import { formatFieldErrors, validateMirrorJob, type MirrorJob } from "../api/validation.ts";
import { isPruneObject, LABELS, MANAGER, ownerName } from "../job/names.ts";
import { jobFinished } from "../reconcile/runs.ts";
import { setCondition, settleConditions } from "../reconcile/conditions.ts";
import { decide } from "../reconcile/decide.ts";
import { referencedNames } from "../reconcile/preflight.ts";
import type { FleetRollout } from "../reconcile/rollout.ts";
import {
  withAnswer,
  type DecideSettings,
  type Decision,
  type EventSpec,
  type Next,
  type Observed,
} from "../reconcile/protocol.ts";
import { canonicalJson } from "../util/hash.ts";
import {
  ACTIVE_ROLLOUT_KEY,
  configMapRefKey,
  ControllerCache,
  jobIndexKey,
  mirrorJobIndexKey,
  secretRefKey,
  type CacheListener,
  type RawMirrorJob,
  type Resource,
  type Watches,
} from "./cache.ts";
import type { InformerEventType } from "./informer.ts";
import { describeError, retryAfterMs } from "./kube-api.ts";
import type { MirrorJobKey, MirrorJobVersion } from "./mirrorjob-writer.ts";
import { DEFAULT_RUN_LIMITS, RunSlots, type RunLimits } from "./run-slots.ts";
import type { Shell } from "./shell.ts";
import { WorkQueue, type WorkQueueObserver } from "./workqueue.ts";

export type { RawMirrorJob } from "./cache.ts";

/**
 * Per-key backoff of failed reconciles: 10 s, doubling, at most 5 minutes. A failing
 * registry check costs the registry a request or two per try, so a MirrorJob with a wrong
 * password makes at most 6 a minute, then fewer (a registry that locks accounts after failed
 * logins must not lock the mirror's). What fixes a failure (a spec change, a changed Secret or
 * ConfigMap) is acted on at once through its watch event; the backoff bounds only the tries
 * nothing announces, such as a registry coming back.
 */
export const BACKOFF_POLICY = { baseDelayMs: 10_000, maxDelayMs: 5 * 60_000 } as const;

/**
 * Upper bound of shell answers in one reconcile. The longest chain today is six (seal a run,
 * verify it, read and apply its objects, check the registry, start the next run); more means
 * decide asks in a circle, which fails the reconcile loudly.
 */
export const MAX_QUERIES = 10;

/** How long a reconcile waits for the cache to show the operator's own last status write. */
const CACHE_CATCH_UP_MS = 5_000;

/** How soon a key whose status write lost a conflict is looked at again. */
export const STALE_WRITE_REQUEUE_MS = 200;

/** How often start() checks whether the caches have synced. */
const SYNC_POLL_MS = 100;

export type ReconcileResult = "success" | "error" | "requeue" | "requeue_after";

export interface ControllerOptions {
  readonly logger: Logger;
  readonly settings: DecideSettings;
  /** All I/O of a reconcile beyond the cache. */
  readonly shell: Shell;
  /** Starts the watches that fill `cache` and report to `listener` (cache.ts's startWatches). */
  readonly watch: (cache: ControllerCache, listener: CacheListener) => Watches;
  readonly workers?: number;
  /** Limits on runs in progress (default DEFAULT_RUN_LIMITS). */
  readonly runLimits?: RunLimits;
  readonly queueObserver?: WorkQueueObserver;
  /** Called after each reconcile (metrics; results as controller-runtime counts them). */
  readonly onReconciled?: (result: ReconcileResult, seconds: number) => void;
  /** Called with each decision once its effects and Events are done (metrics). */
  readonly onDecision?: (
    mirrorJob: { readonly namespace: string; readonly name: string },
    decision: Decision,
    previousStatus: MirrorJobStatus | undefined,
  ) => void;
  /** Called when a MirrorJob is deleted (metrics). */
  readonly onMirrorJobDeleted?: (mirrorJob: { readonly namespace: string; readonly name: string }) => void;
  /** The clock (tests). */
  readonly now?: () => Date;
}

/** What a reconcile did, and when the key should come back. */
export interface Reconciled {
  readonly decision?: Decision;
  /** The status written (or left, when equal to the stored one). */
  readonly status?: MirrorJobStatus;
  readonly requeue:
    | { readonly kind: "none" }
    | { readonly kind: "after"; readonly ms: number }
    | { readonly kind: "backoff"; readonly ms: number };
}

function itemKey(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

/** Equal content, whatever the key order. */
function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
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

export class MirrorJobController {
  private readonly options: ControllerOptions;
  private readonly log: Logger;
  private readonly shell: Shell;
  private readonly now: () => Date;
  readonly cache = new ControllerCache();
  /** Runs in progress and being started, against the limits. */
  readonly slots: RunSlots;
  /** A queue per leadership term: a shut-down queue hands out nothing again. */
  private queue: WorkQueue;
  private watches: Watches | undefined;
  private workers: Promise<void>[] = [];
  private running = false;
  /**
   * Per key, what the object looks like after the operator's own last status write (see
   * decisionInputs): its watch event is not a reason to reconcile again (else every status
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
    this.shell = options.shell;
    this.now = options.now ?? (() => new Date());
    this.slots = new RunSlots(options.runLimits ?? DEFAULT_RUN_LIMITS, this.cache);
    this.queue = this.newQueue();
  }

  /** Queues the waiting runs that free slots go to now. */
  private wakeWaiting(): void {
    for (const key of this.slots.admissible()) this.queue.add(key);
  }

  private newQueue(): WorkQueue {
    return new WorkQueue({
      ...BACKOFF_POLICY,
      ...(this.options.queueObserver && { observer: this.options.queueObserver }),
    });
  }

  /** True once every watch has delivered its first full list. */
  synced(): boolean {
    return this.watches?.synced() === true;
  }

  /** Starts the watches, and the workers once the caches have synced. */
  start(): void {
    this.queue = this.newQueue();
    this.running = true;
    this.watches = this.options.watch(this.cache, (resource, type, obj) => {
      this.route(resource, type, obj);
    });
    const startWorkers = () => {
      if (!this.running) return;
      if (!this.synced()) {
        setTimeout(startWorkers, SYNC_POLL_MS).unref();
        return;
      }
      // Reconciling before the caches are complete would act on a partial picture.
      for (let i = 0; i < (this.options.workers ?? 2); i++) this.workers.push(this.work());
    };
    startWorkers();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.watches?.stop();
    this.watches = undefined;
    this.workers = [];
  }

  /** The MirrorJobs in the cache (as held: read-only), or undefined until it has synced. */
  mirrorJobs(): Iterable<Readonly<RawMirrorJob>> | undefined {
    return this.synced() ? this.cache.mirrorJobs.values() : undefined;
  }

  /** A ConfigMap from the cache (as held: read-only). */
  cachedConfigMap(namespace: string, name: string): Readonly<V1ConfigMap> | undefined {
    return this.cache.configMaps.get(namespace, name);
  }

  /** The keys an event concerns: the MirrorJob itself, the owner of a run's object, the referrers of an input. */
  private route(resource: Resource, type: InformerEventType, obj: KubernetesObject): void {
    const namespace = obj.metadata?.namespace ?? "";
    const add = (name: string | undefined) => {
      if (name !== undefined) this.queue.add(itemKey(namespace, name));
    };
    switch (resource) {
      case "mirrorJobs": {
        const item = itemKey(namespace, obj.metadata?.name);
        const mj = obj as RawMirrorJob;
        if (type === "delete") {
          this.forgetKey(item);
          this.options.onMirrorJobDeleted?.({ namespace, name: obj.metadata?.name ?? "" });
        } else if (type === "update" && this.ownWrites.get(item) === decisionInputs(mj.metadata, mj.status)) {
          return; // the operator's own status write: nothing new to act on
        }
        this.queue.add(item);
        return;
      }
      case "jobs": {
        const owner = ownerName(obj, KIND);
        if (owner === undefined) return;
        this.slots.jobSeen(itemKey(namespace, owner));
        add(owner);
        // A run that ended (or went) frees its slot for the oldest waiting run.
        if (type === "delete" || jobFinished(obj) !== undefined) this.wakeWaiting();
        return;
      }
      case "pods": {
        const job = ownerName(obj, "Job");
        const owner = job === undefined ? undefined : this.cache.jobs.get(namespace, job);
        add(owner === undefined ? undefined : ownerName(owner, KIND));
        return;
      }
      case "configMaps":
        if (obj.metadata?.labels?.[LABELS.managedBy] === MANAGER) add(ownerName(obj, KIND));
        else
          for (const mj of this.cache.mirrorJobs.byIndex(
            configMapRefKey(namespace, obj.metadata?.name ?? ""),
          ))
            add(mj.metadata?.name);
        return;
      case "secrets":
        for (const mj of this.cache.mirrorJobs.byIndex(secretRefKey(namespace, obj.metadata?.name ?? "")))
          add(mj.metadata?.name);
        return;
    }
  }

  /** Drops what the controller remembers of a MirrorJob that is gone. */
  private forgetKey(item: string): void {
    this.slots.release(item);
    this.wakeWaiting();
    this.ownWrites.delete(item);
    this.replaced.delete(item);
    this.unconfirmedEvents.delete(item);
    this.queue.forget(item);
  }

  private async work(): Promise<void> {
    for (let item = await this.queue.get(); item !== undefined; item = await this.queue.get()) {
      const started = performance.now();
      let result: ReconcileResult = "success";
      try {
        const { requeue } = await this.reconcile(item);
        if (requeue.kind === "backoff") {
          result = "requeue";
          this.queue.addAfter(item, requeue.ms);
        } else {
          this.queue.forget(item);
          if (requeue.kind === "after") {
            result = "requeue_after";
            this.queue.addAfter(item, requeue.ms);
          }
        }
      } catch (err) {
        result = "error";
        const message = describeError(err);
        this.log.error({ key: item, err: message }, "reconcile failed");
        // A throttled request waits as long as the API server asks, without counting a failure.
        const throttled = retryAfterMs(err);
        const delay = throttled ?? this.queue.backoff(item);
        if (throttled === undefined) await this.reportError(item, message, delay);
        this.queue.addAfter(item, delay);
      } finally {
        this.queue.done(item);
        this.options.onReconciled?.(result, (performance.now() - started) / 1000);
      }
    }
  }

  /**
   * The MirrorJob's world from the cache: its run Jobs, their pods and the run ConfigMaps, and
   * what it references.
   */
  private observe(mj: MirrorJob): Omit<Observed, "now" | "answers"> {
    const namespace = mj.metadata.namespace ?? "";
    const owner = mirrorJobIndexKey(namespace, mj.metadata.name);
    const refs = referencedNames(mj.spec);
    const fleet = this.cache.mirrorJobs
      .byIndex(ACTIVE_ROLLOUT_KEY)
      .filter((other) => other.metadata?.namespace !== namespace || other.metadata.name !== mj.metadata.name)
      .flatMap((other): FleetRollout[] => {
        const rollout = other.status?.rollout;
        return rollout === undefined
          ? []
          : [
              {
                namespace: other.metadata?.namespace ?? "",
                name: other.metadata?.name ?? "",
                state: rollout.state,
                drains: rollout.drains,
                ...(rollout.waitingSince !== undefined && { waitingSince: rollout.waitingSince }),
              },
            ];
      });
    const jobs = this.cache.jobs.byIndex(owner);
    return {
      fleet,
      jobs: jobs.filter((j) => !isPruneObject(j)),
      pruneJobs: jobs.filter(isPruneObject),
      // Pods are indexed by their Job (`namespace/job`).
      pods: jobs.flatMap((j) => this.cache.pods.byIndex(jobIndexKey(namespace, j.metadata?.name ?? ""))),
      resultConfigMaps: new Map(
        this.cache.configMaps.byIndex(owner).map((c): [string, V1ConfigMap] => [c.metadata?.name ?? "", c]),
      ),
      referenced: {
        secrets: new Map(refs.secrets.map((n) => [n, this.cache.secrets.get(namespace, n)])),
        configMaps: new Map(refs.configMaps.map((n) => [n, this.cache.configMaps.get(namespace, n)])),
      },
    };
  }

  /**
   * After a reconcile failed with an error: says so in the status, with the time of the
   * next try (best effort; the status write itself may fail for the same reason).
   */
  private async reportError(item: string, message: string, delayMs: number): Promise<void> {
    const [namespace = "", name = ""] = item.split("/");
    const raw = this.cache.mirrorJobs.get(namespace, name);
    if (raw === undefined) return;
    const now = this.now();
    const stored = raw.status?.conditions ?? [];
    const conditions = settleConditions(
      stored,
      setCondition(
        stored,
        { type: "Reconciling", status: "True", reason: "RetryingAfterError", message },
        raw.metadata?.generation ?? 0,
        now,
      ),
    );
    const status: MirrorJobStatus = {
      ...raw.status,
      conditions,
      nextRetryTime: new Date(now.getTime() + delayMs).toISOString(),
    };
    await this.writeStatus(item, this.keyOf(raw), status, raw).catch((err: unknown) => {
      this.log.debug({ key: item, err: describeError(err) }, "error not reported in status");
    });
  }

  private keyOf(raw: RawMirrorJob): MirrorJobKey {
    return {
      namespace: raw.metadata?.namespace ?? "",
      name: raw.metadata?.name ?? "",
      uid: raw.metadata?.uid ?? "",
    };
  }

  /**
   * Writes the status over exactly the version decided from (a stale write fails), and
   * remembers the write (see ownWrites and replaced). False for a stale write.
   */
  private async writeStatus(
    item: string,
    mjKey: MirrorJobKey,
    status: MirrorJobStatus,
    basis: RawMirrorJob,
    version: { resourceVersion: string | undefined; finalizers: readonly string[] } = {
      resourceVersion: basis.metadata?.resourceVersion,
      finalizers: basis.metadata?.finalizers ?? [],
    },
  ): Promise<boolean> {
    this.ownWrites.set(
      item,
      decisionInputs(
        {
          ...(basis.metadata?.generation !== undefined && { generation: basis.metadata.generation }),
          ...(basis.metadata?.deletionTimestamp !== undefined && {
            deletionTimestamp: basis.metadata.deletionTimestamp,
          }),
          finalizers: version.finalizers,
        },
        status,
      ),
    );
    const written = await this.shell
      .writeStatus(mjKey, status, version.resourceVersion)
      .catch((err: unknown) => {
        this.ownWrites.delete(item);
        throw err;
      });
    if (written === "stale") {
      this.ownWrites.delete(item);
      return false;
    }
    if (version.resourceVersion !== undefined)
      this.replaced.set(item, { resourceVersion: version.resourceVersion, at: performance.now() });
    return true;
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
    // At once: each Event is its own object, and none waits for another.
    await Promise.all(
      events
        .filter((event) => unconfirmed?.has(eventFingerprint(event)) !== true)
        .map((event) =>
          this.shell.recordEvent(mjKey, event).catch((err: unknown) => {
            this.log.warn({ key: item, reason: event.reason, err: describeError(err) }, "event not recorded");
          }),
        ),
    );
  }

  /** An invalid stored object (only possible under an older schema): say so and stop. */
  private async reportInvalid(item: string, raw: RawMirrorJob, message: string): Promise<Reconciled> {
    const generation = raw.metadata?.generation ?? 0;
    const now = this.now();
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
    if (!sameJson(status, raw.status)) await this.writeStatus(item, this.keyOf(raw), status, raw);
    return { status, requeue: { kind: "none" } };
  }

  /** How long the key waits for its next reconcile, as the decision's `next` says. */
  private requeueOf(item: string, next: Next): Reconciled["requeue"] {
    switch (next.kind) {
      case "backoff":
        return { kind: "backoff", ms: this.queue.backoff(item) };
      case "after":
        return { kind: "after", ms: next.ms };
      case "awaitChange":
        return { kind: "none" };
    }
  }

  async reconcile(item: string): Promise<Reconciled> {
    const [namespace = "", name = ""] = item.split("/");
    const raw = this.cache.mirrorJobs.get(namespace, name);
    if (raw === undefined) return { requeue: { kind: "none" } };
    if (this.cacheBehind(item, raw.metadata?.resourceVersion)) {
      this.log.debug({ key: item }, "waiting for the cache to show the last status write");
      return { requeue: { kind: "after", ms: 100 } };
    }
    const parsed = validateMirrorJob(raw);
    if (!parsed.ok) return this.reportInvalid(item, raw, formatFieldErrors(parsed.errors));
    const mj = parsed.value;
    const mjKey = this.keyOf(raw);
    const seen = this.observe(mj);
    const jobs = [...seen.jobs];
    // A Job created a moment ago may not be in the cache yet: ask the API before concluding it is gone.
    const currentJob = mj.status?.currentRun?.jobName;
    if (currentJob !== undefined && !jobs.some((j) => j.metadata?.name === currentJob)) {
      const job: V1Job | undefined = await this.shell.readJob(namespace, currentJob);
      if (job !== undefined) jobs.push(job);
    }
    // The same for the Job of a prune step.
    const pruneJobs = [...(seen.pruneJobs ?? [])];
    const pruneJob = mj.status?.prune?.current?.jobName;
    if (pruneJob !== undefined && !pruneJobs.some((j) => j.metadata?.name === pruneJob)) {
      const job: V1Job | undefined = await this.shell.readJob(namespace, pruneJob);
      if (job !== undefined) pruneJobs.push(job);
    }
    let observed: Observed = { ...seen, jobs, pruneJobs, now: this.now(), answers: {} };
    const target: MirrorJobVersion = {
      ...mjKey,
      resourceVersion: mj.metadata.resourceVersion,
      finalizers: mj.metadata.finalizers ?? [],
    };
    // Decide, answer the query, decide again: until a decision asks nothing more.
    let decision = decide(mj, observed, this.options.settings);
    let slotTaken = false;
    try {
      for (let queries = 0; decision.query !== undefined; queries++) {
        if (queries === MAX_QUERIES)
          throw new Error(
            `decide asked more than ${String(MAX_QUERIES)} queries (last: ${decision.query.kind})`,
          );
        // The effects of this pass first (a finalizer before an apply).
        for (const effect of decision.effects) await this.shell.effect(target, effect);
        const query = decision.query;
        if (query.kind === "runSlot") {
          // Answered here, in the same step as the decision that asked: nothing runs between
          // the count and the taking of the slot.
          const { slot, wake } = this.slots.acquire(item, query.target, query.since);
          slotTaken = slot.granted;
          for (const key of wake) this.queue.add(key);
          observed = withAnswer(observed, { kind: "runSlot", slot });
        } else observed = withAnswer(observed, await this.shell.answer(mjKey, query));
        decision = decide(mj, observed, this.options.settings);
      }
      for (const effect of decision.effects) await this.shell.effect(target, effect);
    } finally {
      // A slot taken by a reconcile that created no Job goes back, to the oldest waiting run.
      if (slotTaken && observed.answers.ensure?.outcome.ok !== true) {
        this.slots.release(item);
        this.wakeWaiting();
      }
    }
    const requeue = this.requeueOf(item, decision.next);
    // A failure backs off; the status says when the next try comes.
    const status: MirrorJobStatus = { ...decision.status };
    delete status.nextRetryTime;
    if (requeue.kind === "backoff")
      status.nextRetryTime = new Date(observed.now.getTime() + requeue.ms).toISOString();
    // Events before the status: whoever sees the new status finds the Events that explain it.
    await this.recordEvents(item, mjKey, decision.events);
    try {
      this.options.onDecision?.({ namespace, name }, decision, mj.status);
    } catch (err) {
      this.log.warn({ key: item, err: describeError(err) }, "onDecision failed");
    }
    if (!sameJson(status, mj.status)) {
      const written = await this.writeStatus(item, mjKey, status, raw, target);
      if (!written) {
        // Decided from a stale cache: the watch brings the newer object and a new reconcile,
        // which will find the same facts: their Events are recorded already.
        this.unconfirmedEvents.set(item, new Set(decision.events.map(eventFingerprint)));
        this.log.debug({ key: item }, "status not written: the object changed meanwhile");
        return { decision, requeue: { kind: "after", ms: STALE_WRITE_REQUEUE_MS } };
      }
    }
    this.log.info(
      {
        key: item,
        phase: status.phase,
        effects: decision.effects.map((e) => e.kind),
        events: decision.events.map((e) => e.reason),
      },
      "reconciled",
    );
    return { decision, status, requeue };
  }
}
