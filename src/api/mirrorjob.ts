/**
 * The MirrorJob API (`hubmirror.dev/v1alpha1`): the single source of the TypeScript
 * types, the runtime validation and (through crd.ts) the CRD's OpenAPI schema.
 * Defaults live here too: the API server applies them from the CRD and zod applies
 * the same ones when it parses, so both see the same object.
 */
import { z } from "zod";
import { HOST, PATH_COMPONENT, dataKey, imageReference, objectName, secretRef } from "./common.ts";
import { imageSetConfigurationSchema } from "./imageset.ts";
import { matches, maxProperties, pattern, uniqueSet, withRules } from "./rules.ts";

export const GROUP = "hubmirror.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "MirrorJob";
export const PLURAL = "mirrorjobs";

/** Kinds of cluster configuration a run can apply (see apply.kinds). */
export const APPLY_KINDS = [
  "ImageDigestMirrorSet",
  "ImageTagMirrorSet",
  "CatalogSource",
  "ClusterCatalog",
  "UpdateService",
  "ReleaseSignatures",
] as const;

const GO_DURATION = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
const duration = (description: string) =>
  pattern(z.string().min(1).max(32), GO_DURATION, "must be a duration such as 30s, 10m or 1h30m").describe(
    description,
  );

/** Resource quantity, e.g. `100Gi`, `500m`, `2` (what Kubernetes writes as int-or-string). */
const QUANTITY = "^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]+))?$";
const quantity = (description: string) =>
  z
    .union([
      z.number().int().min(0),
      pattern(z.string().max(64), QUANTITY, "must be a quantity such as 100Gi, 500m or 2"),
    ])
    .describe(description)
    .meta({ "x-kubernetes-int-or-string": true, pattern: QUANTITY });

const configMapKeyRef = (description: string, defaultKey: string) =>
  z
    .object({
      name: objectName("Name of a ConfigMap in the MirrorJob's namespace."),
      key: dataKey(`Key in the ConfigMap (default ${defaultKey}).`).default(defaultKey),
    })
    .strict()
    .describe(description);

const imageSet = withRules(
  z
    .object({
      inline: imageSetConfigurationSchema.optional(),
      configMapRef: configMapKeyRef(
        "A ConfigMap holding the ImageSetConfiguration as YAML.",
        "imageset-config.yaml",
      ).optional(),
    })
    .strict()
    .describe(
      "What to mirror: an oc-mirror ImageSetConfiguration, inline or from a ConfigMap (exactly one).",
    ),
  [
    {
      cel: "has(self.inline) != has(self.configMapRef)",
      message: "exactly one of inline or configMapRef must be set",
      check: (s) => (s.inline === undefined) !== (s.configMapRef === undefined),
    },
  ],
);

const registryUrl = withRules(
  z
    .string()
    .min(1)
    .max(255)
    .describe(
      "Target registry and optional path, host[:port][/path], e.g. registry.example.com:8443/mirror. " +
        "No scheme, tag or digest.",
    ),
  [
    matches("^[a-zA-Z][a-zA-Z0-9+.-]*://", "must not include a scheme such as https:// or docker://", true),
    matches("@", "must not include a digest", true),
    matches("/[^/]*:", "must not include a tag", true),
    matches(
      `^${HOST}(/${PATH_COMPONENT})*$`,
      "must be host[:port][/path], e.g. registry.example.com:8443/mirror",
    ),
  ],
);

const caBundleRef = configMapKeyRef(
  "A ConfigMap holding PEM CA certificates to trust for this registry.",
  "ca-bundle.crt",
);

const tlsVerify = z.boolean().default(true).describe("Verify the registry's TLS certificate (default true).");

const registry = z
  .object({
    url: registryUrl,
    pushSecretRef: secretRef(
      "Secret (type kubernetes.io/dockerconfigjson) with credentials that can push to the registry. " +
        "Used only by the mirror Job and the verifier.",
    ),
    pullSecretRef: secretRef(
      "Secret (type kubernetes.io/dockerconfigjson) with read-only credentials for the registry, " +
        "merged into the cluster's global pull secret when apply.pullSecret is Merge.",
    ).optional(),
    caBundleRef: caBundleRef.optional(),
    tlsVerify,
  })
  .strict()
  .describe("The private registry the images are mirrored into.");

const httpsUrl = (description: string) =>
  pattern(z.string().min(1).max(2048), "^https?://[^\\s]+$", "must be an http:// or https:// URL").describe(
    description,
  );

/**
 * Where oc-mirror finds what it needs to mirror releases, for hubs that do not (or may not)
 * reach Red Hat's services: oc-mirror's environment variables UPDATE_URL_OVERRIDE,
 * OCP_SIGNATURE_URL and OCP_SIGNATURE_VERIFICATION_PK, and the update graph data image.
 */
const releaseSource = z
  .object({
    updateGraphURL: httpsUrl(
      "Update graph (Cincinnati) API that lists the release channels, e.g. a local OpenShift Update Service: " +
        "https://updates.example.com/api/upgrades_info/v1/graph (oc-mirror's UPDATE_URL_OVERRIDE; default Red Hat's). " +
        "Its certificate must be trusted through source.caBundleRef.",
    ).optional(),
    signatureURL: httpsUrl(
      "Where release signatures are served, as sha256=<digest>/signature-1 below this URL, e.g. a mirror of " +
        "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release/ (oc-mirror's OCP_SIGNATURE_URL; a missing trailing / is added).",
    ).optional(),
    signatureKeyRef: configMapKeyRef(
      "A ConfigMap holding the armored GPG public key that signs the releases (oc-mirror's OCP_SIGNATURE_VERIFICATION_PK; default Red Hat's key, built into oc-mirror).",
      "verification-key.asc",
    ).optional(),
    graphImage: imageReference(
      "The update graph data image mirrored with platform.graph: true when updateGraphURL is set (oc-mirror builds it only from Red Hat's service), " +
        "e.g. one an earlier run mirrored: <registry.url>/openshift/graph-image:latest. Pulled with the source credentials before oc-mirror starts.",
    ).optional(),
  })
  .strict()
  .describe(
    "Where release channels, signatures and the update graph image come from (semi-connected and offline hubs).",
  );

const source = z
  .object({
    pullSecretRef: secretRef(
      "Secret (type kubernetes.io/dockerconfigjson) with credentials for the source registries, e.g. the Red Hat pull secret.",
    ).optional(),
    caBundleRef: configMapKeyRef(
      "A ConfigMap holding PEM CA certificates to trust for the source registries, the update graph and the signature server.",
      "ca-bundle.crt",
    ).optional(),
    tlsVerify,
    release: releaseSource.optional(),
    registriesConfRef: configMapKeyRef(
      "A ConfigMap holding a containers registries.conf (v2) whose mirrors oc-mirror pulls through (oc-mirror's CONTAINERS_REGISTRIES_CONF).",
      "registries.conf",
    ).optional(),
  })
  .strict()
  .describe("Where the images come from.");

const toleration = z
  .object({
    key: z
      .string()
      .max(316)
      .optional()
      .describe("Taint key the toleration applies to; empty matches all keys."),
    operator: z.enum(["Exists", "Equal"]).optional().describe("Exists or Equal (default Equal)."),
    value: z.string().max(63).optional().describe("Taint value to match with Equal."),
    effect: z
      .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
      .optional()
      .describe("Taint effect to match; empty matches all."),
    tolerationSeconds: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("How long a NoExecute taint is tolerated."),
  })
  .strict()
  .describe("A toleration for the mirror Job's pod.");

const mirror = z
  .object({
    image: imageReference("oc-mirror container image (default: the operator's configured image).").optional(),
    parallelImages: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(4)
      .describe("Images copied at once (--parallel-images, 1-10)."),
    parallelLayers: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(5)
      .describe("Layers copied at once per image (--parallel-layers, 1-10)."),
    retryTimes: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(5)
      .describe("Retries per image on transient errors (--retry-times)."),
    retryDelay: duration("Delay between retries (--retry-delay); unset: exponential backoff.").optional(),
    imageTimeout: duration(
      "Time allowed to copy one image (--image-timeout, oc-mirror's default 10m).",
    ).optional(),
    logLevel: z
      .enum(["info", "debug", "trace", "error"])
      .default("info")
      .describe(
        "oc-mirror log level. error shows only errors in the run's log; oc-mirror still runs at info, whose lines the reporter reads for progress and results.",
      ),
    line: z
      .enum(["4.20", "5"])
      .optional()
      .describe(
        "The oc-mirror release line the image runs: 4.20 or 5 (default: the operator's, HUBMIRROR_OC_MIRROR_LINE, which goes with its default image). " +
          "The operator refuses fields the line does not know and works around the line's known bugs.",
      ),
    resources: z
      .object({
        requests: maxProperties(z.record(z.string().max(253), quantity("A resource request.")), 16)
          .optional()
          .describe("Requested resources."),
        limits: maxProperties(z.record(z.string().max(253), quantity("A resource limit.")), 16)
          .optional()
          .describe("Resource limits."),
      })
      .strict()
      .optional()
      .describe("Compute resources of the oc-mirror container."),
    nodeSelector: maxProperties(z.record(z.string().max(316), z.string().max(63)), 64)
      .optional()
      .describe("Node labels the mirror pod must run on."),
    tolerations: z.array(toleration).max(32).optional().describe("Tolerations of the mirror pod."),
    activeDeadlineSeconds: z
      .number()
      .int()
      .min(60)
      .optional()
      .describe("Time allowed for a whole mirror Job before it is stopped."),
    backoffLimit: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(0)
      .describe("Pod retries of a mirror Job (default 0: a failed run is reported, not retried)."),
  })
  .strict()
  .prefault({})
  .describe("How oc-mirror runs.");

const volume = (what: string, size: string, deletionPolicy: "Retain" | "Delete", why: string) =>
  z
    .object({
      size: quantity(`Size of the ${what} volume (default ${size}).`).default(size),
      deletionPolicy: z
        .enum(["Retain", "Delete"])
        .default(deletionPolicy)
        .describe(
          `What happens to the ${what} volume when the MirrorJob is deleted (default ${deletionPolicy}: ${why}). ` +
            "Retain keeps the PersistentVolumeClaim, and a MirrorJob created again with the same name in the " +
            "same namespace uses it; Delete removes it with the MirrorJob. Ignored with existingClaim, which is never deleted.",
        ),
      storageClassName: objectName("StorageClass of the volume (default: the cluster's default).").optional(),
      existingClaim: objectName(
        `An existing PersistentVolumeClaim to use for the ${what} instead of creating one.`,
      ).optional(),
    })
    .strict()
    .prefault({})
    .describe(`The ${what} volume, kept across runs.`);

const storage = z
  .object({
    cache: volume(
      "oc-mirror cache",
      "100Gi",
      "Retain",
      "the cache is often hundreds of GB and takes hours to fill again",
    ),
    workspace: volume("oc-mirror workspace", "10Gi", "Delete", "a run rebuilds what it needs of it"),
  })
  .strict()
  .prefault({})
  .describe("Volumes of the mirror Job.");

const proxyUrl = (description: string) =>
  pattern(z.string().min(1).max(2048), "^https?://", "must be an http:// or https:// URL").describe(
    description,
  );

const proxy = z
  .object({
    httpProxy: proxyUrl("Proxy for http:// connections.").optional(),
    httpsProxy: proxyUrl("Proxy for https:// connections.").optional(),
    noProxy: z
      .string()
      .max(4096)
      .optional()
      .describe("Hosts that bypass the proxy (comma-separated); cluster-local names are always added."),
  })
  .strict()
  .describe("Proxy settings for the mirror Job and the verifier.");

const apply = z
  .object({
    mode: z
      .enum(["Auto", "Manual", "None"])
      .default("Auto")
      .describe(
        "Auto: apply after each verified run. Manual: show the results, apply nothing. None: no results kept.",
      ),
    kinds: uniqueSet(z.array(z.enum(APPLY_KINDS)).max(APPLY_KINDS.length), "kind listed twice")
      .default([...APPLY_KINDS])
      .describe("Kinds of generated objects to apply (default all)."),
    pullSecret: z
      .enum(["Merge", "Skip"])
      .default("Merge")
      .describe("Merge registry.pullSecretRef into openshift-config/pull-secret, or Skip."),
    disruptive: z
      .enum(["Allow", "RequireApproval", "Deny"])
      .default("RequireApproval")
      .describe(
        "Changes that drain nodes (new or extended ITMS, removed or changed mirrors): Allow, RequireApproval or Deny.",
      ),
    approvedChange: pattern(
      z.string().max(64),
      "^[a-f0-9]{8,64}$",
      "must be the hash shown in status.pendingChange.hash",
    )
      .optional()
      .describe("Hash of a pending disruptive change (status.pendingChange.hash) to apply."),
    prune: z
      .boolean()
      .default(true)
      .describe("Delete objects an earlier run applied that this run no longer generates."),
    deletionPolicy: z
      .enum(["Delete", "Orphan"])
      .default("Delete")
      .describe("What happens to applied objects when the MirrorJob is deleted."),
    rolloutDeadline: duration(
      "How long the cluster may take to take up what was applied (MachineConfigPools updated, CatalogSources READY, the UpdateService available) before RolledOut reports the rollout as stuck (default 2h).",
    ).default("2h"),
  })
  .strict()
  .prefault({})
  .describe("How the generated cluster configuration is applied.");

/**
 * Registry pruning (oc-mirror's delete workflow): what an earlier applied run mirrored and the
 * last applied run no longer does is deleted from the registry, after a plan is shown and
 * approved. The manifests are deleted; the registry's garbage collector reclaims the storage.
 */
const prune = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Delete from the registry the images an earlier applied run mirrored that the last applied run no longer mirrors " +
          "(a channel's minVersion raised, a package or image removed), with oc-mirror's delete workflow. Never deletes what " +
          "this run or another MirrorJob's current run on the same registry references. Default false.",
      ),
    approval: z
      .enum(["Auto", "RequireApproval", "Deny"])
      .default("RequireApproval")
      .describe(
        "Auto: delete as planned. RequireApproval (default): show the plan in status.pendingPrune and delete only after " +
          "spec.prune.approvedPlan is set to its hash. Deny: show the plan, never delete.",
      ),
    approvedPlan: pattern(
      z.string().max(64),
      "^[a-f0-9]{8,64}$",
      "must be the hash shown in status.pendingPrune.hash",
    )
      .optional()
      .describe("Hash of a pending prune plan (status.pendingPrune.hash) to carry out."),
  })
  .strict()
  .prefault({})
  .describe(
    "Pruning the registry of what left the image set (the registry's garbage collector then reclaims the storage).",
  );

export const mirrorJobSpecSchema = withRules(
  z
    .object({
      imageSet,
      registry,
      source: source.prefault({}),
      schedule: z
        .string()
        .min(1)
        .max(128)
        .optional()
        .describe(
          'Cron schedule of runs, e.g. "0 3 * * 0" (minute hour day-of-month month day-of-week) or @daily.',
        ),
      timeZone: z
        .string()
        .min(1)
        .max(64)
        .optional()
        .describe("IANA time zone of the schedule, e.g. Europe/Berlin (default UTC)."),
      runRequest: z
        .string()
        .max(253)
        .optional()
        .describe(
          "Change this value to start a run now; the handled value is echoed in status.lastHandledRunRequest.",
        ),
      suspend: z.boolean().default(false).describe("Start no new runs (a running one finishes)."),
      mirror,
      storage,
      proxy: proxy.optional(),
      verify: z
        .object({
          enabled: z
            .boolean()
            .default(true)
            .describe("Check every mirrored image in the registry before applying."),
        })
        .strict()
        .prefault({})
        .describe("Verification of the registry content after a run."),
      apply,
      prune,
      historyLimit: z
        .object({
          successful: z
            .number()
            .int()
            .min(0)
            .max(50)
            .default(3)
            .describe("Finished successful run Jobs to keep."),
          failed: z.number().int().min(0).max(50).default(3).describe("Finished failed run Jobs to keep."),
        })
        .strict()
        .prefault({})
        .describe("How many finished runs keep their Job and result."),
    })
    .strict()
    .describe("What to mirror, where, when, and what to apply to the cluster."),
  [
    {
      cel: "!has(self.timeZone) || has(self.schedule)",
      message: "timeZone needs a schedule",
      field: ".timeZone",
      check: (s) => s.timeZone === undefined || s.schedule !== undefined,
    },
  ],
);

export type MirrorJobSpec = z.output<typeof mirrorJobSpecSchema>;
export type MirrorJobSpecInput = z.input<typeof mirrorJobSpecSchema>;
