/**
 * A small OpenShift release stream for the offline upstream: payload images with real
 * `release-manifests/image-references` (an ImageStream naming the components by digest) and
 * `release-manifests/release-metadata`, their component images, the Cincinnati update graph of
 * one channel, release signatures, and a graph-data image.
 *
 * What oc-mirror reads, in its source (commit 855b64a3; the 4.20 line is the same unless noted):
 * - graph: internal/pkg/cincinnati/graph_data.go (`nodes[].version/payload/metadata`, `edges`),
 *   fetched by internal/pkg/cincinnati/download.go (GET <UPDATE_URL_OVERRIDE>?arch=&channel=&id=);
 *   a channel with minVersion and maxVersion takes every node in the range
 *   (internal/pkg/release/core-cincinnati.go GetUpdatesInRange).
 * - payload: internal/pkg/release/local_stored_collector.go collectReleaseImages (copies the payload
 *   into an OCI layout, extracts the layer files whose path contains `release-manifests`) and
 *   internal/pkg/manifest/oci-manifest.go GetReleaseSchema (`spec.tags[].name`, `.from.name`).
 *   release-metadata is not read by either line; it is there because real payloads carry it.
 * - signatures: internal/pkg/release/signature.go (body: v2alpha1.SignatureContentSchema; the
 *   release is then pulled by the signature's `critical.identity.docker-reference`).
 */
import type { RegistryClient } from "../src/registry/client.ts";
import { buildImage, pushImage, type BuiltImage } from "./images.ts";
import type { SigningKey } from "./gpg.ts";

export const RELEASE_REPOSITORY = "openshift-release-dev/ocp-release";
export const COMPONENT_REPOSITORY = "openshift-release-dev/ocp-v4.0-art-dev";
export const GRAPH_IMAGE_REPOSITORY = "openshift/graph-image";

export interface ReleaseComponent {
  /** Name in image-references (`spec.tags[].name`). */
  readonly name: string;
  readonly digest: string;
  /** `<source>/openshift-release-dev/ocp-v4.0-art-dev@sha256:...` */
  readonly reference: string;
}

export interface ReleaseVersion {
  readonly version: string;
  /** `4.19.2-x86_64` */
  readonly tag: string;
  /** The payload by tag: `<source>/openshift-release-dev/ocp-release:4.19.2-x86_64`. */
  readonly reference: string;
  /** The payload manifest's digest. */
  readonly digest: string;
  /** The payload by digest (what the update graph names). */
  readonly digestReference: string;
  readonly components: readonly ReleaseComponent[];
  /** The JSON body that is signed (an "atomic container signature"). */
  readonly signatureBody: string;
}

export interface CincinnatiGraph {
  readonly nodes: readonly {
    readonly version: string;
    readonly payload: string;
    readonly metadata: Readonly<Record<string, string>>;
  }[];
  readonly edges: readonly (readonly [number, number])[];
}

export interface ReleaseStream {
  readonly channel: string;
  readonly versions: readonly ReleaseVersion[];
  /** The update graph served for the channel and `arch=amd64`. */
  readonly graph: CincinnatiGraph;
  /** A graph-data image (what `graph: true` mirrors as `openshift/graph-image`). */
  readonly graphImage: BuiltImage;
  /** Where the graph image is also pushed in the source registry (`:latest`). */
  readonly graphImageReference: string;
}

export interface ReleaseStreamOptions {
  readonly channel: string;
  readonly versions: readonly string[];
}

const ARCH_SUFFIX = "x86_64";

/** Builds and pushes the stream's images; returns what a test needs to know about them. */
export async function pushReleaseStream(
  client: RegistryClient,
  options: ReleaseStreamOptions,
): Promise<ReleaseStream> {
  const host = client.registry;
  // One component shared by every version (the same digest in each payload), one per version.
  const shared = await buildImage({ name: "release-component pod" });
  await pushImage(client, COMPONENT_REPOSITORY, "pod", shared);
  const versions: ReleaseVersion[] = [];
  for (const [i, version] of options.versions.entries()) {
    const cli = await buildImage({ name: `release-component cli ${version}` });
    await pushImage(client, COMPONENT_REPOSITORY, `cli-${version}`, cli);
    const components: ReleaseComponent[] = [
      { name: "cli", digest: cli.digest, reference: `${host}/${COMPONENT_REPOSITORY}@${cli.digest}` },
      { name: "pod", digest: shared.digest, reference: `${host}/${COMPONENT_REPOSITORY}@${shared.digest}` },
    ];
    const imageReferences = {
      kind: "ImageStream",
      apiVersion: "image.openshift.io/v1",
      metadata: {
        name: version,
        creationTimestamp: null,
        annotations: { "release.openshift.io/from-image-stream": "ocp/4.19-art-latest" },
      },
      spec: {
        lookupPolicy: { local: false },
        tags: components.map((c) => ({
          name: c.name,
          annotations: { "io.openshift.build.source-location": "" },
          from: { kind: "DockerImage", name: c.reference },
          generation: null,
          importPolicy: {},
          referencePolicy: { type: "" },
        })),
      },
    };
    const releaseMetadata = {
      kind: "cincinnati-metadata-v0",
      version,
      previous: options.versions.slice(0, i),
      metadata: {},
    };
    const tag = `${version}-${ARCH_SUFFIX}`;
    const payload = await buildImage({
      name: `release payload ${version}`,
      files: {
        "release-manifests/image-references": JSON.stringify(imageReferences, null, 2),
        "release-manifests/release-metadata": JSON.stringify(releaseMetadata, null, 2),
      },
      labels: { "io.openshift.release": version },
      config: { Entrypoint: ["/usr/bin/cluster-version-operator"] },
    });
    await pushImage(client, RELEASE_REPOSITORY, tag, payload);
    const reference = `${host}/${RELEASE_REPOSITORY}:${tag}`;
    versions.push({
      version,
      tag,
      reference,
      digest: payload.digest,
      digestReference: `${host}/${RELEASE_REPOSITORY}@${payload.digest}`,
      components,
      signatureBody: JSON.stringify({
        critical: {
          identity: { "docker-reference": reference },
          image: { "docker-manifest-digest": payload.digest },
          type: "atomic container signature",
        },
        optional: { creator: "hub-mirror-operator test upstream" },
      }),
    });
  }
  const graph: CincinnatiGraph = {
    nodes: versions.map((v) => ({
      version: v.version,
      payload: v.digestReference,
      metadata: {
        "io.openshift.upgrades.graph.release.channels": options.channel,
        "io.openshift.upgrades.graph.release.manifestref": v.digest,
      },
    })),
    // every older version updates to every newer one
    edges: versions.flatMap((_, from) =>
      versions.slice(from + 1).map((__, k): readonly [number, number] => [from, from + 1 + k]),
    ),
  };
  const graphImage = await buildImage({
    name: "cincinnati graph data",
    files: {
      [`var/lib/cincinnati-graph-data/channels/${options.channel}.yaml`]: `name: ${options.channel}\nversions:\n${versions.map((v) => `- ${v.version}\n`).join("")}`,
      "var/lib/cincinnati-graph-data/version": "1\n",
    },
    config: {
      Cmd: ["/bin/bash", "-c", "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"],
    },
  });
  await pushImage(client, GRAPH_IMAGE_REPOSITORY, "latest", graphImage);
  return {
    channel: options.channel,
    versions,
    graph,
    graphImage,
    graphImageReference: `${host}/${GRAPH_IMAGE_REPOSITORY}:latest`,
  };
}

/** Signs each version's signature body; returns signature bytes by payload digest hex. */
export function signReleases(stream: ReleaseStream, key: SigningKey): Map<string, Buffer> {
  return new Map(stream.versions.map((v) => [hex(v.digest), key.sign(v.signatureBody)]));
}

/** `sha256:abc` -> `abc` */
export function hex(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}
