/**
 * The operator's limits on runs in progress: at most `maxRuns` at once, at most
 * `maxRunsPerRegistry` pushing to one target registry (`host[:port]` of spec.registry.url),
 * and at most `maxRunsPerTarget` pushing into one target (the whole spec.registry.url: the same
 * repositories). Runs pushing the same manifests into the same repositories at the same moment
 * make a registry answer DIGEST_INVALID and MANIFEST_BLOB_UNKNOWN (a hundred runs did; two
 * MirrorJobs sharing an image did too, on distribution's filesystem storage, which writes a
 * repository's links in place), so by default such runs take turns; two cores run a few
 * oc-mirrors well and a hundred badly.
 *
 * What is counted: the run Jobs in the controller's cache that have not finished (each by its
 * MirrorJob, target from that MirrorJob's spec), plus runs being started: a reconcile that is
 * granted a slot holds it until the cache shows its Job (or gives it back if it creates none),
 * so runs started a moment ago count before their Job's watch event arrives.
 *
 * Why no two workers take the last slot: `acquire` checks and takes a slot in one synchronous
 * step (the controller answers the `runSlot` query without awaiting anything), and the workers
 * share this one object in one thread.
 *
 * Fair order: due runs that wait carry `status.queued.since`; slots go to the oldest first
 * (then by namespace/name), per registry and target, so a full one does not hold up runs to another.
 * A run that is not among those the free slots go to waits, and the ones that are get woken
 * (`admissible`): when a run ends, its slot goes to the oldest waiting run.
 */
import { KIND } from "../api/mirrorjob.ts";
import { ownerName } from "../job/names.ts";
import type { RunSlot } from "../reconcile/protocol.ts";
import { jobFinished, targetOf, targetRegistry } from "../reconcile/runs.ts";
import type { ControllerCache } from "./cache.ts";

export interface RunLimits {
  /** Runs in progress at once, in all. */
  readonly maxRuns: number;
  /** Runs in progress at once to one target registry. */
  readonly maxRunsPerRegistry: number;
  /** Runs in progress at once into one target (spec.registry.url: the same repositories). */
  readonly maxRunsPerTarget: number;
}

export const DEFAULT_RUN_LIMITS: RunLimits = { maxRuns: 10, maxRunsPerRegistry: 5, maxRunsPerTarget: 1 };

/**
 * How long a granted slot waits for its Job to appear in the cache before it no longer counts
 * (a Job deleted before its watch event arrived would otherwise hold the slot forever).
 */
const STARTING_TTL_MS = 60_000;

interface Candidate {
  readonly key: string;
  /** targetOf(spec.registry.url). */
  readonly target: string;
  readonly since: string;
}

/** The target a MirrorJob in the cache mirrors into ("" when its spec has none). */
function targetOfSpec(spec: unknown): string {
  const url = (spec as { registry?: { url?: unknown } } | undefined)?.registry?.url;
  return typeof url === "string" ? targetOf(url) : "";
}

/** Counts by key. */
function tally(keys: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

export class RunSlots {
  private readonly limits: RunLimits;
  private readonly cache: ControllerCache;
  private readonly now: () => number;
  /** Runs being started, by MirrorJob key: granted a slot, their Job not yet in the cache. */
  private readonly starting = new Map<string, { readonly target: string; readonly at: number }>();

  constructor(limits: RunLimits, cache: ControllerCache, now: () => number = () => performance.now()) {
    this.limits = limits;
    this.cache = cache;
    this.now = now;
  }

  /**
   * Runs in progress: MirrorJob key -> target. A prune Job (oc-mirror delete) counts as one:
   * it works on the same repositories, and with the MirrorJob's workspace.
   */
  private inProgress(): Map<string, string> {
    const running = new Map<string, string>();
    for (const job of this.cache.jobs.values()) {
      if (jobFinished(job) !== undefined) continue;
      const namespace = job.metadata?.namespace ?? "";
      const owner = ownerName(job, KIND);
      if (owner === undefined) continue;
      running.set(`${namespace}/${owner}`, targetOfSpec(this.cache.mirrorJobs.get(namespace, owner)?.spec));
    }
    const now = this.now();
    for (const [key, { target, at }] of this.starting) {
      if (now - at > STARTING_TTL_MS) this.starting.delete(key);
      else if (!running.has(key)) running.set(key, target);
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
      out.push({ key, target: targetOfSpec(mj.spec), since });
    }
    if (self !== undefined) out.push(self);
    return out.sort((a, b) =>
      a.since < b.since ? -1 : a.since > b.since ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
    );
  }

  /**
   * Hands the free slots to `candidates` in order. For each candidate: granted, or the limit
   * that stopped it, with the runs in progress under it and the candidates before it under it.
   */
  private allocate(
    running: ReadonlyMap<string, string>,
    candidates: readonly Candidate[],
  ): Map<string, RunSlot> {
    const targets = [...running.values()];
    // Each limit counts by its own key of a target: runs in progress, slots granted here, and
    // the candidates seen so far.
    const scopes = (
      [
        ["global", this.limits.maxRuns, () => ""],
        ["registry", this.limits.maxRunsPerRegistry, targetRegistry],
        ["target", this.limits.maxRunsPerTarget, (target: string) => target],
      ] as const
    ).map(([limit, max, keyOf]) => ({
      limit,
      max,
      keyOf,
      inProgress: tally(targets.map(keyOf)),
      granted: new Map<string, number>(),
      seen: new Map<string, number>(),
    }));
    const count = (counts: ReadonlyMap<string, number>, key: string) => counts.get(key) ?? 0;
    const out = new Map<string, RunSlot>();
    for (const c of candidates) {
      const keyed = scopes.map((scope) => ({ scope, key: scope.keyOf(c.target) }));
      const reached = keyed.find(
        ({ scope, key }) => count(scope.inProgress, key) + count(scope.granted, key) >= scope.max,
      );
      if (reached === undefined) {
        out.set(c.key, { granted: true });
        for (const { scope, key } of keyed) scope.granted.set(key, count(scope.granted, key) + 1);
      } else {
        const { scope, key } = reached;
        out.set(c.key, {
          granted: false,
          limit: scope.limit,
          max: scope.max,
          inProgress: count(scope.inProgress, key),
          ahead: count(scope.seen, key),
        });
      }
      for (const { scope, key } of keyed) scope.seen.set(key, count(scope.seen, key) + 1);
    }
    return out;
  }

  /**
   * A slot for the due run of `key`, taken at once if granted. `wake` names waiting runs that
   * are granted before this one: they should be reconciled now.
   */
  acquire(key: string, target: string, since: string): { slot: RunSlot; wake: string[] } {
    if (this.starting.has(key)) return { slot: { granted: true }, wake: [] };
    const running = this.inProgress();
    if (running.has(key)) return { slot: { granted: true }, wake: [] };
    const self: Candidate = { key, target, since };
    const allocation = this.allocate(running, this.waiting(running, self));
    const slot = allocation.get(key) ?? { granted: true };
    if (slot.granted) this.starting.set(key, { target, at: this.now() });
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
