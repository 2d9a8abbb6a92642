/**
 * Runs as the reconcile core sees them: a Job's state, a run record adopted from a Job, a
 * finished run read from its sealed result, the images a run should have put into the
 * registry, and which finished runs the history limits expire. Pure.
 */
import type { V1ConfigMap, V1Container, V1ContainerStatus, V1Job, V1Pod } from "@kubernetes/client-node";
import type { Run } from "../api/status.ts";
import { LABELS, ownerName } from "../job/names.ts";
import { parseReference } from "../registry/reference.ts";
import type { ExpectedImage } from "../registry/verify.ts";
import { readResultConfigMap, type ReadResult, type RunResult } from "../report/result.ts";
import { event } from "./events.ts";
import type { EventSpec } from "./protocol.ts";

/** The longest run message status holds. */
const MAX_RUN_MESSAGE = 4096;

/**
 * Timestamps from informer caches are Dates (from lists) or strings (from watch events):
 * read both.
 */
export function toDate(value: Date | string | undefined, fallback: Date): Date {
  return value === undefined ? fallback : new Date(value);
}

/** The registry a MirrorJob mirrors to, `host[:port]` of spec.registry.url (of a target too). */
export function targetRegistry(url: string): string {
  return url.split("/")[0] ?? url;
}

/**
 * What a MirrorJob pushes into, spec.registry.url as one key for the run slots: the host in
 * lower case (host names are not case-sensitive; repository paths are), no trailing "/".
 */
export function targetOf(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  const slash = trimmed.indexOf("/");
  return slash < 0 ? trimmed.toLowerCase() : trimmed.slice(0, slash).toLowerCase() + trimmed.slice(slash);
}

export function jobFinished(job: V1Job): "Complete" | "Failed" | undefined {
  const done = job.status?.conditions?.find(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
  return done?.type as "Complete" | "Failed" | undefined;
}

function jobFailureMessage(job: V1Job): string | undefined {
  const failed = job.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
  return failed ? `${failed.reason ?? "Failed"}: ${failed.message ?? ""}`.trim() : undefined;
}

const TRIGGERS = ["Created", "SpecChanged", "RunRequest", "Schedule"] as const;

/** A run record for a Job the status does not know (adoption after a restart). */
export function runFromJob(job: V1Job, generation: number, now: Date): Run {
  const annotations = job.metadata?.annotations ?? {};
  const trigger = TRIGGERS.find((t) => t === annotations["hubmirror.dev/trigger"]) ?? "SpecChanged";
  return {
    id: job.metadata?.labels?.[LABELS.run] ?? "",
    jobName: job.metadata?.name ?? "",
    trigger,
    generation,
    startTime: toDate(job.metadata?.creationTimestamp, now).toISOString(),
    ...(annotations["hubmirror.dev/inputs-hash"] !== undefined && {
      inputsHash: annotations["hubmirror.dev/inputs-hash"],
    }),
  };
}

function totals(result: RunResult): { copied: number; failed: number; total: number } {
  return Object.values(result.images).reduce(
    (sum, c) => ({
      copied: sum.copied + c.copied,
      failed: sum.failed + c.failed,
      total: sum.total + c.total,
    }),
    { copied: 0, failed: 0, total: 0 },
  );
}

function describeCategories(result: RunResult): string {
  return Object.entries(result.images)
    .map(([cat, c]) => `${cat} ${c.copied}/${c.total}`)
    .join(", ");
}

/** The container of a run's Job that runs oc-mirror (src/job/builders.ts). */
const OC_MIRROR_CONTAINER = "oc-mirror";

/** A container of a run's pod that the kubelet reports killed for exceeding its memory limit. */
export interface OomKill {
  readonly pod: string;
  readonly container: string;
  /** Its memory limit, as the pod spec says (e.g. `64Mi`). */
  readonly limit?: string;
}

/** The pods of `job` among `pods` (by their controller owner reference). */
export function podsOfJob(pods: readonly V1Pod[], job: V1Job | undefined): V1Pod[] {
  const name = job?.metadata?.name;
  return name === undefined ? [] : pods.filter((p) => ownerName(p, "Job") === name);
}

/**
 * Containers (init containers included) the kubelet reports `OOMKilled`, now or before a
 * restart, from the pods' container statuses.
 */
export function oomKills(pods: readonly V1Pod[]): OomKill[] {
  return pods.flatMap((pod) => {
    const specs: readonly V1Container[] = [
      ...(pod.spec?.initContainers ?? []),
      ...(pod.spec?.containers ?? []),
    ];
    const statuses: readonly V1ContainerStatus[] = [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ];
    return statuses.flatMap((s): OomKill[] => {
      const killed = [s.state?.terminated, s.lastState?.terminated].some((t) => t?.reason === "OOMKilled");
      if (!killed) return [];
      const limit = specs.find((c) => c.name === s.name)?.resources?.limits?.memory;
      return [{ pod: pod.metadata?.name ?? "", container: s.name, ...(limit !== undefined && { limit }) }];
    });
  });
}

/** What an OOM kill means for the user, and what to do. */
function describeOomKill(kill: OomKill): string {
  const limit = kill.limit !== undefined ? ` of ${kill.limit}` : "";
  const what = `container ${kill.container} of pod ${kill.pod} was OOMKilled: it exceeded its memory limit${limit}`;
  return kill.container === OC_MIRROR_CONTAINER
    ? `${what}. Raise spec.mirror.resources.limits.memory, then change spec.runRequest to run again`
    : `${what}, which the operator sets; please report it`;
}

/**
 * A finished run, from its Job, its (sealed) result ConfigMap and its pods, and the Event that
 * says so. A run that did not succeed while a container of its pods was OOMKilled is a crash
 * that says which container and what to raise: the reporter only sees oc-mirror end by
 * SIGKILL (or, when the whole container was killed, its heartbeat stop).
 */
export function finishRun(
  run: Run,
  job: V1Job | undefined,
  cm: V1ConfigMap | undefined,
  now: Date,
  pods: readonly V1Pod[] = [],
): { run: Run; event: EventSpec } {
  const finishedAt =
    job?.status?.completionTime ??
    job?.status?.conditions?.find((c) => c.status === "True")?.lastTransitionTime;
  const completionTime = toDate(finishedAt, now).toISOString();
  const base: Run = { ...run, completionTime };
  delete base.progress;
  const ended = (
    result: NonNullable<Run["result"]>,
    record: Run,
    type: EventSpec["type"],
    reason: string,
    message: string,
  ) => ({
    run: { ...record, result, message: message.slice(0, MAX_RUN_MESSAGE) },
    event: event(type, reason, "Mirror", message, `run-${run.id}-ended`),
  });
  if (job === undefined) {
    const message = `run ${run.id} ended without a result: its Job ${run.jobName} was deleted`;
    return ended("Crashed", base, "Warning", "RunCrashed", message);
  }
  const read = readResultConfigMap(cm);
  const result = read.result;
  const killed = oomKills(podsOfJob(pods, job));
  const oomKilled = killed[0];
  if (
    oomKilled !== undefined &&
    (result === undefined || result.exit.outcome === "failure" || result.exit.outcome === "crash")
  ) {
    const also =
      killed.length > 1 ? ` (${killed.length - 1} more OOMKilled container(s) in the run's pods)` : "";
    const message = `run ${run.id} crashed: ${describeOomKill(oomKilled)}${also}`;
    const record: Run =
      result === undefined
        ? base
        : {
            ...base,
            ...(result.exit.code !== null && { exitCode: result.exit.code }),
            failedCategories: result.exit.failedCategories,
            images: result.images,
            failedImages: result.failedImages,
          };
    return ended("Crashed", record, "Warning", "RunCrashed", message);
  }
  if (result === undefined) {
    const why =
      read.problems.length > 0
        ? `its result is invalid (${read.problems.join("; ")})`
        : "no result was reported";
    const jobMessage = jobFailureMessage(job);
    const message =
      `run ${run.id} ended without a usable result: ${why}${jobMessage !== undefined ? `; Job: ${jobMessage}` : ""}. ` +
      `Check the pod (OOMKilled, evicted, deadline) and \`kubectl logs job/${run.jobName} -c oc-mirror\``;
    return ended("Crashed", base, "Warning", "RunCrashed", message);
  }
  const sum = totals(result);
  const record: Run = {
    ...base,
    ...(result.exit.code !== null && { exitCode: result.exit.code }),
    failedCategories: result.exit.failedCategories,
    images: result.images,
    failedImages: result.failedImages,
  };
  const firstFailures = result.failedImages
    .slice(0, 3)
    .map((f) => `${f.image}: ${f.error}`)
    .join("; ");
  switch (result.exit.outcome) {
    case "success":
      return ended(
        "Succeeded",
        record,
        "Normal",
        "RunSucceeded",
        `run ${run.id} mirrored ${sum.copied} images (${describeCategories(result)})`,
      );
    case "partial":
      return ended(
        "PartiallyFailed",
        record,
        "Warning",
        "RunPartiallyFailed",
        `run ${run.id}: ${result.failedImageCount} of ${sum.total} images failed (${result.exit.failedCategories.join(", ")}; ${describeCategories(result)}). ` +
          `First failures: ${firstFailures}. The other images were mirrored. Fix the failing images, then change spec.runRequest to retry`,
      );
    case "failure":
    case "crash": {
      const crashed = result.exit.outcome === "crash";
      const message =
        `run ${run.id} ${crashed ? "crashed" : "failed"}: ${result.exit.description.replace(/\.+$/, "")}` +
        (firstFailures !== "" ? `. First failures: ${firstFailures}` : "") +
        `. See \`kubectl logs job/${run.jobName} -c reporter\``;
      return crashed
        ? ended("Crashed", record, "Warning", "RunCrashed", message)
        : ended("Failed", record, "Warning", "RunFailed", message);
    }
  }
}

/** The Mirrored condition a finished run gives. */
export function mirroredCondition(run: Run): { status: "True" | "False"; reason: string; message: string } {
  const result = run.result ?? "Crashed";
  return {
    status: result === "Succeeded" ? "True" : "False",
    reason: result === "Succeeded" ? "RunSucceeded" : `Run${result}`,
    message: run.message ?? "",
  };
}

/** Runs that copied something are verified (a failed or crashed run has nothing to check). */
export function needsVerification(run: Run | undefined): run is Run {
  return (
    run !== undefined &&
    run.verification === undefined &&
    (run.result === "Succeeded" || run.result === "PartiallyFailed")
  );
}

/** `host/repository` of a reference (no tag or digest), or undefined when it does not parse. */
function repositoryOf(reference: string): string | undefined {
  try {
    const ref = parseReference(reference);
    return `${ref.registry}/${ref.repository}`;
  } catch {
    return undefined;
  }
}

/**
 * The images a run was to put into the registry, from its dry-run mapping, corrected by what
 * only the mirror pass knows: an operator catalog is rebuilt (filtered) during the run, and a
 * catalog pinned by digest without targetTag is pushed under `sha256-<digest of the rebuilt
 * catalog>`, which the dry run cannot name (it names another tag). The CatalogSource and
 * ClusterCatalog oc-mirror generated name the pushed catalog: the mapping's entry for that
 * repository is checked there instead (without a source digest: the content is new).
 */
export function expectedImages(read: ReadResult): ExpectedImage[] {
  const catalogs = new Map<string, string>();
  for (const o of read.clusterResources) {
    const spec = o.object.spec as { image?: unknown; source?: { image?: { ref?: unknown } } } | undefined;
    for (const image of [spec?.image, spec?.source?.image?.ref]) {
      const repository = typeof image === "string" ? repositoryOf(image) : undefined;
      if (typeof image === "string" && repository !== undefined) catalogs.set(repository, image);
    }
  }
  const seen = new Set<string>();
  return read.mapping.flatMap((entry): ExpectedImage[] => {
    const catalog = catalogs.get(repositoryOf(entry.destination) ?? "");
    const destination = catalog ?? entry.destination;
    if (seen.has(destination)) return [];
    seen.add(destination);
    if (catalog !== undefined) return [{ destination, kind: "catalog" }];
    return [
      {
        destination,
        ...(entry.sourceDigest !== undefined && { expectedDigest: entry.sourceDigest }),
        kind: /\/openshift\/release-images:/.test(destination) ? "release" : "image",
      },
    ];
  });
}

/** Finished runs beyond the history limits, oldest first. */
export function expiredRuns(
  jobs: readonly V1Job[],
  keep: { readonly successful: number; readonly failed: number },
  /** Runs kept whatever the limits (the prune baseline: its image set is needed later). */
  protect: ReadonlySet<string> = new Set(),
): V1Job[] {
  const finished = jobs
    .filter((j) => jobFinished(j) !== undefined && !protect.has(j.metadata?.labels?.[LABELS.run] ?? ""))
    .sort(
      (a, b) =>
        toDate(b.metadata?.creationTimestamp, new Date(0)).getTime() -
        toDate(a.metadata?.creationTimestamp, new Date(0)).getTime(),
    );
  const successful = finished.filter((j) => jobFinished(j) === "Complete");
  const failed = finished.filter((j) => jobFinished(j) === "Failed");
  return [...successful.slice(keep.successful), ...failed.slice(keep.failed)];
}
