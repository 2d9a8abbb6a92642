/**
 * ImageSetConfiguration `mirror.openshift.io/v2alpha1`, the input of oc-mirror v2, with
 * oc-mirror's own checks (internal/pkg/config/validate.go): duplicate catalogs, packages
 * and channels; versions in semver notation; package-level and channel-level version bounds
 * not combined; `platforms` and `architectures` not combined. Unknown fields are rejected,
 * as oc-mirror does. (Blocked-image expressions are checked in semantic.ts.)
 */
import { z } from "zod";
import { imageReference, targetPath, targetTag, version } from "./common.ts";
import { pattern, uniqueBy, withRules } from "./rules.ts";

/** CEL for an optional string field, read as "" when absent. */
function opt(variable: string, field: string): string {
  return `(has(${variable}.${field}) ? ${variable}.${field} : '')`;
}

/** CEL for the identity of an operator catalog entry (oc-mirror's unique name). */
function catalogKey(v: string): string {
  return `${v}.catalog + '|' + ${opt(v, "targetCatalog")} + '|' + ${opt(v, "targetTag")}`;
}

const name = (description: string, max = 253) => z.string().min(1).max(max).describe(description);

const platformFilter = z
  .object({
    os: name("Operating system, e.g. linux.", 32),
    architecture: name("CPU architecture, e.g. amd64, arm64, ppc64le, s390x.", 32),
  })
  .strict()
  .describe("An OS/architecture pair to mirror from multi-architecture images.");

const platformFilters = (what: string) =>
  z
    .array(platformFilter)
    .max(16)
    .describe(`OS/architecture pairs to mirror for ${what}. Empty: all platforms.`);

const releaseChannel = z
  .object({
    name: name("Channel name, e.g. stable-4.19.", 64),
    type: z.enum(["ocp", "okd"]).optional().describe("Platform type of the channel (default ocp)."),
    minVersion: version(
      "Lowest release of the channel to mirror, e.g. 4.19.2. Pin it: unpinned channels mirror more than intended.",
    ).optional(),
    maxVersion: version("Highest release of the channel to mirror, e.g. 4.19.7.").optional(),
    shortestPath: z
      .boolean()
      .optional()
      .describe("Mirror only the shortest upgrade path between minVersion and maxVersion."),
    full: z
      .boolean()
      .optional()
      .describe(
        "Mirror every release of the channel (minVersion and maxVersion default to its first and last).",
      ),
  })
  .strict()
  .describe("An OpenShift or OKD release channel.");

const platform = withRules(
  z
    .object({
      graph: z
        .boolean()
        .optional()
        .describe("Mirror the update graph data image (needed for the OpenShift Update Service)."),
      channels: uniqueBy(z.array(releaseChannel).max(32), "name", "duplicate release channel name")
        .optional()
        .describe("Release channels to mirror."),
      architectures: z
        .array(z.enum(["amd64", "arm64", "ppc64le", "s390x", "multi"]))
        .max(5)
        .optional()
        .describe("Release architectures to mirror (deprecated in favour of platforms; default amd64)."),
      platforms: platformFilters("the release payload").optional(),
      release: imageReference("A release image to mirror directly, bypassing the update graph.").optional(),
      kubeVirtContainer: z
        .boolean()
        .optional()
        .describe("Also mirror the KubeVirt container image named by the release payload."),
    })
    .strict()
    .describe("OpenShift/OKD release content."),
  [
    {
      cel: "!(has(self.platforms) && size(self.platforms) > 0 && has(self.architectures) && size(self.architectures) > 0)",
      message: "platforms and architectures cannot be used together",
      check: (p) => !((p.platforms?.length ?? 0) > 0 && (p.architectures?.length ?? 0) > 0),
    },
  ],
);

const bounds = {
  minVersion: version("Lowest bundle version to mirror, plus the upgrade graph up to maxVersion.").optional(),
  maxVersion: version("Highest bundle version to mirror (the channel head).").optional(),
};

const includeChannel = z
  .object({ name: name("Channel name.", 128), ...bounds })
  .strict()
  .describe("A channel of an operator package.");

const includePackage = withRules(
  z
    .object({
      name: name("Package name, e.g. rhacm2 or advanced-cluster-management.", 128),
      channels: uniqueBy(z.array(includeChannel).max(32), "name", "duplicate channel name in the package")
        .optional()
        .describe("Channels to mirror; all when empty."),
      defaultChannel: name(
        "Channel to set as the package's default in the mirrored catalog.",
        128,
      ).optional(),
      ...bounds,
    })
    .strict()
    .describe("An operator package to mirror."),
  [
    {
      cel: "!((has(self.minVersion) || has(self.maxVersion)) && has(self.channels) && self.channels.exists(c, has(c.minVersion) || has(c.maxVersion)))",
      message:
        "package-level minVersion/maxVersion and channel-level minVersion/maxVersion cannot be combined",
      check: (p) =>
        !(
          (p.minVersion !== undefined || p.maxVersion !== undefined) &&
          (p.channels ?? []).some((c) => c.minVersion !== undefined || c.maxVersion !== undefined)
        ),
    },
  ],
);

const operatorCatalog = z
  .object({
    catalog: imageReference("Catalog image to mirror; pin it by digest for repeatable mirrors."),
    targetCatalog: targetPath(
      "Path (without registry, tag or digest) of the mirrored catalog in the target registry.",
    ).optional(),
    targetTag: targetTag(
      "Tag of the mirrored catalog (default: the source tag, or one derived from its digest).",
    ).optional(),
    full: z
      .boolean()
      .optional()
      .describe("Mirror every bundle of the selected packages, not only channel heads."),
    skipDependencies: z.boolean().optional().describe("Do not add the dependencies of the selected bundles."),
    targetCatalogSourceTemplate: name(
      "Path of a CatalogSource template inside the oc-mirror container. Refused: the operator mounts no such file " +
        "(oc-mirror would silently generate the CatalogSource without it).",
      1024,
    ).optional(),
    platforms: platformFilters("the catalog and operator images").optional(),
    packages: uniqueBy(z.array(includePackage).max(128), "name", "duplicate package name in the catalog")
      .optional()
      .describe("Packages to mirror; the whole catalog when empty."),
  })
  .strict()
  .describe("An operator catalog to mirror.");

const additionalImage = z
  .object({
    name: imageReference("Image to mirror, with registry host and tag or digest."),
    targetRepo: targetPath(
      "Repository path (without registry, tag or digest) of the image in the target registry.",
    ).optional(),
    targetTag: targetTag("Tag of the mirrored image.").optional(),
    platforms: platformFilters("this image").optional(),
  })
  .strict()
  .describe("An image to mirror as it is.");

const chart = z
  .object({
    name: name("Chart name.", 253),
    version: name("Chart version.", 64).optional(),
    path: name(
      "Path of a local chart archive inside the oc-mirror container. Refused: the operator mounts no such file; mirror charts from a repository.",
      1024,
    ).optional(),
    imagePaths: z
      .array(name("JSON path of an image field.", 512))
      .max(64)
      .optional()
      .describe("Extra JSON paths where the chart names images."),
    platforms: platformFilters("the chart's images").optional(),
  })
  .strict()
  .describe("A Helm chart whose images are mirrored.");

const helmRepository = z
  .object({
    name: name("Repository name.", 253),
    url: pattern(z.string().min(1).max(2048), "^https?://", "must be an http(s) URL").describe(
      "Repository URL (https://...).",
    ),
    charts: z.array(chart).max(256).describe("Charts to take from the repository."),
  })
  .strict()
  .describe("A Helm repository.");

export const mirrorSchema = z
  .object({
    platform: platform.optional(),
    operators: withRules(z.array(operatorCatalog).max(16).describe("Operator catalogs to mirror."), [
      {
        cel: `self.all(x, self.exists_one(y, ${catalogKey("y")} == ${catalogKey("x")}))`,
        message: "duplicate catalog (the same catalog, targetCatalog and targetTag)",
        check: (ops) =>
          new Set(ops.map((o) => `${o.catalog}|${o.targetCatalog ?? ""}|${o.targetTag ?? ""}`)).size ===
          ops.length,
      },
    ]).optional(),
    additionalImages: z.array(additionalImage).max(4096).optional().describe("Individual images to mirror."),
    helm: z
      .object({
        repositories: z.array(helmRepository).max(64).optional().describe("Helm repositories."),
        local: z
          .array(chart)
          .max(256)
          .optional()
          .describe(
            "Local chart archives. Refused: the operator mounts no such files; mirror charts from a repository.",
          ),
      })
      .strict()
      .optional()
      .describe("Helm charts whose images are mirrored."),
    blockedImages: z
      .array(
        z
          .object({
            // Whether it compiles is checked by the semantic validation: oc-mirror compiles it
            // with Go's RE2, which neither CEL nor JavaScript can check exactly.
            name: name("Regular expression (RE2 syntax) matched against image references.", 512),
          })
          .strict(),
      )
      .max(256)
      .optional()
      .describe("Images never to mirror, as regular expressions over image references."),
  })
  .strict()
  .describe("What to mirror.");

export const imageSetConfigurationSchema = z
  .object({
    apiVersion: z
      .enum(["mirror.openshift.io/v2alpha1"])
      .optional()
      .describe("mirror.openshift.io/v2alpha1 (may be omitted)."),
    kind: z.enum(["ImageSetConfiguration"]).optional().describe("ImageSetConfiguration (may be omitted)."),
    archiveSize: z
      .number()
      .int()
      .min(0)
      .max(1024)
      .optional()
      .describe("Archive segment size in GiB (mirror-to-disk only; ignored here)."),
    mirror: mirrorSchema,
  })
  .strict()
  .describe("An oc-mirror v2 ImageSetConfiguration (mirror.openshift.io/v2alpha1).");

export type ImageSetConfiguration = z.output<typeof imageSetConfigurationSchema>;
