/**
 * Pushes to a registry with the project's own client (src/registry/client.ts), for the dev kit's
 * images, the tests and the benchmarks; the operator only reads registries, so src/ has no
 * writer. Both helpers go through `RegistryClient.request`: the client's authentication
 * (challenges, Basic, Bearer tokens with push scope), retries and secret-free errors.
 */
import { RegistryError } from "../src/registry/errors.ts";
import { repositoryScope, sha256Digest, type RegistryClient } from "../src/registry/client.ts";

/** Uploads a blob in one request (POST then PUT), unless the registry has it already; its digest. */
export async function pushBlob(client: RegistryClient, repository: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  if (await client.blobExists(repository, digest)) return digest;
  const scope = repositoryScope(repository, "push,pull");
  const operation = `upload blob ${repository}@${digest}`;
  const origin = `https://${client.registry}`;
  return client.request(async (send) => {
    const started = await send(
      { method: "POST", path: `/v2/${repository}/blobs/uploads/`, operation, scope },
      [202],
    );
    const location = started.header("location");
    if (location === undefined) {
      throw new RegistryError(
        "protocol",
        `registry ${client.registry}: ${operation}: no Location in upload response`,
      );
    }
    const url = new URL(location, origin);
    if (url.origin !== origin) {
      throw new RegistryError(
        "protocol",
        `registry ${client.registry}: ${operation}: upload redirected to another host`,
      );
    }
    url.searchParams.set("digest", digest);
    await send(
      {
        method: "PUT",
        path: `${url.pathname}${url.search}`,
        operation,
        scope,
        headers: { "content-type": "application/octet-stream" },
        body: data,
      },
      [201],
    );
    return digest;
  });
}

/** Uploads a manifest under a tag or digest and returns its digest. */
export async function putManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  mediaType: string,
  body: Buffer,
): Promise<string> {
  const operation = `PUT manifest ${repository}:${reference}`;
  return client.request(async (send) => {
    const res = await send(
      {
        method: "PUT",
        path: `/v2/${repository}/manifests/${reference}`,
        operation,
        scope: repositoryScope(repository, "push,pull"),
        headers: { "content-type": mediaType },
        body,
      },
      [201],
    );
    return res.header("docker-content-digest") ?? sha256Digest(body);
  });
}
