/**
 * The oc-mirror fixture against a real registry (Debian's docker-registry over TLS with
 * htpasswd): its mirror pass pushes every image it reports as copied to the destination, none
 * of those it reports as failed, and nothing in a dry run. Credentials come from --authfile
 * and the registry's CA from SSL_CERT_DIR, as in the Job's oc-mirror container.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latestErrorsFile, parseErrorsFile, stripTransport } from "../../src/ocmirror/errors-file.ts";
import { decodeExitCode } from "../../src/ocmirror/exit-code.ts";
import { stripAnsi } from "../../src/ocmirror/progress.ts";
import { workspacePaths } from "../../src/ocmirror/workspace.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { buildImage, pushImage } from "../harness/images.ts";
import {
  collect,
  readIsc,
  runFixture,
  splitDestination,
  type CopyImage,
  fixtureSource,
} from "../harness/ocmirror-fixture.ts";
import { startRegistry, type TestRegistry } from "../harness/registry.ts";

const HEX = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CACHE = "localhost:55000";

/** Every kind of image: release (and graph), operators (catalog via the cache), additional by tag and digest. */
const FULL_ISC = `kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    graph: true
    channels:
      - name: stable-4.19
        maxVersion: 4.19.7
  operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.19
      packages:
        - name: advanced-cluster-management
        - name: multicluster-engine
  additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest
    - name: quay.io/prometheus/busybox@sha256:${HEX}
`;

const ADDITIONAL_ONLY = `kind: ImageSetConfiguration
mirror:
  additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest
    - name: quay.io/prometheus/busybox@sha256:${HEX}
`;

let root: string;
let registry: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ocmirror-fixture-push-"));
  registry = await startRegistry(path.join(root, "registry"), "fixture-push");
  client = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
  });
});
afterAll(async () => {
  await client.close();
  await registry.stop();
  await rm(root, { recursive: true, force: true });
});

interface Run {
  readonly code: number;
  readonly stdout: string[];
  readonly ws: string;
  /** The images of the run, in copy order. */
  readonly images: readonly CopyImage[];
}

let counter = 0;
async function run(
  isc: string,
  dest: string,
  options: { scenario?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; ws?: string } = {},
): Promise<Run> {
  const dir = path.join(root, `run-${++counter}`);
  await mkdir(path.join(dir, "home"), { recursive: true });
  await writeFile(path.join(dir, "isc.yaml"), isc);
  const ws = options.ws ?? path.join(dir, "ws");
  const stdout: string[] = [];
  const env: NodeJS.ProcessEnv = {
    HOME: path.join(dir, "home"),
    SSL_CERT_DIR: path.dirname(registry.caFile),
    HUBMIRROR_FIXTURE_SCENARIO: options.scenario ?? "success",
    ...options.env,
  };
  const argv = [
    "--v2",
    "-c",
    path.join(dir, "isc.yaml"),
    "--workspace",
    `file://${ws}`,
    "--cache-dir",
    path.join(dir, "cache"),
    "--authfile",
    registry.authFile,
    "--dest-tls-verify=true",
    ...(options.extraArgs ?? []),
    `docker://${dest}`,
  ];
  const code = await runFixture(argv, env, { stdout: (l) => stdout.push(l) });
  return { code, stdout, ws, images: collect(readIsc(isc), dest, CACHE).images };
}

const messages = (lines: readonly string[]) =>
  lines.map((l) =>
    stripAnsi(l)
      .replace(/^\S+ \S+\s+\[\w+\]\s+:\s?/, "")
      .trim(),
  );

/** Origins in the run's errors file (a successful run writes none; older runs' files may remain). */
async function failedOrigins(r: Run): Promise<Set<string>> {
  if (r.code === 0) return new Set();
  const logsDir = workspacePaths(r.ws).logs;
  const file = latestErrorsFile(await readdir(logsDir));
  if (file === undefined) return new Set();
  const errors = parseErrorsFile(await readFile(path.join(logsDir, file), "utf8"));
  return new Set(errors.map((e) => e.image));
}

const toDestination = (img: CopyImage) => splitDestination(img.destination).host !== CACHE;

/** Digest of the manifest the destination's tag points at, or undefined when it is missing. */
async function pushedDigest(destination: string): Promise<string | undefined> {
  const { repository, tag } = splitDestination(destination);
  return (await client.headManifest(repository, tag))?.digest;
}

/**
 * What the fixture pushes for an image: a digest-pinned source of its own keeps its digest
 * (as a real copy does); anything else gets content fixed by the destination reference.
 */
async function expectedDigest(img: { origin: string; destination: string }): Promise<string> {
  const pinned = fixtureSource(img.origin);
  return pinned !== undefined
    ? `sha256:${pinned.digest}`
    : (await buildImage({ name: splitDestination(img.destination).reference })).digest;
}

/** Checks the registry against the run: copied destinations present (with their content), failed ones absent. */
async function expectRegistryMatches(r: Run): Promise<{ present: number; absent: number }> {
  const failed = await failedOrigins(r);
  const successLines = messages(r.stdout).filter(
    (m) => m.startsWith("Success copying") && !m.endsWith(" cache"),
  );
  let present = 0;
  let absent = 0;
  for (const img of r.images.filter(toDestination)) {
    const digest = await pushedDigest(img.destination);
    if (failed.has(stripTransport(img.origin))) {
      expect(digest, `${img.destination} (failed) must not be in the registry`).toBeUndefined();
      absent++;
    } else {
      expect(digest, `${img.destination} (copied) must be in the registry`).toBe(await expectedDigest(img));
      present++;
    }
  }
  expect(successLines).toHaveLength(present);
  return { present, absent };
}

describe("the fixture's mirror pass against a real registry", () => {
  it("pushes every image it reports as copied to the destination", async () => {
    const r = await run(FULL_ISC, `${registry.host}/success`);
    expect(r.code).toBe(0);
    const { present, absent } = await expectRegistryMatches(r);
    // 4 release + graph, 4 operator + catalog, 2 additional; the catalog's cache copy is not pushed.
    expect({ present, absent }).toEqual({ present: 12, absent: 0 });
    expect(
      await pushedDigest(`docker://${registry.host}/success/openshift/graph-image:latest`),
    ).toBeDefined();
    expect(
      await pushedDigest(`docker://${registry.host}/success/prometheus/busybox:sha256-${HEX}`),
    ).toBeDefined();
    expect(
      await pushedDigest(`docker://${registry.host}/success/redhat/redhat-operator-index:v4.19`),
    ).toBeDefined();
  });

  it("does not push the images a partial run fails, then pushes them on a successful re-run", async () => {
    const dest = `${registry.host}/partial`;
    const r = await run(FULL_ISC, dest, { scenario: "partial" });
    expect(r.code).toBe(12);
    const { present, absent } = await expectRegistryMatches(r);
    // The busybox image, ACM's related image and (skipped) bundle failed.
    expect({ present, absent }).toEqual({ present: 9, absent: 3 });
    expect(await pushedDigest(`docker://${dest}/prometheus/busybox:sha256-${HEX}`)).toBeUndefined();

    const again = await run(FULL_ISC, dest, { ws: r.ws });
    expect(again.code).toBe(0);
    expect(await expectRegistryMatches(again)).toEqual({ present: 12, absent: 0 });
    // Idempotent: a third run pushes the same content.
    const third = await run(FULL_ISC, dest, { ws: r.ws });
    expect(third.code).toBe(0);
    expect(await expectRegistryMatches(third)).toEqual({ present: 12, absent: 0 });
  });

  it("pushes nothing in a dry run", async () => {
    const dest = `${registry.host}/dry`;
    const r = await run(FULL_ISC, dest, { extraArgs: ["--dry-run"] });
    expect(r.code).toBe(0);
    for (const img of r.images.filter(toDestination)) {
      expect(await pushedDigest(img.destination), img.destination).toBeUndefined();
    }
  });

  it("fails the images (not the fixture) when the registry refuses the credentials", async () => {
    const dest = `${registry.host}/badauth`;
    const authFile = path.join(root, "wrong-auth.json");
    const wrong = Buffer.from(`${registry.username}:wrong-password`).toString("base64");
    await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: { auth: wrong } } }));
    const r = await run(ADDITIONAL_ONLY, dest, { extraArgs: ["--authfile", authFile] });
    expect(r.code).toBe(8);
    expect(decodeExitCode(r.code).failedCategories).toEqual(["additional"]);
    expect(messages(r.stdout).filter((m) => m.startsWith("Failed to copy generic"))).toHaveLength(2);
    expect(await expectRegistryMatches(r)).toEqual({ present: 0, absent: 2 });
    const logsDir = workspacePaths(r.ws).logs;
    const errors = parseErrorsFile(
      await readFile(path.join(logsDir, latestErrorsFile(await readdir(logsDir)) ?? ""), "utf8"),
    );
    expect(errors.map((e) => e.error)).toEqual([
      expect.stringMatching(/HTTP 401/) as unknown,
      expect.stringMatching(/HTTP 401/) as unknown,
    ]);
  });

  it("trusts the registry only through SSL_CERT_DIR, unless --dest-tls-verify=false", async () => {
    const untrusted = await run(ADDITIONAL_ONLY, `${registry.host}/untrusted`, {
      env: { SSL_CERT_DIR: path.join(root, "no-such-dir") },
    });
    expect(untrusted.code).toBe(8);
    expect(await expectRegistryMatches(untrusted)).toEqual({ present: 0, absent: 2 });
    expect(messages(untrusted.stdout).join("\n")).toMatch(/TLS verification failed/);

    const insecure = await run(ADDITIONAL_ONLY, `${registry.host}/insecure`, {
      env: { SSL_CERT_DIR: "" },
      extraArgs: ["--dest-tls-verify=false"],
    });
    expect(insecure.code).toBe(0);
    expect(await expectRegistryMatches(insecure)).toEqual({ present: 2, absent: 0 });
  });
});

describe("the fixture's mirror pass with a source registry on this machine", () => {
  let source: TestRegistry;
  let sourceClient: RegistryClient;
  let authFile: string;
  let certDirs: string;

  beforeAll(async () => {
    source = await startRegistry(path.join(root, "source"), "fixture-source");
    sourceClient = new RegistryClient({
      registry: source.host,
      credentials: { username: source.username, password: source.password },
      caBundle: source.caPem,
    });
    // One authfile and the CAs of both registries, as the Job's merged authfile and SSL_CERT_DIR.
    authFile = path.join(root, "both-auth.json");
    const auth = (r: TestRegistry) => ({
      auth: Buffer.from(`${r.username}:${r.password}`).toString("base64"),
    });
    await writeFile(
      authFile,
      JSON.stringify({ auths: { [registry.host]: auth(registry), [source.host]: auth(source) } }),
    );
    certDirs = `${path.dirname(registry.caFile)}:${path.dirname(source.caFile)}`;
  });
  afterAll(async () => {
    await sourceClient.close();
    await source.stop();
  });

  it("copies additional images from the source, so the destination holds the source's digests", async () => {
    const multi = await buildImage({
      name: "copy-multi",
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ],
    });
    const single = await buildImage({ name: "copy-single" });
    await pushImage(sourceClient, "demo/multi", "1.0", multi);
    await pushImage(sourceClient, "demo/single", "2.0", single);
    const isc = `kind: ImageSetConfiguration
mirror:
  additionalImages:
    - name: ${source.host}/demo/multi:1.0
    - name: ${source.host}/demo/single@${single.digest}
    - name: quay.io/prometheus/busybox:latest
`;
    const dest = `${registry.host}/copied`;
    const r = await run(isc, dest, {
      env: { SSL_CERT_DIR: certDirs },
      extraArgs: ["--authfile", authFile, "--src-tls-verify=true"],
    });
    expect(r.code).toBe(0);
    expect(await pushedDigest(`docker://${dest}/demo/multi:1.0`)).toBe(multi.digest);
    for (const m of multi.manifests) {
      expect((await client.headManifest("copied/demo/multi", m.digest))?.digest).toBe(m.digest);
    }
    expect(await pushedDigest(`docker://${dest}/demo/single:${single.digest.replace(":", "-")}`)).toBe(
      single.digest,
    );
    // A source that is not on this machine is still made up.
    expect(await pushedDigest(`docker://${dest}/prometheus/busybox:latest`)).toBe(
      (await buildImage({ name: `${dest}/prometheus/busybox:latest` })).digest,
    );
  });

  it("fails an image whose source is missing, the way a failed copy does", async () => {
    const isc = `kind: ImageSetConfiguration
mirror:
  additionalImages:
    - name: ${source.host}/demo/absent:1.0
`;
    const r = await run(isc, `${registry.host}/absent`, {
      env: { SSL_CERT_DIR: certDirs },
      extraArgs: ["--authfile", authFile],
    });
    expect(r.code).toBe(8);
    expect(await pushedDigest(`docker://${registry.host}/absent/demo/absent:1.0`)).toBeUndefined();
    const logsDir = workspacePaths(r.ws).logs;
    const errors = parseErrorsFile(
      await readFile(path.join(logsDir, latestErrorsFile(await readdir(logsDir)) ?? ""), "utf8"),
    );
    expect(errors.map((e) => e.error)).toEqual([expect.stringMatching(/demo\/absent: manifest unknown/)]);
  });
});
