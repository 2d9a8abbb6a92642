/**
 * Stage "follow run": the run in progress, known from the status or a running Job to adopt
 * (an operator restarted mid-run). While its Job runs, the decision shows its progress and
 * ends (look again in 30 s, or at the Job's next event). When the Job has ended, the run is
 * sealed first (its Role revoked, its result made immutable: the `sealRun` query), then
 * finished from the sealed result; expired runs are deleted; the stages after this one go on.
 */
import { LABELS, runNames } from "../../job/names.ts";
import { readResultConfigMap } from "../../report/result.ts";
import type { Draft } from "../draft.ts";
import { after, type Decision } from "../protocol.ts";
import { expiredRuns, finishRun, jobFinished, mirroredCondition, runFromJob } from "../runs.ts";

/** How often a running Job is looked at even without watch events. */
export const RUN_POLL_MS = 30_000;

export function followRun(d: Draft): Decision | undefined {
  const { mj, observed } = d;
  const running = observed.jobs.find((j) => jobFinished(j) === undefined);
  const current =
    d.status.currentRun ?? (running !== undefined ? runFromJob(running, d.generation, d.now) : undefined);
  if (current === undefined) return undefined;
  const names = runNames(mj.metadata.name, current.id);
  const job = observed.jobs.find((j) => j.metadata?.name === current.jobName);
  if (job !== undefined && jobFinished(job) === undefined) {
    const progress = readResultConfigMap(observed.resultConfigMaps.get(names.result)).progress;
    d.status.currentRun = {
      ...current,
      ...(progress !== undefined && {
        progress: {
          copied: progress.copied,
          failed: progress.failed,
          total: progress.total,
          stage: progress.stage,
          updateTime: progress.updateTime,
          ...(progress.lastMessage !== undefined && { lastMessage: progress.lastMessage }),
        },
      }),
    };
    d.status.phase = "Mirroring";
    d.set("Reconciling", "True", "RunInProgress", `run ${current.id} (Job ${current.jobName}) is mirroring`);
    d.set("Ready", "False", "RunInProgress", `run ${current.id} is in progress`);
    d.remove("Stalled");
    return d.decision(after(RUN_POLL_MS));
  }
  // The result is read once more, from the API server, after it has been sealed.
  const sealed = observed.answers.sealRun;
  if (sealed?.runId !== current.id) {
    return d.decision({
      query: { kind: "sealRun", runId: current.id, resultName: names.result, roleName: names.role },
    });
  }
  const finished = finishRun(current, job, sealed.result, d.now, observed.pods);
  d.status.lastRun = finished.run;
  if (finished.run.result === "Succeeded") d.status.lastSuccessfulRun = finished.run;
  delete d.status.currentRun;
  const mirrored = mirroredCondition(finished.run);
  d.set("Mirrored", mirrored.status, mirrored.reason, mirrored.message);
  d.record(finished.event);
  const baseline = d.status.prune?.baselineRun;
  for (const expired of expiredRuns(
    observed.jobs,
    mj.spec.historyLimit,
    new Set(baseline !== undefined ? [baseline] : []),
  )) {
    d.effect({
      kind: "deleteRun",
      runId: expired.metadata?.labels?.[LABELS.run] ?? "",
      jobName: expired.metadata?.name ?? "",
    });
  }
  return undefined;
}
