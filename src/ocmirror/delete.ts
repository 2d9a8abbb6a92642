/**
 * oc-mirror v2's delete workflow formats (both pinned lines; source paths relative to the
 * module root, see docs/oc-mirror-offline.md §8):
 *
 * - `oc-mirror --v2 delete --generate -c <DeleteImageSetConfiguration> --workspace file://<ws>
 *   docker://<registry> [--delete-id <id>]` collects what the configuration names from the
 *   workspace and the cache, the way a disk-to-mirror run would, and writes
 *   `working-dir/delete/delete-images[-<id>].yaml` (a DeleteImageList) and
 *   `delete-imageset-config[-<id>].yaml` (internal/pkg/delete/delete_images.go WriteDeleteMetaData;
 *   `--delete-id` puts `-<id>` before the extension). It deletes nothing.
 * - `oc-mirror --v2 delete --delete-yaml-file <list> docker://<registry>` deletes every
 *   `imageReference` of the list: containers/image reads the manifest and sends
 *   `DELETE /v2/<repository>/manifests/<digest>` (internal/pkg/mirror/mirror.go delete), which in a
 *   distribution registry removes the manifest and every tag of that repository that points at it.
 *
 * The DeleteImageSetConfiguration is an ImageSetConfiguration whose `mirror` is called `delete`
 * (internal/pkg/api/v2alpha1/type_config.go `Delete`: platform, operators, additionalImages,
 * helm, samples; no blockedImages), decoded with unknown fields refused
 * (internal/pkg/config/load.go LoadConfig).
 */
import { parse, stringify } from "yaml";
import { z } from "zod";

export const DELETE_API_VERSION = "mirror.openshift.io/v2alpha1";
/** `working-dir/delete/` (internal/pkg/delete/const.go). */
export const DELETE_DIR = "delete";

/** The DeleteImageList oc-mirror writes for `--delete-id <id>` (delete_images.go WriteDeleteMetaData). */
export function deleteListFileName(deleteId: string): string {
  return `delete-images-${deleteId}.yaml`;
}

/** Fields of an ImageSetConfiguration's `mirror` that a DeleteImageSetConfiguration's `delete` takes. */
const DELETE_FIELDS = ["platform", "operators", "additionalImages", "helm", "samples"] as const;

/**
 * The DeleteImageSetConfiguration that names everything an ImageSetConfiguration (YAML, as a
 * run's input ConfigMap holds it) mirrors. Fields `delete` does not know (blockedImages) are
 * left out: what was blocked was never mirrored.
 */
export function deleteImageSetConfiguration(imageSetYaml: string): string {
  const parsed = parse(imageSetYaml) as unknown;
  const mirror =
    parsed !== null && typeof parsed === "object" ? (parsed as { mirror?: unknown }).mirror : undefined;
  if (mirror === null || typeof mirror !== "object")
    throw new Error("the image set configuration has no mirror section");
  const source = mirror as Record<string, unknown>;
  const del: Record<string, unknown> = {};
  for (const field of DELETE_FIELDS) if (source[field] !== undefined) del[field] = source[field];
  return stringify({ apiVersion: DELETE_API_VERSION, kind: "DeleteImageSetConfiguration", delete: del });
}

/** The most items a list may hold (a bound on untrusted input: a release has about 200 images). */
export const MAX_DELETE_ITEMS = 50_000;

const deleteItem = z.object({
  imageName: z.string().min(1).max(1024),
  imageReference: z.string().min(1).max(1024),
  type: z.string().min(1).max(64),
});
export type DeleteItem = z.output<typeof deleteItem>;

const deleteImageList = z.object({
  kind: z.literal("DeleteImageList"),
  apiVersion: z.string().max(64),
  items: z.array(deleteItem).max(MAX_DELETE_ITEMS).nullable(),
});

/** Reads a DeleteImageList (untrusted: written in the Job's pod). */
export function parseDeleteImageList(text: string): { items: DeleteItem[] } | { error: string } {
  let raw: unknown;
  try {
    raw = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    return { error: `not YAML: ${err instanceof Error ? err.message : String(err)}` };
  }
  const result = deleteImageList.safeParse(raw);
  if (!result.success)
    return {
      error: result.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join(".")}: ${i.message}`)
        .join("; "),
    };
  return { items: result.data.items ?? [] };
}

/** A DeleteImageList for `--delete-yaml-file`. */
export function deleteImageListYaml(items: readonly DeleteItem[]): string {
  return stringify({
    apiVersion: DELETE_API_VERSION,
    kind: "DeleteImageList",
    items: items.map((i) => ({ imageName: i.imageName, imageReference: i.imageReference, type: i.type })),
  });
}

/** `docker://host/repo:tag` -> `host/repo:tag` */
export function withoutDockerTransport(reference: string): string {
  return reference.replace(/^docker:\/\//, "");
}
