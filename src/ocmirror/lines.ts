/**
 * The two oc-mirror v2 release lines the operator runs, and what differs between them for
 * an ImageSetConfiguration (read in their sources: 4.20 = release-4.20 9b186403, 5 = main
 * 855b64a3; see docs/oc-mirror-offline.md §5):
 * - 4.20 decodes the configuration strictly and knows no `platforms` filters and, on
 *   additional images, no `targetRepo` or `targetTag`: such a configuration exits 1.
 * - 5 cannot mirror a digest-only additional image from a registry host with a port
 *   (internal/pkg/image/image.go IsImageByTagAndDigest counts colons, so the port makes it
 *   "tag and digest" and the destination gets an empty tag: the whole collection fails, exit 8)
 *   unless the image has a `targetTag`. The operator adds the tag 4.20 would have used.
 */
import type { ImageSetConfiguration } from "../api/imageset.ts";
import type { FieldError } from "../api/validation.ts";
import { parseReference } from "../registry/reference.ts";

export const OC_MIRROR_LINES = ["4.20", "5"] as const;
export type OcMirrorLine = (typeof OC_MIRROR_LINES)[number];

/** Fields of a configuration that oc-mirror `line` would refuse; `at` names where it came from. */
export function lineErrors(isc: ImageSetConfiguration, line: OcMirrorLine, at: string): FieldError[] {
  if (line !== "4.20") return [];
  const unknown = (field: string, what: string): FieldError => ({
    field,
    message: `${what} needs oc-mirror 5; this MirrorJob's Jobs run oc-mirror 4.20 (spec.mirror.line), which refuses it`,
  });
  const m = isc.mirror;
  return [
    ...(m.platform?.platforms !== undefined ? [unknown(`${at}.mirror.platform.platforms`, "platforms")] : []),
    ...(m.operators ?? []).flatMap((op, i) =>
      op.platforms !== undefined ? [unknown(`${at}.mirror.operators[${i}].platforms`, "platforms")] : [],
    ),
    ...(m.additionalImages ?? []).flatMap((image, i) =>
      (["targetRepo", "targetTag", "platforms"] as const)
        .filter((field) => image[field] !== undefined)
        .map((field) => unknown(`${at}.mirror.additionalImages[${i}].${field}`, field)),
    ),
    ...(m.helm?.repositories ?? []).flatMap((repo, r) =>
      repo.charts.flatMap((chart, c) =>
        chart.platforms !== undefined
          ? [unknown(`${at}.mirror.helm.repositories[${r}].charts[${c}].platforms`, "platforms")]
          : [],
      ),
    ),
  ];
}

export interface AdaptedImageSet {
  readonly imageSet: ImageSetConfiguration;
  /** What the operator changed, for the user to read (a preflight message). */
  readonly notes: readonly string[];
}

/** The configuration as oc-mirror `line` needs it to mirror what the user asked for. */
export function adaptImageSet(isc: ImageSetConfiguration, line: OcMirrorLine): AdaptedImageSet {
  if (line !== "5" || isc.mirror.additionalImages === undefined) return { imageSet: isc, notes: [] };
  const notes: string[] = [];
  const additionalImages = isc.mirror.additionalImages.map((image) => {
    if (image.targetTag !== undefined) return image;
    const ref = parseReference(image.name);
    if (ref.tag !== undefined || ref.digest === undefined || !ref.registry.includes(":")) return image;
    // The tag 4.20 gives such an image, so both lines mirror it to the same place.
    const targetTag = ref.digest.replace(":", "-").slice(0, 128);
    notes.push(
      `added targetTag ${targetTag} to ${image.name}: oc-mirror 5 cannot mirror a digest-only image from a registry with a port without one`,
    );
    return { ...image, targetTag };
  });
  return { imageSet: { ...isc, mirror: { ...isc.mirror, additionalImages } }, notes };
}
