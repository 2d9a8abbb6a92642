/**
 * MirrorJob status: kstatus-style conditions (metav1.Condition), the current and past
 * runs, applied resources, a pending disruptive change and registry pruning.
 */
import { z } from "zod";
import { APPLY_KINDS } from "./mirrorjob.ts";

const time = (description: string) => z.iso.datetime().describe(description);
const count = (description: string) => z.number().int().min(0).describe(description);

export const CONDITION_TYPES = [
  "Ready",
  "Reconciling",
  "Stalled",
  "PreflightPassed",
  "Mirrored",
  "Verified",
  "Applied",
  "RolledOut",
  "Pruned",
] as const;

export const conditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe(`Condition type: ${CONDITION_TYPES.join(", ")}.`),
    status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown."),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation the condition was set for."),
    lastTransitionTime: time("When the status last changed."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("CamelCase reason for the condition's last transition."),
    message: z.string().max(32768).describe("What happened and what to do about it."),
  })
  .strict()
  .describe("A metav1.Condition.");

export type Condition = z.output<typeof conditionSchema>;

export const PHASES = [
  "Pending",
  "Queued",
  "Preflight",
  "Mirroring",
  "Verifying",
  "Applying",
  "AwaitingApproval",
  "RollingOut",
  "Succeeded",
  "Failed",
  "Suspended",
  "Pruning",
] as const;

export const CATEGORIES = ["release", "operator", "additional", "helm"] as const;

const categoryCounts = z
  .object({
    copied: count("Images copied."),
    failed: count("Images that failed to copy."),
    total: count("Images to copy."),
  })
  .strict();

const progress = z
  .object({
    copied: count("Images copied so far."),
    failed: count("Images failed so far."),
    total: count("Images this run copies (0 until oc-mirror has counted them)."),
    stage: z
      .string()
      .max(64)
      .optional()
      .describe("What the run is doing, e.g. dry-run, mirroring, collecting."),
    lastMessage: z
      .string()
      .max(1024)
      .optional()
      .describe("The last line oc-mirror printed (secrets removed)."),
    updateTime: time("When the progress was reported."),
  })
  .strict()
  .describe("Live progress of the running oc-mirror.");

const trigger = z
  .enum(["Created", "SpecChanged", "RunRequest", "Schedule"])
  .describe("What started the run.");

export const runSchema = z
  .object({
    id: z.string().min(1).max(63).describe("Run identifier, unique within the MirrorJob."),
    jobName: z.string().max(63).describe("Name of the run's Job."),
    trigger,
    generation: z.number().int().min(0).describe("The .metadata.generation the run mirrored."),
    inputsHash: z
      .string()
      .max(64)
      .optional()
      .describe(
        "Hash of what the run mirrored (image set, registry, source, oc-mirror settings); a change starts a new run.",
      ),
    startTime: time("When the run started."),
    completionTime: time("When the run ended.").optional(),
    result: z
      .enum(["Succeeded", "PartiallyFailed", "Failed", "Crashed"])
      .optional()
      .describe(
        "Succeeded, PartiallyFailed (some images failed), Failed, or Crashed (no result was reported).",
      ),
    exitCode: z.number().int().optional().describe("oc-mirror's exit code."),
    failedCategories: z
      .array(z.enum(CATEGORIES))
      .max(4)
      .optional()
      .describe("Categories the exit code reports as failed."),
    images: z
      .object(
        Object.fromEntries(CATEGORIES.map((c) => [c, categoryCounts.optional().describe(`${c} images.`)])),
      )
      .strict()
      .optional()
      .describe("Per-category image counts."),
    failedImages: z
      .array(
        z
          .object({
            image: z.string().max(1024).describe("Source image."),
            error: z.string().max(2048).describe("Why it failed."),
          })
          .strict(),
      )
      .max(20)
      .optional()
      .describe("Up to 20 images that failed, with their errors."),
    message: z.string().max(4096).optional().describe("Summary of the run's outcome."),
    verification: z
      .object({
        reason: z.string().max(64).describe("The Verified condition's reason for this run."),
        checked: count("Images checked in the registry."),
        present: count("Images present with the expected content."),
        missing: count("Images missing from the registry."),
        mismatched: count("Images present with another digest than their source."),
        errors: count("Images that could not be checked."),
        completionTime: time("When the verification ended."),
      })
      .strict()
      .optional()
      .describe("The check of every image of the run's dry-run mapping in the target registry."),
    progress: progress.optional(),
  })
  .strict()
  .describe("A mirror run.");

export type Run = z.output<typeof runSchema>;

const poolState = z
  .object({
    name: z.string().max(253).describe("MachineConfigPool name."),
    state: z.enum(["Updating", "Updated", "Degraded"]).describe("Updating, Updated or Degraded."),
    machineCount: count("Machines in the pool."),
    updatedMachineCount: count("Machines on the pool's latest configuration."),
    degradedMachineCount: count("Machines the pool reports degraded."),
    message: z.string().max(1024).optional().describe("The pool's own words when it is degraded."),
  })
  .strict()
  .describe("A MachineConfigPool, as last seen.");

export const rolloutSchema = z
  .object({
    state: z
      .enum(["Waiting", "RollingOut", "RolledOut", "Degraded", "Stuck"])
      .describe(
        "Waiting (a change that drains nodes waits for the pools or for changes due with it), RollingOut, RolledOut, Degraded (a pool degraded) or Stuck (past spec.apply.rolloutDeadline).",
      ),
    run: z.string().max(63).describe("The run whose objects roll out."),
    drains: z
      .boolean()
      .describe("Whether the change drains nodes (an ImageTagMirrorSet, or removed or changed mirrors)."),
    mirrorSets: z
      .boolean()
      .describe("Whether the change touches mirror sets, so the MachineConfigPools roll it out."),
    waitingSince: time(
      "When the change became ready to apply (it waits while the pools update, and for drain-causing changes due with it).",
    ).optional(),
    appliedTime: time("When the change was applied.").optional(),
    completionTime: time("When the cluster had taken it up.").optional(),
    pools: z.array(poolState).max(64).optional().describe("The MachineConfigPools, as last seen."),
    catalogSources: z
      .array(
        z
          .object({
            namespace: z.string().max(63).describe("Namespace."),
            name: z.string().max(253).describe("Name."),
            state: z
              .string()
              .max(64)
              .describe("status.connectionState.lastObservedState, e.g. READY, TRANSIENT_FAILURE."),
          })
          .strict(),
      )
      .max(64)
      .optional()
      .describe("The applied CatalogSources, as last seen."),
    updateServices: z
      .array(
        z
          .object({
            namespace: z.string().max(63).describe("Namespace."),
            name: z.string().max(253).describe("Name."),
            available: z.boolean().describe("The Available condition is True."),
            reason: z.string().max(1024).optional().describe("Why not, in the UpdateService's own words."),
          })
          .strict(),
      )
      .max(16)
      .optional()
      .describe("The applied UpdateServices, as last seen."),
  })
  .strict()
  .describe("How the cluster takes up what the MirrorJob applied.");

export type Rollout = z.output<typeof rolloutSchema>;
const runId = (description: string) => z.string().min(1).max(63).describe(description);
const reference = z.string().max(1024);

const prunedKept = z
  .object({
    reference: reference.describe("A reference the prune keeps (host/repository:tag or @digest)."),
    reason: z
      .enum(["InCurrentSet", "SharedWithMirrorJob"])
      .describe(
        "InCurrentSet: this MirrorJob's current run references the same manifest; SharedWithMirrorJob: another MirrorJob's current run on the same registry does.",
      ),
    mirrorJob: z
      .string()
      .max(317)
      .optional()
      .describe("namespace/name of the MirrorJob that shares it (SharedWithMirrorJob)."),
  })
  .strict();

const pruneCounts = {
  manifests: count("Manifests (distinct digests per repository) the prune deletes."),
  tags: count("References (tags) of those manifests that oc-mirror listed."),
  keptInUse: count("Listed references kept: this MirrorJob's current run references the same manifest."),
  keptShared: count(
    "Listed references kept: another MirrorJob's current run on the same registry references the same manifest.",
  ),
  absent: count("Listed references already gone from the registry."),
};

const pendingPrune = z
  .object({
    hash: z
      .string()
      .max(64)
      .describe("Approve by setting spec.prune.approvedPlan to this value (with approval RequireApproval)."),
    fromRun: runId("The earlier run whose images are pruned."),
    toRun: runId("The applied run whose image set is kept."),
    ...pruneCounts,
    repositories: count("Repositories the deletions touch."),
    sample: z
      .array(reference)
      .max(10)
      .describe("Up to 10 references the prune deletes (by their manifest's digest)."),
    kept: z.array(prunedKept).max(10).describe("Up to 10 listed references the prune keeps, and why."),
    summary: z.string().max(4096).describe("What the prune would delete and keep."),
  })
  .strict()
  .describe("A registry prune planned and not carried out yet (see spec.prune).");

const prune = z
  .object({
    baselineRun: runId(
      "The run whose images are known to be in the registry: the next applied run is pruned against it (its Job and input are kept past historyLimit).",
    ).optional(),
    current: z
      .object({
        id: runId("The prune's identifier."),
        fromRun: runId("The earlier run whose images are pruned."),
        toRun: runId("The applied run whose image set is kept."),
        phase: z
          .enum(["Generating", "Planning", "Planned", "Deleting", "Failed"])
          .describe(
            "Generating (oc-mirror delete --generate runs), Planning, Planned (waiting for approval), Deleting (oc-mirror delete runs), Failed (gave up).",
          ),
        attempt: z
          .number()
          .int()
          .min(1)
          .describe("Which try of the current step this is (a failed one is retried)."),
        failedAttempts: count("Prune Jobs (or checks) of this prune that failed so far."),
        jobName: z.string().max(63).optional().describe("The Job of the current step."),
        hash: z.string().max(64).optional().describe("The plan's hash, once planned."),
        startTime: time("When the prune started."),
        message: z.string().max(4096).optional().describe("What the prune is doing or why it stopped."),
      })
      .strict()
      .optional()
      .describe("The prune in progress."),
    last: z
      .object({
        id: runId("The prune's identifier."),
        fromRun: runId("The earlier run whose images were pruned."),
        toRun: runId("The applied run whose image set was kept."),
        hash: z.string().max(64).optional().describe("The plan carried out."),
        result: z.enum(["Succeeded", "Failed"]).describe("Succeeded or Failed."),
        deleted: count("Manifests of the plan that are gone from the registry."),
        failedAttempts: count("Delete Jobs that failed (each was retried)."),
        ...pruneCounts,
        kept: z.array(prunedKept).max(10).describe("Up to 10 listed references kept, and why."),
        completionTime: time("When the prune ended."),
        message: z.string().max(4096).describe("What was deleted and kept, or why it failed."),
      })
      .strict()
      .optional()
      .describe("The last prune that ended."),
  })
  .strict()
  .describe("Registry pruning (spec.prune).");

export const mirrorJobStatusSchema = z
  .object({
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation the status reflects."),
    phase: z
      .enum(PHASES)
      .optional()
      .describe(`Where the MirrorJob is: ${PHASES.join(", ")}.`),
    conditions: z
      .array(conditionSchema)
      .max(16)
      .optional()
      .describe(
        "Ready, Reconciling, Stalled, PreflightPassed, Mirrored, Verified, Applied, RolledOut, Pruned.",
      )
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
    queued: z
      .object({
        trigger,
        since: time("When the run became due and had to wait for a run slot."),
      })
      .strict()
      .optional()
      .describe(
        "A run that is due and waits for a run slot (the operator's HUBMIRROR_MAX_RUNS, HUBMIRROR_MAX_RUNS_PER_REGISTRY and HUBMIRROR_MAX_RUNS_PER_TARGET): the oldest waiting run gets the next free slot.",
      ),
    currentRun: runSchema.optional().describe("The run in progress."),
    lastRun: runSchema.optional().describe("The last finished run."),
    lastSuccessfulRun: runSchema.optional().describe("The last run that succeeded."),
    appliedResources: z
      .array(
        z
          .object({
            kind: z.enum([...APPLY_KINDS, "ConfigMap", "Secret"]).describe("Kind of the applied object."),
            name: z.string().max(253).describe("Name."),
            namespace: z
              .string()
              .max(63)
              .optional()
              .describe("Namespace (empty for cluster-scoped objects)."),
            hash: z.string().max(64).describe("Hash of the applied content."),
          })
          .strict(),
      )
      .max(512)
      .optional()
      .describe("Objects the last applied run put on the cluster."),
    pendingChange: z
      .object({
        hash: z.string().max(64).describe("Approve by setting spec.apply.approvedChange to this value."),
        disruptive: z.boolean().describe("Whether applying it drains nodes."),
        summary: z.string().max(4096).describe("What would change."),
      })
      .strict()
      .optional()
      .describe("A change waiting for approval."),
    pendingPrune: pendingPrune.optional(),
    prune: prune.optional(),
    appliedRun: z
      .string()
      .max(63)
      .optional()
      .describe("The run whose generated objects are on the cluster (see appliedResources)."),
    rollout: rolloutSchema.optional(),
    nextScheduledRun: time("When the schedule starts the next run.").optional(),
    nextRetryTime: time(
      "When the operator tries again after a failure (preflight, a refused object, an error); it backs off per MirrorJob, doubling the wait up to 5 minutes. A change of the spec or of a referenced Secret or ConfigMap is acted on at once.",
    ).optional(),
    lastHandledRunRequest: z
      .string()
      .max(253)
      .optional()
      .describe("The spec.runRequest value last acted on."),
  })
  .strict()
  .describe("Observed state of the MirrorJob.");

export type MirrorJobStatus = z.output<typeof mirrorJobStatusSchema>;
