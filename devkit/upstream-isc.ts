/**
 * ImageSetConfiguration (mirror.openshift.io/v2alpha1) snippets for the offline upstream's
 * content, and a builder that puts them together.
 */
import type { OperatorCatalog } from "./upstream-catalog.ts";
import type { ReleaseStream } from "./upstream-release.ts";

export type AdditionalImageName = "multiArch" | "digestPinned" | "tagOnly" | "missing";

export interface ImageSetParts {
  /**
   * A channel range of the release stream (default: the whole stream, `graph: true`), or with
   * `byTag` one release named by its tag in `platform.release` (no channel, no graph).
   */
  readonly release?:
    | boolean
    | {
        readonly minVersion?: string;
        readonly maxVersion?: string;
        readonly graph?: boolean;
        readonly byTag?: string;
      };
  /** Operator packages from the catalog (default: `demo-operator` of the upstream's catalog). */
  readonly operators?:
    | boolean
    | { readonly catalog?: string; readonly packages?: readonly string[]; readonly targetTag?: string };
  /** Additional images (default: multi-arch, digest-pinned and tag-only). */
  readonly additionalImages?: boolean | readonly AdditionalImageName[];
  /**
   * `targetTag` for the digest-pinned image: oc-mirror 5.x cannot mirror a digest-only image of
   * a registry with a port without one (internal/pkg/image/image.go IsImageByTagAndDigest).
   */
  readonly digestPinnedTargetTag?: string;
}

export interface ImageSetConfiguration {
  readonly kind: "ImageSetConfiguration";
  readonly apiVersion: "mirror.openshift.io/v2alpha1";
  readonly mirror: {
    readonly platform?: unknown;
    readonly operators?: readonly unknown[];
    readonly additionalImages?: readonly { readonly name: string; readonly targetTag?: string }[];
  };
}

export const DEFAULT_ADDITIONAL: readonly AdditionalImageName[] = ["multiArch", "digestPinned", "tagOnly"];

export function imageSetConfig(
  content: {
    readonly release: Pick<ReleaseStream, "channel"> & {
      readonly versions: readonly Pick<ReleaseStream["versions"][number], "version" | "reference">[];
    };
    readonly catalog: Pick<OperatorCatalog, "reference">;
    readonly images: Readonly<Record<AdditionalImageName, { readonly reference: string }>>;
  },
  parts: ImageSetParts,
): ImageSetConfiguration {
  const { release, catalog, images } = content;
  const mirror: {
    platform?: unknown;
    operators?: unknown[];
    additionalImages?: { name: string; targetTag?: string }[];
  } = {};
  if (parts.release !== undefined && parts.release !== false) {
    const r = parts.release === true ? {} : parts.release;
    const byTag = release.versions.find((v) => v.version === r.byTag);
    if (r.byTag !== undefined && byTag === undefined) throw new Error(`no release ${r.byTag} upstream`);
    mirror.platform =
      byTag !== undefined
        ? { release: byTag.reference, graph: r.graph ?? false }
        : {
            channels: [
              {
                name: release.channel,
                type: "ocp",
                minVersion: r.minVersion ?? release.versions[0]?.version,
                maxVersion: r.maxVersion ?? release.versions.at(-1)?.version,
              },
            ],
            graph: r.graph ?? true,
          };
  }
  if (parts.operators !== undefined && parts.operators !== false) {
    const o = parts.operators === true ? {} : parts.operators;
    mirror.operators = [
      {
        catalog: o.catalog ?? catalog.reference,
        ...(o.targetTag !== undefined && { targetTag: o.targetTag }),
        packages: (o.packages ?? ["demo-operator"]).map((name) => ({ name })),
      },
    ];
  }
  if (parts.additionalImages !== undefined && parts.additionalImages !== false) {
    const names = parts.additionalImages === true ? DEFAULT_ADDITIONAL : parts.additionalImages;
    mirror.additionalImages = names.map((n) => ({
      name: images[n].reference,
      ...(n === "digestPinned" &&
        parts.digestPinnedTargetTag !== undefined && { targetTag: parts.digestPinnedTargetTag }),
    }));
  }
  return { kind: "ImageSetConfiguration", apiVersion: "mirror.openshift.io/v2alpha1", mirror };
}
