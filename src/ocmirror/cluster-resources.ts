/**
 * The files oc-mirror writes into `working-dir/cluster-resources/` after a (possibly partial)
 * mirror run. Source: internal/pkg/clusterresources/clusterresources.go and const.go:
 *
 * - `idms-oc-mirror.yaml`, `itms-oc-mirror.yaml`: several YAML documents, each preceded by `---`
 * - `cs-<repo>-<suffix>.yaml` (CatalogSource), `cc-<repo>-<suffix>.yaml` (ClusterCatalog)
 * - `updateService.yaml` (only with `platform.graph: true`)
 * - `signature-configmap.json` and `signature-configmap.yaml`: the same ConfigMap twice; the JSON
 *   one is read (it is what oc-mirror marshals first), the YAML one only when the JSON is absent.
 *
 * This only turns files into objects with a basic shape (apiVersion, kind, metadata.name) and
 * the kind the file name promises. Everything else (mirrors under the MirrorJob's registry,
 * allowed kinds, ...) is validated by the apply layer, which treats these objects as untrusted.
 */
import { parseAllDocuments } from "yaml";
import {
  CATALOG_SOURCE_FILE_PATTERN,
  CLUSTER_CATALOG_FILE_PATTERN,
  IDMS_FILE,
  ITMS_FILE,
  SIGNATURE_CONFIGMAP_JSON,
  SIGNATURE_CONFIGMAP_YAML,
  UPDATE_SERVICE_FILE,
} from "./workspace.ts";

export interface ResourceFile {
  /** Base name of the file in `cluster-resources/`. */
  readonly name: string;
  readonly content: string;
}

export interface GeneratedObject {
  /** The file the object came from. */
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly object: Record<string, unknown>;
}

export interface ParsedClusterResources {
  readonly objects: GeneratedObject[];
  /** One message per problem, naming the file (and document) it is about. */
  readonly errors: string[];
}

/** More objects than this is not something oc-mirror generates for one image set. */
export const MAX_OBJECTS = 1000;
/** Per file; the largest real files are signature ConfigMaps of a few hundred KiB. */
export const MAX_FILE_BYTES = 5 * 1024 * 1024;
/** YAML aliases are never used by oc-mirror; a few are tolerated, "billion laughs" are not. */
const MAX_ALIASES = 16;

interface FileKind {
  readonly kind: string;
  readonly json: boolean;
}

/** What a file name promises, or undefined for a file oc-mirror does not write. */
export function expectedKind(name: string): FileKind | undefined {
  if (name === IDMS_FILE) return { kind: "ImageDigestMirrorSet", json: false };
  if (name === ITMS_FILE) return { kind: "ImageTagMirrorSet", json: false };
  if (CATALOG_SOURCE_FILE_PATTERN.test(name)) return { kind: "CatalogSource", json: false };
  if (CLUSTER_CATALOG_FILE_PATTERN.test(name)) return { kind: "ClusterCatalog", json: false };
  if (name === UPDATE_SERVICE_FILE) return { kind: "UpdateService", json: false };
  if (name === SIGNATURE_CONFIGMAP_JSON) return { kind: "ConfigMap", json: true };
  if (name === SIGNATURE_CONFIGMAP_YAML) return { kind: "ConfigMap", json: false };
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}

/** Documents of a file as plain values; parse problems go to `errors`. */
function readDocuments(file: string, content: string, json: boolean, errors: string[]): unknown[] {
  if (json) {
    try {
      return [JSON.parse(content) as unknown];
    } catch (err) {
      errors.push(`${file}: invalid JSON: ${(err as Error).message}`);
      return [];
    }
  }
  const values: unknown[] = [];
  parseAllDocuments(content, { uniqueKeys: true }).forEach((doc, i) => {
    const where = `${file} (document ${i + 1})`;
    const problem = doc.errors[0];
    if (problem) {
      errors.push(`${where}: invalid YAML: ${problem.message.split("\n")[0] ?? ""}`);
      return;
    }
    try {
      const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIASES });
      // A lone `---` (or a document of comments) is empty: nothing to apply.
      if (value !== null && value !== undefined) values.push(value);
    } catch (err) {
      errors.push(`${where}: ${(err as Error).message}`);
    }
  });
  return values;
}

/** The object, or why it is not one oc-mirror would have written. */
function toObject(file: string, expected: string, value: unknown): GeneratedObject | string {
  if (!isRecord(value)) return `expected an object, got ${Array.isArray(value) ? "a list" : typeof value}`;
  const { apiVersion, kind, metadata } = value;
  if (!nonEmptyString(apiVersion)) return "apiVersion is missing";
  if (!nonEmptyString(kind)) return "kind is missing";
  if (kind !== expected) return `holds a ${kind} where oc-mirror writes a ${expected}`;
  if (!isRecord(metadata) || !nonEmptyString(metadata.name)) return "metadata.name is missing";
  const namespace = metadata.namespace;
  if (namespace !== undefined && !nonEmptyString(namespace)) {
    return "metadata.namespace must be a non-empty string";
  }
  return {
    file,
    apiVersion,
    kind,
    name: metadata.name,
    ...(namespace === undefined ? {} : { namespace }),
    object: value,
  };
}

/**
 * Parse the files of `cluster-resources/` (base names and contents). Files are read in name
 * order so that the result does not depend on directory listing order.
 */
export function parseClusterResources(files: readonly ResourceFile[]): ParsedClusterResources {
  const objects: GeneratedObject[] = [];
  const errors: string[] = [];
  const names = new Set(files.map((f) => f.name));
  const seen = new Map<string, string>();
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  for (const { name, content } of sorted) {
    const expected = expectedKind(name);
    if (expected === undefined) {
      errors.push(`${name}: not a file oc-mirror generates; ignored`);
      continue;
    }
    // The two signature files hold the same ConfigMap; applying both would count it twice.
    if (name === SIGNATURE_CONFIGMAP_YAML && names.has(SIGNATURE_CONFIGMAP_JSON)) continue;
    const bytes = Buffer.byteLength(content, "utf8");
    if (bytes > MAX_FILE_BYTES) {
      errors.push(`${name}: ${bytes} bytes is more than the ${MAX_FILE_BYTES} accepted; ignored`);
      continue;
    }
    const docs = readDocuments(name, content, expected.json, errors);
    for (const [i, doc] of docs.entries()) {
      const where = docs.length > 1 ? `${name} (document ${i + 1})` : name;
      const obj = toObject(name, expected.kind, doc);
      if (typeof obj === "string") {
        errors.push(`${where}: ${obj}`);
        continue;
      }
      const key = `${obj.kind}/${obj.namespace ?? ""}/${obj.name}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        errors.push(`${where}: ${obj.kind} ${obj.name} is also defined in ${earlier}; ignored`);
        continue;
      }
      if (objects.length >= MAX_OBJECTS) {
        errors.push(`${where}: more than ${MAX_OBJECTS} objects; the rest are ignored`);
        return { objects, errors };
      }
      seen.set(key, where);
      objects.push(obj);
    }
  }
  return { objects, errors };
}
