/**
 * The real oc-mirror v2 (both pinned lines, built by hack/build-oc-mirror.sh), run directly (not
 * through the operator's Job) against the offline upstream (devkit/upstream.ts) and a target
 * registry over TLS with htpasswd, TLS verification on: the CAs are trusted through SSL_CERT_DIR.
 *
 * Each test is one scenario of docs/oc-mirror-offline.md; HUBMIRROR_KEEP_HARNESS=1 keeps every
 * run's folder (its workspace and `run.log` with argv and output) and prints where.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { RegistryClient } from "../../src/registry/client.ts";
import { destinationEntries, parseMapping } from "../../src/ocmirror/mapping.ts";
import { stripAnsi } from "../../src/ocmirror/progress.ts";
import { ocMirrorBinary, ocMirrorPins, type OcMirrorLine } from "../../devkit/binaries.ts";
import {
  mergeAuthFiles,
  mirrorToRegistryArgs,
  ocMirrorEnv,
  runOcMirror,
  type OcMirrorResult,
} from "../harness/ocmirror-run.ts";
import { freePort } from "../../devkit/ports.ts";
import { startRegistry, type TestRegistry } from "../../devkit/registry.ts";
import { startUpstream, type OfflineUpstream } from "../../devkit/upstream.ts";
import type { ImageSetParts } from "../../devkit/upstream-isc.ts";

const keep = process.env.HUBMIRROR_KEEP_HARNESS === "1";
let dir = "";
let upstream: OfflineUpstream;
let target: TestRegistry;
let authFile = "";
const clients: RegistryClient[] = [];
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hubmirror-harness-ocmirror-"));
  const [u, t] = await Promise.allSettled([
    startUpstream(join(dir, "upstream")),
    startRegistry(join(dir, "target"), "target"),
  ]);
  if (u.status === "fulfilled") stops.push(() => u.value.stop());
  if (t.status === "fulfilled") stops.push(() => t.value.stop());
  if (u.status === "rejected") throw u.reason;
  if (t.status === "rejected") throw t.reason;
  upstream = u.value;
  target = t.value;
  authFile = mergeAuthFiles(join(dir, "auth.json"), [upstream.source.authFile, target.authFile]);
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const stop of stops) await stop();
  if (dir === "") return;
  if (keep) console.log(`oc-mirror runs kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

function client(registry: TestRegistry): RegistryClient {
  const c = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    timeoutMs: 10_000,
  });
  clients.push(c);
  return c;
}

/** `host/repo/sub:tag` or `host/repo@sha256:...` -> [repository, tag or digest] */
function splitReference(ref: string, host: string): [string, string] {
  const rest = ref.slice(host.length + 1);
  const at = rest.indexOf("@");
  if (at >= 0) return [rest.slice(0, at), rest.slice(at + 1)];
  const colon = rest.lastIndexOf(":");
  return [rest.slice(0, colon), rest.slice(colon + 1)];
}

interface Run extends OcMirrorResult {
  readonly workingDir: string;
  /** Output lines without ANSI colours. */
  readonly plain: readonly string[];
}

let runCount = 0;

/** One oc-mirror run in its own folder (workspace, cache, HOME, TMPDIR) with its own port. */
async function mirror(
  line: OcMirrorLine,
  name: string,
  parts: ImageSetParts,
  options: {
    dryRun?: boolean;
    logLevel?: "error";
    workspace?: string;
    seedGraph?: boolean;
    /** Leave XDG_RUNTIME_DIR (and so its containers/auth.json) out of the environment. */
    noRuntimeDir?: boolean;
    destination: string;
  },
): Promise<Run> {
  runCount += 1;
  const runDir = join(dir, line, `${String(runCount).padStart(2, "0")}-${name}`);
  mkdirSync(runDir, { recursive: true });
  const workspace = options.workspace ?? join(runDir, "workspace");
  mkdirSync(workspace, { recursive: true });
  if (options.seedGraph === true) upstream.seedGraphImage(workspace);
  const configFile = join(runDir, "isc.yaml");
  writeFileSync(configFile, stringify(upstream.imageSetConfig(parts)));
  const env = ocMirrorEnv({
    dir: join(runDir, "env"),
    authFile,
    caFiles: [...upstream.caFiles, target.caFile],
    extra: upstream.env,
  });
  if (options.noRuntimeDir === true) delete env.XDG_RUNTIME_DIR;
  const result = await runOcMirror({
    binary: ocMirrorBinary(line),
    args: mirrorToRegistryArgs({
      configFile,
      workspace,
      cacheDir: join(runDir, "cache"),
      authFile,
      port: await freePort(),
      destination: options.destination,
      ...(options.dryRun === true && { dryRun: true }),
      ...(options.logLevel !== undefined && { logLevel: options.logLevel }),
    }),
    env,
    timeoutMs: 90_000,
    logFile: join(runDir, "run.log"),
  });
  expect(result.timedOut, `oc-mirror ${line} ${name} timed out; see ${runDir}/run.log`).toBe(false);
  return { ...result, workingDir: join(workspace, "working-dir"), plain: result.lines.map(stripAnsi) };
}

/** The message part of oc-mirror's log lines (`2026/11/27 09:59:10  [INFO]  : <message>`). */
function messages(run: Run): string[] {
  return run.plain.map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\s+\[\w+\]\s+:\s?/, "").trim());
}

function errorsFiles(run: Run): string[] {
  const logs = join(run.workingDir, "logs");
  return existsSync(logs) ? readdirSync(logs).filter((f) => f.startsWith("mirroring_errors_")) : [];
}

describe.each<OcMirrorLine>(["4.20", "5"])(
  "oc-mirror %s run directly against the offline upstream",
  (line) => {
    const destination = () => `${target.host}/mirror-${line.replace(".", "")}`;
    // 5.x cannot mirror a digest-only image of a registry with a port without a targetTag.
    const full: ImageSetParts = {
      release: true,
      operators: true,
      additionalImages: true,
      ...(line === "5" && { digestPinnedTargetTag: "3.10" }),
    };

    it("reports the version stamped at build time", async () => {
      const pin = ocMirrorPins().pins.find((p) => p.line === line);
      const result = await runOcMirror({
        binary: ocMirrorBinary(line),
        args: ["--v2", "version", "--output=json"],
        env: ocMirrorEnv({ dir: join(dir, line, "version"), authFile, caFiles: [] }),
        timeoutMs: 30_000,
      });
      expect(result.exitCode).toBe(0);
      const json = /\{[\s\S]*\}/.exec(result.stdout)?.[0] ?? "{}";
      const info = JSON.parse(json) as { clientVersion?: { gitVersion?: string; gitCommit?: string } };
      expect(info.clientVersion?.gitVersion).toBe(pin?.version);
      expect(pin?.commit.startsWith(info.clientVersion?.gitCommit ?? "-")).toBe(true);
    });

    it("mirrors a release channel range with graph, an operator package and three additional images", async () => {
      const workspace = join(dir, line, "full-workspace");
      const dry = await mirror(line, "full-dry-run", full, {
        dryRun: true,
        workspace,
        seedGraph: true,
        destination: destination(),
      });
      expect(dry.exitCode, dry.plain.join("\n")).toBe(0);
      const mapping = parseMapping(readFileSync(join(dry.workingDir, "dry-run", "mapping.txt"), "utf8"));
      expect(mapping.errors).toEqual([]);
      const expected = destinationEntries(mapping.entries, destination());
      // release: 3 payloads + 3 × 2 components + the graph image; operators: 2 bundles (the heads
      // of both channels) + 2 managers + operand + catalog (its copy into oc-mirror's cache is not
      // counted here); 3 additional images
      expect(expected).toHaveLength(19);

      const tgt = client(target);
      // A dry run with UPDATE_URL_OVERRIDE pushes nothing to the target (not even the graph image).
      expect(await tgt.headManifest(`mirror-${line.replace(".", "")}/openshift/graph-image`, "latest")).toBe(
        undefined,
      );

      const run = await mirror(line, "full", full, { workspace, destination: destination() });
      expect(run.exitCode, run.plain.join("\n")).toBe(0);
      const msgs = messages(run);
      expect(msgs).toContain("=== Results ===");
      expect(msgs.some((m) => /^✓ +10 \/ 10 release images mirrored successfully$/.test(m))).toBe(true);
      expect(msgs.some((m) => /^✓ +7 \/ 7 operator images mirrored successfully$/.test(m))).toBe(true);
      expect(msgs.some((m) => /^✓ +3 \/ 3 additional images mirrored successfully$/.test(m))).toBe(true);
      expect(msgs).toContain("📌 images to copy 20");
      expect(errorsFiles(run)).toEqual([]);

      // Every destination of the dry run's mapping is in the target, by digest.
      const src = client(upstream.source);
      for (const entry of expected) {
        const [repo, tag] = splitReference(entry.destination, target.host);
        const found = await tgt.headManifest(repo, tag);
        expect(found, `${entry.destination} is missing`).toBeDefined();
        const digest = found?.digest ?? "";
        expect(await tgt.headManifest(repo, digest), `${entry.destination} by digest`).toBeDefined();
        let want: string | undefined = entry.sourceDigest;
        if (want === undefined && entry.source.startsWith(`${upstream.source.host}/`)) {
          const [srcRepo, srcTag] = splitReference(entry.source, upstream.source.host);
          want = (await src.headManifest(srcRepo, srcTag))?.digest;
        } else if (entry.source.endsWith("/graph-preparation")) {
          want = upstream.release.graphImage.digest;
        }
        // The rebuilt catalog (from oc-mirror's cache) has a digest only the mirror pass knows.
        if (want !== undefined) expect(digest, entry.destination).toBe(want);
      }

      const resources = readdirSync(join(run.workingDir, "cluster-resources")).sort();
      expect(resources).toEqual([
        "cc-redhat-operator-index-v4-19.yaml",
        "cs-redhat-operator-index-v4-19.yaml",
        "idms-oc-mirror.yaml",
        "itms-oc-mirror.yaml",
        "signature-configmap.json",
        "signature-configmap.yaml",
        "updateService.yaml",
      ]);
      const updateService = readFileSync(
        join(run.workingDir, "cluster-resources", "updateService.yaml"),
        "utf8",
      );
      expect(updateService).toContain(`graphDataImage: ${destination()}/openshift/graph-image:latest`);
      // The two lines differ: 5.x puts the UpdateService in a namespace, 4.20 does not.
      if (line === "5") expect(updateService).toContain("namespace: openshift-update-service");
      else expect(updateService).not.toContain("namespace:");
      const signatures = readFileSync(
        join(run.workingDir, "cluster-resources", "signature-configmap.json"),
        "utf8",
      );
      for (const v of upstream.release.versions) expect(signatures).toContain(`sha256-${v.digest.slice(7)}-`);
      const idms = readFileSync(join(run.workingDir, "cluster-resources", "idms-oc-mirror.yaml"), "utf8");
      expect(idms).toContain("name: idms-release-0");
      expect(idms).toContain(`source: ${upstream.source.host}/openshift-release-dev/ocp-v4.0-art-dev`);
      // oc-mirror asked the upstream's update graph (UPDATE_URL_OVERRIDE) and fetched every
      // release's signature from OCP_SIGNATURE_URL (the dry run did; the run reused them from
      // working-dir/signatures/).
      const asked = upstream.requests();
      expect(asked).toContainEqual(
        expect.objectContaining({
          path: "/api/upgrades_info/v1/graph",
          query: expect.objectContaining({ channel: "stable-4.19", arch: "amd64" }) as unknown,
          status: 200,
        }),
      );
      for (const v of upstream.release.versions) {
        expect(asked.map((r) => r.path)).toContain(
          `/pub/openshift-v4/signatures/openshift/release/sha256=${v.digest.slice(7)}/signature-1`,
        );
      }
      expect(readdirSync(join(run.workingDir, "signatures"))).toHaveLength(3);
    });

    it("reports one missing additional image: exit 8, counts, an errors file", async () => {
      const run = await mirror(
        line,
        "missing-additional",
        { additionalImages: ["tagOnly", "missing"] },
        { destination: destination() },
      );
      expect(run.exitCode, run.plain.join("\n")).toBe(8);
      const msgs = messages(run);
      expect(
        msgs.some((m) =>
          /^✗ +1 \/ 2 additional images mirrored: Some additional images failed to be mirrored - please check the logs$/.test(
            m,
          ),
        ),
        msgs.join("\n"),
      ).toBe(true);
      const files = errorsFiles(run);
      expect(files).toHaveLength(1);
      const errors = readFileSync(join(run.workingDir, "logs", files[0] ?? ""), "utf8");
      expect(errors).toContain(upstream.images.missing.reference);
    });

    it("fails the collection when the catalog is missing: exit 4, nothing copied, no errors file", async () => {
      const run = await mirror(
        line,
        "missing-catalog",
        {
          operators: { catalog: `${upstream.source.host}/redhat/no-such-index:v4.19` },
          additionalImages: ["tagOnly"],
        },
        { destination: destination() },
      );
      expect(run.exitCode, run.plain.join("\n")).toBe(4);
      const msgs = messages(run);
      expect(msgs).not.toContain("=== Results ===");
      expect(msgs.some((m) => m.startsWith("📌 images to copy"))).toBe(false);
      expect(errorsFiles(run)).toEqual([]);
    });

    it("fails the release collection on an invalid signature: exit 2", async () => {
      upstream.breakSignature("4.19.2");
      try {
        const run = await mirror(
          line,
          "invalid-signature",
          { release: { graph: false } },
          { destination: destination() },
        );
        expect(run.exitCode, run.plain.join("\n")).toBe(2);
        const digest = upstream.release.versions[1]?.digest.slice(7) ?? "-";
        expect(messages(run).some((m) => m.includes(`invalid signature for ${digest}`))).toBe(true);
        expect(messages(run)).not.toContain("=== Results ===");
      } finally {
        upstream.restoreSignatures();
      }
    });

    it("mirrors a digest-only image of a registry with a port (5.x: only with a targetTag, which 4.20 refuses)", async () => {
      const bare = await mirror(
        line,
        "digest-pinned",
        { additionalImages: ["digestPinned"] },
        { destination: destination() },
      );
      const tagged = await mirror(
        line,
        "digest-pinned-target-tag",
        { additionalImages: ["digestPinned"], digestPinnedTargetTag: "pinned" },
        { destination: destination() },
      );
      const tgt = client(target);
      const repo = `mirror-${line.replace(".", "")}/demo/pause`;
      const digest = upstream.images.digestPinned.digest;
      if (line === "5") {
        // internal/pkg/image/image.go IsImageByTagAndDigest counts colons: the port makes the
        // reference look like "tag and digest", and the empty tag cannot be parsed.
        expect(bare.exitCode).toBe(8);
        expect(messages(bare).some((m) => m.includes("tag and digest are empty"))).toBe(true);
        expect(messages(bare)).not.toContain("=== Results ===");
        expect(tagged.exitCode, tagged.plain.join("\n")).toBe(0);
        expect((await tgt.headManifest(repo, "pinned"))?.digest).toBe(digest);
      } else {
        expect(bare.exitCode, bare.plain.join("\n")).toBe(0);
        expect((await tgt.headManifest(repo, `sha256-${digest.slice(7)}`))?.digest).toBe(digest);
        // 4.20's additionalImages entries have only `name` (v2alpha1.Image): the ISC is refused.
        expect(tagged.exitCode).toBe(1);
        expect(
          messages(tagged).some((m) =>
            m.includes('decode ImageSetConfiguration: json: unknown field "targetTag"'),
          ),
        ).toBe(true);
      }
    });

    it("needs the graph image in the workspace for graph: true with UPDATE_URL_OVERRIDE: exit 2 without", async () => {
      const run = await mirror(line, "graph-not-seeded", { release: true }, { destination: destination() });
      expect(run.exitCode, run.plain.join("\n")).toBe(2);
      expect(
        messages(run).some((m) =>
          m.startsWith(
            "[Executor] collection error: [ReleaseImageCollector] error processing graph image: no graph image in cache (nor working-dir)",
          ),
        ),
      ).toBe(true);
    });

    it("resolves a release given by tag without --authfile: only with credentials in XDG_RUNTIME_DIR", async () => {
      const parts: ImageSetParts = { release: { byTag: "4.19.2" } };
      const without = await mirror(line, "release-by-tag-no-runtime-dir", parts, {
        destination: destination(),
        noRuntimeDir: true,
      });
      expect(without.exitCode).toBe(2);
      expect(messages(without).some((m) => m.includes("authentication required"))).toBe(true);
      const withRuntimeDir = await mirror(line, "release-by-tag", parts, { destination: destination() });
      expect(withRuntimeDir.exitCode, withRuntimeDir.plain.join("\n")).toBe(0);
      expect(
        messages(withRuntimeDir).some((m) => /^✓ +3 \/ 3 release images mirrored successfully$/.test(m)),
      ).toBe(true);
    });

    it("pushes a catalog pinned by digest under a tag the dry run's mapping does not name", async () => {
      const workspace = join(dir, line, "catalog-by-digest-workspace");
      // its own destination path: the full-content test pushed the catalog by tag already
      const dest = `${destination()}-by-digest`;
      const parts: ImageSetParts = {
        operators: {
          catalog: `${upstream.source.host}/redhat/redhat-operator-index@${upstream.catalog.digest}`,
        },
      };
      const dry = await mirror(line, "catalog-by-digest-dry-run", parts, {
        dryRun: true,
        workspace,
        destination: dest,
      });
      expect(dry.exitCode, dry.plain.join("\n")).toBe(0);
      const mapping = parseMapping(readFileSync(join(dry.workingDir, "dry-run", "mapping.txt"), "utf8"));
      const catalogRepo = `${dest}/redhat/redhat-operator-index`;
      const mapped = destinationEntries(mapping.entries, dest).find((e) =>
        e.destination.startsWith(`${catalogRepo}:`),
      );
      // sha256-<32 hex>: the rebuild's tag, not a digest
      expect(mapped?.destination).toMatch(/:sha256-[0-9a-f]{32}$/);
      const run = await mirror(line, "catalog-by-digest", parts, { workspace, destination: dest });
      expect(run.exitCode, run.plain.join("\n")).toBe(0);
      const repo = catalogRepo.slice(target.host.length + 1);
      const tags = await client(target).listTags(repo);
      // sha256-<digest of the filtered catalog>: known only after the mirror pass
      expect(tags).toHaveLength(1);
      expect(tags[0]).toMatch(/^sha256-[0-9a-f]{64}$/);
      expect(mapped?.destination.endsWith(`:${tags[0] ?? ""}`)).toBe(false);
      const pushed = await client(target).headManifest(repo, tags[0] ?? "");
      expect(`sha256-${pushed?.digest.slice(7) ?? ""}`).toBe(tags[0]);
      const cs = readdirSync(join(run.workingDir, "cluster-resources")).filter((f) => f.startsWith("cs-"));
      expect(cs).toEqual([`cs-redhat-operator-index-sha256-${(tags[0] ?? "").slice(7, 12)}.yaml`]);
    });

    it("prints no progress, totals or Results lines with --log-level error", async () => {
      const run = await mirror(
        line,
        "log-level-error",
        { additionalImages: ["tagOnly", "missing"] },
        { destination: destination(), logLevel: "error" },
      );
      expect(run.exitCode).toBe(8);
      const msgs = messages(run);
      expect(msgs.some((m) => m.startsWith("📌 images to copy"))).toBe(false);
      expect(msgs).not.toContain("=== Results ===");
      expect(msgs.some((m) => m.includes("additional images mirrored"))).toBe(false);
      expect(msgs.some((m) => m.startsWith("Success copying"))).toBe(false);
      expect(errorsFiles(run)).toHaveLength(1);
    });
  },
);
