/**
 * Registry credentials from a dockerconfigjson (`kubernetes.io/dockerconfigjson`
 * Secrets, `auth.json` of podman/skopeo/oc-mirror), looked up the way
 * containers/image (`pkg/docker/config`) does, so the verifier authenticates exactly
 * as oc-mirror does with the same file:
 *
 * 1. exact keys, most specific first: `host/ns/repo`, `host/ns`, `host` (the legacy
 *    `.dockercfg` format only knows `host`);
 * 2. otherwise keys normalized to a host: `https://host/v1/` and `http://host/...`
 *    keep only the host (legacy `.dockercfg` keys always do); `docker.io` and
 *    `registry-1.docker.io` mean `index.docker.io`.
 *
 * An entry holds `auth` (base64 of `user:password`) or `username`/`password`.
 * Entries without either (a credential-helper marker `{}`, or only an
 * `identitytoken`, which needs an OAuth flow this client does not implement) give
 * no credentials. Error messages name keys and fields, never their values.
 */

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export class DockerConfigError extends Error {
  override readonly name = "DockerConfigError";
}

export interface DockerConfig {
  /** Every key as written in the file, with its credentials (undefined: the entry has none). */
  readonly auths: ReadonlyMap<string, Credentials | undefined>;
  /** The legacy `.dockercfg` layout (entries at the top level, no `auths`). */
  readonly legacyFormat: boolean;
}

interface RawConfig {
  readonly auths: Readonly<Record<string, unknown>>;
  readonly legacyFormat: boolean;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function readJson(content: string | Uint8Array): unknown {
  const text = typeof content === "string" ? content : Buffer.from(content).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // JSON.parse messages quote the text around the error: keep only the position.
    const position = err instanceof Error ? /position (\d+)/.exec(err.message)?.[1] : undefined;
    throw new DockerConfigError(
      `dockerconfigjson is not valid JSON${position !== undefined ? ` (error at character ${position})` : ""}`,
    );
  }
}

function rawConfig(content: unknown): RawConfig {
  const parsed = typeof content === "string" || content instanceof Uint8Array ? readJson(content) : content;
  if (!isRecord(parsed)) throw new DockerConfigError("dockerconfigjson must be a JSON object");
  if ("auths" in parsed) {
    if (!isRecord(parsed.auths)) throw new DockerConfigError('dockerconfigjson: "auths" must be an object');
    return { auths: parsed.auths, legacyFormat: false };
  }
  // Legacy .dockercfg: {"host": {"auth": "...", "email": "..."}} at the top level.
  const values = Object.values(parsed);
  if (values.length > 0 && values.every((v) => isRecord(v) && ("auth" in v || "username" in v))) {
    return { auths: parsed, legacyFormat: true };
  }
  throw new DockerConfigError('dockerconfigjson has no "auths" object');
}

function decodeEntry(key: string, entry: unknown): Credentials | undefined {
  if (!isRecord(entry))
    throw new DockerConfigError(`dockerconfigjson: the entry for "${key}" is not an object`);
  const { auth, username, password } = entry;
  if (auth !== undefined && typeof auth !== "string") {
    throw new DockerConfigError(`dockerconfigjson: "auth" of "${key}" is not a string`);
  }
  if (auth !== undefined && auth !== "") {
    const compact = auth.replace(/\s+/g, "");
    if (!BASE64.test(compact)) {
      throw new DockerConfigError(`dockerconfigjson: "auth" of "${key}" is not base64`);
    }
    const decoded = Buffer.from(compact, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new DockerConfigError(
        `dockerconfigjson: "auth" of "${key}" does not decode to "username:password"`,
      );
    }
    // containers/image trims NUL padding some tools leave after the password.
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/\0+$/, "") };
  }
  for (const [field, value] of [
    ["username", username],
    ["password", password],
  ] as const) {
    if (value !== undefined && typeof value !== "string") {
      throw new DockerConfigError(`dockerconfigjson: "${field}" of "${key}" is not a string`);
    }
  }
  if (typeof username === "string" && username !== "") {
    return { username, password: typeof password === "string" ? password : "" };
  }
  return undefined;
}

/**
 * Parses and validates a whole dockerconfigjson (text, bytes, or already-parsed JSON),
 * decoding every entry. Throws a DockerConfigError naming the offending key and field.
 */
export function parseDockerConfig(content: unknown): DockerConfig {
  const raw = rawConfig(content);
  const auths = new Map<string, Credentials | undefined>();
  for (const [key, entry] of Object.entries(raw.auths)) auths.set(key, decodeEntry(key, entry));
  return { auths, legacyFormat: raw.legacyFormat };
}

function normalizeRegistry(registry: string): string {
  return registry === "docker.io" || registry === "registry-1.docker.io" ? "index.docker.io" : registry;
}

/** containers/image's normalizeAuthFileKey: URL-style (and all legacy) keys keep only their host. */
export function normalizeAuthKey(key: string, legacyFormat = false): string {
  const stripped = key.replace(/^https?:\/\//, "");
  const host = legacyFormat || stripped !== key ? (stripped.split("/")[0] ?? stripped) : stripped;
  return normalizeRegistry(host);
}

/**
 * `host[:port]/path/repo` without scheme, tag or digest, from a registry URL or an
 * image reference (`docker://`, `https://`, `:tag` and `@sha256:...` are dropped).
 */
export function authLookupKey(registryAndRepository: string): string {
  let key = registryAndRepository.trim().replace(/^(?:docker|https?):\/\//, "");
  key = key.split("@")[0] ?? key;
  key = key.replace(/\/+$/, "");
  const lastSlash = key.lastIndexOf("/");
  if (lastSlash >= 0) {
    const last = key.slice(lastSlash + 1);
    const colon = last.indexOf(":");
    if (colon >= 0) key = key.slice(0, lastSlash + 1 + colon);
  }
  return key;
}

/** Keys tried in order: `host/a/b/c`, `host/a/b`, `host/a`, `host` (legacy files: `host` only). */
export function authKeyCandidates(key: string, legacyFormat = false): string[] {
  const registry = key.split("/")[0] ?? key;
  if (legacyFormat) return [registry];
  const candidates: string[] = [];
  for (let k = key; ;) {
    candidates.push(k);
    const slash = k.lastIndexOf("/");
    if (slash < 0) break;
    k = k.slice(0, slash);
  }
  return candidates;
}

function isDockerConfig(value: unknown): value is DockerConfig {
  return isRecord(value) && value.auths instanceof Map && typeof value.legacyFormat === "boolean";
}

/**
 * The credentials a dockerconfigjson holds for `host[:port][/path]` (a registry URL or
 * an image reference), or undefined when no key matches or the matching entry holds
 * none. Accepts text, bytes, parsed JSON or a parsed DockerConfig. Only the matching
 * entry is decoded; if it is malformed (or the content is not a dockerconfigjson at
 * all) a DockerConfigError says which key and field.
 */
export function credentialsFor(
  dockerConfigJson: unknown,
  registryAndRepository: string,
): Credentials | undefined {
  if (isDockerConfig(dockerConfigJson)) {
    const { auths, legacyFormat } = dockerConfigJson;
    const key = matchingAuthKey([...auths.keys()], registryAndRepository, legacyFormat);
    return key === undefined ? undefined : auths.get(key);
  }
  const { auths, legacyFormat } = rawConfig(dockerConfigJson);
  const key = matchingAuthKey(Object.keys(auths), registryAndRepository, legacyFormat);
  return key === undefined ? undefined : decodeEntry(key, auths[key]);
}

/**
 * The key of `keys` container tools use for `host[:port][/path]` (a registry URL or an
 * image reference): the most specific path that is present, else a key of the same host.
 */
export function matchingAuthKey(
  keys: readonly string[],
  registryAndRepository: string,
  legacyFormat = false,
): string | undefined {
  const lookup = authLookupKey(registryAndRepository);
  const present = new Set(keys);
  const candidate = authKeyCandidates(lookup, legacyFormat).find((k) => present.has(k));
  if (candidate !== undefined) return candidate;
  const host = normalizeRegistry(lookup.split("/")[0] ?? lookup);
  return [...keys].sort().find((k) => normalizeAuthKey(k, legacyFormat) === host);
}
