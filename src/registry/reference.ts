/**
 * Image references as container tools write them: `host[:port]/path[:tag][@digest]`.
 * Parsing is strict: the registry host must be explicit (no Docker Hub defaulting),
 * because the operator only ever talks to registries named in full.
 */

export interface ImageReference {
  /** `host[:port]` */
  readonly registry: string;
  /** repository path without the registry, e.g. `openshift/release` */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

/**
 * A digest as registries accept it: the algorithms the OCI image spec registers, each with
 * its exact length of lower-case hex. (The OCI grammar allows other algorithms, but no
 * registry or container tool computes them, so such a reference could never be verified.)
 */
export const DIGEST_PATTERN = "(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})";
/** A port 1-65535, as the `:<port>` part of a host. */
export const PORT_PATTERN =
  "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
const DIGEST = new RegExp(`^${DIGEST_PATTERN}$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = new RegExp(
  `^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:${PORT_PATTERN})?$` +
    `|^\\[[0-9a-fA-F:]+\\](:${PORT_PATTERN})?$`,
);

export class ReferenceError extends Error {
  override readonly name = "ReferenceError";
}

/** True when the first path element names a registry host (has a dot or a port, or is localhost). */
export function looksLikeRegistryHost(component: string): boolean {
  return component.includes(".") || component.includes(":") || component === "localhost";
}

export function parseReference(input: string): ImageReference {
  const text = input.replace(/^docker:\/\//, "");
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(`invalid digest in image reference "${input}"`);
  }
  const slash = rest.indexOf("/");
  if (slash < 0) throw new ReferenceError(`image reference "${input}" has no registry host`);
  const registry = rest.slice(0, slash);
  if (!looksLikeRegistryHost(registry) || !HOST.test(registry)) {
    throw new ReferenceError(`image reference "${input}" must start with a registry host (host[:port])`);
  }
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(`invalid tag "${tag}" in image reference "${input}"`);
  }
  if (path === "" || !path.split("/").every((c) => PATH_COMPONENT.test(c))) {
    throw new ReferenceError(`invalid repository path "${path}" in image reference "${input}"`);
  }
  return {
    registry,
    repository: path,
    ...(tag !== undefined && { tag }),
    ...(digest !== undefined && { digest }),
  };
}

export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}
