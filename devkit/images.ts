/**
 * Small but real test images: gzip'd tar layers, OCI configs, per-platform manifests
 * and an image index, pushed with the project's own registry client (registry-writer.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { sha256Digest, type RegistryClient } from "../src/registry/client.ts";
import { MediaType } from "../src/registry/media-types.ts";
import { pushBlob, putManifest } from "./registry-writer.ts";

export interface Platform {
  readonly os: string;
  readonly architecture: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface BuiltManifest {
  readonly platform: Platform;
  readonly body: Buffer;
  readonly digest: string;
  readonly blobs: readonly Buffer[];
}

export interface BuiltImage {
  readonly manifests: readonly BuiltManifest[];
  /** The image index (present when the image has more than one platform). */
  readonly index?: { readonly body: Buffer; readonly digest: string };
  /** Digest of what a tag of the image points at (the index, or the single manifest). */
  readonly digest: string;
  readonly mediaType: string;
}

export interface PushedImage extends BuiltImage {
  readonly reference: string;
}

/** A tar archive holding the given files (path -> content). */
export async function tarArchive(files: Readonly<Record<string, string>>): Promise<Buffer> {
  const archive = pack();
  for (const [name, content] of Object.entries(files)) {
    archive.entry({ name, mtime: new Date(0), mode: 0o644 }, content);
  }
  archive.finalize();
  const chunks = (await Array.fromAsync(archive)) as Buffer[];
  return Buffer.concat(chunks);
}

/** A gzip'd tar archive holding the given files (path -> content). */
export async function tarGz(files: Readonly<Record<string, string>>): Promise<Buffer> {
  return gzipSync(await tarArchive(files));
}

function descriptor(mediaType: string, body: Buffer, platform?: Platform): Descriptor {
  return { mediaType, digest: sha256Digest(body), size: body.length, ...(platform && { platform }) };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

export interface ImageSpec {
  /** Distinguishes images with otherwise equal content. */
  readonly name: string;
  readonly platforms?: readonly Platform[];
  /** Extra files in the image's single layer. */
  readonly files?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  /** Further fields of the image configuration's `config` (e.g. Entrypoint, Cmd). */
  readonly config?: Readonly<Record<string, unknown>>;
}

export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const platforms = spec.platforms ?? [{ os: "linux", architecture: "amd64" }];
  const manifests: BuiltManifest[] = [];
  for (const platform of platforms) {
    const tar = await tarArchive({
      "etc/test-image": `${spec.name} ${platform.os}/${platform.architecture}\n`,
      ...spec.files,
    });
    const layer = gzipSync(tar);
    const config = json({
      architecture: platform.architecture,
      os: platform.os,
      config: { ...spec.config, Labels: spec.labels ?? {} },
      // diff_ids name the uncompressed layers (OCI image spec, config.md).
      rootfs: { type: "layers", diff_ids: [sha256Digest(tar)] },
    });
    const body = json({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: descriptor(MediaType.ociConfig, config),
      layers: [descriptor(MediaType.ociLayerGzip, layer)],
    });
    manifests.push({ platform, body, digest: sha256Digest(body), blobs: [config, layer] });
  }
  const [single] = manifests;
  if (manifests.length === 1 && single) {
    return { manifests, digest: single.digest, mediaType: MediaType.ociManifest };
  }
  const index = json({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: manifests.map((m) => descriptor(MediaType.ociManifest, m.body, m.platform)),
  });
  return {
    manifests,
    index: { body: index, digest: sha256Digest(index) },
    digest: sha256Digest(index),
    mediaType: MediaType.ociIndex,
  };
}

/** Pushes blobs, manifests and (if any) the index; tags the top-level object with `tag`. */
export async function pushImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  image: BuiltImage,
): Promise<PushedImage> {
  for (const manifest of image.manifests) {
    for (const blob of manifest.blobs) await pushBlob(client, repository, blob);
    await putManifest(
      client,
      repository,
      image.index ? manifest.digest : tag,
      MediaType.ociManifest,
      manifest.body,
    );
  }
  if (image.index) await putManifest(client, repository, tag, MediaType.ociIndex, image.index.body);
  return { ...image, reference: `${client.registry}/${repository}:${tag}` };
}

/**
 * Writes a single-platform image as an OCI image layout (oci-layout, index.json, blobs/sha256/)
 * into `dir`, e.g. for oc-mirror's `working-dir/graph-preparation/`.
 */
export function writeOciLayout(dir: string, image: BuiltImage): void {
  const [manifest] = image.manifests;
  if (manifest === undefined || image.index !== undefined) {
    throw new Error("writeOciLayout takes a single-platform image");
  }
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  for (const blob of [...manifest.blobs, manifest.body]) {
    writeFileSync(join(blobs, sha256Digest(blob).slice("sha256:".length)), blob);
  }
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [descriptor(MediaType.ociManifest, manifest.body)] }),
  );
}
