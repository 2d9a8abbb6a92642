/**
 * Runtime validation of MirrorJobs with the same schemas the CRD is generated from,
 * and error messages that name the field the way the API server does.
 */
import { z } from "zod";
import { API_VERSION, KIND, mirrorJobSpecSchema } from "./mirrorjob.ts";
import { mirrorJobStatusSchema } from "./status.ts";

export const mirrorJobSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: z.looseObject({
    name: z.string().min(1),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.union([z.string(), z.date()]).optional(),
    deletionTimestamp: z.union([z.string(), z.date()]).optional(),
    finalizers: z.array(z.string()).optional(),
  }),
  spec: mirrorJobSpecSchema,
  status: mirrorJobStatusSchema.optional(),
});

export type MirrorJob = z.output<typeof mirrorJobSchema>;

/** `["spec", "registry", "url"]` -> `spec.registry.url`; indexes as `[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`))
    .join("");
}

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export function fieldErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): FieldError[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        field: formatPath([...prefix, ...issue.path, key]),
        message: "unknown field",
      }));
    }
    return [{ field: formatPath([...prefix, ...issue.path]), message: issue.message }];
  });
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export function validateMirrorJob(input: unknown): Validated<MirrorJob> {
  const result = mirrorJobSchema.safeParse(input);
  return result.success ? { ok: true, value: result.data } : { ok: false, errors: fieldErrors(result.error) };
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join("; ");
}
