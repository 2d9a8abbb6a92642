/**
 * The `hubmirror_*` gauges of one MirrorJob, computed from the object alone (pure).
 *
 * Why they are computed from the object: the status already holds everything the gauges say
 * (phase, last run, verification, conditions, pending change). Computing them at scrape time
 * from the informer cache means a deleted MirrorJob's series vanish with it, and every label
 * value comes from a bounded set (namespace/name of existing objects, enum values).
 *
 * The objects come from an informer cache, so nothing here trusts their shape: timestamps
 * may be strings (watch events) or Dates (lists), and fields may be missing.
 */
import { parseSchedule } from "../api/schedule.ts";
import { CATEGORIES, PHASES, type MirrorJobStatus } from "../api/status.ts";

/** The parts of a cached MirrorJob the gauges read. */
export interface MirrorJobLike {
  readonly metadata?: {
    readonly namespace?: string;
    readonly name?: string;
    readonly creationTimestamp?: Date | string;
  };
  readonly spec?: unknown;
  readonly status?: MirrorJobStatus;
}

export const RUN_RESULTS = ["Succeeded", "PartiallyFailed", "Failed", "Crashed"] as const;
export type RunResultLabel = (typeof RUN_RESULTS)[number];

/** PreflightPassed reasons that mean the target registry could not be used. */
export const REGISTRY_FAILURE_REASONS: readonly string[] = [
  "RegistryUnreachable",
  "RegistryAuthFailed",
  "RegistryTLSFailed",
];

export const GAUGES = {
  phase: "hubmirror_mirrorjob_phase",
  lastRunResult: "hubmirror_mirrorjob_last_run_result",
  lastSuccess: "hubmirror_mirrorjob_last_success_timestamp_seconds",
  created: "hubmirror_mirrorjob_created_timestamp_seconds",
  scheduleInterval: "hubmirror_mirrorjob_schedule_interval_seconds",
  runImages: "hubmirror_run_images",
  verificationMissing: "hubmirror_verification_missing_images",
  verificationMismatched: "hubmirror_verification_mismatched_images",
  registryReachable: "hubmirror_registry_reachable",
  pendingDisruptiveChange: "hubmirror_pending_disruptive_change",
  rolloutState: "hubmirror_rollout_state",
  rolloutStart: "hubmirror_rollout_start_timestamp_seconds",
  pruneAwaitingApproval: "hubmirror_prune_awaiting_approval",
  pruneFailed: "hubmirror_prune_failed",
  pruneFailedAttempts: "hubmirror_prune_failed_attempts",
  pruneLastManifests: "hubmirror_prune_last_manifests",
} as const;

/** Pruned condition reasons that mean a prune failed or was refused (it needs a person). */
export const PRUNE_FAILURE_REASONS: readonly string[] = ["PruneFailed", "PruneRefused"];

/** The states of hubmirror_prune_last_manifests and the status.prune.last field of each. */
export const PRUNE_MANIFEST_STATES = {
  planned: "manifests",
  deleted: "deleted",
  kept_in_use: "keptInUse",
  kept_shared: "keptShared",
  absent: "absent",
} as const;

export const ROLLOUT_STATES = ["Waiting", "RollingOut", "RolledOut", "Degraded", "Stuck"] as const;

export type GaugeKey = keyof typeof GAUGES;

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type GaugeSamples = Record<GaugeKey, Sample[]>;

/** Seconds since the epoch, or undefined for a missing or unparseable time. */
export function epochSeconds(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = (value instanceof Date ? value : new Date(value)).getTime();
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

/** A year of a schedule covers its daylight-saving changes and every month length. */
const SCAN_MS = 366 * 24 * 3600 * 1000;
/**
 * Bound on occurrences looked at: a daily or rarer schedule is scanned for a whole year; a
 * more frequent one for 500 runs, which shows its gap (cron-parser with a time zone takes
 * about 0.15 ms per occurrence, and this runs at scrape time, once per distinct schedule).
 */
const SCAN_OCCURRENCES = 500;

/**
 * The longest gap between consecutive runs of a schedule (seconds), over the year after `from`
 * (at least one gap; at most SCAN_OCCURRENCES). An alert "no success for longer than the
 * interval" can use it without knowing the cron syntax. Undefined for an invalid schedule.
 */
export function scheduleIntervalSeconds(
  schedule: string,
  timeZone: string | undefined,
  from: Date,
): number | undefined {
  const parsed = parseSchedule(schedule, timeZone);
  if (!parsed.ok) return undefined;
  const end = from.getTime() + SCAN_MS;
  let longest = 0;
  try {
    let previous = parsed.next(from);
    for (let i = 0; i < SCAN_OCCURRENCES && (i === 0 || previous.getTime() <= end); i++) {
      const next = parsed.next(previous);
      longest = Math.max(longest, next.getTime() - previous.getTime());
      previous = next;
    }
  } catch {
    // cron-parser throws when a schedule has no further occurrence.
    return longest > 0 ? longest / 1000 : undefined;
  }
  return longest / 1000;
}

const intervalCache = new Map<string, number | undefined>();
const INTERVAL_CACHE_LIMIT = 1000;

/** `scheduleIntervalSeconds` from now, remembered per schedule and time zone (scrapes are frequent). */
export function cachedScheduleInterval(schedule: string, timeZone: string | undefined): number | undefined {
  const key = `${schedule}\0${timeZone ?? ""}`;
  if (intervalCache.has(key)) return intervalCache.get(key);
  if (intervalCache.size >= INTERVAL_CACHE_LIMIT) intervalCache.clear();
  const value = scheduleIntervalSeconds(schedule, timeZone, new Date());
  intervalCache.set(key, value);
  return value;
}

function stringField(value: unknown, field: string): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const v = (value as Record<string, unknown>)[field];
  return typeof v === "string" ? v : undefined;
}

/** Every gauge sample of one MirrorJob; none for an object without namespace or name. */
export function mirrorJobSamples(
  mj: MirrorJobLike,
  scheduleInterval: (
    schedule: string,
    timeZone: string | undefined,
  ) => number | undefined = cachedScheduleInterval,
): GaugeSamples {
  const out: GaugeSamples = {
    phase: [],
    lastRunResult: [],
    lastSuccess: [],
    created: [],
    scheduleInterval: [],
    runImages: [],
    verificationMissing: [],
    verificationMismatched: [],
    registryReachable: [],
    pendingDisruptiveChange: [],
    rolloutState: [],
    rolloutStart: [],
    pruneAwaitingApproval: [],
    pruneFailed: [],
    pruneFailedAttempts: [],
    pruneLastManifests: [],
  };
  const namespace = mj.metadata?.namespace;
  const name = mj.metadata?.name;
  if (namespace === undefined || name === undefined || name === "") return out;
  const id = { namespace, name };
  const status = mj.status;

  for (const phase of PHASES) {
    out.phase.push({ labels: { ...id, phase }, value: status?.phase === phase ? 1 : 0 });
  }

  const last = status?.lastRun;
  if (last !== undefined) {
    // A finished run without a result never reported one: the controller calls that a crash.
    const result = last.result ?? "Crashed";
    for (const r of RUN_RESULTS)
      out.lastRunResult.push({ labels: { ...id, result: r }, value: r === result ? 1 : 0 });
    for (const category of CATEGORIES) {
      const counts = last.images?.[category];
      if (counts === undefined) continue;
      out.runImages.push({ labels: { ...id, category, state: "copied" }, value: counts.copied });
      out.runImages.push({ labels: { ...id, category, state: "failed" }, value: counts.failed });
    }
    if (last.verification !== undefined) {
      out.verificationMissing.push({ labels: id, value: last.verification.missing });
      out.verificationMismatched.push({ labels: id, value: last.verification.mismatched });
    }
  }

  const success = status?.lastSuccessfulRun;
  const successAt = epochSeconds(success?.completionTime ?? success?.startTime);
  if (successAt !== undefined) out.lastSuccess.push({ labels: id, value: successAt });

  const createdAt = epochSeconds(mj.metadata?.creationTimestamp);
  if (createdAt !== undefined) out.created.push({ labels: id, value: createdAt });

  const schedule = stringField(mj.spec, "schedule");
  if (schedule !== undefined) {
    const interval = scheduleInterval(schedule, stringField(mj.spec, "timeZone"));
    if (interval !== undefined) out.scheduleInterval.push({ labels: id, value: interval });
  }

  const preflight = status?.conditions?.find((c) => c.type === "PreflightPassed");
  if (preflight !== undefined) {
    out.registryReachable.push({
      labels: id,
      value: REGISTRY_FAILURE_REASONS.includes(preflight.reason) ? 0 : 1,
    });
  }

  out.pendingDisruptiveChange.push({ labels: id, value: status?.pendingChange?.disruptive === true ? 1 : 0 });

  const rollout = status?.rollout;
  if (rollout !== undefined) {
    for (const state of ROLLOUT_STATES)
      out.rolloutState.push({ labels: { ...id, state }, value: rollout.state === state ? 1 : 0 });
    const startedAt = epochSeconds(rollout.appliedTime ?? rollout.waitingSince);
    if (startedAt !== undefined) out.rolloutStart.push({ labels: id, value: startedAt });
  }

  // Pruning (spec.prune): absent until the MirrorJob has a Pruned condition or a prune status.
  const pruned = status?.conditions?.find((c) => c.type === "Pruned");
  if (pruned !== undefined) {
    out.pruneAwaitingApproval.push({
      labels: id,
      value: pruned.reason === "AwaitingPruneApproval" && status?.pendingPrune !== undefined ? 1 : 0,
    });
    out.pruneFailed.push({ labels: id, value: PRUNE_FAILURE_REASONS.includes(pruned.reason) ? 1 : 0 });
  }
  const prune = status?.prune;
  const attempts = prune?.current?.failedAttempts ?? prune?.last?.failedAttempts;
  if (attempts !== undefined) out.pruneFailedAttempts.push({ labels: id, value: attempts });
  const lastPrune = prune?.last;
  if (lastPrune !== undefined) {
    for (const [state, field] of Object.entries(PRUNE_MANIFEST_STATES))
      out.pruneLastManifests.push({ labels: { ...id, state }, value: lastPrune[field] });
  }
  return out;
}
