/**
 * What the reporter of a prune Job (oc-mirror delete) writes into its result ConfigMap, and how
 * the controller reads it back. Untrusted, like a run's result: parsed with zod, bounded.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { gunzipSync } from "node:zlib";
import { z } from "zod";
import { CATEGORIES } from "../api/status.ts";
import { MAX_DELETE_ITEMS, type DeleteItem } from "../ocmirror/delete.ts";

export const PRUNE_RESULT_KEYS = {
  result: "prune-result",
  /** The DeleteImageList of `delete --generate`, as JSON items, gzip'd. */
  deleteList: "delete-list.json.gz",
} as const;

const counts = z.object({
  copied: z.number().int().min(0),
  failed: z.number().int().min(0),
  total: z.number().int().min(0),
});

export const pruneResultSchema = z.object({
  version: z.literal(1),
  step: z.enum(["generate", "delete"]),
  completedAt: z.iso.datetime(),
  exit: z.object({
    code: z.number().int().nullable(),
    outcome: z.enum(["success", "failure", "crash"]),
    description: z.string().max(1024),
  }),
  /** `delete`: per category, `copied` = deleted (oc-mirror's Results lines). */
  images: z.partialRecord(z.enum(CATEGORIES), counts),
  failedImages: z.array(z.object({ image: z.string().max(1024), error: z.string().max(2048) })).max(20),
  failedImageCount: z.number().int().min(0),
  /** `generate`: items in the delete list (also when oc-mirror's discovery ended with errors). */
  listed: z.number().int().min(0).optional(),
  /** Why the delete list could not be read. */
  listProblem: z.string().max(1024).optional(),
  lastMessage: z.string().max(1024).optional(),
});
export type PruneResult = z.output<typeof pruneResultSchema>;

const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const itemsSchema = z
  .array(
    z.object({
      imageName: z.string().min(1).max(1024),
      imageReference: z.string().min(1).max(1024),
      type: z.string().min(1).max(64),
    }),
  )
  .max(MAX_DELETE_ITEMS);

export interface ReadPruneResult {
  readonly result?: PruneResult;
  readonly items?: DeleteItem[];
  readonly problems: string[];
}

/** Reads a prune Job's result ConfigMap. Never throws. */
export function readPruneResult(cm: V1ConfigMap | undefined): ReadPruneResult {
  const problems: string[] = [];
  const text = cm?.data?.[PRUNE_RESULT_KEYS.result];
  let result: PruneResult | undefined;
  if (text !== undefined) {
    try {
      const parsed = pruneResultSchema.safeParse(JSON.parse(text));
      if (parsed.success) result = parsed.data;
      else
        problems.push(
          `result: ${parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`,
        );
    } catch (err) {
      problems.push(`result: ${(err as Error).message}`);
    }
  }
  const list = cm?.binaryData?.[PRUNE_RESULT_KEYS.deleteList];
  let items: DeleteItem[] | undefined;
  if (list !== undefined) {
    try {
      const raw = JSON.parse(
        gunzipSync(Buffer.from(list, "base64"), { maxOutputLength: MAX_INFLATED_BYTES }).toString("utf8"),
      ) as unknown;
      const parsed = itemsSchema.safeParse(raw);
      if (parsed.success) items = parsed.data;
      else
        problems.push(
          `delete list: ${parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`,
        );
    } catch (err) {
      problems.push(`delete list: ${(err as Error).message}`);
    }
  }
  return { ...(result !== undefined && { result }), ...(items !== undefined && { items }), problems };
}
