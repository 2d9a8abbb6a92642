/**
 * Pure builders for everything a run puts on the cluster: per-MirrorJob volumes and
 * ServiceAccount, and per run an input ConfigMap (the ImageSetConfiguration), a result
 * ConfigMap (the only object the Job may write), the reporter's Role and RoleBinding, and
 * the Job itself.
 *
 * No Secret: the Job's pod mounts the user's push Secret and source pull Secret (only their
 * `.dockerconfigjson`) and a `merge-auth` init container merges them into an in-memory
 * emptyDir that oc-mirror reads as its authfile. So the operator never writes a Secret.
 */
import type {
  V1ConfigMap,
  V1Container,
  V1EnvVar,
  V1Job,
  V1ObjectMeta,
  V1OwnerReference,
  V1PersistentVolumeClaim,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1SecurityContext,
  V1ServiceAccount,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { ImageSetConfiguration } from "../api/imageset.ts";
import { API_VERSION, KIND, type MirrorJobSpec } from "../api/mirrorjob.ts";
import {
  PRUNE_INPUT,
  PRUNE_WRAPPER_SCRIPT,
  WRAPPER_SCRIPT,
  ocMirrorArgs,
  pruneDeleteArgs,
  pruneGenerateArgs,
} from "./argv.ts";
import { AUTH_FILE_NAME, DOCKER_CONFIG_KEY } from "./auth.ts";
import { GRAPH_IMAGE_LAYOUT, MOUNTS, STATE_DIR } from "./mounts.ts";
import type { OcMirrorLine } from "../ocmirror/lines.ts";
import { LABELS, PRUNE_COMPONENT, mirrorJobNames, runLabels, runNames, type RunNames } from "./names.ts";

/** The parts of a MirrorJob the builders read. */
export interface MirrorJobRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly spec: MirrorJobSpec;
}

export interface JobSettings {
  /** oc-mirror image when spec.mirror.image is unset. */
  readonly defaultOcMirrorImage: string;
  /** The oc-mirror release line of that image (and of images whose MirrorJob does not say). */
  readonly defaultOcMirrorLine: OcMirrorLine;
  /** This project's image; its `report` and `merge-auth` subcommands run in the Job's pod. */
  readonly operatorImage: string;
  /** Default StorageClass for the cache and workspace volumes (unset: the cluster's default). */
  readonly storageClassName?: string;
  /** Seconds without a heartbeat after which the reporter declares oc-mirror crashed. */
  readonly heartbeatTimeoutSeconds: number;
}

export interface RunInputs {
  readonly id: string;
  /** What started the run, as recorded on the Job. */
  readonly trigger: string;
  readonly inputsHash: string;
  readonly imageSet: ImageSetConfiguration;
}

const ALWAYS_NO_PROXY = [".svc", ".svc.cluster.local", "localhost", "127.0.0.1"];

export function ownerReference(mj: MirrorJobRef): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: mj.name,
    uid: mj.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function meta(mj: MirrorJobRef, name: string, id?: string): V1ObjectMeta {
  return {
    name,
    namespace: mj.namespace,
    labels: runLabels(mj.name, id),
    ownerReferences: [ownerReference(mj)],
  };
}

export function buildVolumeClaims(mj: MirrorJobRef, settings: JobSettings): V1PersistentVolumeClaim[] {
  const names = mirrorJobNames(mj.name);
  const claims: V1PersistentVolumeClaim[] = [];
  for (const [which, volume] of [
    ["cache", mj.spec.storage.cache],
    ["workspace", mj.spec.storage.workspace],
  ] as const) {
    if (volume.existingClaim !== undefined) continue;
    const storageClassName = volume.storageClassName ?? settings.storageClassName;
    const { ownerReferences, ...unowned } = meta(mj, names[which]);
    claims.push({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      // Owned (and so deleted with the MirrorJob by the garbage collector) only with Delete.
      metadata: volume.deletionPolicy === "Delete" ? { ...unowned, ownerReferences } : unowned,
      spec: {
        accessModes: ["ReadWriteOnce"],
        resources: { requests: { storage: String(volume.size) } },
        ...(storageClassName !== undefined && { storageClassName }),
      },
    });
  }
  return claims;
}

export function buildServiceAccount(mj: MirrorJobRef): V1ServiceAccount {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta(mj, mirrorJobNames(mj.name).serviceAccount),
  };
}

/** Objects of one run, in creation order; the Job comes last so its inputs exist first. */
export interface RunObjects {
  readonly input: V1ConfigMap;
  readonly result: V1ConfigMap;
  readonly role: V1Role;
  readonly roleBinding: V1RoleBinding;
  readonly job: V1Job;
}

/** The reporter may read and write its own result ConfigMap and nothing else. */
function reporterRule(resultName: string): V1PolicyRule {
  return {
    apiGroups: [""],
    resources: ["configmaps"],
    resourceNames: [resultName],
    verbs: ["get", "update", "patch"],
  };
}

export function buildRunObjects(mj: MirrorJobRef, run: RunInputs, settings: JobSettings): RunObjects {
  const names = runNames(mj.name, run.id);
  const imageSet = {
    apiVersion: "mirror.openshift.io/v2alpha1",
    kind: "ImageSetConfiguration",
    ...run.imageSet,
  };
  return {
    input: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta(mj, names.input, run.id),
      immutable: true,
      data: { "imageset-config.yaml": stringify(imageSet) },
    },
    result: { apiVersion: "v1", kind: "ConfigMap", metadata: meta(mj, names.result, run.id), data: {} },
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(mj, names.role, run.id),
      rules: [reporterRule(names.result)],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(mj, names.role, run.id),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: names.role },
      subjects: [
        { kind: "ServiceAccount", name: mirrorJobNames(mj.name).serviceAccount, namespace: mj.namespace },
      ],
    },
    job: buildJob(mj, run, settings),
  };
}

const RESTRICTED_CONTAINER: V1SecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  seccompProfile: { type: "RuntimeDefault" },
};

function proxyEnv(spec: MirrorJobSpec): V1EnvVar[] {
  const proxy = spec.proxy;
  if (proxy === undefined) return [];
  const noProxy = [
    ...(proxy.noProxy ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    ...ALWAYS_NO_PROXY,
  ];
  const values: [string, string | undefined][] = [
    ["HTTP_PROXY", proxy.httpProxy],
    ["HTTPS_PROXY", proxy.httpsProxy],
    ["NO_PROXY", [...new Set(noProxy)].join(",")],
  ];
  return values.flatMap(([name, value]) =>
    value === undefined
      ? []
      : [
          { name, value },
          { name: name.toLowerCase(), value },
        ],
  );
}

/** What differs between the pod of a run and that of a prune step (everything else is shared). */
interface PodVariant {
  readonly names: RunNames;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly ocMirrorCommand: string[];
  readonly ocMirrorArgs: string[];
  readonly ocMirrorEnv: V1EnvVar[];
  readonly reporterArgs: string[];
  /** Init containers after merge-auth (they may use the CA folders). */
  readonly moreInit: (caDirs: readonly string[]) => V1Container[];
  readonly backoffLimit: number;
}

function buildJob(mj: MirrorJobRef, run: RunInputs, settings: JobSettings): V1Job {
  const spec = mj.spec;
  const names = runNames(mj.name, run.id);
  return podJob(mj, settings, {
    names,
    labels: runLabels(mj.name, run.id),
    annotations: { "hubmirror.dev/trigger": run.trigger, "hubmirror.dev/inputs-hash": run.inputsHash },
    ocMirrorCommand: ["/bin/sh", "-c", WRAPPER_SCRIPT, "oc-mirror-wrapper"],
    ocMirrorArgs: ocMirrorArgs(spec),
    ocMirrorEnv: [],
    reporterArgs: [
      "report",
      `--state=${STATE_DIR}`,
      `--workspace=${MOUNTS.workspace}`,
      `--namespace=${mj.namespace}`,
      `--result-configmap=${names.result}`,
      `--registry=${spec.registry.url}`,
      `--heartbeat-timeout=${String(settings.heartbeatTimeoutSeconds)}`,
      `--echo-level=${spec.mirror.logLevel === "error" ? "error" : "all"}`,
    ],
    moreInit: (caDirs) => graphImageContainer(spec, run.imageSet, settings, caDirs),
    backoffLimit: spec.mirror.backoffLimit,
  });
}

/** A step of a registry prune: `generate` (oc-mirror delete --generate) or `delete`. */
export interface PruneStepInputs {
  /** The step's id (its objects' run label and oc-mirror's --delete-id). */
  readonly id: string;
  /** The prune the step belongs to (its objects' prune label). */
  readonly pruneId: string;
  readonly step: "generate" | "delete";
  /** The input file (PRUNE_INPUT[step]): a DeleteImageSetConfiguration or a DeleteImageList. */
  readonly input: string;
}

/** Labels of every object of a prune: a run's, plus the prune's id and component. */
export function pruneLabels(mirrorJobName: string, stepId: string, pruneId: string): Record<string, string> {
  return {
    ...runLabels(mirrorJobName, stepId),
    [LABELS.prune]: pruneId,
    [LABELS.component]: PRUNE_COMPONENT,
  };
}

/**
 * The objects of a prune step, shaped like a run's (buildRunObjects): an immutable input
 * ConfigMap, a result ConfigMap the reporter alone may write (its Role names it), and the Job:
 * the same pod as a run's (restricted, the merged authfile, the volumes, the token only for the
 * reporter), with oc-mirror's delete command in the prune wrapper and the prune reporter. A
 * failed step is not retried by the Job: the operator plans again and starts the next step.
 */
export function buildPruneObjects(
  mj: MirrorJobRef,
  step: PruneStepInputs,
  settings: JobSettings,
): RunObjects {
  const spec = mj.spec;
  const names = runNames(mj.name, step.id);
  const labels = pruneLabels(mj.name, step.id, step.pruneId);
  const metadata = (name: string): V1ObjectMeta => ({
    name,
    namespace: mj.namespace,
    labels,
    ownerReferences: [ownerReference(mj)],
  });
  const job = podJob(mj, settings, {
    names,
    labels,
    annotations: { "hubmirror.dev/prune-step": step.step },
    ocMirrorCommand: ["/bin/sh", "-c", PRUNE_WRAPPER_SCRIPT, "oc-mirror-prune"],
    ocMirrorArgs: step.step === "generate" ? pruneGenerateArgs(spec, step.id) : pruneDeleteArgs(spec),
    ocMirrorEnv: [{ name: "HUBMIRROR_PRUNE_STEP", value: step.id }],
    reporterArgs: [
      "report-prune",
      `--step=${step.step}`,
      `--step-id=${step.id}`,
      `--state=${STATE_DIR}`,
      `--workspace=${MOUNTS.workspace}`,
      `--namespace=${mj.namespace}`,
      `--result-configmap=${names.result}`,
      `--heartbeat-timeout=${String(settings.heartbeatTimeoutSeconds)}`,
    ],
    moreInit: () => [],
    backoffLimit: 0,
  });
  return {
    input: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: metadata(names.input),
      immutable: true,
      data: { [PRUNE_INPUT[step.step]]: step.input },
    },
    result: { apiVersion: "v1", kind: "ConfigMap", metadata: metadata(names.result), data: {} },
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: metadata(names.role),
      rules: [reporterRule(names.result)],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: metadata(names.role),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: names.role },
      subjects: [
        { kind: "ServiceAccount", name: mirrorJobNames(mj.name).serviceAccount, namespace: mj.namespace },
      ],
    },
    job,
  };
}

function podJob(mj: MirrorJobRef, settings: JobSettings, variant: PodVariant): V1Job {
  const spec = mj.spec;
  const names = variant.names;
  const claims = mirrorJobNames(mj.name);
  // Push Secret, then (optional) source pull Secret: [volume, mount path, Secret name].
  const secretVolumes: [string, string, string][] = [
    ["push-secret", MOUNTS.pushSecret, spec.registry.pushSecretRef.name],
    ...(spec.source.pullSecretRef !== undefined
      ? [["source-secret", MOUNTS.sourceSecret, spec.source.pullSecretRef.name] as [string, string, string]]
      : []),
  ];
  const caVolumes: [string, string, { name: string; key: string } | undefined][] = [
    ["registry-ca", MOUNTS.registryCa, spec.registry.caBundleRef],
    ["source-ca", MOUNTS.sourceCa, spec.source.caBundleRef],
  ];
  const volumes: V1Volume[] = [
    {
      name: "workspace",
      persistentVolumeClaim: { claimName: spec.storage.workspace.existingClaim ?? claims.workspace },
    },
    { name: "cache", persistentVolumeClaim: { claimName: spec.storage.cache.existingClaim ?? claims.cache } },
    { name: "home", emptyDir: {} },
    { name: "tmp", emptyDir: {} },
    { name: "input", configMap: { name: names.input } },
    // The merged authfile lives in memory only, for the pod's lifetime.
    { name: "auth", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
    ...secretVolumes.map(([name, , secretName]): V1Volume => ({
      name,
      secret: {
        secretName,
        items: [{ key: DOCKER_CONFIG_KEY, path: DOCKER_CONFIG_KEY }],
        // Readable by the pod's non-root containers without an fsGroup (which plain Kubernetes
        // does not set and OpenShift's SCC picks itself); only this pod mounts the volume.
        defaultMode: 0o444,
      },
    })),
    ...caVolumes.flatMap(([name, , ref]): V1Volume[] =>
      ref === undefined
        ? []
        : [{ name, configMap: { name: ref.name, items: [{ key: ref.key, path: "ca.crt" }] } }],
    ),
    ...configFileVolumes(spec).map(([name, , ref, file]): V1Volume => ({
      name,
      configMap: { name: ref.name, items: [{ key: ref.key, path: file }] },
    })),
    // The reporter's identity, and only the reporter's (see the pod's automountServiceAccountToken).
    serviceAccountTokenVolume,
  ];
  const mounts: V1VolumeMount[] = [
    { name: "workspace", mountPath: MOUNTS.workspace },
    { name: "cache", mountPath: MOUNTS.cache },
    { name: "home", mountPath: MOUNTS.home },
    { name: "tmp", mountPath: MOUNTS.tmp },
    { name: "input", mountPath: MOUNTS.input, readOnly: true },
    { name: "auth", mountPath: MOUNTS.auth, readOnly: true },
    ...caVolumes.flatMap(([name, mountPath, ref]) =>
      ref === undefined ? [] : [{ name, mountPath, readOnly: true }],
    ),
    ...configFileVolumes(spec).map(([name, mountPath]) => ({ name, mountPath, readOnly: true })),
  ];
  const caDirs = caVolumes.filter(([, , ref]) => ref !== undefined).map(([, path]) => path);
  const moreInit = variant.moreInit(caDirs);
  // The graph image is pulled into an emptyDir the oc-mirror container reads (argv.ts).
  if (moreInit.some((c) => c.volumeMounts?.some((m) => m.name === "graph-image"))) {
    volumes.push({ name: "graph-image", emptyDir: {} });
    mounts.push({ name: "graph-image", mountPath: MOUNTS.graphImage, readOnly: true });
  }
  const mergeAuth: V1Container = {
    name: "merge-auth",
    image: settings.operatorImage,
    // The source pull Secret first: the push Secret's entries win for the same registry.
    args: [
      "merge-auth",
      `--out=${MOUNTS.auth}/${AUTH_FILE_NAME}`,
      ...[...secretVolumes].reverse().map(([, mountPath]) => `${mountPath}/${DOCKER_CONFIG_KEY}`),
    ],
    volumeMounts: [
      { name: "auth", mountPath: MOUNTS.auth },
      ...secretVolumes.map(([name, mountPath]) => ({ name, mountPath, readOnly: true })),
    ],
    securityContext: RESTRICTED_CONTAINER,
    resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
  };
  const ocMirror: V1Container = {
    name: "oc-mirror",
    image: spec.mirror.image ?? settings.defaultOcMirrorImage,
    command: variant.ocMirrorCommand,
    args: variant.ocMirrorArgs,
    env: [
      ...variant.ocMirrorEnv,
      { name: "HOME", value: MOUNTS.home },
      { name: "TMPDIR", value: MOUNTS.tmp },
      ...(caDirs.length > 0
        ? // Go reads every directory listed here (and no system default then): keep the usual ones.
          [{ name: "SSL_CERT_DIR", value: ["/etc/pki/tls/certs", "/etc/ssl/certs", ...caDirs].join(":") }]
        : []),
      // containers/image finds the authfile here too (a release given by tag is resolved without --authfile).
      { name: "XDG_RUNTIME_DIR", value: MOUNTS.auth },
      ...releaseSourceEnv(spec),
      ...proxyEnv(spec),
    ],
    volumeMounts: mounts,
    securityContext: RESTRICTED_CONTAINER,
    ...(spec.mirror.resources !== undefined && {
      resources: {
        ...(spec.mirror.resources.requests && { requests: stringValues(spec.mirror.resources.requests) }),
        ...(spec.mirror.resources.limits && { limits: stringValues(spec.mirror.resources.limits) }),
      },
    }),
  };
  const reporter: V1Container = {
    name: "reporter",
    image: settings.operatorImage,
    args: variant.reporterArgs,
    volumeMounts: [
      { name: "workspace", mountPath: MOUNTS.workspace, readOnly: true },
      { name: serviceAccountTokenVolume.name, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
    ],
    securityContext: RESTRICTED_CONTAINER,
    resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: names.job,
      namespace: mj.namespace,
      labels: variant.labels,
      ownerReferences: [ownerReference(mj)],
      annotations: variant.annotations,
    },
    spec: {
      backoffLimit: variant.backoffLimit,
      ...(spec.mirror.activeDeadlineSeconds !== undefined && {
        activeDeadlineSeconds: spec.mirror.activeDeadlineSeconds,
      }),
      template: {
        metadata: { labels: variant.labels },
        spec: {
          restartPolicy: "Never",
          serviceAccountName: claims.serviceAccount,
          // No container gets a token by default: oc-mirror runs third-party code against the
          // internet and never talks to the API server. The reporter mounts one (see above).
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          ...(spec.mirror.nodeSelector !== undefined && { nodeSelector: spec.mirror.nodeSelector }),
          ...(spec.mirror.tolerations !== undefined && { tolerations: spec.mirror.tolerations }),
          volumes,
          initContainers: [mergeAuth, ...moreInit],
          containers: [ocMirror, reporter],
        },
      },
    },
  };
}

/** ConfigMap keys mounted as files for oc-mirror: [volume, mount path, reference, file name]. */
function configFileVolumes(spec: MirrorJobSpec): [string, string, { name: string; key: string }, string][] {
  const key = spec.source.release?.signatureKeyRef;
  const conf = spec.source.registriesConfRef;
  return [
    ...(key !== undefined
      ? [["release-key", MOUNTS.releaseKey, key, "key.asc"] as [string, string, typeof key, string]]
      : []),
    ...(conf !== undefined
      ? [
          ["registries-conf", MOUNTS.registriesConf, conf, "registries.conf"] as [
            string,
            string,
            typeof conf,
            string,
          ],
        ]
      : []),
  ];
}

/** oc-mirror's settings for where releases come from (spec.source.release, registriesConfRef). */
function releaseSourceEnv(spec: MirrorJobSpec): V1EnvVar[] {
  const release = spec.source.release;
  const signatureURL = release?.signatureURL;
  return [
    ...(release?.updateGraphURL !== undefined
      ? [{ name: "UPDATE_URL_OVERRIDE", value: release.updateGraphURL }]
      : []),
    // oc-mirror appends "sha256=<hex>/signature-1" to it as it is.
    ...(signatureURL !== undefined
      ? [{ name: "OCP_SIGNATURE_URL", value: signatureURL.endsWith("/") ? signatureURL : `${signatureURL}/` }]
      : []),
    ...(release?.signatureKeyRef !== undefined
      ? [{ name: "OCP_SIGNATURE_VERIFICATION_PK", value: `${MOUNTS.releaseKey}/key.asc` }]
      : []),
    ...(spec.source.registriesConfRef !== undefined
      ? [{ name: "CONTAINERS_REGISTRIES_CONF", value: `${MOUNTS.registriesConf}/registries.conf` }]
      : []),
  ];
}

/**
 * With `graph: true` and an update graph of the user's (UPDATE_URL_OVERRIDE), oc-mirror does
 * not build the graph image: it reads it from `working-dir/graph-preparation`. This init
 * container pulls spec.source.release.graphImage (with the merged credentials) into an
 * emptyDir, from which the oc-mirror container's wrapper copies it there (argv.ts).
 */
export function needsGraphImage(spec: MirrorJobSpec, imageSet: ImageSetConfiguration): boolean {
  return imageSet.mirror.platform?.graph === true && spec.source.release?.updateGraphURL !== undefined;
}

function graphImageContainer(
  spec: MirrorJobSpec,
  imageSet: ImageSetConfiguration,
  settings: JobSettings,
  caDirs: readonly string[],
): V1Container[] {
  const graphImage = spec.source.release?.graphImage;
  if (!needsGraphImage(spec, imageSet) || graphImage === undefined) return [];
  return [
    {
      name: "pull-graph-image",
      image: settings.operatorImage,
      args: [
        "pull-oci",
        `--image=${graphImage}`,
        `--layout=${GRAPH_IMAGE_LAYOUT}`,
        `--authfile=${MOUNTS.auth}/${AUTH_FILE_NAME}`,
        ...caDirs.map((dir) => `--ca-dir=${dir}`),
        `--tls-verify=${String(spec.source.tlsVerify)}`,
      ],
      volumeMounts: [
        { name: "graph-image", mountPath: MOUNTS.graphImage },
        { name: "auth", mountPath: MOUNTS.auth, readOnly: true },
        ...(spec.source.caBundleRef !== undefined
          ? [{ name: "source-ca", mountPath: MOUNTS.sourceCa, readOnly: true }]
          : []),
        ...(spec.registry.caBundleRef !== undefined
          ? [{ name: "registry-ca", mountPath: MOUNTS.registryCa, readOnly: true }]
          : []),
      ],
      securityContext: RESTRICTED_CONTAINER,
      resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "512Mi" } },
    },
  ];
}

/** Where Kubernetes clients look for the in-cluster identity (token, CA, namespace). */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The projected volume ServiceAccount admission would add for every container, added here
 * for the reporter alone: a bound token the kubelet refreshes, the cluster CA, the namespace.
 */
const serviceAccountTokenVolume = {
  name: "reporter-token",
  projected: {
    sources: [
      { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
      { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
      {
        downwardAPI: {
          items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
        },
      },
    ],
  },
} as const satisfies V1Volume;

function stringValues(values: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
}
