/**
 * A stand-in for oc-mirror v2 (4.20+, mirror-to-mirror) for tests without a container runtime.
 * The test pod runner runs it in place of the oc-mirror container, with that container's argv and
 * environment. It derives the image list from the ImageSetConfiguration, prints what oc-mirror
 * prints, writes the workspace oc-mirror writes (log file, errors file, dry-run mapping, cluster
 * resources) and exits with oc-mirror's exit code, so that the real reporter and parsers can be
 * exercised. Sources are not pulled (except additional images from a registry on this machine, see
 * "Copying" below); instead, every image the mirror pass reports as copied to the destination
 * registry is pushed there as a small made-up image (see "Pushing" below), so that a verifier
 * checking the registry afterwards finds exactly the images oc-mirror said it copied.
 *
 * What it imitates, and where that comes from in openshift/oc-mirror:
 * - flags and their checks: internal/pkg/cli/executor.go (NewMirrorCmd, Validate, Complete)
 * - ImageSetConfiguration loading errors: internal/pkg/config/load.go
 * - the image list and destinations: internal/pkg/release, operator (dispatchImagesForM2M),
 *   additional and helm collectors; ordering: customsort.ByTypePriority
 * - the copy loop, its log lines, the results block, the errors file and the exit code:
 *   internal/pkg/batch (concurrent_chan_worker.go, common.go), errcode/code.go
 * - the dry run: cli/dryrun.go; the cluster resources: clusterresources/clusterresources.go
 * - the log line format: github.com/microlib/simple through Go's `log`
 *
 * It deliberately spells workspace paths itself instead of using src/ocmirror/workspace.ts:
 * it plays oc-mirror, and tests that read its output with the real parsers then check those
 * constants against an independent writer.
 *
 * Scenarios (env HUBMIRROR_FIXTURE_SCENARIO):
 * - `success` (default): every image copied, exit 0.
 * - `partial`: the last additional image fails, and the first operator related image fails
 *   (so the bundle that needs it is skipped, as oc-mirror does); exit 12, 8 or 4.
 * - `failure`: with releases, the release image fails and cancels the rest of the batch (exit 2,
 *   OR-ed with the bits of every other category left uncopied, exactly as oc-mirror computes it);
 *   without releases, the registry authentication check fails before copying (exit 1).
 * - `crash`: a few progress lines, then a fatal error: exit 255, no results, no errors file,
 *   empty cluster-resources/.
 * HUBMIRROR_FIXTURE_DELAY_MS (default 0) sleeps before each image line.
 *
 * Pushing (env HUBMIRROR_FIXTURE_PUSH, default `true`; `false` for tests whose destination is
 * not a real registry): before printing `Success copying <origin> ➡️ <dest>` for an image whose
 * destination is the destination registry (not the `localhost:<port>` cache), the mirror pass
 * pushes `buildImage({ name: <destination reference> })` (one platform, content fixed by the
 * reference, so re-runs are idempotent) under the destination's tag with the project's registry
 * client. Images the scenario fails are not pushed, and a dry run pushes nothing. A push that
 * fails (registry down, credentials refused, untrusted certificate) fails that image the way a
 * copy failure does: an `[ERROR] ... Failed to copy` line, an errors-file line and the exit-code
 * bit of its category (a release image cancels the batch). Like containers/image it reads:
 * credentials from --authfile, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
 * ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json (missing
 * files give no credentials); trusted CAs from every *.crt/*.pem in the directories of
 * $SSL_CERT_DIR and the *.crt of --dest-cert-dir; --dest-tls-verify; --retry-times (extra
 * attempts for 429/5xx/timeouts); --image-timeout (capped at 30 s per request); HTTPS_PROXY and
 * NO_PROXY. The registry access check before copying is not made (its line is printed).
 *
 * Copying: an additional image whose source registry is on this machine (`127.0.0.1`,
 * `localhost`, `[::1]`: the only registries tests can reach) is copied for real instead: its
 * manifest (every manifest of an index) and blobs are read from the source and written to the
 * destination, so the destination holds the source's digest. Source credentials come from the
 * same auth files; trusted CAs from $SSL_CERT_DIR and --src-cert-dir; --src-tls-verify. A copy that
 * fails (source missing, refused) fails the image like a push that fails.
 *
 * Not imitated: mirror-to-disk and disk-to-mirror, delete, pulling from remote source registries, the
 * port-in-use check (pods share the test host's network), --max-nested-paths flattening (only its
 * effect on IDMS/ITMS scope), registries.d and pinned-ISC files.
 */
import { createHash } from "node:crypto";
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { RegistryClient } from "../../src/registry/client.ts";
import { credentialsFor, type Credentials } from "../../src/registry/credentials.ts";
import { proxyFromEnvironment, type ProxySettings } from "../../src/registry/proxy.ts";
import { parseReference, type ImageReference } from "../../src/registry/reference.ts";
import { MediaType } from "../../src/registry/media-types.ts";
import { buildImage, pushImage } from "./images.ts";

export interface FixtureIO {
  /** Receives each line oc-mirror writes to stdout (without newline). */
  readonly stdout: (line: string) => void;
  /**
   * Lines oc-mirror writes to stderr (before its log file is set up, and Go/klog fatal lines).
   * Defaults to `stdout`, as in a container's log.
   */
  readonly stderr?: (line: string) => void;
}

export const FIXTURE_VERSION = "v4.20.0-hubmirror-fixture";
export const SCENARIOS = ["success", "partial", "failure", "crash"] as const;
export type Scenario = (typeof SCENARIOS)[number];

// ---------------------------------------------------------------------------------------------
// Command line (cobra/pflag semantics)

type FlagKind = "bool" | "string" | "uint" | "int" | "duration";

interface FlagSpec {
  readonly kind: FlagKind;
  readonly short?: string;
  /** Largest value for uint flags (pflag's Uint16 for the port). */
  readonly max?: number;
}

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  config: { kind: "string", short: "c" },
  workspace: { kind: "string" },
  "cache-dir": { kind: "string" },
  "log-level": { kind: "string" },
  port: { kind: "uint", short: "p", max: 65535 },
  v1: { kind: "bool" },
  v2: { kind: "bool" },
  "dry-run": { kind: "bool" },
  "parallel-images": { kind: "uint" },
  "parallel-layers": { kind: "uint" },
  authfile: { kind: "string" },
  "src-authfile": { kind: "string" },
  "dest-authfile": { kind: "string" },
  "dest-tls-verify": { kind: "bool" },
  "src-tls-verify": { kind: "bool" },
  "tls-verify": { kind: "bool" },
  "dest-cert-dir": { kind: "string" },
  "src-cert-dir": { kind: "string" },
  "retry-times": { kind: "int" },
  "retry-delay": { kind: "duration" },
  "image-timeout": { kind: "duration" },
  from: { kind: "string" },
  since: { kind: "string" },
  "max-nested-paths": { kind: "int" },
  "secure-policy": { kind: "bool" },
  policy: { kind: "string" },
  "registries.d": { kind: "string" },
  "remove-signatures": { kind: "bool" },
  "ignore-release-signature": { kind: "bool" },
  "rootless-storage-path": { kind: "string" },
  "strict-archive": { kind: "bool" },
  quiet: { kind: "bool", short: "q" },
  force: { kind: "bool", short: "f" },
  "cpu-prof": { kind: "bool" },
  "mem-prof": { kind: "bool" },
};

const SHORT_FLAGS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(FLAGS).flatMap(([name, spec]) => (spec.short === undefined ? [] : [[spec.short, name]])),
);

export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | boolean>>;
  readonly positional: readonly string[];
}

const GO_DURATION = /^(?:0|(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+)$/;

function flagTitle(name: string): string {
  const short = FLAGS[name]?.short;
  return short === undefined ? `--${name}` : `-${short}, --${name}`;
}

function checkValue(name: string, spec: FlagSpec, value: string): string | undefined {
  const bad = (why: string) => `invalid argument "${value}" for "${flagTitle(name)}" flag: ${why}`;
  switch (spec.kind) {
    case "uint":
      if (!/^\d+$/.test(value)) return bad(`strconv.ParseUint: parsing "${value}": invalid syntax`);
      if (spec.max !== undefined && Number(value) > spec.max) {
        return bad(`strconv.ParseUint: parsing "${value}": value out of range`);
      }
      return undefined;
    case "int":
      return /^-?\d+$/.test(value) ? undefined : bad(`strconv.ParseInt: parsing "${value}": invalid syntax`);
    case "duration":
      return GO_DURATION.test(value) ? undefined : bad(`time: invalid duration "${value}"`);
    case "bool":
      return /^(?:1|0|t|f|true|false|TRUE|FALSE|True|False)$/.test(value)
        ? undefined
        : bad(`strconv.ParseBool: parsing "${value}": invalid syntax`);
    case "string":
      return undefined;
  }
}

/** pflag's parsing: `--name=value`, `--name value`, `-c value`, `-cvalue`, `-c=value`; bools never take the next arg. */
export function parseArgs(argv: readonly string[]): ParsedArgs | { readonly error: string } {
  const flags: Record<string, string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      if (FLAGS[name] === undefined) return { error: `unknown flag: --${name}` };
    } else if (arg.startsWith("-") && arg.length > 1) {
      const short = arg.charAt(1);
      const long = SHORT_FLAGS[short];
      if (long === undefined) return { error: `unknown shorthand flag: '${short}' in ${arg}` };
      name = long;
      const rest = arg.slice(2);
      inline = rest === "" ? undefined : rest.replace(/^=/, "");
    } else {
      positional.push(arg);
      continue;
    }
    const spec = FLAGS[name];
    if (spec === undefined) return { error: `unknown flag: --${name}` };
    if (spec.kind === "bool") {
      if (inline === undefined) {
        flags[name] = true;
        continue;
      }
      const problem = checkValue(name, spec, inline);
      if (problem !== undefined) return { error: problem };
      flags[name] = /^(?:1|t|true)$/i.test(inline);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) {
        return {
          error: arg.startsWith("--")
            ? `flag needs an argument: ${arg}`
            : `flag needs an argument: '${arg.charAt(1)}' in ${arg}`,
        };
      }
      value = argv[++i] ?? "";
    }
    const problem = checkValue(name, spec, value);
    if (problem !== undefined) return { error: problem };
    flags[name] = value;
  }
  return { flags, positional };
}

// ---------------------------------------------------------------------------------------------
// ImageSetConfiguration (what the collectors read; unknown fields rejected like oc-mirror)

export interface IscChannel {
  readonly name: string;
  readonly type?: string;
  readonly minVersion?: string;
  readonly maxVersion?: string;
}

export interface IscPackage {
  readonly name: string;
  readonly minVersion?: string;
  readonly maxVersion?: string;
  readonly channels: readonly IscChannel[];
}

export interface IscOperator {
  readonly catalog: string;
  readonly targetCatalog?: string;
  readonly targetTag?: string;
  readonly full: boolean;
  readonly targetCatalogSourceTemplate?: string;
  readonly packages: readonly IscPackage[];
}

export interface IscAdditionalImage {
  readonly name: string;
  readonly targetRepo?: string;
  readonly targetTag?: string;
}

export interface Isc {
  readonly graph: boolean;
  readonly channels: readonly IscChannel[];
  readonly architectures: readonly string[];
  readonly release?: string;
  readonly operators: readonly IscOperator[];
  readonly additionalImages: readonly IscAdditionalImage[];
  readonly helmCharts: readonly { readonly name: string; readonly version?: string }[];
  readonly blockedImages: readonly string[];
}

class ConfigError extends Error {}

const KIND = "ImageSetConfiguration";
const decodeError = (detail: string) => new ConfigError(`decode ${KIND}: json: ${detail}`);

function asObject(value: unknown, where: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw decodeError(
      `cannot unmarshal ${Array.isArray(value) ? "array" : typeof value} into Go struct field ${where}`,
    );
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw decodeError(`unknown field "${key}"`);
  }
  return record;
}

function asList(value: unknown, where: string): unknown[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value))
    throw decodeError(`cannot unmarshal ${typeof value} into Go struct field ${where} of type []`);
  return value as unknown[];
}

function asString(value: unknown, where: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") return value;
  // YAML reads an unquoted 4.19 as a number; Go's decoder would refuse it too.
  throw decodeError(`cannot unmarshal ${typeof value} into Go struct field ${where} of type string`);
}

function asBool(value: unknown, where: string): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === "boolean") return value;
  throw decodeError(`cannot unmarshal ${typeof value} into Go struct field ${where} of type bool`);
}

function readChannel(value: unknown, where: string, allowed: readonly string[]): IscChannel {
  const c = asObject(value, where, allowed);
  const name = asString(c.name, `${where}.name`) ?? "";
  const type = asString(c.type, `${where}.type`);
  const minVersion = asString(c.minVersion, `${where}.minVersion`);
  const maxVersion = asString(c.maxVersion, `${where}.maxVersion`);
  return {
    name,
    ...(type === undefined ? {} : { type }),
    ...(minVersion === undefined ? {} : { minVersion }),
    ...(maxVersion === undefined ? {} : { maxVersion }),
  };
}

/** Messages of internal/pkg/config/load.go (ReadConfig, LoadConfig). */
export function readIsc(text: string): Isc {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(`failed to unmarshal config: ${(err as Error).message.split("\n")[0] ?? ""}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError("failed to unmarshal config: error unmarshaling JSON: not an object");
  }
  const top = doc as Record<string, unknown>;
  if (!("kind" in top)) throw new ConfigError("configuration missing `kind`");
  if (top.kind !== KIND) throw new ConfigError(`cannot parse "${String(top.kind)}" as "${KIND}"`);
  if (!("mirror" in top)) throw new ConfigError("configuration missing the `mirror` stanza");
  if ("delete" in top) throw new ConfigError(`delete: is not allowed in ${KIND}`);
  asObject(top, KIND, ["apiVersion", "kind", "archiveSize", "mirror"]);
  const mirror = asObject(top.mirror, "mirror", [
    "platform",
    "operators",
    "additionalImages",
    "helm",
    "blockedImages",
  ]);

  const platform = asObject(mirror.platform, "mirror.platform", [
    "graph",
    "channels",
    "architectures",
    "platforms",
    "release",
    "kubeVirtContainer",
  ]);
  const channelKeys = ["name", "type", "minVersion", "maxVersion", "shortestPath", "full"];
  const channels = asList(platform.channels, "platform.channels").map((c, i) =>
    readChannel(c, `platform.channels[${i}]`, channelKeys),
  );
  const architectures = asList(platform.architectures, "platform.architectures").map(
    (a, i) => asString(a, `platform.architectures[${i}]`) ?? "",
  );
  const release = asString(platform.release, "platform.release");

  const operators = asList(mirror.operators, "mirror.operators").map((value, i): IscOperator => {
    const where = `mirror.operators[${i}]`;
    const o = asObject(value, where, [
      "catalog",
      "targetCatalog",
      "targetTag",
      "full",
      "skipDependencies",
      "targetCatalogSourceTemplate",
      "packages",
      "platforms",
    ]);
    const packages = asList(o.packages, `${where}.packages`).map((p, j): IscPackage => {
      const pw = `${where}.packages[${j}]`;
      const pkg = asObject(p, pw, ["name", "channels", "defaultChannel", "minVersion", "maxVersion"]);
      const minVersion = asString(pkg.minVersion, `${pw}.minVersion`);
      const maxVersion = asString(pkg.maxVersion, `${pw}.maxVersion`);
      return {
        name: asString(pkg.name, `${pw}.name`) ?? "",
        ...(minVersion === undefined ? {} : { minVersion }),
        ...(maxVersion === undefined ? {} : { maxVersion }),
        channels: asList(pkg.channels, `${pw}.channels`).map((c, k) =>
          readChannel(c, `${pw}.channels[${k}]`, ["name", "minVersion", "maxVersion"]),
        ),
      };
    });
    const targetCatalog = asString(o.targetCatalog, `${where}.targetCatalog`);
    const targetTag = asString(o.targetTag, `${where}.targetTag`);
    const template = asString(o.targetCatalogSourceTemplate, `${where}.targetCatalogSourceTemplate`);
    return {
      catalog: asString(o.catalog, `${where}.catalog`) ?? "",
      full: asBool(o.full, `${where}.full`),
      packages,
      ...(targetCatalog === undefined ? {} : { targetCatalog }),
      ...(targetTag === undefined ? {} : { targetTag }),
      ...(template === undefined ? {} : { targetCatalogSourceTemplate: template }),
    };
  });

  const additionalImages = asList(mirror.additionalImages, "mirror.additionalImages").map(
    (value, i): IscAdditionalImage => {
      const where = `mirror.additionalImages[${i}]`;
      const a = asObject(value, where, ["name", "targetRepo", "targetTag", "platforms"]);
      const targetRepo = asString(a.targetRepo, `${where}.targetRepo`);
      const targetTag = asString(a.targetTag, `${where}.targetTag`);
      return {
        name: asString(a.name, `${where}.name`) ?? "",
        ...(targetRepo === undefined ? {} : { targetRepo }),
        ...(targetTag === undefined ? {} : { targetTag }),
      };
    },
  );

  const helm = asObject(mirror.helm, "mirror.helm", ["repositories", "local"]);
  const chartKeys = ["name", "version", "path", "imagePaths", "platforms"];
  const readChart = (c: unknown, where: string) => {
    const chart = asObject(c, where, chartKeys);
    const version = asString(chart.version, `${where}.version`);
    return {
      name: asString(chart.name, `${where}.name`) ?? "",
      ...(version === undefined ? {} : { version }),
    };
  };
  const helmCharts = [
    ...asList(helm.repositories, "helm.repositories").flatMap((r, i) => {
      const repo = asObject(r, `helm.repositories[${i}]`, ["name", "url", "charts"]);
      return asList(repo.charts, `helm.repositories[${i}].charts`).map((c, j) =>
        readChart(c, `helm.repositories[${i}].charts[${j}]`),
      );
    }),
    ...asList(helm.local, "helm.local").map((c, i) => readChart(c, `helm.local[${i}]`)),
  ];

  const blockedImages = asList(mirror.blockedImages, "mirror.blockedImages").map(
    (b, i) =>
      asString(asObject(b, `mirror.blockedImages[${i}]`, ["name"]).name, `blockedImages[${i}].name`) ?? "",
  );

  return {
    graph: asBool(platform.graph, "platform.graph"),
    channels,
    architectures,
    ...(release === undefined ? {} : { release }),
    operators,
    additionalImages,
    helmCharts,
    blockedImages,
  };
}

// ---------------------------------------------------------------------------------------------
// Image references (internal/pkg/image.ParseRef, reduced to what the collectors use)

interface ImageSpec {
  /** `docker://` unless the reference says otherwise. */
  readonly transport: string;
  readonly domain: string;
  /** Repository path without domain. */
  readonly path: string;
  readonly tag?: string;
  /** Hex part of the digest. */
  readonly digest?: string;
  readonly algorithm?: string;
}

function parseRef(ref: string): ImageSpec {
  const tm = /^([a-z]+:\/\/)/.exec(ref);
  const transport = tm?.[1] ?? "docker://";
  let rest = tm ? ref.slice(transport.length) : ref;
  let digest: string | undefined;
  let algorithm: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const [alg, hex] = rest.slice(at + 1).split(":");
    algorithm = alg;
    digest = hex;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  const hasDomain = first.includes(".") || first.includes(":") || first === "localhost";
  return {
    transport,
    domain: hasDomain ? first : "docker.io",
    path: hasDomain ? rest.slice(slash + 1) : rest,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    ...(algorithm === undefined ? {} : { algorithm }),
  };
}

const byDigestOnly = (s: ImageSpec) => s.digest !== undefined && s.tag === undefined;
const repoName = (s: ImageSpec) => `${s.domain}/${s.path}`;
const withTransport = (s: ImageSpec) =>
  `${s.transport}${repoName(s)}${s.tag === undefined ? "" : `:${s.tag}`}${s.digest === undefined ? "" : `@${s.algorithm ?? "sha256"}:${s.digest}`}`;

// ---------------------------------------------------------------------------------------------
// Collection: the image list oc-mirror would copy (pure)

export type ImageType =
  | "ocpReleaseContent"
  | "ocpRelease"
  | "cincinnatiGraph"
  | "operatorRelatedImage"
  | "generic"
  | "helmImage"
  | "operatorBundle"
  | "operatorCatalog";

export type FixtureCategory = "release" | "operator" | "additional" | "helm";

export interface CopyImage {
  readonly source: string;
  readonly destination: string;
  readonly origin: string;
  readonly type: ImageType;
  /** Bundle image (without transport) -> bundle name, for operator images. */
  readonly bundles?: Readonly<Record<string, string>>;
  readonly operators?: readonly string[];
  /** Release tag (`4.19.7-x86_64`) of a release image, for its signature. */
  readonly releaseTag?: string;
  /** Catalog that needs a rebuild (filtered), for the "Rebuilding catalog" lines. */
  readonly rebuilt?: boolean;
}

/** customsort.ByTypePriority */
const PRIORITY: Readonly<Record<ImageType, number>> = {
  ocpReleaseContent: 1,
  ocpRelease: 3,
  cincinnatiGraph: 4,
  operatorRelatedImage: 5,
  generic: 6,
  helmImage: 7,
  operatorBundle: 8,
  operatorCatalog: 9,
};

export function categoryOf(type: ImageType): FixtureCategory {
  switch (type) {
    case "ocpRelease":
    case "ocpReleaseContent":
    case "cincinnatiGraph":
      return "release";
    case "operatorBundle":
    case "operatorCatalog":
    case "operatorRelatedImage":
      return "operator";
    case "generic":
      return "additional";
    case "helmImage":
      return "helm";
  }
}

export interface Collected {
  readonly images: readonly CopyImage[];
  readonly totals: Readonly<Record<FixtureCategory, number>>;
  /** `Success collecting release <x>` lines. */
  readonly releases: readonly string[];
  /** Release image destination repository (`D/openshift/release-images`), if any release. */
  readonly releaseRepo?: string;
}

/** Deterministic fake digest hex for made-up images. */
export function fakeDigest(...parts: string[]): string {
  return createHash("sha256").update(parts.join("|")).digest("hex");
}

/**
 * The content the fixture gives a digest-pinned source repository: a small image built
 * synchronously and deterministically from the repository name. Its digest is the one the
 * fixture writes into source references, and the pusher pushes exactly this image, so a
 * destination holds the source's digest, as after a real oc-mirror copy.
 */
const sourceImages = new Map<string, { digest: string; manifest: Buffer; blobs: Buffer[] }>();

/**
 * The content of a digest-pinned source the fixture made up itself (release components,
 * operator bundles and related images). Digest-pinned images named by the user keep their
 * digest only with the real oc-mirror: the fixture cannot make content to match them.
 */
export function fixtureSource(
  origin: string,
): { digest: string; manifest: Buffer; blobs: Buffer[] } | undefined {
  return sourceImages.get(/@sha256:([0-9a-f]{64})$/.exec(origin)?.[1] ?? "");
}

export function sourceImage(repository: string): { digest: string; manifest: Buffer; blobs: Buffer[] } {
  const layer = gzipSync(Buffer.from(`fixture content of ${repository}\n`), { level: 9 });
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
  );
  const descriptor = (mediaType: string, blob: Buffer) => ({
    mediaType,
    digest: `sha256:${createHash("sha256").update(blob).digest("hex")}`,
    size: blob.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: descriptor(MediaType.ociConfig, config),
      layers: [descriptor(MediaType.ociLayerGzip, layer)],
    }),
  );
  const image = {
    digest: createHash("sha256").update(manifest).digest("hex"),
    manifest,
    blobs: [config, layer],
  };
  sourceImages.set(image.digest, image);
  return image;
}

const ARCH: Readonly<Record<string, string>> = {
  amd64: "x86_64",
  arm64: "aarch64",
  ppc64le: "ppc64le",
  s390x: "s390x",
  multi: "multi",
};
export const DEFAULT_RELEASE = "4.19.7";
export const RELEASE_COMPONENTS = ["cli", "installer", "machine-config-operator"] as const;

function releaseImages(isc: Isc, dest: string): CopyImage[] {
  const arches = (isc.architectures.length > 0 ? isc.architectures : ["amd64"]).map((a) => ARCH[a] ?? a);
  const wanted: { repo: string; content: string; tag: string; origin?: string }[] = [];
  for (const ch of isc.channels) {
    const okd = ch.type === "okd";
    for (const arch of arches) {
      wanted.push({
        repo: okd ? "quay.io/okd/scos-release" : "quay.io/openshift-release-dev/ocp-release",
        content: okd ? "quay.io/okd/scos-content" : "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
        tag: `${ch.maxVersion ?? ch.minVersion ?? DEFAULT_RELEASE}-${arch}`,
      });
    }
  }
  if (isc.release !== undefined) {
    const spec = parseRef(isc.release);
    wanted.push({
      repo: repoName(spec),
      content: "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
      tag: spec.tag ?? spec.digest ?? "latest",
      origin: isc.release,
    });
  }
  const out: CopyImage[] = [];
  const seen = new Set<string>();
  for (const w of wanted) {
    const origin = w.origin ?? `${w.repo}:${w.tag}`;
    if (seen.has(origin)) continue;
    seen.add(origin);
    out.push({
      origin,
      source: `docker://${origin}`,
      destination: `docker://${dest}/openshift/release-images:${w.tag}`,
      type: "ocpRelease",
      releaseTag: w.tag,
    });
    for (const name of RELEASE_COMPONENTS) {
      const component = `${w.content}@sha256:${sourceImage(`${w.content}/${name}`).digest}`;
      out.push({
        origin: component,
        source: `docker://${component}`,
        destination: `docker://${dest}/openshift/release:${w.tag}-${name}`,
        type: "ocpReleaseContent",
      });
    }
  }
  // release/local_stored_collector.go sorts by origin, source, destination.
  return out.sort((a, b) => a.origin.localeCompare(b.origin) || a.source.localeCompare(b.source));
}

function operatorImages(isc: Isc, dest: string, cache: string): CopyImage[] {
  const images: CopyImage[] = [];
  const included = new Set<string>();
  const add = (img: CopyImage) => {
    if (included.has(`${img.source}=${img.destination}`)) return;
    included.add(`${img.source}=${img.destination}`);
    images.push(img);
  };
  for (const op of isc.operators) {
    const cat = parseRef(op.catalog);
    const packages = op.packages.length > 0 ? op.packages : [{ name: "fixture-operator", channels: [] }];
    for (const pkg of packages) {
      const version =
        pkg.maxVersion ??
        pkg.channels.find((c) => c.maxVersion !== undefined)?.maxVersion ??
        pkg.minVersion ??
        pkg.channels.find((c) => c.minVersion !== undefined)?.minVersion ??
        "1.0.0";
      const bundleName = `${pkg.name}.v${version}`;
      const bundleRepo = `${cat.domain}/${pkg.name}/${pkg.name}-bundle`;
      const relatedRepo = `${cat.domain}/${pkg.name}/${pkg.name}-rhel9-operator`;
      const bundleRef = `${bundleRepo}@sha256:${sourceImage(`${bundleRepo}/${bundleName}`).digest}`;
      const relatedRef = `${relatedRepo}@sha256:${sourceImage(`${relatedRepo}/${bundleName}`).digest}`;
      const context = { bundles: { [bundleRef]: bundleName }, operators: [pkg.name] };
      for (const [ref, type] of [
        [relatedRef, "operatorRelatedImage"],
        [bundleRef, "operatorBundle"],
      ] as const) {
        const spec = parseRef(ref);
        add({
          origin: `docker://${ref}`,
          source: `docker://${ref}`,
          destination: `docker://${dest}/${spec.path}:sha256-${spec.digest ?? ""}`,
          type,
          ...context,
        });
      }
    }
    // operator/common.go CatalogImageDispatcher: one copy into the cache, one from it.
    const full = op.packages.length === 0 && op.full;
    const rebuiltTag = full ? "" : createHash("md5").update(JSON.stringify(op)).digest("hex").slice(0, 32);
    const catPath = op.targetCatalog ?? cat.path;
    const cacheTag = op.targetTag ?? cat.tag ?? `${cat.algorithm ?? "sha256"}-${cat.digest ?? ""}`;
    const destTag =
      op.targetTag ??
      cat.tag ??
      `${cat.algorithm ?? "sha256"}-${rebuiltTag !== "" ? rebuiltTag : (cat.digest ?? "")}`;
    const origin = withTransport(cat);
    add({
      origin,
      source: origin,
      destination: `docker://${cache}/${catPath}:${cacheTag}`,
      type: "operatorCatalog",
      rebuilt: !full,
    });
    add({
      origin,
      source: full ? origin : `docker://${cache}/${catPath}:${rebuiltTag}`,
      destination: `docker://${dest}/${catPath}:${destTag}`,
      type: "operatorCatalog",
      rebuilt: !full,
    });
  }
  return images;
}

function additionalImages(isc: Isc, dest: string): CopyImage[] {
  return isc.additionalImages.map((img): CopyImage => {
    const spec = parseRef(img.name);
    const repo = img.targetRepo ?? spec.path;
    let source = withTransport(spec);
    let tag: string;
    if (spec.tag !== undefined && spec.digest !== undefined) {
      // Pulled by digest, pushed by tag (OCPBUGS-33196).
      source = `${spec.transport}${repoName(spec)}@${spec.algorithm ?? "sha256"}:${spec.digest}`;
      tag = img.targetTag ?? spec.tag;
    } else if (byDigestOnly(spec) && img.targetTag === undefined) {
      tag = `${spec.algorithm ?? "sha256"}-${spec.digest ?? ""}`;
    } else {
      tag = img.targetTag ?? spec.tag ?? "latest";
    }
    return { origin: img.name, source, destination: `docker://${dest}/${repo}:${tag}`, type: "generic" };
  });
}

function helmImages(isc: Isc, dest: string): CopyImage[] {
  return isc.helmCharts.map((chart): CopyImage => {
    const origin = `quay.io/fixture-helm/${chart.name}:${chart.version ?? "latest"}`;
    return {
      origin,
      source: `docker://${origin}`,
      destination: `docker://${dest}/fixture-helm/${chart.name}:${chart.version ?? "latest"}`,
      type: "helmImage",
    };
  });
}

function blocked(isc: Isc, img: CopyImage): boolean {
  const strip = (r: string) => r.replace(/^[a-z]+:\/\//, "");
  return isc.blockedImages.some((expr) => {
    try {
      const re = new RegExp(expr);
      return re.test(strip(img.origin)) || re.test(strip(img.destination));
    } catch {
      return false; // oc-mirror ignores expressions that do not compile
    }
  });
}

/** The images of a mirror-to-mirror run to `dest` (`host[:port][/path]`), in copy order. */
export function collect(isc: Isc, dest: string, cacheFqdn: string): Collected {
  const release = releaseImages(isc, dest);
  const graph: CopyImage[] = isc.graph
    ? [
        {
          // Built by oc-mirror and pushed straight to the destination: the batch skips it.
          origin: `docker://${dest}/openshift/graph-image:latest`,
          source: `docker://${dest}/openshift/graph-image:latest`,
          destination: `docker://${dest}/openshift/graph-image:latest`,
          type: "cincinnatiGraph",
        },
      ]
    : [];
  const groups = [
    [...release, ...graph],
    operatorImages(isc, dest, cacheFqdn),
    additionalImages(isc, dest),
    helmImages(isc, dest),
  ].map((list) => list.filter((img) => !blocked(isc, img)));
  const all = groups.flat();
  const totals = { release: 0, operator: 0, additional: 0, helm: 0 };
  for (const img of all) totals[categoryOf(img.type)]++;
  // Array.prototype.sort is stable: images keep their collection order within a type.
  const images = [...all].sort((a, b) => PRIORITY[a.type] - PRIORITY[b.type]);
  const releases = release.filter((r) => r.type === "ocpRelease");
  return {
    images,
    totals,
    releases: releases.map((r) => r.origin),
    ...(releases.length > 0 ? { releaseRepo: `${dest}/openshift/release-images` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Cluster resources (clusterresources.go), as file name -> content (pure)

/** Go's time.RFC850 in UTC: `Monday, 02-Jan-06 15:04:05 UTC`. */
export function rfc850(date: Date): string {
  const days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${days[date.getUTCDay()] ?? ""}, ${p(date.getUTCDate())}-${months[date.getUTCMonth()] ?? ""}-` +
    `${p(date.getUTCFullYear() % 100)} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} UTC`
  );
}

function annotations(now: Date): Record<string, string> {
  return { createdBy: "oc-mirror v2", createdAt: rfc850(now), "oc-mirror_version": FIXTURE_VERSION };
}

/** sigs.k8s.io/yaml output: keys sorted, lists not indented. */
function toYaml(value: unknown): string {
  return stringifyYaml(value, { sortMapEntries: true, indentSeq: false, lineWidth: 0 });
}

type MirrorCategory = "release" | "operator" | "generic";

function mirrorCategory(type: ImageType): MirrorCategory {
  const c = categoryOf(type);
  return c === "release" || c === "operator" ? c : "generic";
}

/** attemptNamespaceScope / repositoryScope */
function scopes(src: ImageSpec, dst: ImageSpec, forceRepository: boolean): [string, string] {
  const namespace = (s: ImageSpec) => {
    const ns = s.path.split("/").slice(0, -1).join("/");
    return ns === "" ? s.domain : `${s.domain}/${ns}`;
  };
  if (!forceRepository && dst.path.endsWith(src.path)) return [namespace(src), namespace(dst)];
  return [repoName(src), repoName(dst)];
}

function imageMirrors(
  copied: readonly CopyImage[],
  digests: boolean,
  forceRepository: boolean,
): Map<MirrorCategory, Map<string, string[]>> {
  const out = new Map<MirrorCategory, Map<string, string[]>>();
  for (const img of copied) {
    if (img.type === "cincinnatiGraph" || img.type === "operatorCatalog") continue;
    const src = parseRef(img.origin);
    const dst = parseRef(img.destination);
    // The release image goes into the IDMS too, although it is by tag (CLID-205).
    const include = digests ? byDigestOnly(src) || img.type === "ocpRelease" : !byDigestOnly(src);
    if (!include) continue;
    const [source, mirror] = scopes(src, dst, forceRepository);
    const cat = mirrorCategory(img.type);
    const bySource = out.get(cat) ?? new Map<string, string[]>();
    out.set(cat, bySource);
    const mirrors = bySource.get(source) ?? [];
    if (!mirrors.includes(mirror)) mirrors.push(mirror);
    bySource.set(source, mirrors);
  }
  return out;
}

function mirrorSetFile(
  kind: "ImageDigestMirrorSet" | "ImageTagMirrorSet",
  byCategory: Map<MirrorCategory, Map<string, string[]>>,
  now: Date,
): string {
  const prefix = kind === "ImageDigestMirrorSet" ? "idms" : "itms";
  const field = kind === "ImageDigestMirrorSet" ? "imageDigestMirrors" : "imageTagMirrors";
  const order: MirrorCategory[] = ["release", "operator", "generic"];
  return order
    .flatMap((cat) => {
      const bySource = byCategory.get(cat);
      if (bySource === undefined) return [];
      const doc = {
        apiVersion: "config.openshift.io/v1",
        kind,
        metadata: { name: `${prefix}-${cat}-0`, annotations: annotations(now) },
        spec: { [field]: [...bySource].map(([source, mirrors]) => ({ source, mirrors })) },
      };
      return [`---\n${toYaml(doc)}`];
    })
    .join("");
}

/** generateCatalogSource / generateClusterCatalog naming: `<prefix>-<repo>-<suffix>`. */
export function catalogObjectName(prefix: "cs" | "cc", destination: string): string {
  const spec = parseRef(destination);
  let suffix: string;
  if (byDigestOnly(spec)) {
    suffix = (spec.digest ?? "").slice(0, 12);
  } else {
    suffix = (spec.tag ?? "")
      .slice(0, 12)
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, "-");
  }
  if (suffix === "") suffix = "0";
  const repo = spec.path.split("/").pop() ?? "";
  return `${prefix}-${repo}-${suffix}`.replaceAll(".", "-");
}

function catalogReference(destination: string): string {
  return destination.replace(/^docker:\/\//, "");
}

// ---------------------------------------------------------------------------------------------
// Pushing: what the copy writes to the destination registry, as one made-up image per copy

export interface DestinationRef {
  /** `host[:port]` */
  readonly host: string;
  /** Repository path without host. */
  readonly repository: string;
  /** The tag pushed (`sha256-<hex>` for a reference by digest only, `latest` for none). */
  readonly tag: string;
  /** The whole reference without transport: the name the pushed image's content derives from. */
  readonly reference: string;
}

/** `docker://host[:port]/path/repo:tag` -> its parts; the first path element is always the host. */
export function splitDestination(destination: string): DestinationRef {
  const reference = destination.replace(/^[a-z]+:\/\//, "");
  const slash = reference.indexOf("/");
  const host = slash < 0 ? reference : reference.slice(0, slash);
  let repository = slash < 0 ? "" : reference.slice(slash + 1);
  let tag: string | undefined;
  const at = repository.indexOf("@");
  if (at >= 0) {
    const [algorithm, hex] = repository.slice(at + 1).split(":");
    tag = `${algorithm ?? "sha256"}-${hex ?? ""}`;
    repository = repository.slice(0, at);
  }
  const colon = repository.lastIndexOf(":");
  if (colon > repository.lastIndexOf("/")) {
    tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
  }
  return { host, repository, tag: tag ?? "latest", reference };
}

export interface PushSettings {
  /** dockerconfigjson files searched in order for credentials; missing files are skipped. */
  readonly authFiles: readonly string[];
  /** Directories whose certificate files are trusted besides the system roots, with the file names read. */
  readonly certDirs: readonly { readonly dir: string; readonly names: RegExp }[];
  readonly tlsVerify: boolean;
  /** The same for source registries (loopback sources are copied from; see `copy`). */
  readonly source?: {
    readonly certDirs: readonly { readonly dir: string; readonly names: RegExp }[];
    readonly tlsVerify: boolean;
  };
  /** Extra attempts for 429, 5xx and timeouts. */
  readonly retries: number;
  /** Per request (connect, headers, body). */
  readonly timeoutMs: number;
  readonly proxy: ProxySettings;
}

/** The concatenated certificate files of `dirs` (unreadable directories and files are skipped). */
async function readCertificates(dirs: PushSettings["certDirs"]): Promise<string | undefined> {
  const pems: string[] = [];
  for (const { dir, names } of dirs) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const name of entries.filter((n) => names.test(n)).sort()) {
      const text = await readFile(path.join(dir, name), "utf8").catch(() => undefined);
      if (text !== undefined && text.trim() !== "") pems.push(text.endsWith("\n") ? text : `${text}\n`);
    }
  }
  return pems.length > 0 ? pems.join("") : undefined;
}

async function readAuthFiles(files: readonly string[]): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  for (const file of files) {
    try {
      out.push({ file, text: await readFile(file, "utf8") });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new Error(`reading JSON file "${file}": ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

type Side = "source" | "destination";

/** Digests of the config and layers a manifest names (none for an index). */
function blobDigests(body: Buffer): string[] {
  const parsed = JSON.parse(body.toString("utf8")) as {
    config?: { digest?: unknown };
    layers?: { digest?: unknown }[];
  };
  return [parsed.config, ...(parsed.layers ?? [])].flatMap((d) =>
    typeof d?.digest === "string" ? [d.digest] : [],
  );
}

/** The manifests an index (or Docker manifest list) lists; none for an image manifest. */
function childManifests(body: Buffer): { digest: string; mediaType: string }[] {
  const parsed = JSON.parse(body.toString("utf8")) as {
    manifests?: { digest?: unknown; mediaType?: unknown }[];
  };
  return (parsed.manifests ?? []).flatMap((m) =>
    typeof m.digest === "string" && typeof m.mediaType === "string"
      ? [{ digest: m.digest, mediaType: m.mediaType }]
      : [],
  );
}

/** True for a source on this machine (`127.0.0.1`, `localhost`, `[::1]`): the only sources tests can reach. */
export function isLoopbackSource(source: string): boolean {
  const host = source.replace(/^[a-z]+:\/\//, "").split("/")[0] ?? "";
  return /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?$/.test(host);
}

/**
 * Pushes the images of the copies to the destination (and copies loopback sources), with one
 * registry client per side, registry host and credentials, reused for the whole run.
 */
export class DestinationPusher {
  readonly #settings: PushSettings;
  readonly #clients = new Map<string, RegistryClient>();
  #authFiles: Promise<{ file: string; text: string }[]> | undefined;
  readonly #caBundles = new Map<Side, Promise<string | undefined>>();

  constructor(settings: PushSettings) {
    this.#settings = settings;
  }

  /** Pushes the image for `destination` (`docker://host/repo:tag`); resolves to why it failed, if it did. */
  async push(destination: string, origin = ""): Promise<string | undefined> {
    const ref = splitDestination(destination);
    try {
      const client = await this.#client(
        "destination",
        ref.host,
        await this.#credentials(`${ref.host}/${ref.repository}`),
      );
      // A digest-pinned source of the fixture's own gets its exact content (so digests match).
      const pinned = fixtureSource(origin);
      if (pinned !== undefined) {
        for (const blob of pinned.blobs) await client.pushBlob(ref.repository, blob);
        await client.putManifest(ref.repository, ref.tag, MediaType.ociManifest, pinned.manifest);
      } else {
        await pushImage(client, ref.repository, ref.tag, await buildImage({ name: ref.reference }));
      }
      return undefined;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return `writing image to ${destination}: ${message.replace(/\s*\n\s*/g, " ")}`;
    }
  }

  /**
   * Copies `source` (`docker://host/repo:tag` or `@digest`) to `destination` for real: the
   * manifest (and, for an index, every manifest it lists) and their blobs, so the destination
   * holds the source's digest. Resolves to why it failed, if it did.
   */
  async copy(source: string, destination: string): Promise<string | undefined> {
    const dest = splitDestination(destination);
    let from: ImageReference;
    try {
      from = parseReference(source);
    } catch (err) {
      return `initializing source ${source}: ${(err as Error).message}`;
    }
    const reference = from.digest ?? from.tag ?? "latest";
    try {
      const src = await this.#client(
        "source",
        from.registry,
        await this.#credentials(`${from.registry}/${from.repository}`),
      );
      const top = await src.getManifest(from.repository, reference);
      if (top === undefined) {
        return `initializing source ${source}: reading manifest ${reference} in ${from.registry}/${from.repository}: manifest unknown`;
      }
      const to = await this.#client(
        "destination",
        dest.host,
        await this.#credentials(`${dest.host}/${dest.repository}`),
      );
      const copyManifest = async (body: Buffer): Promise<void> => {
        for (const digest of blobDigests(body)) {
          if (await to.blobExists(dest.repository, digest)) continue;
          const blob = await src.getBlob(from.repository, digest);
          if (blob === undefined) throw new Error(`blob ${digest} unknown in ${from.repository}`);
          await to.pushBlob(dest.repository, blob);
        }
      };
      for (const child of childManifests(top.body)) {
        const manifest = await src.getManifest(from.repository, child.digest);
        if (manifest === undefined) throw new Error(`manifest ${child.digest} unknown in ${from.repository}`);
        await copyManifest(manifest.body);
        await to.putManifest(dest.repository, child.digest, child.mediaType, manifest.body);
      }
      await copyManifest(top.body);
      await to.putManifest(dest.repository, dest.tag, top.mediaType, top.body);
      return undefined;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return `copying image ${source} to ${destination}: ${message.replace(/\s*\n\s*/g, " ")}`;
    }
  }

  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }

  /** containers/image: the first auth file with credentials for the repository (or its namespaces, or host). */
  async #credentials(repository: string): Promise<Credentials | undefined> {
    this.#authFiles ??= readAuthFiles(this.#settings.authFiles);
    for (const { file, text } of await this.#authFiles) {
      let found: Credentials | undefined;
      try {
        found = credentialsFor(text, repository);
      } catch (err) {
        throw new Error(`reading JSON file "${file}": ${(err as Error).message}`, { cause: err });
      }
      if (found !== undefined) return found;
    }
    return undefined;
  }

  async #client(side: Side, host: string, credentials: Credentials | undefined): Promise<RegistryClient> {
    const key =
      `${side}\n${host}` +
      (credentials === undefined ? "" : `\n${credentials.username}\n${credentials.password}`);
    const existing = this.#clients.get(key);
    if (existing !== undefined) return existing;
    const tls =
      side === "source"
        ? (this.#settings.source ?? {
            certDirs: this.#settings.certDirs,
            tlsVerify: this.#settings.tlsVerify,
          })
        : this.#settings;
    let caBundlePromise = this.#caBundles.get(side);
    if (caBundlePromise === undefined) {
      caBundlePromise = readCertificates(tls.certDirs);
      this.#caBundles.set(side, caBundlePromise);
    }
    const caBundle = await caBundlePromise;
    const raced = this.#clients.get(key);
    if (raced !== undefined) return raced;
    const client = new RegistryClient({
      registry: host,
      ...(credentials !== undefined && { credentials }),
      ...(caBundle !== undefined && { caBundle }),
      tlsVerify: tls.tlsVerify,
      timeoutMs: this.#settings.timeoutMs,
      retries: this.#settings.retries,
      proxy: this.#settings.proxy,
    });
    this.#clients.set(key, client);
    return client;
  }
}

// ---------------------------------------------------------------------------------------------
// Output: Go's log through microlib/simple, to stdout and the log file

type Level = "info" | "warn" | "error";

const LEVEL_TAG: Readonly<Record<Level, string>> = {
  info: "\u001b[1;34m [INFO] \u001b[0m  : ",
  warn: "\u001b[1;33m [WARN] \u001b[0m  : ",
  error: "\u001b[1;31m [ERROR] \u001b[0m : ",
};

function goLogTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Go's time.Duration.String() for a number of milliseconds. */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${trimZeros(ms.toFixed(6))}ms`;
  let rest = ms / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const s = `${trimZeros(rest.toFixed(9))}s`;
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}`;
}

function trimZeros(n: string): string {
  return n.includes(".") ? n.replace(/0+$/, "").replace(/\.$/, "") : n;
}

class Logger {
  /** The log file, once oc-mirror has set it up (until then Go's log writes to stderr). */
  logFile: string | undefined;
  level = "info";
  readonly #io: FixtureIO;

  constructor(io: FixtureIO) {
    this.#io = io;
  }

  #shown(level: Level): boolean {
    if (level === "error") return true;
    if (level === "warn") return this.level !== "error";
    return ["info", "debug", "trace"].includes(this.level);
  }

  async log(level: Level, message: string): Promise<void> {
    if (!this.#shown(level)) return;
    const text = `${goLogTime(new Date())} ${LEVEL_TAG[level]}${message}`;
    const lines = text.split("\n");
    if (this.logFile === undefined) {
      this.stderr(lines);
      return;
    }
    for (const line of lines) this.#io.stdout(line);
    await appendFile(this.logFile, `${text}\n`);
  }

  stderr(lines: readonly string[]): void {
    for (const line of lines) (this.#io.stderr ?? this.#io.stdout)(line);
  }

  info = (message: string) => this.log("info", message);
  warn = (message: string) => this.log("warn", message);
  error = (message: string) => this.log("error", message);
}

// ---------------------------------------------------------------------------------------------
// The run

const EMOJI = {
  wave: "\u{1F44B}",
  gear: "\u2699\uFE0F",
  arrows: "\u{1F500}",
  spy: "\u{1F575}",
  glass: "\u{1F50D}",
  page: "\u{1F4C4}",
  rocket: "\u{1F680}",
  pushpin: "\u{1F4CC}",
  right: "\u27A1\uFE0F",
  repeat: "\u{1F502}",
  exclamation: "\u2757",
  check: "\u001b[1;92m \u2713 \u001b[0m",
  cross: "\u001b[1;91m \u2717 \u001b[0m",
} as const;

const CATEGORY_BIT: Readonly<Record<FixtureCategory, number>> = {
  release: 2,
  operator: 4,
  additional: 8,
  helm: 16,
};

const WORKER_ERRORS =
  "[Worker] some errors occurred during the mirroring.\n" +
  "\t Please review %DIR%/%FILE% for a list of mirroring errors.\n" +
  "\t You may consider:\n" +
  "\t * removing images or operators that cause the error from the image set config, and retrying\n" +
  "\t * keeping the image set config (images are mandatory for you), and retrying\n" +
  "\t * mirroring the failing images manually, if retries also fail.";

/** An error oc-mirror returns to main (printed as `[Executor] <msg>`) with its exit code. */
class RunError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Returned instead of an error when the process dies on a fatal log line. */
const FATAL = Symbol("fatal");

interface RunContext {
  readonly log: Logger;
  readonly scenario: Scenario;
  readonly delayMs: number;
  readonly isc: Isc;
  readonly dest: string;
  readonly cacheFqdn: string;
  readonly workingDir: string;
  readonly logsDir: string;
  readonly stamp: string;
  readonly dryRun: boolean;
  readonly maxNestedPaths: number;
  readonly now: () => Date;
  /** Puts copied images into the destination registry (undefined: dry run, or pushing disabled). */
  readonly pusher: DestinationPusher | undefined;
}

function hostNamespace(destination: string): string {
  const rest = destination.replace(/^[a-z]+:\/\//, "");
  const segments = rest.split("/");
  const host = segments.shift() ?? "";
  if (segments.length > 1) return `${[host, ...segments.slice(0, -1)].join("/")}/`;
  if (segments.length === 1) return `${host}/${segments[0] ?? ""}/`;
  return host;
}

/** The failure each scenario injects: image -> error text. */
function injectedFailures(scenario: Scenario, images: readonly CopyImage[]): Map<CopyImage, string> {
  const failures = new Map<CopyImage, string>();
  if (scenario === "partial") {
    const lastAdditional = images.filter((i) => i.type === "generic").at(-1);
    if (lastAdditional !== undefined) {
      const spec = parseRef(lastAdditional.source);
      failures.set(
        lastAdditional,
        `initializing source ${lastAdditional.source}: reading manifest ${spec.tag ?? `${spec.algorithm ?? "sha256"}:${spec.digest ?? ""}`} in ${repoName(spec)}: manifest unknown`,
      );
    }
    const related = images.find((i) => i.type === "operatorRelatedImage");
    if (related !== undefined) {
      failures.set(
        related,
        `copying image 1/1 from manifest list: reading blob sha256:${fakeDigest(related.origin, "blob")}: fetching blob: received unexpected HTTP status: 502 Bad Gateway`,
      );
    }
  }
  if (scenario === "failure") {
    const release = images.find((i) => i.type === "ocpRelease");
    if (release !== undefined) {
      const dst = parseRef(release.destination);
      failures.set(
        release,
        `writing manifest: uploading manifest ${dst.tag ?? ""} to ${repoName(dst)}: received unexpected HTTP status: 500 Internal Server Error`,
      );
    }
  }
  return failures;
}

interface MirrorError {
  readonly image: CopyImage;
  readonly error: string;
  /** Copy failures of operator images carry their bundles and operators; skipped bundles do not. */
  readonly withContext: boolean;
}

function formatError(e: MirrorError): string {
  const bundles = e.withContext && e.image.bundles !== undefined ? Object.values(e.image.bundles).sort() : [];
  const operators = e.withContext ? [...(e.image.operators ?? [])].sort() : [];
  if (bundles.length > 0 || operators.length > 0) {
    return `error mirroring image ${e.image.origin} (Operator bundles: [${bundles.join(" ")}] - Operators: [${operators.join(" ")}]) error: ${e.error}`;
  }
  return `error mirroring image ${e.image.origin} error: ${e.error}`;
}

/** What klog.Fatal prints (to stderr, not to oc-mirror's log file) before exiting 255. */
function fatal(ctx: RunContext, message: string): void {
  const d = ctx.now();
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const time = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
  ctx.log.stderr([
    `F${p(d.getMonth() + 1)}${p(d.getDate())} ${time}${String(process.pid).padStart(8)} executor.go:0] ${message} (hubmirror fixture crash scenario)`,
  ]);
}

/** batch.ChannelConcurrentBatch.Worker, sequential. */
async function copyBatch(
  ctx: RunContext,
  collected: Collected,
): Promise<{ copied: CopyImage[]; error?: RunError } | typeof FATAL> {
  const { log } = ctx;
  const images = collected.images;
  await log.info(`${EMOJI.rocket} Start copying the images...`);
  await log.info(`${EMOJI.pushpin} images to copy ${images.length} `);
  const failures = injectedFailures(ctx.scenario, images);
  const errors: MirrorError[] = [];
  const copied: CopyImage[] = [];
  const counts = { release: 0, operator: 0, additional: 0, helm: 0 };
  // The crash scenario dies after two images (or before the last one of a smaller set).
  const crashAt = ctx.scenario === "crash" ? Math.min(2, images.length - 1) : -1;
  for (const [index, img] of images.entries()) {
    if (ctx.delayMs > 0) await sleep(ctx.delayMs);
    if (index === crashAt) {
      fatal(ctx, `unexpected fatal error while copying ${img.origin}`);
      return FATAL;
    }
    let error = failures.get(img);
    let withContext = categoryOf(img.type) === "operator";
    if (error === undefined && img.type === "operatorBundle") {
      // shouldSkipImage: a bundle whose related image failed is not copied.
      const bundleImage = img.origin.replace(/^[a-z]+:\/\//, "");
      if (
        errors.some((e) => e.withContext && e.image.bundles !== undefined && bundleImage in e.image.bundles)
      ) {
        error = `skipping operator bundle ${img.origin} because one of its related images failed to mirror`;
        withContext = false;
      }
    }
    const where = img.destination.includes(ctx.cacheFqdn) ? "cache" : hostNamespace(img.destination);
    if (error === undefined && where !== "cache" && ctx.pusher !== undefined) {
      // The copy writes to the destination before oc-mirror reports it. Additional images from
      // a registry on this machine are really copied; everything else is made up.
      error =
        img.type === "generic" && isLoopbackSource(img.source)
          ? await ctx.pusher.copy(img.source, img.destination)
          : await ctx.pusher.push(img.destination, img.origin);
    }
    if (error === undefined) {
      await log.info(`Success copying ${img.origin} ${EMOJI.right} ${where}`);
      copied.push(img);
      counts[categoryOf(img.type)]++;
      continue;
    }
    errors.push({ image: img, error, withContext });
    await log.error(`Failed to copy ${img.type} ${img.origin}`);
    // A release failure cancels the batch.
    if (categoryOf(img.type) === "release") break;
  }

  await log.info("=== Results ===");
  for (const cat of ["release", "operator", "additional", "helm"] as const) {
    const total = collected.totals[cat];
    if (total === 0) continue;
    const done = counts[cat];
    await log.info(
      done === total
        ? `${EMOJI.check} ${done} / ${total} ${cat} images mirrored successfully`
        : `${EMOJI.cross} ${done} / ${total} ${cat} images mirrored: Some ${cat} images failed to be mirrored - please check the logs`,
    );
  }
  if (errors.length === 0) return { copied };

  const fileName = `mirroring_errors_${ctx.stamp}.txt`;
  const lines = errors.map(formatError);
  for (const line of lines) await log.error(`[Worker] ${line}`);
  await writeFile(path.join(ctx.logsDir, fileName), lines.map((l) => `${l}\n`).join(""));
  let code = 0;
  for (const cat of ["release", "operator", "additional", "helm"] as const) {
    if (counts[cat] !== collected.totals[cat]) code |= CATEGORY_BIT[cat];
  }
  return {
    copied,
    error: new RunError(WORKER_ERRORS.replace("%DIR%", ctx.logsDir).replace("%FILE%", fileName), code),
  };
}

async function writeClusterFile(ctx: RunContext, name: string, content: string): Promise<string> {
  const file = path.join(ctx.workingDir, "cluster-resources", name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

async function catalogSourceBase(
  ctx: RunContext,
  template: string | undefined,
): Promise<Record<string, unknown> | undefined> {
  if (template === undefined) return undefined;
  try {
    const parsed: unknown = parseYaml(await readFile(template, "utf8"));
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      const obj = parsed as Record<string, unknown>;
      if (obj.apiVersion === "operators.coreos.com/v1alpha1" && obj.kind === "CatalogSource") return obj;
    }
    throw new Error(`${template} is not a valid catalog source template`);
  } catch (err) {
    await ctx.log.error(
      `error generating catalog source from template. Fall back to generating catalog source without template: ${(err as Error).message}`,
    );
    return undefined;
  }
}

/** The cluster-resources steps of RunMirrorToMirror, for the images actually copied. */
async function generateClusterResources(
  ctx: RunContext,
  collected: Collected,
  copied: readonly CopyImage[],
): Promise<RunError | undefined> {
  const { log } = ctx;
  const now = ctx.now();
  const force = ctx.maxNestedPaths > 0;
  if (copied.length === 0) {
    await log.info(`${EMOJI.page} Nothing mirrored. Skipping IDMS and ITMS files generation.`);
  } else {
    const byDigest = imageMirrors(copied, true, force);
    const byTag = imageMirrors(copied, false, force);
    if (byDigest.size > 0) {
      await log.info(`${EMOJI.page} Generating IDMS file...`);
      await log.info(
        `${await writeClusterFile(ctx, "idms-oc-mirror.yaml", mirrorSetFile("ImageDigestMirrorSet", byDigest, now))} file created`,
      );
    } else {
      await log.info(`${EMOJI.page} No images by digests were mirrored. Skipping IDMS generation.`);
    }
    if (byTag.size > 0) {
      await log.info(`${EMOJI.page} Generating ITMS file...`);
      await log.info(
        `${await writeClusterFile(ctx, "itms-oc-mirror.yaml", mirrorSetFile("ImageTagMirrorSet", byTag, now))} file created`,
      );
    } else {
      await log.info(`${EMOJI.page} No images by tag were mirrored. Skipping ITMS generation.`);
    }
  }

  const catalogs = copied.filter(
    (i) => i.type === "operatorCatalog" && !i.destination.includes(ctx.cacheFqdn),
  );
  if (ctx.isc.operators.length === 0) {
    await log.info(`${EMOJI.page} No catalogs mirrored. Skipping CatalogSource file generation.`);
  } else {
    for (const [i, img] of catalogs.entries()) {
      if (i === 0) await log.info(`${EMOJI.page} Generating CatalogSource file...`);
      const name = catalogObjectName("cs", img.destination);
      const template = ctx.isc.operators.find((o) =>
        img.origin.includes(o.catalog),
      )?.targetCatalogSourceTemplate;
      const base = (await catalogSourceBase(ctx, template)) ?? {};
      const baseMeta = (base.metadata ?? {}) as Record<string, unknown>;
      const baseSpec = (base.spec ?? {}) as Record<string, unknown>;
      const cs = {
        ...base,
        apiVersion: "operators.coreos.com/v1alpha1",
        kind: "CatalogSource",
        metadata: {
          ...baseMeta,
          name,
          namespace: "openshift-marketplace",
          annotations: { ...((baseMeta.annotations ?? {}) as Record<string, string>), ...annotations(now) },
        },
        spec: { ...baseSpec, sourceType: "grpc", image: catalogReference(img.destination) },
        status: {},
      };
      await log.info(`${await writeClusterFile(ctx, `${name}.yaml`, toYaml(cs))} file created`);
    }
  }
  if (ctx.isc.operators.length === 0) {
    await log.info(`${EMOJI.page} No catalogs mirrored. Skipping ClusterCatalog file generation.`);
  } else {
    for (const [i, img] of catalogs.entries()) {
      if (i === 0) await log.info(`${EMOJI.page} Generating ClusterCatalog file...`);
      const name = catalogObjectName("cc", img.destination);
      const cc = {
        apiVersion: "olm.operatorframework.io/v1",
        kind: "ClusterCatalog",
        metadata: { name, annotations: annotations(now) },
        spec: { priority: 0, source: { type: "Image", image: { ref: catalogReference(img.destination) } } },
      };
      await log.info(`${await writeClusterFile(ctx, `${name}.yaml`, toYaml(cc))} file created`);
    }
  }

  // Signatures were fetched during collection into working-dir/signatures/<tag>-sha256-<hex>.
  const binaryData: Record<string, string> = {};
  let id = 1;
  for (const img of copied) {
    if (img.type !== "ocpRelease" || img.releaseTag === undefined) continue;
    const hex = fakeDigest(img.origin, "release-digest");
    const file = path.join(ctx.workingDir, "signatures", `${img.releaseTag}-sha256-${hex}`);
    try {
      const data = (await readFile(file)).toString("base64");
      binaryData[`sha256-${hex}-${id++}`] = data;
    } catch (err) {
      await log.warn(
        `[GenerateSignatureConfigMap] release index image signature with tag ${img.releaseTag} : SKIPPED. ${(err as Error).message}`,
      );
    }
  }
  if (Object.keys(binaryData).length > 0) {
    await log.info(`${EMOJI.page} Generating Signature Configmap...`);
    const metadata = {
      name: "mirrored-release-signatures",
      namespace: "openshift-config-managed",
      labels: { "release.openshift.io/verification-signatures": "" },
      annotations: annotations(now),
    };
    const cm = { kind: "ConfigMap", apiVersion: "v1", metadata, binaryData };
    const json = await writeClusterFile(ctx, "signature-configmap.json", JSON.stringify(cm));
    const yaml = await writeClusterFile(ctx, "signature-configmap.yaml", toYaml(cm));
    await log.info(`${json} file created`);
    await log.info(`${yaml} file created`);
  }

  if (ctx.isc.graph) {
    if (collected.releaseRepo === undefined) {
      return new RunError("[release collector] could not establish the destination for the release image");
    }
    await log.info(`${EMOJI.page} Generating UpdateService file...`);
    const osus = {
      apiVersion: "updateservice.operator.openshift.io/v1",
      kind: "UpdateService",
      metadata: {
        name: "update-service-oc-mirror",
        namespace: "openshift-update-service",
        annotations: annotations(now),
      },
      spec: {
        replicas: 2,
        releases: collected.releaseRepo,
        graphDataImage: `${ctx.dest}/openshift/graph-image:latest`,
      },
      status: {},
    };
    await log.info(`${await writeClusterFile(ctx, "updateService.yaml", toYaml(osus))} file created`);
  }
  return undefined;
}

/** CollectAll's log lines (and the release signatures the collector downloads). */
async function announceCollection(ctx: RunContext, collected: Collected): Promise<void> {
  const { log, isc } = ctx;
  await log.info(`${EMOJI.spy}  going to discover the necessary images...`);
  if (isc.channels.length > 0 || isc.release !== undefined || isc.graph) {
    await log.info(`${EMOJI.glass} collecting release images...`);
    for (const img of collected.images) {
      if (img.type !== "ocpRelease" || img.releaseTag === undefined) continue;
      const sig = path.join(
        ctx.workingDir,
        "signatures",
        `${img.releaseTag}-sha256-${fakeDigest(img.origin, "release-digest")}`,
      );
      await writeFile(sig, `fixture signature of ${img.origin}\n`);
    }
    for (const r of collected.releases) await log.info(`Success collecting release ${r}`);
  }
  if (isc.operators.length > 0) {
    await log.info(`${EMOJI.glass} collecting operator images...`);
    for (const op of isc.operators) {
      await log.info(`Collecting catalog ${op.catalog}`);
      await log.info(`Collected catalog ${op.catalog}`);
    }
  }
  if (isc.additionalImages.length > 0) await log.info(`${EMOJI.glass} collecting additional images...`);
  if (isc.helmCharts.length > 0) await log.info(`${EMOJI.glass} collecting helm images...`);
}

async function dryRun(ctx: RunContext, collected: Collected): Promise<void> {
  const outDir = path.join(ctx.workingDir, "dry-run");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const mapping = path.join(outDir, "mapping.txt");
  await writeFile(mapping, collected.images.map((i) => `${i.source}=${i.destination}\n`).join(""));
  await ctx.log.info(`${EMOJI.page} list of all images for mirroring in : ${mapping}`);
}

/** RunMirrorToMirror */
async function mirrorToMirror(ctx: RunContext): Promise<RunError | typeof FATAL | undefined> {
  const collected = collect(ctx.isc, ctx.dest, ctx.cacheFqdn);
  await announceCollection(ctx, collected);
  if (collected.images.length === 0) {
    await ctx.log.info(`${EMOJI.exclamation} No images to mirror...`);
    return new RunError("no images to copy");
  }
  if (ctx.scenario === "crash") {
    const first = collected.images[0];
    if (ctx.dryRun && first !== undefined) {
      fatal(ctx, `unexpected fatal error while inspecting ${first.origin}`);
      return FATAL;
    }
  }
  if (ctx.dryRun) {
    await dryRun(ctx, collected);
    return undefined;
  }
  const rebuilt = collected.images.filter((i) => i.type === "operatorCatalog" && i.rebuilt === true);
  if (rebuilt.length > 0) {
    await ctx.log.info(`${EMOJI.repeat} rebuilding catalogs`);
    for (const img of rebuilt) {
      if (!img.source.includes(ctx.cacheFqdn)) await ctx.log.info(`Rebuilding catalog ${img.origin}`);
    }
  }
  const batch = await copyBatch(ctx, collected);
  if (batch === FATAL) return FATAL;
  const generationError = await generateClusterResources(ctx, collected, batch.copied);
  return generationError ?? batch.error;
}

function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === "string" ? v : undefined;
}

function flagNumber(args: ParsedArgs, name: string, fallback: number): number {
  const v = flagString(args, name);
  return v === undefined ? fallback : Number(v);
}

/**
 * Run the fixture as oc-mirror would run with `argv` (without the program name) and `env`.
 * Resolves to the exit code.
 */
export async function runFixture(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: FixtureIO,
): Promise<number> {
  const log = new Logger(io);
  const fail = async (message: string, code = 1) => {
    await log.error(`[Executor] ${message} `);
    return code;
  };

  const scenario = (env.HUBMIRROR_FIXTURE_SCENARIO ?? "success") as Scenario;
  if (!SCENARIOS.includes(scenario)) {
    return fail(`HUBMIRROR_FIXTURE_SCENARIO="${scenario}" is not one of ${SCENARIOS.join(", ")}`);
  }
  const delayMs = Number(env.HUBMIRROR_FIXTURE_DELAY_MS ?? "0");
  if (!Number.isFinite(delayMs) || delayMs < 0) {
    return fail(
      `HUBMIRROR_FIXTURE_DELAY_MS="${env.HUBMIRROR_FIXTURE_DELAY_MS ?? ""}" is not a number of milliseconds`,
    );
  }
  const push = env.HUBMIRROR_FIXTURE_PUSH ?? "true";
  if (push !== "true" && push !== "false") {
    return fail(`HUBMIRROR_FIXTURE_PUSH="${push}" is not one of true, false`);
  }

  // cobra: flags, then argument count, then PersistentPreRunE, then RunE.
  const parsed = parseArgs(argv);
  if ("error" in parsed) return fail(parsed.error);
  const args = parsed;
  if (args.flags.v1 === true) return fail("the oc-mirror fixture imitates oc-mirror v2 only (--v1 given)");
  const sub = args.positional[0];
  if (sub === "delete" || sub === "list" || sub === "version") {
    return fail(`the oc-mirror fixture does not implement "oc-mirror ${sub}"`);
  }
  if (args.positional.length < 1) return fail(`requires at least 1 arg(s), only received 0`);

  await log.info(`${EMOJI.wave} Hello, welcome to oc-mirror`);
  await log.info(`${EMOJI.gear}  setting up the environment for you...`);
  const workspace = flagString(args, "workspace");
  if (workspace !== undefined && !workspace.includes("file://")) {
    return fail("when --workspace is used, it must have file:// prefix");
  }
  const logLevel = flagString(args, "log-level") ?? "info";
  if (!["info", "debug", "trace", "error"].includes(logLevel)) {
    return fail(`log-level has an invalid value ${logLevel} , it should be one of (info,debug,trace, error)`);
  }
  log.level = logLevel;
  let cacheDir = flagString(args, "cache-dir") ?? "";
  if ((env.OC_MIRROR_CACHE ?? "") !== "" && cacheDir !== "") {
    return fail("either OC_MIRROR_CACHE or --cache-dir can be used but not both");
  }
  if (cacheDir === "") cacheDir = env.OC_MIRROR_CACHE ?? "";
  // oc-mirror needs $HOME (containers/image looks up credentials and policies under it); with
  // no --cache-dir, os.UserHomeDir fails exactly like this.
  if ((env.HOME ?? "") === "") {
    return fail("failed to setup default cache directory: $HOME is not defined");
  }
  if (cacheDir === "") cacheDir = env.HOME ?? "";
  await log.info(`${EMOJI.gear}  environment version: ${FIXTURE_VERSION}`);

  // Validate
  const config = flagString(args, "config");
  const destArg = args.positional[0] ?? "";
  const from = flagString(args, "from");
  if (config === undefined || config === "") return fail("use the --config flag it is mandatory");
  const parallelImages = flagNumber(args, "parallel-images", 4);
  const parallelLayers = flagNumber(args, "parallel-layers", 5);
  if (parallelImages > 10 || parallelImages < 1)
    return fail("the flag parallel-images must be between the range 1 to 10");
  if (parallelLayers > 10 || parallelLayers < 1)
    return fail("the flag parallel-layers must be between the range 1 to 10");
  if (destArg.includes("docker://") && workspace !== undefined && from !== undefined) {
    return fail(
      "when destination is docker://, --from (assumes disk to mirror workflow) and --workspace (assumes mirror to mirror workflow) cannot be used together",
    );
  }
  if (destArg.includes("docker://") && workspace === undefined && from === undefined) {
    return fail(
      "when destination is docker://, either --from (assumes disk to mirror workflow) or --workspace (assumes mirror to mirror workflow) need to be provided",
    );
  }
  if (!destArg.includes("file://") && !destArg.includes("docker://")) {
    return fail(
      "destination must have either file:// (mirror to disk) or docker:// (diskToMirror) protocol prefixes",
    );
  }
  if (destArg.includes("file://") || from !== undefined || workspace === undefined) {
    return fail(
      "the oc-mirror fixture implements the mirrorToMirror workflow only (docker:// destination with --workspace)",
    );
  }

  // Complete
  let isc: Isc;
  try {
    const text = await readFile(config, "utf8").catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file or directory" : (err as Error).message;
      throw new ConfigError(`could not parse config: open ${config}: ${why}`);
    });
    isc = readIsc(text);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  const startedAt = new Date();
  const stamp = runStamp(startedAt);
  const ws = workspace.replace(/^file:\/\//, "");
  const workingDir = path.basename(ws) === "working-dir" ? ws : path.join(ws, "working-dir");
  const logsDir = path.join(workingDir, "logs");
  await mkdir(logsDir, { recursive: true });
  log.logFile = path.join(logsDir, `oc-mirror-${stamp}.log`);
  await appendFile(log.logFile, "");
  await log.info(`${EMOJI.arrows} workflow mode: mirrorToMirror `);
  const port = flagNumber(args, "port", 55000);
  const dryRunMode = args.flags["dry-run"] === true;
  for (const dir of [
    "signatures",
    "release-images",
    "hold-release/cincinnati-graph-data",
    "operator-catalogs",
    "helm/charts",
    "helm/indexes",
  ]) {
    await mkdir(path.join(workingDir, dir), { recursive: true });
  }
  // oc-mirror empties cluster-resources/ at the start of every run that is not a dry run.
  if (!dryRunMode) await rm(path.join(workingDir, "cluster-resources"), { recursive: true, force: true });
  await mkdir(path.join(workingDir, "cluster-resources"), { recursive: true });
  const cacheStorage = path.join(cacheDir, ".oc-mirror", ".cache");
  try {
    await mkdir(cacheStorage, { recursive: true });
  } catch (err) {
    await log.error(`unable to setup folder for oc-mirror local storage: ${(err as Error).message} `);
    return fail((err as Error).message);
  }

  // RunE: registry access check, local storage, Run
  const dest = destArg.replace(/^docker:\/\//, "");
  if (hasNoReleases(isc) && scenario === "failure") {
    const host = dest.split("/")[0] ?? dest;
    return fail(
      `checking registry "${dest}" access: failed to authenticate: authenticating creds for "${host}": Requesting bearer token: invalid status code from registry 401 (Unauthorized)`,
    );
  }
  await log.info(`Verified we can authenticate against registry "${dest}"`);
  await writeFile(path.join(logsDir, `registry-${stamp}.log`), "");

  const pusher = push === "true" && !dryRunMode ? new DestinationPusher(pushSettings(args, env)) : undefined;
  const runStart = performance.now();
  const ctx: RunContext = {
    log,
    scenario,
    delayMs,
    isc,
    dest,
    cacheFqdn: `localhost:${port}`,
    workingDir,
    logsDir,
    stamp,
    dryRun: dryRunMode,
    maxNestedPaths: flagNumber(args, "max-nested-paths", 0),
    now: () => new Date(),
    pusher,
  };
  let result: Awaited<ReturnType<typeof mirrorToMirror>>;
  try {
    result = await mirrorToMirror(ctx);
  } finally {
    await pusher?.close();
  }
  if (result === FATAL) return 255;
  await log.info(`mirror time     : ${goDuration(performance.now() - runStart)}`);
  await log.info(`${EMOJI.wave} Goodbye, thank you for using oc-mirror`);
  if (result === undefined) return 0;
  return fail(result.message, result.exitCode);
}

/** Go's time.ParseDuration in milliseconds, for a value that matched GO_DURATION. */
function goDurationMs(text: string): number {
  const unit: Readonly<Record<string, number>> = {
    h: 3_600_000,
    m: 60_000,
    s: 1_000,
    ms: 1,
    us: 1e-3,
    µs: 1e-3,
    ns: 1e-6,
  };
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    total += Number(m[1] ?? "0") * (unit[m[2] ?? ""] ?? 0);
  }
  return total;
}

/** Longest wait for one request of a push (oc-mirror's --image-timeout is per image; this caps it). */
const MAX_PUSH_REQUEST_MS = 30_000;

/** How the copies reach the destination: credentials, certificates, TLS, retries, proxy. */
function pushSettings(args: ParsedArgs, env: NodeJS.ProcessEnv): PushSettings {
  const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);
  const explicit = nonEmpty(flagString(args, "authfile")) ?? nonEmpty(env.REGISTRY_AUTH_FILE);
  // HOME was checked before: oc-mirror does not start without it.
  const homeDir = env.HOME ?? "";
  const authFiles =
    explicit !== undefined
      ? [explicit]
      : [
          ...(nonEmpty(env.XDG_RUNTIME_DIR) === undefined
            ? []
            : [path.join(env.XDG_RUNTIME_DIR ?? "", "containers", "auth.json")]),
          path.join(homeDir, ".config", "containers", "auth.json"),
          nonEmpty(env.DOCKER_CONFIG) === undefined
            ? path.join(homeDir, ".docker", "config.json")
            : path.join(env.DOCKER_CONFIG ?? "", "config.json"),
        ];
  const certDirs = (env.SSL_CERT_DIR ?? "")
    .split(":")
    .filter((dir) => dir !== "")
    .map((dir) => ({ dir, names: /\.(?:crt|pem)$/ }));
  const sourceCertDirs = [...certDirs];
  const destCertDir = nonEmpty(flagString(args, "dest-cert-dir"));
  if (destCertDir !== undefined) certDirs.push({ dir: destCertDir, names: /\.crt$/ });
  const srcCertDir = nonEmpty(flagString(args, "src-cert-dir"));
  if (srcCertDir !== undefined) sourceCertDirs.push({ dir: srcCertDir, names: /\.crt$/ });
  const imageTimeout = goDurationMs(flagString(args, "image-timeout") ?? "10m");
  return {
    authFiles,
    certDirs,
    tlsVerify: args.flags["dest-tls-verify"] !== false,
    source: { certDirs: sourceCertDirs, tlsVerify: args.flags["src-tls-verify"] !== false },
    retries: Math.max(0, flagNumber(args, "retry-times", 5)),
    timeoutMs:
      imageTimeout > 0
        ? Math.max(1, Math.min(MAX_PUSH_REQUEST_MS, Math.round(imageTimeout)))
        : MAX_PUSH_REQUEST_MS,
    proxy: proxyFromEnvironment(env),
  };
}

function hasNoReleases(isc: Isc): boolean {
  return isc.channels.length === 0 && isc.release === undefined;
}

/** Go layout `20060102_150405`, local time (cli/executor.go MirrorStartTimeStamp). */
function runStamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

if (import.meta.filename === path.resolve(process.argv[1] ?? "")) {
  const code = await runFixture(process.argv.slice(2), process.env, {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  });
  process.exitCode = code;
}
