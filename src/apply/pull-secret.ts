/**
 * Merging the mirror's read-only credentials into the cluster's global pull secret
 * (`openshift-config/pull-secret`, key `.dockerconfigjson`). Only the mirror's entry is
 * added or replaced; every other entry and key is kept as it is. The credentials come
 * from `spec.registry.pullSecretRef`, never from the push Secret: nodes get read access only.
 */
import { isDeepStrictEqual } from "node:util";
import {
  authLookupKey,
  matchingAuthKey,
  normalizeAuthKey,
  parseDockerConfig,
} from "../registry/credentials.ts";
import { contentHash } from "../util/hash.ts";

export const PULL_SECRET_KEY = ".dockerconfigjson";

export interface PullEntry {
  /** The auths key, e.g. `registry.example.com:8443` or `registry.example.com:8443/mirror`. */
  readonly key: string;
  readonly entry: { readonly auth: string };
}

/**
 * The entry of the MirrorJob's pull Secret for `registryUrl`: the most specific key that
 * matches (as container tools look keys up), normalized to `{auth}`. A string explains why
 * there is none.
 */
export function pullEntry(dockerConfigJson: string, registryUrl: string, field: string): PullEntry | string {
  try {
    const config = parseDockerConfig(dockerConfigJson);
    const key = matchingAuthKey([...config.auths.keys()], registryUrl, config.legacyFormat);
    const credentials = key === undefined ? undefined : config.auths.get(key);
    if (key === undefined || credentials === undefined)
      return `${field} has no credentials for ${registryUrl}`;
    const lookup = authLookupKey(registryUrl);
    const host = lookup.split("/")[0] ?? lookup;
    const auth = Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64");
    return { key: normalizeAuthKey(key, config.legacyFormat) === key ? key : host, entry: { auth } };
  } catch (err) {
    return `${field}: ${(err as Error).message}`;
  }
}

/** What is recorded about the entry in status (never the credentials themselves). */
export function entryHash(entry: PullEntry): string {
  return contentHash({ key: entry.key, entry: entry.entry });
}

export type Merge =
  | { readonly ok: true; readonly changed: false }
  | { readonly ok: true; readonly changed: true; readonly text: string }
  | { readonly ok: false; readonly message: string };

/** Sets one entry in the pull secret's `.dockerconfigjson`, keeping everything else. */
export function mergePullSecret(current: string | undefined, entry: PullEntry): Merge {
  let parsed: unknown = { auths: {} };
  if (current !== undefined && current.trim() !== "") {
    try {
      parsed = JSON.parse(current);
    } catch {
      return {
        ok: false,
        message: "the cluster pull secret's .dockerconfigjson is not valid JSON; not changed",
      };
    }
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return {
      ok: false,
      message: "the cluster pull secret's .dockerconfigjson is not a JSON object; not changed",
    };
  }
  const config = parsed as Record<string, unknown>;
  const auths: unknown = config.auths ?? {};
  if (auths === null || typeof auths !== "object" || Array.isArray(auths)) {
    return { ok: false, message: "the cluster pull secret's auths is not a JSON object; not changed" };
  }
  const existing = (auths as Record<string, unknown>)[entry.key];
  if (isDeepStrictEqual(existing, entry.entry)) return { ok: true, changed: false };
  const merged = { ...config, auths: { ...auths, [entry.key]: { ...entry.entry } } };
  return { ok: true, changed: true, text: JSON.stringify(merged) };
}
