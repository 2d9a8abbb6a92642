/**
 * A file-based operator catalog (FBC) for the offline upstream: a catalog image whose config
 * carries the label `operators.operatorframework.io.index.configs.v1=/configs` and whose layer
 * holds `configs/<package>/catalog.json` (olm.package, olm.channel, olm.bundle documents), plus the
 * bundle images and their related images, all named by digest in the source registry.
 *
 * What oc-mirror reads (commit 855b64a3): internal/pkg/operator/catalog_handler.go (the label, then
 * the layer files whose path contains the label's folder), the filtering by
 * github.com/sherine-k/catalog-filter (channel heads by default; needs each bundle's `olm.package`
 * property with its version), internal/pkg/operator/common.go (bundle `image` and `relatedImages`
 * become copies: a digest-only reference is pushed as `:sha256-<hex>`).
 */
import type { RegistryClient } from "../src/registry/client.ts";
import { buildImage, pushImage } from "./images.ts";

export const CATALOG_REPOSITORY = "redhat/redhat-operator-index";
export const CATALOG_TAG = "v4.19";
export const CONFIGS_LABEL = "operators.operatorframework.io.index.configs.v1";

export interface CatalogBundle {
  readonly name: string;
  readonly version: string;
  /** The bundle image by digest. */
  readonly image: string;
  readonly relatedImages: readonly { readonly name: string; readonly image: string }[];
}

export interface CatalogPackage {
  readonly name: string;
  readonly defaultChannel: string;
  readonly channels: readonly { readonly name: string; readonly entries: readonly string[] }[];
  readonly bundles: readonly CatalogBundle[];
}

export interface OperatorCatalog {
  /** `<source>/redhat/redhat-operator-index:v4.19` */
  readonly reference: string;
  readonly digest: string;
  readonly packages: readonly CatalogPackage[];
}

interface PackageSpec {
  readonly name: string;
  readonly defaultChannel: string;
  /** channel -> bundle versions in upgrade order (each replaces the previous one) */
  readonly channels: Readonly<Record<string, readonly string[]>>;
  /** related images every bundle of the package has besides its own manager image */
  readonly sharedRelated: readonly string[];
}

const PACKAGES: readonly PackageSpec[] = [
  {
    name: "demo-operator",
    defaultChannel: "stable",
    channels: { stable: ["1.0.0", "1.1.0"], fast: ["1.1.0", "1.2.0"] },
    sharedRelated: ["operand"],
  },
  {
    name: "other-operator",
    defaultChannel: "alpha",
    channels: { alpha: ["0.1.0"] },
    sharedRelated: [],
  },
];

/** Builds and pushes the bundles, related images and catalog image. */
export async function pushOperatorCatalog(client: RegistryClient): Promise<OperatorCatalog> {
  const host = client.registry;
  const ref = (repository: string, digest: string) => `${host}/${repository}@${digest}`;
  const packages: CatalogPackage[] = [];
  const documents = new Map<string, unknown[]>();
  for (const spec of PACKAGES) {
    const shared = new Map<string, string>();
    for (const related of spec.sharedRelated) {
      const repository = `demo/${spec.name}-${related}`;
      const image = await buildImage({ name: `${spec.name} ${related}` });
      await pushImage(client, repository, "latest", image);
      shared.set(related, ref(repository, image.digest));
    }
    const versions = [...new Set(Object.values(spec.channels).flat())];
    const bundles: CatalogBundle[] = [];
    for (const version of versions) {
      const bundleName = `${spec.name}.v${version}`;
      const managerRepository = `demo/${spec.name}-manager`;
      const manager = await buildImage({ name: `${spec.name} manager ${version}` });
      await pushImage(client, managerRepository, `v${version}`, manager);
      const relatedImages = [
        { name: "manager", image: ref(managerRepository, manager.digest) },
        ...[...shared].map(([name, image]) => ({ name, image })),
      ];
      const bundleRepository = `demo/${spec.name}-bundle`;
      const bundle = await buildImage({
        name: `${bundleName} bundle`,
        files: {
          [`manifests/${spec.name}.clusterserviceversion.yaml`]: `apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: ${bundleName}\nspec:\n  version: ${version}\n`,
          "metadata/annotations.yaml": `annotations:\n  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n  operators.operatorframework.io.bundle.manifests.v1: manifests/\n  operators.operatorframework.io.bundle.metadata.v1: metadata/\n  operators.operatorframework.io.bundle.package.v1: ${spec.name}\n  operators.operatorframework.io.bundle.channels.v1: ${Object.keys(spec.channels).join(",")}\n`,
        },
        labels: {
          "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
          "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
          "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
          "operators.operatorframework.io.bundle.package.v1": spec.name,
        },
      });
      await pushImage(client, bundleRepository, `v${version}`, bundle);
      bundles.push({
        name: bundleName,
        version,
        image: ref(bundleRepository, bundle.digest),
        relatedImages,
      });
    }
    const channels = Object.entries(spec.channels).map(([name, channelVersions]) => ({
      name,
      entries: channelVersions.map((v) => `${spec.name}.v${v}`),
    }));
    packages.push({ name: spec.name, defaultChannel: spec.defaultChannel, channels, bundles });
    documents.set(spec.name, [
      { schema: "olm.package", name: spec.name, defaultChannel: spec.defaultChannel },
      ...Object.entries(spec.channels).map(([name, channelVersions]) => ({
        schema: "olm.channel",
        package: spec.name,
        name,
        entries: channelVersions.map((v, i) => ({
          name: `${spec.name}.v${v}`,
          ...(i > 0 && { replaces: `${spec.name}.v${channelVersions[i - 1] ?? ""}` }),
        })),
      })),
      ...bundles.map((b) => ({
        schema: "olm.bundle",
        name: b.name,
        package: spec.name,
        image: b.image,
        properties: [{ type: "olm.package", value: { packageName: spec.name, version: b.version } }],
        relatedImages: [...b.relatedImages, { name: "", image: b.image }],
      })),
    ]);
  }
  const files: Record<string, string> = {};
  for (const [name, docs] of documents) {
    files[`configs/${name}/catalog.json`] = docs.map((d) => JSON.stringify(d, null, 2)).join("\n") + "\n";
  }
  const catalog = await buildImage({
    name: "operator catalog",
    files,
    labels: { [CONFIGS_LABEL]: "/configs" },
    config: {
      Entrypoint: ["/bin/opm"],
      Cmd: ["serve", "/configs", "--cache-dir=/tmp/cache"],
    },
  });
  await pushImage(client, CATALOG_REPOSITORY, CATALOG_TAG, catalog);
  return { reference: `${host}/${CATALOG_REPOSITORY}:${CATALOG_TAG}`, digest: catalog.digest, packages };
}
