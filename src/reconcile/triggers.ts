/**
 * When a MirrorJob should start a run: its mirror inputs changed since the last run
 * (which includes creation), `spec.runRequest` differs from the last handled value, or
 * the schedule's next time has passed. Never while suspended. Each trigger has a token
 * that, with the MirrorJob's uid, names the run deterministically (see job/names.ts).
 */
import type { ImageSetConfiguration } from "../api/imageset.ts";
import type { MirrorJobSpec } from "../api/mirrorjob.ts";
import { parseSchedule } from "../api/schedule.ts";
import type { MirrorJobStatus } from "../api/status.ts";
import { contentHash } from "../util/hash.ts";

export type TriggerKind = "Created" | "SpecChanged" | "RunRequest" | "Schedule";

export interface Trigger {
  readonly kind: TriggerKind;
  readonly token: string;
}

/**
 * What a run mirrors: a change of any of these starts a new run. A volume's deletionPolicy
 * is left out: it says what happens on deletion, not what is mirrored (and leaving it out
 * keeps the hashes of MirrorJobs stored before the field existed, so no upgrade re-runs them).
 */
export function inputsHash(spec: MirrorJobSpec, imageSet: ImageSetConfiguration): string {
  const { registry, source, mirror, proxy } = spec;
  const withoutPolicy = ({ deletionPolicy: _, ...volume }: MirrorJobSpec["storage"]["cache"]) => volume;
  const storage = {
    cache: withoutPolicy(spec.storage.cache),
    workspace: withoutPolicy(spec.storage.workspace),
  };
  return contentHash({ imageSet, registry, source, mirror, storage, proxy }, 32);
}

/** The next scheduled time after the last run (or creation), if the spec has a schedule. */
export function nextScheduledRun(
  spec: MirrorJobSpec,
  status: MirrorJobStatus | undefined,
  created: Date,
): Date | undefined {
  if (spec.schedule === undefined) return undefined;
  const schedule = parseSchedule(spec.schedule, spec.timeZone);
  if (!schedule.ok) return undefined;
  const lastStart = status?.currentRun?.startTime ?? status?.lastRun?.startTime;
  const anchor = lastStart !== undefined && new Date(lastStart) > created ? new Date(lastStart) : created;
  return schedule.next(anchor);
}

export function dueTrigger(
  spec: MirrorJobSpec,
  status: MirrorJobStatus | undefined,
  hash: string,
  created: Date,
  now: Date,
): Trigger | undefined {
  if (spec.suspend) return undefined;
  if (spec.runRequest !== undefined && spec.runRequest !== status?.lastHandledRunRequest) {
    return { kind: "RunRequest", token: `request:${spec.runRequest}` };
  }
  const lastRun = status?.lastRun;
  if (status?.currentRun?.inputsHash !== hash && lastRun?.inputsHash !== hash) {
    return { kind: lastRun === undefined ? "Created" : "SpecChanged", token: `inputs:${hash}` };
  }
  const next = nextScheduledRun(spec, status, created);
  if (next !== undefined && next <= now) return { kind: "Schedule", token: `schedule:${next.toISOString()}` };
  return undefined;
}
