/**
 * What the reporter writes into a run's result ConfigMap, and how the controller reads
 * it back. The controller treats it as untrusted input: every key is parsed with these
 * schemas, sizes are bounded, and anything malformed is reported, never used.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { z } from "zod";
import { CATEGORIES } from "../api/status.ts";

export const RESULT_KEYS = {
  progress: "progress",
  result: "result",
  mapping: "mapping.json.gz",
  clusterResources: "cluster-resources.json.gz",
} as const;

/** ConfigMaps hold at most 1 MiB; leave room for metadata. */
export const MAX_RESULT_BYTES = 900 * 1024;
/** What a gzip'd key may expand to (a bound against decompression bombs). */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const category = z.enum(CATEGORIES);
const counts = z.object({
  copied: z.number().int().min(0),
  failed: z.number().int().min(0),
  total: z.number().int().min(0),
});

export const progressSchema = z.object({
  stage: z.string().max(64),
  copied: z.number().int().min(0),
  failed: z.number().int().min(0),
  total: z.number().int().min(0),
  lastMessage: z.string().max(1024).optional(),
  updateTime: z.iso.datetime(),
});
export type ReportedProgress = z.output<typeof progressSchema>;

export const runResultSchema = z.object({
  version: z.literal(1),
  completedAt: z.iso.datetime(),
  dryRunExitCode: z.number().int().nullable(),
  exit: z.object({
    code: z.number().int().nullable(),
    outcome: z.enum(["success", "partial", "failure", "crash"]),
    failedCategories: z.array(category).max(4),
    description: z.string().max(1024),
  }),
  images: z.partialRecord(category, counts),
  failedImages: z.array(z.object({ image: z.string().max(1024), error: z.string().max(2048) })).max(20),
  failedImageCount: z.number().int().min(0),
  /** Images the dry run planned to copy into the target registry. */
  plannedImageCount: z.number().int().min(0),
  message: z.string().max(4096).optional(),
});
export type RunResult = z.output<typeof runResultSchema>;

export const mappingEntrySchema = z.object({
  source: z.string().max(1024),
  destination: z.string().max(1024),
  sourceDigest: z.string().max(128).optional(),
});
export type ResultMappingEntry = z.output<typeof mappingEntrySchema>;

export const generatedObjectSchema = z.object({
  file: z.string().max(255),
  apiVersion: z.string().max(253),
  kind: z.string().max(63),
  name: z.string().max(253),
  namespace: z.string().max(63).optional(),
  object: z.record(z.string(), z.unknown()),
});
export type ResultGeneratedObject = z.output<typeof generatedObjectSchema>;

export function encodeJsonGzip(value: unknown): string {
  return gzipSync(JSON.stringify(value)).toString("base64");
}

function decodeJsonGzip(base64: string): unknown {
  return JSON.parse(
    gunzipSync(Buffer.from(base64, "base64"), { maxOutputLength: MAX_INFLATED_BYTES }).toString("utf8"),
  );
}

export interface ReadResult {
  readonly progress?: ReportedProgress;
  readonly result?: RunResult;
  readonly mapping: ResultMappingEntry[];
  readonly clusterResources: ResultGeneratedObject[];
  /** Why a present key could not be used. */
  readonly problems: string[];
}

/** Reads a result ConfigMap written by the reporter. Never throws. */
export function readResultConfigMap(cm: V1ConfigMap | undefined): ReadResult {
  const problems: string[] = [];
  const parse = <T>(what: string, schema: z.ZodType<T>, raw: () => unknown): T | undefined => {
    try {
      const parsed = schema.safeParse(raw());
      if (parsed.success) return parsed.data;
      problems.push(
        `${what}: ${parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`,
      );
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
    return undefined;
  };
  const data = cm?.data ?? {};
  const binary = cm?.binaryData ?? {};
  const progressText = data[RESULT_KEYS.progress];
  const resultText = data[RESULT_KEYS.result];
  const mapping = binary[RESULT_KEYS.mapping];
  const resources = binary[RESULT_KEYS.clusterResources];
  const progress =
    progressText !== undefined
      ? parse("progress", progressSchema, () => JSON.parse(progressText))
      : undefined;
  const result =
    resultText !== undefined ? parse("result", runResultSchema, () => JSON.parse(resultText)) : undefined;
  return {
    ...(progress !== undefined && { progress }),
    ...(result !== undefined && { result }),
    mapping:
      (mapping !== undefined &&
        parse("mapping", z.array(mappingEntrySchema).max(100_000), () => decodeJsonGzip(mapping))) ||
      [],
    clusterResources:
      (resources !== undefined &&
        parse("cluster resources", z.array(generatedObjectSchema).max(1_000), () =>
          decodeJsonGzip(resources),
        )) ||
      [],
    problems,
  };
}
