/**
 * A test's or benchmark's own view of every MirrorJob and every run Job (the operator's), from
 * two list-watches that start again after an error (an API server restarted under them), so
 * what the operator did can be checked without asking it.
 */
import {
  BatchV1Api,
  CustomObjectsApi,
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type V1Job,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../src/api/status.ts";
import { LABELS, MANAGER } from "../src/job/names.ts";

export type WatchedMirrorJob = KubernetesObject & { status?: MirrorJobStatus };

export interface RunWatchHandlers {
  /** A MirrorJob added or updated; `key` is namespace/name. */
  mirrorJob(key: string, mj: WatchedMirrorJob): void;
  /** A run Job added or updated; `key` is its MirrorJob's namespace/name. */
  job(key: string, job: V1Job): void;
}

export interface RunWatch {
  stop(): Promise<void>;
}

/** Starts both watches, resolved once each has listed; `retryMs` after an error they start again. */
export async function watchRuns(
  kc: KubeConfig,
  handlers: RunWatchHandlers,
  retryMs = 500,
): Promise<RunWatch> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const batch = kc.makeApiClient(BatchV1Api);
  const mirrorJobs = new ListWatch<WatchedMirrorJob>(
    `/apis/${GROUP}/${VERSION}/${PLURAL}`,
    new Watch(kc),
    async () =>
      (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as {
        items: WatchedMirrorJob[];
        metadata: { resourceVersion: string };
      },
    false,
  );
  const onMirrorJob = (mj: WatchedMirrorJob) => {
    handlers.mirrorJob(`${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`, mj);
  };
  mirrorJobs.on("add", onMirrorJob);
  mirrorJobs.on("update", onMirrorJob);
  const selector = `${LABELS.managedBy}=${MANAGER}`;
  const jobs = new ListWatch<V1Job>(
    "/apis/batch/v1/jobs",
    new Watch(kc),
    () => batch.listJobForAllNamespaces({ labelSelector: selector }),
    false,
    selector,
  );
  const onJob = (job: V1Job) => {
    const owner = job.metadata?.ownerReferences?.find((o) => o.kind === "MirrorJob")?.name;
    if (owner !== undefined) handlers.job(`${job.metadata?.namespace ?? ""}/${owner}`, job);
  };
  jobs.on("add", onJob);
  jobs.on("update", onJob);
  let watching = true;
  const watches = [mirrorJobs, jobs] as ListWatch<KubernetesObject>[];
  for (const w of watches)
    w.on("error", () => {
      if (watching) setTimeout(() => void w.start().catch(() => undefined), retryMs);
    });
  await mirrorJobs.start();
  await jobs.start();
  return {
    async stop() {
      watching = false;
      for (const w of watches) await w.stop();
    },
  };
}
