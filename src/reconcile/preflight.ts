/**
 * Preflight, the part that needs no network: every Secret and ConfigMap a MirrorJob
 * references exists and parses (dockerconfigjson, PEM CA bundles, the ImageSetConfiguration
 * of a ConfigMap), and the push credentials cover the target registry. Failures name the
 * object and the field. The network part (the registry answers /v2/ and accepts the push
 * credentials) is done by the shell with the inputs resolved here.
 */
import { X509Certificate } from "node:crypto";
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import type { ImageSetConfiguration } from "../api/imageset.ts";
import type { MirrorJobSpec } from "../api/mirrorjob.ts";
import { parseImageSetConfiguration } from "../api/semantic.ts";
import { formatFieldErrors } from "../api/validation.ts";
import { AuthFileError, DOCKER_CONFIG_KEY, readDockerConfigAuths, type DockerAuths } from "../job/auth.ts";
import { credentialsFor, type Credentials } from "../registry/credentials.ts";

export interface Referenced {
  readonly secrets: ReadonlyMap<string, V1Secret | undefined>;
  readonly configMaps: ReadonlyMap<string, V1ConfigMap | undefined>;
}

export interface ResolvedInputs {
  readonly imageSet: ImageSetConfiguration;
  readonly pushCredentials: Credentials;
  /** The push Secret's dockerconfigjson, for the verifier (credentials per repository). */
  readonly pushAuthFile: string;
  /** The pull Secret's dockerconfigjson (read-only credentials for the nodes), if set. */
  readonly pullAuthFile?: string;
  readonly registryCaBundle?: string;
}

export interface PreflightFailure {
  readonly reason:
    | "SecretNotFound"
    | "InvalidSecret"
    | "ConfigMapNotFound"
    | "InvalidCABundle"
    | "InvalidImageSetConfiguration"
    | "NoRegistryCredentials";
  readonly message: string;
}

export type Resolved = { ok: true; inputs: ResolvedInputs } | { ok: false; failure: PreflightFailure };

/** The names of the Secrets and ConfigMaps a spec references (what the shell must fetch). */
export function referencedNames(spec: MirrorJobSpec): { secrets: string[]; configMaps: string[] } {
  const secrets = [
    spec.registry.pushSecretRef.name,
    spec.registry.pullSecretRef?.name,
    spec.source.pullSecretRef?.name,
  ];
  const configMaps = [
    spec.imageSet.configMapRef?.name,
    spec.registry.caBundleRef?.name,
    spec.source.caBundleRef?.name,
  ];
  const present = (names: (string | undefined)[]) => [
    ...new Set(names.filter((n): n is string => n !== undefined)),
  ];
  return { secrets: present(secrets), configMaps: present(configMaps) };
}

/**
 * Reads a dockerconfigjson Secret with the reader the Job's `merge-auth` init container uses
 * (src/job/auth.ts), so a Secret that passes here also merges in the pod. Errors never quote
 * the content.
 */
function readDockerConfig(
  secret: V1Secret | undefined,
  name: string,
  field: string,
): { auths: DockerAuths } | PreflightFailure {
  if (secret === undefined) {
    return { reason: "SecretNotFound", message: `Secret ${name} (${field}) not found` };
  }
  const encoded = secret.data?.[DOCKER_CONFIG_KEY];
  if (encoded === undefined) {
    return {
      reason: "InvalidSecret",
      message: `Secret ${name} (${field}) has no ${DOCKER_CONFIG_KEY} key: create it with type kubernetes.io/dockerconfigjson`,
    };
  }
  try {
    return { auths: readDockerConfigAuths(Buffer.from(encoded, "base64")) };
  } catch (err) {
    if (!(err instanceof AuthFileError)) throw err;
    return { reason: "InvalidSecret", message: `Secret ${name} (${field}): ${err.message}` };
  }
}

function isFailure(value: object): value is PreflightFailure {
  return "reason" in value;
}

function readCaBundle(
  cm: V1ConfigMap | undefined,
  ref: { name: string; key: string },
  field: string,
): string | PreflightFailure {
  if (cm === undefined)
    return { reason: "ConfigMapNotFound", message: `ConfigMap ${ref.name} (${field}) not found` };
  const pem = cm.data?.[ref.key];
  if (pem === undefined) {
    return { reason: "InvalidCABundle", message: `ConfigMap ${ref.name} (${field}) has no key ${ref.key}` };
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    return {
      reason: "InvalidCABundle",
      message: `ConfigMap ${ref.name} key ${ref.key} (${field}) holds no PEM certificate`,
    };
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return {
        reason: "InvalidCABundle",
        message: `ConfigMap ${ref.name} key ${ref.key} (${field}): certificate ${i + 1} does not parse`,
      };
    }
  }
  return pem;
}

export function resolveInputs(spec: MirrorJobSpec, referenced: Referenced): Resolved {
  const fail = (failure: PreflightFailure): Resolved => ({ ok: false, failure });

  const pushName = spec.registry.pushSecretRef.name;
  const push = readDockerConfig(referenced.secrets.get(pushName), pushName, "spec.registry.pushSecretRef");
  if (isFailure(push)) return fail(push);
  let pushCredentials: Credentials | undefined;
  try {
    pushCredentials = credentialsFor(push, spec.registry.url);
  } catch (err) {
    // DockerConfigError names the key and field, never the value.
    return fail({
      reason: "InvalidSecret",
      message: `Secret ${pushName} (spec.registry.pushSecretRef): ${(err as Error).message}`,
    });
  }
  if (pushCredentials === undefined) {
    return fail({
      reason: "NoRegistryCredentials",
      message: `Secret ${pushName} (spec.registry.pushSecretRef) has no credentials for ${spec.registry.url}`,
    });
  }
  const pullRef = spec.registry.pullSecretRef;
  let pullAuthFile: string | undefined;
  if (pullRef !== undefined) {
    const pull = readDockerConfig(
      referenced.secrets.get(pullRef.name),
      pullRef.name,
      "spec.registry.pullSecretRef",
    );
    if (isFailure(pull)) return fail(pull);
    pullAuthFile = JSON.stringify({ auths: pull.auths });
  }
  // The Job's pod merges the source pull Secret and the push Secret itself (merge-auth).
  const sourceRef = spec.source.pullSecretRef;
  if (sourceRef !== undefined) {
    const source = readDockerConfig(
      referenced.secrets.get(sourceRef.name),
      sourceRef.name,
      "spec.source.pullSecretRef",
    );
    if (isFailure(source)) return fail(source);
  }

  let imageSet: ImageSetConfiguration;
  const cmRef = spec.imageSet.configMapRef;
  if (cmRef !== undefined) {
    const cm = referenced.configMaps.get(cmRef.name);
    if (cm === undefined) {
      return fail({
        reason: "ConfigMapNotFound",
        message: `ConfigMap ${cmRef.name} (spec.imageSet.configMapRef) not found`,
      });
    }
    const text = cm.data?.[cmRef.key];
    if (text === undefined) {
      return fail({
        reason: "InvalidImageSetConfiguration",
        message: `ConfigMap ${cmRef.name} (spec.imageSet.configMapRef) has no key ${cmRef.key}`,
      });
    }
    const parsed = parseImageSetConfiguration(text, `configmap/${cmRef.name}[${cmRef.key}]`);
    if (!parsed.ok)
      return fail({ reason: "InvalidImageSetConfiguration", message: formatFieldErrors(parsed.errors) });
    imageSet = parsed.value;
  } else if (spec.imageSet.inline !== undefined) {
    imageSet = spec.imageSet.inline;
  } else {
    return fail({
      reason: "InvalidImageSetConfiguration",
      message: "spec.imageSet: exactly one of inline or configMapRef must be set",
    });
  }

  let registryCaBundle: string | undefined;
  for (const [ref, field] of [
    [spec.registry.caBundleRef, "spec.registry.caBundleRef"],
    [spec.source.caBundleRef, "spec.source.caBundleRef"],
  ] as const) {
    if (ref === undefined) continue;
    const pem = readCaBundle(referenced.configMaps.get(ref.name), ref, field);
    if (typeof pem !== "string") return fail(pem);
    if (field === "spec.registry.caBundleRef") registryCaBundle = pem;
  }

  return {
    ok: true,
    inputs: {
      imageSet,
      pushCredentials,
      pushAuthFile: JSON.stringify({ auths: push.auths }),
      ...(pullAuthFile !== undefined && { pullAuthFile }),
      ...(registryCaBundle !== undefined && { registryCaBundle }),
    },
  };
}
