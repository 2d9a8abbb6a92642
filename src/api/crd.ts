/**
 * The MirrorJob CustomResourceDefinition, generated from the zod schemas. zod's
 * OpenAPI 3.0 output is reduced to a Kubernetes structural schema: only the keywords
 * the API server accepts, no `additionalProperties: false` beside `properties` (the
 * API server rejects unknown fields itself under strict field validation), and any
 * construct a structural schema cannot hold is an error here rather than at apply time.
 */
import { z } from "zod";
import { stringify } from "yaml";
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, mirrorJobSpecSchema } from "./mirrorjob.ts";
import { mirrorJobStatusSchema } from "./status.ts";

type JsonSchema = Record<string, unknown>;

/** Keywords copied as they are. */
const KEPT = new Set([
  "type",
  "description",
  "required",
  "enum",
  "default",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "maxProperties",
  "format",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
]);

const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

export function toStructural(schema: JsonSchema, path = "spec"): JsonSchema {
  if (schema["x-kubernetes-int-or-string"] === true) {
    const { description, default: value, pattern, "x-kubernetes-validations": rules } = schema;
    return {
      ...(description !== undefined && { description }),
      ...(value !== undefined && { default: value }),
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
      ...(pattern !== undefined && { pattern }),
      ...(rules !== undefined && { "x-kubernetes-validations": rules }),
    };
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (KEPT.has(key)) {
      if ((key === "minimum" || key === "maximum") && SAFE_INTEGER_BOUNDS.has(value as number)) continue;
      // zod writes both `format: date-time` and a JavaScript pattern for it; the format is enough.
      if (key === "pattern" && schema.format === "date-time") continue;
      out[key] = value;
    } else if (key === "properties") {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([name, s]) => [
          name,
          toStructural(s, `${path}.${name}`),
        ]),
      );
    } else if (key === "items") {
      out.items = toStructural(value as JsonSchema, `${path}[]`);
    } else if (key === "additionalProperties") {
      if (value === false) continue;
      out.additionalProperties = toStructural(value as JsonSchema, `${path}.*`);
    } else if (key !== "$schema") {
      throw new Error(`${path}: "${key}" cannot be expressed in a structural CRD schema`);
    }
  }
  if (out.type === undefined) throw new Error(`${path}: a structural schema needs a type`);
  return out;
}

function openApi(schema: z.ZodType, path: string): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { target: "openapi-3.0", io: "input" }), path);
}

export function mirrorJobCrd(): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: KIND.toLowerCase(),
        shortNames: ["mj"],
        categories: ["hubmirror"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Registry", type: "string", jsonPath: ".spec.registry.url" },
            { name: "Rollout", type: "string", jsonPath: ".status.rollout.state" },
            { name: "Last Success", type: "date", jsonPath: ".status.lastSuccessfulRun.completionTime" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description:
                "MirrorJob keeps a private registry mirrored with oc-mirror v2 and applies the generated " +
                "mirror configuration (IDMS, ITMS, catalogs, update service, signatures, pull secret) to the cluster.",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string", description: API_VERSION },
                kind: { type: "string", description: KIND },
                metadata: { type: "object" },
                spec: openApi(mirrorJobSpecSchema, "spec"),
                status: openApi(mirrorJobStatusSchema, "status"),
              },
            },
          },
        },
      ],
    },
  };
}

export const CRD_FILE = "config/crd/hubmirror.dev_mirrorjobs.yaml";

export function renderCrdYaml(): string {
  return `# Generated from src/api by \`npm run generate\`. Do not edit.\n${stringify(mirrorJobCrd(), { lineWidth: 0 })}`;
}
