/**
 * What a MirrorJob needs to mirror from the offline upstream (upstream.ts): a pull Secret for
 * its registry, a CA bundle (its registry's and its update-graph server's CAs) and the release
 * signing key, and the `spec.source` that refers to them. The local stack's sample and the e2e
 * tests (test/harness/operator.ts, with the global setup's upstream) both make them here.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { UpstreamInfo } from "./upstream.ts";

/** Names of the objects createSourceInputs makes, as `spec.source` refers to them. */
export interface SourceInputNames {
  /** The kubernetes.io/dockerconfigjson Secret with the source registry's credentials. */
  readonly secret: string;
  /** The ConfigMap whose `ca-bundle.crt` holds the CAs. */
  readonly ca: string;
  /** The ConfigMap whose `verification-key.asc` holds the release signing key. */
  readonly key: string;
}

/** The names the e2e tests use. */
export const SOURCE_INPUTS = {
  secret: "source-pull",
  ca: "source-ca",
  key: "release-key",
} as const satisfies SourceInputNames;

export interface SourceInputOptions {
  /** Other names than SOURCE_INPUTS. */
  readonly names?: SourceInputNames;
  /** More hosts that take the source registry's credentials (e.g. a fault proxy in front of it). */
  readonly hosts?: readonly string[];
  /** More PEM CA certificates to trust (e.g. a fault proxy's). */
  readonly caPem?: string;
}

/** A `.dockerconfigjson` with one entry: `username:password` for `host`. */
export function dockerConfigJson(host: string, username: string, password: string): string {
  return JSON.stringify({
    auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } },
  });
}

/** Creates the pull Secret, the CA bundle and the release key for `up` in `namespace`. */
export async function createSourceInputs(
  kc: KubeConfig,
  namespace: string,
  up: UpstreamInfo,
  options: SourceInputOptions = {},
): Promise<void> {
  const names = options.names ?? SOURCE_INPUTS;
  const core = kc.makeApiClient(CoreV1Api);
  const auth = Buffer.from(`${up.source.username}:${up.source.password}`).toString("base64");
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: names.secret },
      type: "kubernetes.io/dockerconfigjson",
      stringData: {
        ".dockerconfigjson": JSON.stringify({
          auths: Object.fromEntries([up.source.host, ...(options.hosts ?? [])].map((h) => [h, { auth }])),
        }),
      },
    },
  });
  await core.createNamespacedConfigMap({
    namespace,
    body: {
      metadata: { name: names.ca },
      data: {
        "ca-bundle.crt": [
          up.source.caPem,
          up.httpsCaPem,
          ...(options.caPem !== undefined ? [options.caPem] : []),
        ]
          .map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`))
          .join(""),
      },
    },
  });
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: names.key }, data: { "verification-key.asc": up.publicKey } },
  });
}

/** `spec.source` for the upstream, referring to createSourceInputs' objects. */
export function upstreamSource(
  up: UpstreamInfo,
  names: SourceInputNames = SOURCE_INPUTS,
): Record<string, unknown> {
  return {
    pullSecretRef: { name: names.secret },
    caBundleRef: { name: names.ca },
    release: {
      updateGraphURL: up.graphUrl,
      signatureURL: up.signatureUrl,
      signatureKeyRef: { name: names.key },
      graphImage: up.content.release.graphImageReference,
    },
  };
}
