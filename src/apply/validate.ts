/**
 * Validation of a run's generated cluster configuration before anything is applied.
 * The objects come from the Job pod (through the result ConfigMap), so they are untrusted:
 * a compromised or buggy run must not be able to make the cluster pull from elsewhere, put
 * objects into other namespaces, or apply anything but the kinds in `KINDS`. Every object
 * is checked against a strict per-kind schema (unknown fields rejected), every image
 * reference must lie under the MirrorJob's `registry.url`, and sizes are bounded. One bad
 * object rejects the whole result: a half-validated set is never applied.
 */
import { z } from "zod";
import { DNS_SUBDOMAIN } from "../api/common.ts";
import type { ResultGeneratedObject } from "../report/result.ts";
import { KINDS, type KindInfo } from "./kinds.ts";

/** A generated object that passed validation, reduced to what is applied. */
export interface GeneratedResource {
  readonly info: KindInfo;
  /** The name oc-mirror gave it (applied under a per-MirrorJob name, see desired.ts). */
  readonly sourceName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** `spec`, or `data`/`binaryData` for ConfigMaps. */
  readonly content: Readonly<Record<string, unknown>>;
}

export type Validation =
  | { readonly ok: true; readonly resources: GeneratedResource[] }
  | { readonly ok: false; readonly problems: string[] };

/** Per object (serialized); etcd refuses objects above ~1.5 MiB anyway. */
const MAX_OBJECT_BYTES = 1024 * 1024;
const MAX_PROBLEMS = 10;

const QUALIFIED_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const stringMap = (maxValue: number) =>
  z
    .record(z.string().max(317).regex(QUALIFIED_KEY, "invalid key"), z.string().max(maxValue))
    .refine((m) => Object.keys(m).length <= 64, "more than 64 entries");

const metadata = z
  .object({
    name: z.string().min(1).max(253).regex(DNS_SUBDOMAIN, "must be a DNS subdomain name"),
    namespace: z.string().max(63).optional(),
    labels: stringMap(63).optional(),
    annotations: stringMap(4096).optional(),
    // Go's marshalling of an empty ObjectMeta writes `creationTimestamp: null`.
    creationTimestamp: z.null().optional(),
  })
  .strict();

const imageRef = z.string().min(1).max(1024);
const mirrorEntry = z
  .object({
    source: z.string().min(1).max(1024),
    mirrors: z.array(imageRef).min(1).max(16),
    mirrorSourcePolicy: z.enum(["NeverContactSource", "AllowContactingSource"]).optional(),
  })
  .strict();

const CONTENT: Record<string, z.ZodType<Record<string, unknown>>> = {
  ImageDigestMirrorSet: z.strictObject({
    spec: z.object({ imageDigestMirrors: z.array(mirrorEntry).max(10_000) }).strict(),
  }),
  ImageTagMirrorSet: z.strictObject({
    spec: z.object({ imageTagMirrors: z.array(mirrorEntry).max(10_000) }).strict(),
  }),
  CatalogSource: z.strictObject({
    spec: z
      .object({
        sourceType: z.literal("grpc"),
        image: imageRef,
        displayName: z.string().max(256).optional(),
        publisher: z.string().max(256).optional(),
        priority: z.number().int().optional(),
        updateStrategy: z
          .object({ registryPoll: z.object({ interval: z.string().max(32) }).strict() })
          .strict()
          .optional(),
        // From the ImageSetConfiguration's targetCatalogSourceTemplate.
        grpcPodConfig: z
          .object({
            nodeSelector: stringMap(63).optional(),
            tolerations: z.array(z.record(z.string(), z.unknown())).max(32).optional(),
            priorityClassName: z.string().max(253).optional(),
            securityContextConfig: z.enum(["legacy", "restricted"]).optional(),
            memoryTarget: z.union([z.string().max(32), z.number()]).optional(),
            extractContent: z
              .object({ cacheDir: z.string().max(256), catalogDir: z.string().max(256) })
              .strict()
              .optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
  }),
  ClusterCatalog: z.strictObject({
    spec: z
      .object({
        source: z
          .object({
            type: z.literal("Image"),
            image: z
              .object({ ref: imageRef, pollIntervalMinutes: z.number().int().min(1).optional() })
              .strict(),
          })
          .strict(),
        priority: z.number().int().optional(),
        availabilityMode: z.enum(["Available", "Unavailable"]).optional(),
      })
      .strict(),
  }),
  UpdateService: z.strictObject({
    spec: z
      .object({ replicas: z.number().int().min(1).max(10), releases: imageRef, graphDataImage: imageRef })
      .strict(),
  }),
  ConfigMap: z.strictObject({
    binaryData: z
      .record(z.string().regex(/^sha256-[a-f0-9]{64}-[0-9]{1,3}$/, "must be sha256-<hex>-<n>"), z.base64())
      .refine((m) => Object.keys(m).length <= 1024, "more than 1024 signatures")
      .optional(),
    data: z
      .record(z.string().regex(/^sha256-[a-f0-9]{64}-[0-9]{1,3}$/, "must be sha256-<hex>-<n>"), z.string())
      .optional(),
  }),
};

const SIGNATURES_LABEL = "release.openshift.io/verification-signatures";

/** True if `reference` is `registryUrl` itself or a repository below it. */
export function underRegistry(reference: string, registryUrl: string): boolean {
  const url = registryUrl.replace(/\/+$/, "");
  return reference === url || reference.startsWith(`${url}/`);
}

/** Every image reference the cluster would pull through this object (by kind). */
function imageReferences(kind: string, content: Record<string, unknown>): { field: string; ref: string }[] {
  const spec = content.spec as Record<string, unknown> | undefined;
  const entries = (field: string) =>
    ((spec?.[field] as { mirrors: string[] }[] | undefined) ?? []).flatMap((entry, i) =>
      entry.mirrors.map((ref, j) => ({ field: `spec.${field}[${i}].mirrors[${j}]`, ref })),
    );
  switch (kind) {
    case "ImageDigestMirrorSet":
      return entries("imageDigestMirrors");
    case "ImageTagMirrorSet":
      return entries("imageTagMirrors");
    case "CatalogSource":
      return [{ field: "spec.image", ref: spec?.image as string }];
    case "ClusterCatalog":
      return [
        {
          field: "spec.source.image.ref",
          ref: (spec?.source as { image: { ref: string } } | undefined)?.image.ref ?? "",
        },
      ];
    case "UpdateService":
      return [
        { field: "spec.releases", ref: spec?.releases as string },
        { field: "spec.graphDataImage", ref: spec?.graphDataImage as string },
      ];
    default:
      return [];
  }
}

function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "(object)"}: ${i.message}`)
    .join("; ");
}

function validateOne(generated: ResultGeneratedObject, registryUrl: string): GeneratedResource | string {
  const object = generated.object;
  const where = `${generated.file}: ${String(object.kind)} ${String((object.metadata as { name?: unknown } | undefined)?.name)}`;
  const info = KINDS.find((k) => k.kind === object.kind && k.apiVersion === object.apiVersion);
  if (info === undefined) {
    return `${where}: kind ${String(object.apiVersion)}/${String(object.kind)} is not one a run may apply (allowed: ${KINDS.map((k) => `${k.apiVersion}/${k.kind}`).join(", ")})`;
  }
  if (JSON.stringify(object).length > MAX_OBJECT_BYTES)
    return `${where}: larger than ${MAX_OBJECT_BYTES} bytes`;
  const { apiVersion: _apiVersion, kind: _kind, metadata: rawMetadata, status: _status, ...rest } = object;
  const meta = metadata.safeParse(rawMetadata);
  if (!meta.success) return `${where}: metadata: ${issues(meta.error)}`;
  const namespace = meta.data.namespace;
  if (info.namespace === undefined && namespace !== undefined && namespace !== "") {
    return `${where}: ${info.kind} is cluster-scoped but has namespace ${namespace}`;
  }
  if (info.namespace !== undefined && namespace !== undefined && namespace !== info.namespace) {
    return `${where}: namespace ${namespace} is not allowed (${info.kind} objects go to ${info.namespace} only)`;
  }
  const schema = CONTENT[info.kind];
  if (schema === undefined) return `${where}: no schema for ${info.kind}`;
  const content = schema.safeParse(rest);
  if (!content.success) return `${where}: ${issues(content.error)}`;
  if (info.kind === "ConfigMap" && meta.data.labels?.[SIGNATURES_LABEL] === undefined) {
    return `${where}: a ConfigMap is applied only as release signatures (label ${SIGNATURES_LABEL})`;
  }
  for (const { field, ref } of imageReferences(info.kind, content.data)) {
    if (!underRegistry(ref, registryUrl)) {
      return `${where}: ${field} ${ref} is not under the MirrorJob's registry ${registryUrl} (spec.registry.url)`;
    }
  }
  return {
    info,
    sourceName: meta.data.name,
    labels: meta.data.labels ?? {},
    annotations: meta.data.annotations ?? {},
    content: content.data,
  };
}

/** Validates a run's generated objects as a whole: all are usable, or none is. */
export function validateGenerated(
  objects: readonly ResultGeneratedObject[],
  registryUrl: string,
): Validation {
  const problems: string[] = [];
  const resources: GeneratedResource[] = [];
  const seen = new Set<string>();
  for (const generated of objects) {
    const checked = validateOne(generated, registryUrl);
    if (typeof checked === "string") {
      problems.push(checked);
      continue;
    }
    const id = `${checked.info.kind}/${checked.sourceName}`;
    if (seen.has(id)) {
      problems.push(`${generated.file}: ${id} appears twice`);
      continue;
    }
    seen.add(id);
    resources.push(checked);
  }
  if (problems.length > 0) {
    const more = problems.length > MAX_PROBLEMS ? [`and ${problems.length - MAX_PROBLEMS} more`] : [];
    return { ok: false, problems: [...problems.slice(0, MAX_PROBLEMS), ...more] };
  }
  return { ok: true, resources };
}
