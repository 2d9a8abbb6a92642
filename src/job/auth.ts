/**
 * The run's authfile: oc-mirror gets one dockerconfigjson merged from the source pull
 * Secret and the push Secret. The merge happens inside the Job's pod (the `merge-auth`
 * init container, src/cli/merge-auth.ts) from the Secrets mounted as files, so the operator
 * never writes a Secret; preflight checks with the same reader that the Secrets will merge.
 *
 * Pure functions. Error messages name keys, never values.
 */

/** The `auths` of a dockerconfigjson: registry key -> entry (`auth`, `username`, ...). */
export type DockerAuths = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** The key of a kubernetes.io/dockerconfigjson Secret, and the file name it is mounted as. */
export const DOCKER_CONFIG_KEY = ".dockerconfigjson";

/**
 * The merged authfile's path in the auth volume (argv.ts passes it to --authfile). It is
 * where containers/image looks under `$XDG_RUNTIME_DIR` too, which the oc-mirror container
 * points at the volume: oc-mirror resolves a release given by tag without --authfile.
 */
export const AUTH_FILE_NAME = "containers/auth.json";

export class AuthFileError extends Error {
  override readonly name = "AuthFileError";
}

/** Reads the `auths` of a dockerconfigjson; throws AuthFileError (never quoting the content). */
export function readDockerConfigAuths(content: string | Uint8Array): DockerAuths {
  const text = typeof content === "string" ? content : Buffer.from(content).toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AuthFileError(`${DOCKER_CONFIG_KEY} is not valid JSON`);
  }
  const auths = (parsed as { auths?: unknown } | null)?.auths;
  if (auths === null || typeof auths !== "object" || Array.isArray(auths)) {
    throw new AuthFileError(`${DOCKER_CONFIG_KEY} has no "auths" object`);
  }
  for (const [host, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new AuthFileError(`the entry for ${host} is not an object`);
    }
  }
  return auths as DockerAuths;
}

/**
 * One authfile from several, in order: a registry key in a later one replaces the same key in
 * an earlier one (the push Secret comes last, so its credentials win for the target registry).
 */
export function mergeAuthFiles(configs: readonly DockerAuths[]): string {
  const merged: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const auths of configs) Object.assign(merged, auths);
  return JSON.stringify({ auths: merged });
}
