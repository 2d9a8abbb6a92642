/**
 * Smoke test of the registry harness and the project's registry client against a real
 * distribution registry over TLS with htpasswd authentication.
 */
import { afterAll, describe, expect, inject, it } from "vitest";
import { RegistryClient, sha256Digest } from "../../src/registry/client.ts";
import { RegistryError } from "../../src/registry/errors.ts";
import { MediaType } from "../../src/registry/media-types.ts";
import { buildImage, pushImage } from "../../devkit/images.ts";

const registry = inject("registry");
const clients: RegistryClient[] = [];
function client(overrides: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient {
  const c = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    timeoutMs: 10_000,
    ...overrides,
  });
  clients.push(c);
  return c;
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

async function failure(promise: Promise<unknown>): Promise<RegistryError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

describe("registry harness", () => {
  it("pushes a multi-platform image and reads it back by tag and by digest", async () => {
    const c = client();
    const image = await buildImage({
      name: "smoke",
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ],
    });
    await pushImage(c, "smoke/multi", "v1", image);

    const byTag = await c.getManifest("smoke/multi", "v1");
    expect(byTag?.mediaType).toBe(MediaType.ociIndex);
    expect(byTag?.digest).toBe(image.digest);
    expect(byTag?.body.equals(image.index?.body ?? Buffer.alloc(0))).toBe(true);

    const byDigest = await c.headManifest("smoke/multi", image.digest);
    expect(byDigest?.digest).toBe(image.digest);
    for (const m of image.manifests) {
      const info = await c.headManifest("smoke/multi", m.digest);
      expect(info).toMatchObject({ digest: m.digest, mediaType: MediaType.ociManifest, size: m.body.length });
      for (const blob of m.blobs) {
        expect(await c.blobExists("smoke/multi", sha256Digest(blob))).toBe(true);
      }
    }
    expect(await c.headManifest("smoke/multi", "no-such-tag")).toBeUndefined();
  });

  it("reports wrong credentials clearly, without the password", async () => {
    const wrong = "definitely-not-the-password";
    const err = await failure(
      client({ credentials: { username: registry.username, password: wrong } }).ping(),
    );
    expect(err.kind).toBe("unauthorized");
    expect(err.message).toMatch(/rejected the credentials/);
    expect(err.message).not.toContain(wrong);
  });

  it("reports missing credentials clearly", async () => {
    const err = await failure(
      new RegistryClient({ registry: registry.host, caBundle: registry.caPem }).ping(),
    );
    expect(err.kind).toBe("unauthorized");
    expect(err.message).toMatch(/no credentials are configured/);
  });

  it("refuses an untrusted CA, and names the fix", async () => {
    const c = new RegistryClient({
      registry: registry.host,
      credentials: { username: registry.username, password: registry.password },
    });
    clients.push(c);
    const err = await failure(c.ping());
    expect(err.kind).toBe("tls");
    expect(err.message).toMatch(/unknown authority.*caBundleRef/);
  });
});
