/**
 * The operator's limits on runs in progress: at most `maxRuns` at once, and at most
 * `maxRunsPerRegistry` pushing to one target registry (`host[:port]` of spec.registry.url).
 * A hundred runs pushing the same manifests into the same repositories at the same moment
 * make a registry answer DIGEST_INVALID and MANIFEST_BLOB_UNKNOWN; two cores run a few
 * oc-mirrors well and a hundred badly.
 *
 * What is counted: the run Jobs in the controller's cache that have not finished (each by its
 * MirrorJob, registry from that MirrorJob's spec), plus runs being started: a reconcile that is
 * granted a slot holds it until the cache shows its Job (or gives it back if it creates none),
 * so runs started a moment ago count before their Job's watch event arrives.
 *
 * Why no two workers take the last slot: `acquire` checks and takes a slot in one synchronous
 * step (the controller answers the `runSlot` query without awaiting anything), and the workers
 * share this one object in one thread.
 *
 * Fair order: due runs that wait carry `status.queued.since`; slots go to the oldest first
 * (then by namespace/name), per registry, so a full registry does not hold up runs to another.
 * A run that is not among those the free slots go to waits, and the ones that are get woken
 * (`admissible`): when a run ends, its slot goes to the oldest waiting run.
 */
import { KIND } from "../api/mirrorjob.ts";
import { ownerName } from "../job/names.ts";
import type { RunSlot, RunSlotLimit } from "../reconcile/protocol.ts";
import { jobFinished, targetRegistry } from "../reconcile/runs.ts";
import type { ControllerCache } from "./cache.ts";

export interface RunLimits {
  /** Runs in progress at once, in all. */
  readonly maxRuns: number;
  /** Runs in progress at once to one target registry. */
  readonly maxRunsPerRegistry: number;
}

export const DEFAULT_RUN_LIMITS: RunLimits = { maxRuns: 10, maxRunsPerRegistry: 5 };

/**
 * How long a granted slot waits for its Job to appear in the cache before it no longer counts
 * (a Job deleted before its watch event arrived would otherwise hold the slot forever).
 */
const STARTING_TTL_MS = 60_000;

interface Candidate {
  readonly key: string;
  readonly registry: string;
  readonly since: string;
}

/** The registry a MirrorJob in the cache mirrors to ("" when its spec has none). */
function registryOfSpec(spec: unknown): string {
  const url = (spec as { registry?: { url?: unknown } } | undefined)?.registry?.url;
  return typeof url === "string" ? targetRegistry(url) : "";
}

export class RunSlots {
  private readonly limits: RunLimits;
  private readonly cache: ControllerCache;
  private readonly now: () => number;
  /** Runs being started, by MirrorJob key: granted a slot, their Job not yet in the cache. */
  private readonly starting = new Map<string, { readonly registry: string; readonly at: number }>();

  constructor(limits: RunLimits, cache: ControllerCache, now: () => number = () => performance.now()) {
    this.limits = limits;
    this.cache = cache;
    this.now = now;
  }

  /**
   * Runs in progress: MirrorJob key -> registry. A prune Job (oc-mirror delete) counts as one:
   * it works on the same registry, and with the MirrorJob's workspace.
   */
  private inProgress(): Map<string, string> {
    const running = new Map<string, string>();
    for (const job of this.cache.jobs.values()) {
      if (jobFinished(job) !== undefined) continue;
      const namespace = job.metadata?.namespace ?? "";
      const owner = ownerName(job, KIND);
      if (owner === undefined) continue;
      running.set(`${namespace}/${owner}`, registryOfSpec(this.cache.mirrorJobs.get(namespace, owner)?.spec));
    }
    const now = this.now();
    for (const [key, { registry, at }] of this.starting) {
      if (now - at > STARTING_TTL_MS) this.starting.delete(key);
      else if (!running.has(key)) running.set(key, registry);
    }
    return running;
  }

  /** Due runs waiting for a slot (by their status), oldest first, without those in progress. */
  private waiting(running: ReadonlyMap<string, string>, self?: Candidate): Candidate[] {
    const out: Candidate[] = [];
    for (const mj of this.cache.mirrorJobs.values()) {
      const since = mj.status?.queued?.since;
      if (since === undefined || mj.metadata?.deletionTimestamp !== undefined) continue;
      const key = `${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`;
      if (running.has(key) || key === self?.key) continue;
      out.push({ key, registry: registryOfSpec(mj.spec), since });
    }
    if (self !== undefined) out.push(self);
    return out.sort((a, b) =>
      a.since < b.since ? -1 : a.since > b.since ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
    );
  }

  /**
   * Hands the free slots to `candidates` in order. For each candidate: granted, or the limit
   * that stopped it, with the runs in progress under it and the candidates granted before it.
   */
  private allocate(
    running: ReadonlyMap<string, string>,
    candidates: readonly Candidate[],
  ): Map<string, RunSlot> {
    let total = running.size;
    const perRegistry = new Map<string, number>();
    for (const registry of running.values()) perRegistry.set(registry, (perRegistry.get(registry) ?? 0) + 1);
    const out = new Map<string, RunSlot>();
    let ahead = 0;
    const aheadPerRegistry = new Map<string, number>();
    for (const c of candidates) {
      const onRegistry = perRegistry.get(c.registry) ?? 0;
      if (total < this.limits.maxRuns && onRegistry < this.limits.maxRunsPerRegistry) {
        out.set(c.key, { granted: true });
        total++;
        perRegistry.set(c.registry, onRegistry + 1);
      } else {
        const limit: RunSlotLimit = total >= this.limits.maxRuns ? "global" : "registry";
        out.set(c.key, {
          granted: false,
          limit,
          max: limit === "global" ? this.limits.maxRuns : this.limits.maxRunsPerRegistry,
          inProgress:
            limit === "global" ? running.size : [...running.values()].filter((r) => r === c.registry).length,
          ahead: limit === "global" ? ahead : (aheadPerRegistry.get(c.registry) ?? 0),
        });
      }
      ahead++;
      aheadPerRegistry.set(c.registry, (aheadPerRegistry.get(c.registry) ?? 0) + 1);
    }
    return out;
  }

  /**
   * A slot for the due run of `key`, taken at once if granted. `wake` names waiting runs that
   * are granted before this one: they should be reconciled now.
   */
  acquire(key: string, registry: string, since: string): { slot: RunSlot; wake: string[] } {
    if (this.starting.has(key)) return { slot: { granted: true }, wake: [] };
    const running = this.inProgress();
    if (running.has(key)) return { slot: { granted: true }, wake: [] };
    const self: Candidate = { key, registry, since };
    const allocation = this.allocate(running, this.waiting(running, self));
    const slot = allocation.get(key) ?? { granted: true };
    if (slot.granted) this.starting.set(key, { registry, at: this.now() });
    const wake = [...allocation].filter(([k, s]) => k !== key && s.granted).map(([k]) => k);
    return { slot, wake };
  }

  /** Gives back the slot of a run that was not started after all. */
  release(key: string): void {
    this.starting.delete(key);
  }

  /** The cache shows a Job of `key`'s run: the Job counts from now on. */
  jobSeen(key: string): void {
    this.starting.delete(key);
  }

  /** Waiting runs that the free slots go to now (to reconcile them). */
  admissible(): string[] {
    const running = this.inProgress();
    if (running.size >= this.limits.maxRuns) return [];
    return [...this.allocate(running, this.waiting(running))].filter(([, s]) => s.granted).map(([k]) => k);
  }

  /** Runs in progress, and due runs waiting (metrics). */
  counts(): { inProgress: number; waiting: number } {
    const running = this.inProgress();
    return { inProgress: running.size, waiting: this.waiting(running).length };
  }
}
