/**
 * MirrorJob status: kstatus-style conditions (metav1.Condition), the current and past
 * runs, applied resources and a pending disruptive change.
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
  "Succeeded",
  "Failed",
  "Suspended",
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
      .describe("Ready, Reconciling, Stalled, PreflightPassed, Mirrored, Verified, Applied.")
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
    queued: z
      .object({
        trigger,
        since: time("When the run became due and had to wait for a run slot."),
      })
      .strict()
      .optional()
      .describe(
        "A run that is due and waits for a run slot (the operator's HUBMIRROR_MAX_RUNS and HUBMIRROR_MAX_RUNS_PER_REGISTRY): the oldest waiting run gets the next free slot.",
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
    appliedRun: z
      .string()
      .max(63)
      .optional()
      .describe("The run whose generated objects are on the cluster (see appliedResources)."),
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
