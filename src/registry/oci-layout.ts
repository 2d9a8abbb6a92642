/**
 * Copies one image from a registry into an OCI image layout folder (`oci-layout`,
 * `index.json`, `blobs/sha256/…`): how a mirror Job gives oc-mirror the update graph image
 * it needs for `graph: true` when the graph comes from UPDATE_URL_OVERRIDE (oc-mirror then
 * reads `working-dir/graph-preparation` instead of building the image from Red Hat's service).
 *
 * One platform only: from an index, the linux/amd64 image (the graph image holds data, not
 * binaries, and oc-mirror mirrors the one it finds). The folder is written next to its final
 * place and renamed into it, so oc-mirror never reads half a layout.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { RegistryClient } from "./client.ts";
import { RegistryError } from "./errors.ts";
import { MediaType } from "./media-types.ts";
import type { ImageReference } from "./reference.ts";

interface Descriptor {
  readonly mediaType?: string;
  readonly digest: string;
  readonly size?: number;
  readonly platform?: { readonly os?: string; readonly architecture?: string };
}

interface ManifestJson {
  readonly mediaType?: string;
  readonly config?: Descriptor;
  readonly layers?: readonly Descriptor[];
  readonly manifests?: readonly Descriptor[];
}

const INDEX_TYPES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);

function parseManifest(body: Buffer, what: string): ManifestJson {
  try {
    return JSON.parse(body.toString("utf8")) as ManifestJson;
  } catch {
    throw new RegistryError("protocol", `${what}: the manifest is not valid JSON`);
  }
}

function hexOf(digest: string, what: string): string {
  const match = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (match?.[1] === undefined) throw new RegistryError("protocol", `${what}: unsupported digest ${digest}`);
  return match[1];
}

/** Copies `ref` into the OCI layout at `dir` (replacing what is there); returns the manifest digest. */
export async function pullToOciLayout(
  client: RegistryClient,
  ref: ImageReference,
  dir: string,
): Promise<string> {
  const name = `${ref.registry}/${ref.repository}`;
  const reference = ref.digest ?? ref.tag ?? "latest";
  let manifest = await client.getManifest(ref.repository, reference);
  if (manifest === undefined) throw new RegistryError("not-found", `${name}:${reference} not found`);
  let parsed = parseManifest(manifest.body, name);
  if (INDEX_TYPES.has(manifest.mediaType) || parsed.manifests !== undefined) {
    const child =
      parsed.manifests?.find((m) => m.platform?.os === "linux" && m.platform.architecture === "amd64") ??
      parsed.manifests?.[0];
    if (child === undefined) throw new RegistryError("protocol", `${name}: the image index lists no image`);
    manifest = await client.getManifest(ref.repository, child.digest);
    if (manifest === undefined) throw new RegistryError("not-found", `${name}@${child.digest} not found`);
    parsed = parseManifest(manifest.body, name);
  }
  const staging = `${dir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  const blobs = join(staging, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  for (const blob of [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? [])]) {
    const data = await client.getBlob(ref.repository, blob.digest);
    if (data === undefined) throw new RegistryError("not-found", `${name}: blob ${blob.digest} not found`);
    writeFileSync(join(blobs, hexOf(blob.digest, name)), data);
  }
  writeFileSync(join(blobs, hexOf(manifest.digest, name)), manifest.body);
  writeFileSync(join(staging, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(staging, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        {
          mediaType: manifest.mediaType || parsed.mediaType || MediaType.ociManifest,
          digest: manifest.digest,
          size: manifest.body.length,
        },
      ],
    }),
  );
  mkdirSync(dirname(dir), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  return manifest.digest;
}
