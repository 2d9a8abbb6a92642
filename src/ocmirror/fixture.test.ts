/**
 * The oc-mirror fixture (test/harness/ocmirror-fixture.ts) read back with the real parsers:
 * every scenario's exit code, stdout, log file, errors file, dry-run mapping and cluster
 * resources.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  catalogObjectName,
  collect,
  goDuration,
  readIsc,
  runFixture,
  splitDestination,
} from "../../test/harness/ocmirror-fixture.ts";
import { parseClusterResources } from "./cluster-resources.ts";
import { latestErrorsFile, parseErrorsFile } from "./errors-file.ts";
import { decodeExitCode } from "./exit-code.ts";
import { destinationEntries, parseMapping } from "./mapping.ts";
import { progressOf, stripAnsi } from "./progress.ts";
import { latestLogFile, workspacePaths } from "./workspace.ts";

const HEX = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const REGISTRY = "reg.example.com:5000/mirror";
/** Nothing listens on port 1: a push there fails at once (connection refused). */
const DOWN = "127.0.0.1:1/mirror";

const FULL_ISC = `kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  platform:
    graph: true
    channels:
      - name: stable-4.19
        minVersion: 4.19.2
        maxVersion: 4.19.7
  operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.19
      packages:
        - name: advanced-cluster-management
          channels:
            - name: release-2.13
              maxVersion: 2.13.3
        - name: multicluster-engine
  additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest
    - name: quay.io/prometheus/busybox@sha256:${HEX}
`;

const ADDITIONAL_ONLY = `kind: ImageSetConfiguration
apiVersion: mirror.openshift.io/v2alpha1
mirror:
  additionalImages:
    - name: registry.redhat.io/ubi9/ubi:latest
`;

const OPERATORS_ONLY = `kind: ImageSetConfiguration
mirror:
  operators:
    - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.19
      targetCatalog: acm/catalog
      targetTag: v1
      packages:
        - name: advanced-cluster-management
`;

interface Run {
  readonly code: number;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly ws: string;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "ocmirror-fixture-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
async function run(
  isc: string,
  options: {
    scenario?: string;
    extraArgs?: string[];
    env?: NodeJS.ProcessEnv;
    ws?: string;
    /** Destination (default REGISTRY, which does not exist: pushing is off unless `env` turns it on). */
    dest?: string;
  } = {},
): Promise<Run> {
  const dir = path.join(root, `run-${++counter}`);
  await mkdir(path.join(dir, "home"), { recursive: true });
  await writeFile(path.join(dir, "isc.yaml"), isc);
  const ws = options.ws ?? path.join(dir, "ws");
  const stdout: string[] = [];
  const stderr: string[] = [];
  const env: NodeJS.ProcessEnv = {
    HOME: path.join(dir, "home"),
    HUBMIRROR_FIXTURE_PUSH: "false",
    ...(options.scenario === undefined ? {} : { HUBMIRROR_FIXTURE_SCENARIO: options.scenario }),
    ...options.env,
  };
  const argv = [
    "-c",
    path.join(dir, "isc.yaml"),
    "--workspace",
    `file://${ws}`,
    `docker://${options.dest ?? REGISTRY}`,
    "--v2",
    "--cache-dir",
    path.join(dir, "cache"),
    "--parallel-images=4",
    "--retry-times",
    "5",
    "--image-timeout",
    "90m",
    "--dest-tls-verify=false",
    ...(options.extraArgs ?? []),
  ];
  const code = await runFixture(argv, env, {
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
  });
  return { code, stdout, stderr, ws };
}

async function clusterResources(ws: string) {
  const dir = workspacePaths(ws).clusterResources;
  const names = (await readdir(dir)).sort();
  const files = await Promise.all(
    names.map(async (name) => ({ name, content: await readFile(path.join(dir, name), "utf8") })),
  );
  return { names, ...parseClusterResources(files) };
}

async function logs(ws: string) {
  return (await readdir(workspacePaths(ws).logs)).sort();
}

const messages = (lines: string[]) =>
  lines.map((l) =>
    stripAnsi(l)
      .replace(/^\S+ \S+\s+\[\w+\]\s+:\s?/, "")
      .trim(),
  );

describe("fixture: success", () => {
  let r: Run;
  beforeAll(async () => {
    r = await run(FULL_ISC);
  });

  it("exits 0 and prints oc-mirror's lines", () => {
    expect(r.code).toBe(0);
    expect(decodeExitCode(r.code).outcome).toBe("success");
    const msgs = messages(r.stdout);
    expect(msgs[0]).toBe("\u{1F500} workflow mode: mirrorToMirror");
    expect(msgs).toContain("\u{1F4CC} images to copy 13");
    expect(msgs).toContain("=== Results ===");
    expect(msgs).toContain("\u2713  5 / 5 release images mirrored successfully");
    expect(msgs).toContain("\u2713  6 / 6 operator images mirrored successfully");
    expect(msgs).toContain("\u2713  2 / 2 additional images mirrored successfully");
    expect(msgs).toContain(
      "Success copying docker://registry.redhat.io/redhat/redhat-operator-index:v4.19 \u27A1\uFE0F cache",
    );
    expect(msgs).toContain(
      `Success copying registry.redhat.io/ubi9/ubi:latest \u27A1\uFE0F ${REGISTRY}/ubi9/`,
    );
    expect(msgs.some((m) => /^mirror time {5}: \S+$/.test(m))).toBe(true);
    // Before the log file exists, Go's log writes to stderr.
    expect(messages(r.stderr)).toEqual([
      "\u{1F44B} Hello, welcome to oc-mirror",
      "\u2699\uFE0F  setting up the environment for you...",
      "\u2699\uFE0F  environment version: v4.20.0-hubmirror-fixture",
    ]);
  });

  it("reports progress the reducer can follow", () => {
    const p = progressOf(r.stdout);
    expect(p).toMatchObject({ stage: "finished", total: 13, copied: 13, failed: 0 });
    expect(p.results).toEqual({
      release: { copied: 5, total: 5, failed: 0 },
      operator: { copied: 6, total: 6, failed: 0 },
      additional: { copied: 2, total: 2, failed: 0 },
    });
    expect(p.lastMessage).toBe("\u{1F44B} Goodbye, thank you for using oc-mirror");
  });

  it("writes the same lines to working-dir/logs/oc-mirror-<ts>.log, and no errors file", async () => {
    const names = await logs(r.ws);
    expect(names).toEqual([
      expect.stringMatching(/^oc-mirror-\d{8}_\d{6}\.log$/),
      expect.stringMatching(/^registry-/),
    ]);
    const log = latestLogFile(names) ?? "";
    const text = await readFile(path.join(workspacePaths(r.ws).logs, log), "utf8");
    expect(text).toBe(r.stdout.map((l) => `${l}\n`).join(""));
    expect(latestErrorsFile(names)).toBeUndefined();
  });

  it("writes the cluster resources of everything copied", async () => {
    const cr = await clusterResources(r.ws);
    expect(cr.names).toEqual([
      "cc-redhat-operator-index-v4-19.yaml",
      "cs-redhat-operator-index-v4-19.yaml",
      "idms-oc-mirror.yaml",
      "itms-oc-mirror.yaml",
      "signature-configmap.json",
      "signature-configmap.yaml",
      "updateService.yaml",
    ]);
    expect(cr.errors).toEqual([]);
    expect(cr.objects.map((o) => `${o.kind}/${o.name}`)).toEqual([
      "ClusterCatalog/cc-redhat-operator-index-v4-19",
      "CatalogSource/cs-redhat-operator-index-v4-19",
      "ImageDigestMirrorSet/idms-release-0",
      "ImageDigestMirrorSet/idms-operator-0",
      "ImageDigestMirrorSet/idms-generic-0",
      "ImageTagMirrorSet/itms-release-0",
      "ImageTagMirrorSet/itms-generic-0",
      "ConfigMap/mirrored-release-signatures",
      "UpdateService/update-service-oc-mirror",
    ]);
    const byName = new Map(cr.objects.map((o) => [o.name, o.object]));
    expect(byName.get("idms-release-0")).toMatchObject({
      apiVersion: "config.openshift.io/v1",
      metadata: {
        annotations: { createdBy: "oc-mirror v2", "oc-mirror_version": expect.any(String) as unknown },
      },
      spec: {
        imageDigestMirrors: [
          {
            source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev",
            mirrors: [`${REGISTRY}/openshift/release`],
          },
          {
            source: "quay.io/openshift-release-dev/ocp-release",
            mirrors: [`${REGISTRY}/openshift/release-images`],
          },
        ],
      },
    });
    expect(byName.get("idms-generic-0")).toMatchObject({
      spec: { imageDigestMirrors: [{ source: "quay.io/prometheus", mirrors: [`${REGISTRY}/prometheus`] }] },
    });
    expect(byName.get("itms-generic-0")).toMatchObject({
      spec: { imageTagMirrors: [{ source: "registry.redhat.io/ubi9", mirrors: [`${REGISTRY}/ubi9`] }] },
    });
    expect(byName.get("idms-operator-0")).toMatchObject({
      spec: {
        imageDigestMirrors: [
          {
            source: "registry.redhat.io/advanced-cluster-management",
            mirrors: [`${REGISTRY}/advanced-cluster-management`],
          },
          { source: "registry.redhat.io/multicluster-engine", mirrors: [`${REGISTRY}/multicluster-engine`] },
        ],
      },
    });
    expect(byName.get("cs-redhat-operator-index-v4-19")).toMatchObject({
      metadata: { namespace: "openshift-marketplace" },
      spec: { sourceType: "grpc", image: `${REGISTRY}/redhat/redhat-operator-index:v4.19` },
    });
    expect(byName.get("cc-redhat-operator-index-v4-19")).toMatchObject({
      spec: {
        priority: 0,
        source: { type: "Image", image: { ref: `${REGISTRY}/redhat/redhat-operator-index:v4.19` } },
      },
    });
    expect(byName.get("update-service-oc-mirror")).toMatchObject({
      spec: {
        replicas: 2,
        releases: `${REGISTRY}/openshift/release-images`,
        graphDataImage: `${REGISTRY}/openshift/graph-image:latest`,
      },
    });
    const cm = byName.get("mirrored-release-signatures") as {
      binaryData: Record<string, string>;
      metadata: object;
    };
    expect(Object.keys(cm.binaryData)).toEqual([expect.stringMatching(/^sha256-[0-9a-f]{64}-1$/)]);
    expect(cm.metadata).toMatchObject({ labels: { "release.openshift.io/verification-signatures": "" } });
  });

  it("writes documents each preceded by ---, as oc-mirror does", async () => {
    const text = await readFile(
      path.join(workspacePaths(r.ws).clusterResources, "idms-oc-mirror.yaml"),
      "utf8",
    );
    expect(text.startsWith("---\napiVersion: config.openshift.io/v1\n")).toBe(true);
    expect(text.match(/^---$/gm)).toHaveLength(3);
  });

  it("empties cluster-resources/ at the start of the next run", async () => {
    const stale = path.join(workspacePaths(r.ws).clusterResources, "cs-stale-v1.yaml");
    await writeFile(stale, "stale");
    const again = await run(ADDITIONAL_ONLY, { ws: r.ws });
    expect(again.code).toBe(0);
    const cr = await clusterResources(r.ws);
    expect(cr.names).toEqual(["itms-oc-mirror.yaml"]);
    expect(messages(again.stdout)).toContain(
      "\u{1F4C4} No images by digests were mirrored. Skipping IDMS generation.",
    );
    expect(messages(again.stdout)).toContain(
      "\u{1F4C4} No catalogs mirrored. Skipping CatalogSource file generation.",
    );
    // Two runs, two logs: the newest is this run's.
    expect((await logs(r.ws)).filter((n) => n.startsWith("oc-mirror-")).length).toBeGreaterThanOrEqual(1);
  });
});

describe("fixture: dry run", () => {
  it("writes the mapping (catalogs twice, via the cache) and copies nothing", async () => {
    const ws = path.join(root, "dry-ws");
    const crDir = workspacePaths(ws).clusterResources;
    await mkdir(crDir, { recursive: true });
    await writeFile(path.join(crDir, "idms-oc-mirror.yaml"), "kept");
    const r = await run(FULL_ISC, { extraArgs: ["--dry-run"], ws });
    expect(r.code).toBe(0);
    const msgs = messages(r.stdout);
    expect(msgs).toContain(
      `\u{1F4C4} list of all images for mirroring in : ${path.join(ws, "working-dir", "dry-run", "mapping.txt")}`,
    );
    expect(msgs.some((m) => m.startsWith("Success copying"))).toBe(false);
    expect(progressOf(r.stdout).stage).toBe("finished");

    const text = await readFile(workspacePaths(ws).mapping, "utf8");
    const lines = text.trimEnd().split("\n");
    expect(lines.every((l) => /^docker:\/\/\S+=docker:\/\/\S+$/.test(l))).toBe(true);
    expect(lines).toContain(
      "docker://registry.redhat.io/ubi9/ubi:latest=docker://reg.example.com:5000/mirror/ubi9/ubi:latest",
    );
    expect(lines).toContain(
      `docker://quay.io/prometheus/busybox@sha256:${HEX}=docker://reg.example.com:5000/mirror/prometheus/busybox:sha256-${HEX}`,
    );
    expect(lines).toContain(
      "docker://quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64=docker://reg.example.com:5000/mirror/openshift/release-images:4.19.7-x86_64",
    );
    expect(lines).toContain(
      "docker://registry.redhat.io/redhat/redhat-operator-index:v4.19=docker://localhost:55000/redhat/redhat-operator-index:v4.19",
    );
    expect(
      lines.filter((l) =>
        l.includes("=docker://reg.example.com:5000/mirror/openshift/release:4.19.7-x86_64-"),
      ),
    ).toHaveLength(3);

    const { entries, errors } = parseMapping(text);
    expect(errors).toEqual([]);
    expect(entries).toHaveLength(13);
    const dest = destinationEntries(entries, REGISTRY);
    expect(dest).toHaveLength(12);
    expect(dest.filter((e) => e.sourceDigest !== undefined)).toHaveLength(8);
    const catalog = dest.find((e) => e.destination.endsWith("redhat-operator-index:v4.19"));
    expect(catalog?.source).toMatch(/^localhost:55000\/redhat\/redhat-operator-index:[0-9a-f]{32}$/);

    expect(existsSync(path.join(workspacePaths(ws).dryRun, "missing.txt"))).toBe(false);
    // A dry run leaves cluster-resources/ alone.
    expect(await readFile(path.join(crDir, "idms-oc-mirror.yaml"), "utf8")).toBe("kept");
  });

  it("honours --port for the cache registry", async () => {
    const r = await run(OPERATORS_ONLY, { extraArgs: ["--dry-run", "-p", "55123"] });
    const { entries } = parseMapping(await readFile(workspacePaths(r.ws).mapping, "utf8"));
    expect(entries.map((e) => e.destination)).toContain("localhost:55123/acm/catalog:v1");
    expect(destinationEntries(entries, REGISTRY).map((e) => e.destination)).toContain(
      `${REGISTRY}/acm/catalog:v1`,
    );
  });
});

describe("fixture: partial", () => {
  let r: Run;
  beforeAll(async () => {
    r = await run(FULL_ISC, { scenario: "partial" });
  });

  it("exits 12 when operator and additional images failed", () => {
    expect(r.code).toBe(12);
    expect(decodeExitCode(r.code)).toMatchObject({
      outcome: "partial",
      failedCategories: ["operator", "additional"],
    });
    const msgs = messages(r.stdout);
    expect(msgs).toContain(
      "\u2717  4 / 6 operator images mirrored: Some operator images failed to be mirrored - please check the logs",
    );
    expect(msgs).toContain(
      "\u2717  1 / 2 additional images mirrored: Some additional images failed to be mirrored - please check the logs",
    );
    expect(msgs.filter((m) => m.startsWith("[Executor] [Worker] some errors occurred"))).toHaveLength(1);
    expect(msgs.at(-1)).toBe("* mirroring the failing images manually, if retries also fail.");
  });

  it("counts the failures in the progress", () => {
    const p = progressOf(r.stdout);
    expect(p).toMatchObject({ total: 13, copied: 10, failed: 3 });
    expect(p.results.operator).toEqual({ copied: 4, total: 6, failed: 2 });
    expect(p.results.additional).toEqual({ copied: 1, total: 2, failed: 1 });
  });

  it("writes the errors file in oc-mirror's three shapes", async () => {
    const names = await logs(r.ws);
    const file = latestErrorsFile(names);
    expect(file).toMatch(/^mirroring_errors_\d{8}_\d{6}\.txt$/);
    // Same timestamp as the log file (SynchedTimeStamp).
    expect(file?.slice(17, 32)).toBe(latestLogFile(names)?.slice(10, 25));
    const errors = parseErrorsFile(await readFile(path.join(workspacePaths(r.ws).logs, file ?? ""), "utf8"));
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatchObject({
      image: expect.stringMatching(
        /^registry\.redhat\.io\/advanced-cluster-management\/advanced-cluster-management-rhel9-operator@sha256:/,
      ) as unknown,
      bundles: ["advanced-cluster-management.v2.13.3"],
      operators: ["advanced-cluster-management"],
      error: expect.stringContaining("502 Bad Gateway") as unknown,
    });
    expect(errors[1]).toEqual({
      image: `quay.io/prometheus/busybox@sha256:${HEX}`,
      error: expect.stringContaining("manifest unknown") as unknown,
    });
    expect(errors[2]?.image).toMatch(/advanced-cluster-management-bundle@sha256:/);
    expect(errors[2]?.error).toMatch(
      /^skipping operator bundle .* because one of its related images failed to mirror$/,
    );
    expect(errors[2]?.bundles).toBeUndefined();
  });

  it("still writes cluster resources for what was copied", async () => {
    const cr = await clusterResources(r.ws);
    expect(cr.errors).toEqual([]);
    const byName = new Map(cr.objects.map((o) => [o.name, o.object]));
    // The failed ACM images are missing, multicluster-engine's are there; busybox failed.
    expect(byName.get("idms-operator-0")).toMatchObject({
      spec: { imageDigestMirrors: [{ source: "registry.redhat.io/multicluster-engine" }] },
    });
    expect(byName.has("idms-generic-0")).toBe(false);
    expect(byName.has("itms-generic-0")).toBe(true);
    expect(byName.has("cs-redhat-operator-index-v4-19")).toBe(true);
  });

  it("exits 8 with only additional images, and generates no IDMS/ITMS when nothing was copied", async () => {
    const only = await run(ADDITIONAL_ONLY, { scenario: "partial" });
    expect(only.code).toBe(8);
    expect(messages(only.stdout)).toContain(
      "\u{1F4C4} Nothing mirrored. Skipping IDMS and ITMS files generation.",
    );
    expect((await clusterResources(only.ws)).names).toEqual([]);
    const errors = parseErrorsFile(
      await readFile(
        path.join(workspacePaths(only.ws).logs, latestErrorsFile(await logs(only.ws)) ?? ""),
        "utf8",
      ),
    );
    expect(errors.map((e) => e.image)).toEqual(["registry.redhat.io/ubi9/ubi:latest"]);
  });

  it("exits 4 with only operators", async () => {
    const only = await run(OPERATORS_ONLY, { scenario: "partial" });
    expect(only.code).toBe(4);
    expect(decodeExitCode(only.code).failedCategories).toEqual(["operator"]);
    const cr = await clusterResources(only.ws);
    expect(cr.objects.map((o) => o.name)).toEqual(["cc-catalog-v1", "cs-catalog-v1"]);
  });
});

describe("fixture: failure", () => {
  it("cancels the batch when a release image fails", async () => {
    const r = await run(FULL_ISC, { scenario: "failure" });
    // Release failed; operator and additional images were never copied: 2 | 4 | 8.
    expect(r.code).toBe(14);
    expect(decodeExitCode(r.code)).toMatchObject({
      outcome: "failure",
      failedCategories: ["release", "operator", "additional"],
    });
    const p = progressOf(r.stdout);
    expect(p).toMatchObject({ total: 13, copied: 3, failed: 1 });
    expect(p.results.release).toEqual({ copied: 3, total: 5, failed: 2 });
    const errors = parseErrorsFile(
      await readFile(path.join(workspacePaths(r.ws).logs, latestErrorsFile(await logs(r.ws)) ?? ""), "utf8"),
    );
    expect(errors).toEqual([
      {
        image: "quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64",
        error: expect.stringContaining("500 Internal Server Error") as unknown,
      },
    ]);
    // The release components copied before the failure are still in an IDMS.
    const cr = await clusterResources(r.ws);
    expect(cr.objects.map((o) => o.name)).toEqual(["idms-release-0", "update-service-oc-mirror"]);
  });

  it("fails with a generic error before copying when there are no releases", async () => {
    const r = await run(ADDITIONAL_ONLY, { scenario: "failure" });
    expect(r.code).toBe(1);
    expect(decodeExitCode(r.code).outcome).toBe("failure");
    const msgs = messages(r.stdout);
    expect(msgs.at(-1)).toMatch(
      /^\[Executor\] checking registry "reg\.example\.com:5000\/mirror" access: failed to authenticate/,
    );
    expect(msgs.some((m) => m.startsWith("Success copying"))).toBe(false);
    expect((await clusterResources(r.ws)).names).toEqual([]);
    expect(latestErrorsFile(await logs(r.ws))).toBeUndefined();
  });
});

describe("fixture: crash", () => {
  it("prints a few lines and exits 255 without results", async () => {
    const r = await run(FULL_ISC, { scenario: "crash" });
    expect(r.code).toBe(255);
    expect(decodeExitCode(r.code).outcome).toBe("crash");
    const p = progressOf(r.stdout);
    expect(p).toMatchObject({ stage: "mirroring", total: 13, copied: 2, failed: 0, results: {} });
    expect(r.stderr.at(-1)).toMatch(
      /^F\d{4} \d{2}:\d{2}:\d{2}\.\d{6}\s+\d+ executor\.go:0\] unexpected fatal error/,
    );
    expect((await clusterResources(r.ws)).names).toEqual([]);
    const names = await logs(r.ws);
    expect(latestErrorsFile(names)).toBeUndefined();
    expect(latestLogFile(names)).toBeDefined();
  });

  it("crashes a dry run before the mapping is written", async () => {
    const r = await run(ADDITIONAL_ONLY, { scenario: "crash", extraArgs: ["--dry-run"] });
    expect(r.code).toBe(255);
    expect(existsSync(workspacePaths(r.ws).mapping)).toBe(false);
  });
});

describe("fixture: command line and environment", () => {
  const lastMessage = (r: Run) => messages([...r.stdout, ...r.stderr]).join("\n");

  it("refuses unknown flags like cobra", async () => {
    const r = await run(ADDITIONAL_ONLY, { extraArgs: ["--bogus"] });
    expect(r.code).toBe(1);
    expect(lastMessage(r)).toContain("[Executor] unknown flag: --bogus");
    const s = await run(ADDITIONAL_ONLY, { extraArgs: ["-x"] });
    expect(lastMessage(s)).toContain("unknown shorthand flag: 'x' in -x");
    const n = await run(ADDITIONAL_ONLY, { extraArgs: ["--parallel-images", "many"] });
    expect(lastMessage(n)).toContain('invalid argument "many" for "--parallel-images" flag');
    const range = await run(ADDITIONAL_ONLY, { extraArgs: ["--parallel-layers", "11"] });
    expect(lastMessage(range)).toContain("the flag parallel-layers must be between the range 1 to 10");
    const level = await run(ADDITIONAL_ONLY, { extraArgs: ["--log-level", "verbose"] });
    expect(lastMessage(level)).toContain("log-level has an invalid value verbose");
  });

  it("requires file:// for the workspace and docker:// for the destination", async () => {
    const dir = path.join(root, "args");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "isc.yaml"), ADDITIONAL_ONLY);
    const out: string[] = [];
    const io = { stdout: (l: string) => out.push(l) };
    const env = { HOME: dir };
    const isc = path.join(dir, "isc.yaml");
    expect(await runFixture(["-c", isc, "--workspace", dir, "docker://reg:5000", "--v2"], env, io)).toBe(1);
    expect(messages(out).at(-1)).toBe("[Executor] when --workspace is used, it must have file:// prefix");
    expect(await runFixture(["-c", isc, "--workspace", `file://${dir}`, "reg:5000", "--v2"], env, io)).toBe(
      1,
    );
    expect(messages(out).at(-1)).toBe(
      "[Executor] destination must have either file:// (mirror to disk) or docker:// (diskToMirror) protocol prefixes",
    );
    expect(await runFixture(["-c", isc, "docker://reg:5000", "--v2"], env, io)).toBe(1);
    expect(messages(out).at(-1)).toMatch(/either --from .* or --workspace .* need to be provided$/);
    expect(await runFixture(["--workspace", `file://${dir}`, "docker://reg:5000"], env, io)).toBe(1);
    expect(messages(out).at(-1)).toBe("[Executor] use the --config flag it is mandatory");
    expect(await runFixture(["-c", isc, "--workspace", `file://${dir}`], env, io)).toBe(1);
    expect(messages(out).at(-1)).toBe("[Executor] requires at least 1 arg(s), only received 0");
  });

  it("needs HOME, like oc-mirror", async () => {
    const r = await run(ADDITIONAL_ONLY, { env: { HOME: "" } });
    expect(r.code).toBe(1);
    expect(lastMessage(r)).toContain("failed to setup default cache directory: $HOME is not defined");
    const both = await run(ADDITIONAL_ONLY, { env: { OC_MIRROR_CACHE: "/tmp/x" } });
    expect(lastMessage(both)).toContain("either OC_MIRROR_CACHE or --cache-dir can be used but not both");
  });

  it("reports configuration errors with oc-mirror's messages", async () => {
    const missing = await run(ADDITIONAL_ONLY, { extraArgs: ["-c", "/nonexistent/isc.yaml"] });
    expect(lastMessage(missing)).toContain(
      "could not parse config: open /nonexistent/isc.yaml: no such file or directory",
    );
    const kind = await run("kind: DeleteImageSetConfiguration\nmirror: {}\n");
    expect(lastMessage(kind)).toContain(
      'cannot parse "DeleteImageSetConfiguration" as "ImageSetConfiguration"',
    );
    const noKind = await run("mirror: {}\n");
    expect(lastMessage(noKind)).toContain("configuration missing `kind`");
    const noMirror = await run("kind: ImageSetConfiguration\n");
    expect(lastMessage(noMirror)).toContain("configuration missing the `mirror` stanza");
    const unknown = await run(`${ADDITIONAL_ONLY}      bundles: [x]\n`);
    expect(lastMessage(unknown)).toContain('decode ImageSetConfiguration: json: unknown field "bundles"');
    const empty = await run("kind: ImageSetConfiguration\nmirror: {}\n");
    expect(empty.code).toBe(1);
    expect(lastMessage(empty)).toContain("[Executor] no images to copy");
  });

  it("rejects an unknown scenario", async () => {
    const r = await run(ADDITIONAL_ONLY, { scenario: "explode" });
    expect(r.code).toBe(1);
    expect(lastMessage(r)).toContain("HUBMIRROR_FIXTURE_SCENARIO");
  });

  it("sleeps HUBMIRROR_FIXTURE_DELAY_MS before each image", async () => {
    const started = Date.now();
    const r = await run(FULL_ISC, { env: { HUBMIRROR_FIXTURE_DELAY_MS: "10" } });
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(13 * 10);
  });

  it("runs as a program", async () => {
    const dir = path.join(root, "cli");
    await mkdir(path.join(dir, "home"), { recursive: true });
    await writeFile(path.join(dir, "isc.yaml"), ADDITIONAL_ONLY);
    const fixture = path.resolve(import.meta.dirname, "../../test/harness/ocmirror-fixture.ts");
    const args = [
      fixture,
      "-c",
      path.join(dir, "isc.yaml"),
      "--workspace",
      `file://${dir}/ws`,
      "docker://reg:5000",
      "--v2",
    ];
    const env = { ...process.env, HOME: path.join(dir, "home"), HUBMIRROR_FIXTURE_PUSH: "false" };
    const { stdout } = await promisify(execFile)(process.execPath, args, {
      env: { ...env, HUBMIRROR_FIXTURE_SCENARIO: "success" },
    });
    expect(progressOf(stdout.split("\n"))).toMatchObject({ stage: "finished", total: 1, copied: 1 });
    const failed = await promisify(execFile)(process.execPath, args, {
      env: { ...env, HUBMIRROR_FIXTURE_SCENARIO: "partial" },
    }).catch((err: unknown) => err as { code: number });
    expect((failed as { code: number }).code).toBe(8);
  });
});

// Pushing into a real registry is tested in test/e2e/ocmirror-fixture-push.test.ts.
describe("fixture: pushing to the destination", () => {
  const push = { HUBMIRROR_FIXTURE_PUSH: "true" };
  const noRetries = ["--retry-times", "0"];
  const errorsOf = async (ws: string) =>
    parseErrorsFile(
      await readFile(path.join(workspacePaths(ws).logs, latestErrorsFile(await logs(ws)) ?? ""), "utf8"),
    );

  it("counts an image whose push fails as failed, like oc-mirror's copy failures", async () => {
    const r = await run(ADDITIONAL_ONLY, { dest: DOWN, env: push, extraArgs: noRetries });
    expect(r.code).toBe(8);
    expect(decodeExitCode(r.code)).toMatchObject({ outcome: "partial", failedCategories: ["additional"] });
    const msgs = messages(r.stdout);
    expect(msgs).toContain("Failed to copy generic registry.redhat.io/ubi9/ubi:latest");
    expect(msgs.some((m) => m.startsWith("Success copying"))).toBe(false);
    expect(msgs).toContain(
      "\u2717  0 / 1 additional images mirrored: Some additional images failed to be mirrored - please check the logs",
    );
    expect(msgs).toContain("\u{1F4C4} Nothing mirrored. Skipping IDMS and ITMS files generation.");
    expect(progressOf(r.stdout)).toMatchObject({ stage: "finished", total: 1, copied: 0, failed: 1 });
    const errors = await errorsOf(r.ws);
    expect(errors).toEqual([
      {
        image: "registry.redhat.io/ubi9/ubi:latest",
        error: expect.stringMatching(
          /^writing image to docker:\/\/127\.0\.0\.1:1\/mirror\/ubi9\/ubi:latest: registry 127\.0\.0\.1:1 is unreachable/,
        ) as unknown,
      },
    ]);
  });

  it("pushes nothing to the cache: catalog copies into it still succeed", async () => {
    const r = await run(OPERATORS_ONLY, { dest: DOWN, env: push, extraArgs: noRetries });
    expect(r.code).toBe(4);
    const msgs = messages(r.stdout);
    expect(msgs).toContain(
      "Success copying docker://registry.redhat.io/redhat/redhat-operator-index:v4.19 \u27A1\uFE0F cache",
    );
    expect(msgs.filter((m) => m.startsWith("Success copying"))).toHaveLength(1);
    expect(progressOf(r.stdout)).toMatchObject({ total: 4, copied: 1, failed: 3 });
    const errors = await errorsOf(r.ws);
    // The related image's push failed, so its bundle was skipped (not pushed); then the catalog failed.
    expect(errors.map((e) => e.error.replace(/:.*/, ""))).toEqual([
      "writing image to docker",
      expect.stringMatching(/^skipping operator bundle /) as unknown,
      "writing image to docker",
    ]);
    expect(errors[0]).toMatchObject({
      bundles: ["advanced-cluster-management.v1.0.0"],
      operators: ["advanced-cluster-management"],
    });
    expect(errors[2]?.error).toContain("127.0.0.1:1/mirror/acm/catalog:v1");
  });

  it("cancels the batch when a release image cannot be pushed", async () => {
    const r = await run(FULL_ISC, { dest: DOWN, env: push, extraArgs: noRetries });
    expect(r.code).toBe(14);
    expect(progressOf(r.stdout)).toMatchObject({ copied: 0, failed: 1 });
    expect((await errorsOf(r.ws)).map((e) => e.image)).toHaveLength(1);
  });

  it("pushes nothing in a dry run", async () => {
    const r = await run(FULL_ISC, { dest: DOWN, env: push, extraArgs: ["--dry-run", ...noRetries] });
    expect(r.code).toBe(0);
    expect(latestErrorsFile(await logs(r.ws))).toBeUndefined();
    expect(existsSync(workspacePaths(r.ws).mapping)).toBe(true);
  });

  it("fails the images, naming the file but not its content, when the authfile is malformed", async () => {
    const authFile = path.join(root, "bad-auth.json");
    await writeFile(authFile, JSON.stringify({ auths: { "127.0.0.1:1": { auth: "s3cret!" } } }));
    const r = await run(ADDITIONAL_ONLY, {
      dest: DOWN,
      env: push,
      extraArgs: [...noRetries, "--authfile", authFile],
    });
    expect(r.code).toBe(8);
    const [error] = await errorsOf(r.ws);
    expect(error?.error).toContain(
      `reading JSON file "${authFile}": dockerconfigjson: "auth" of "127.0.0.1:1"`,
    );
    expect(r.stdout.join("\n")).not.toContain("s3cret");
  });

  it("rejects an unknown HUBMIRROR_FIXTURE_PUSH", async () => {
    const r = await run(ADDITIONAL_ONLY, { env: { HUBMIRROR_FIXTURE_PUSH: "yes" } });
    expect(r.code).toBe(1);
    expect(messages([...r.stdout, ...r.stderr]).join("\n")).toContain(
      'HUBMIRROR_FIXTURE_PUSH="yes" is not one of true, false',
    );
  });
});

describe("fixture internals", () => {
  it("splits destinations into host, repository and tag", () => {
    expect(splitDestination("docker://127.0.0.1:5000/mirror/ns/img:1.0")).toEqual({
      host: "127.0.0.1:5000",
      repository: "mirror/ns/img",
      tag: "1.0",
      reference: "127.0.0.1:5000/mirror/ns/img:1.0",
    });
    expect(splitDestination(`docker://reg/ns/img:sha256-${HEX}`)).toMatchObject({
      host: "reg",
      repository: "ns/img",
      tag: `sha256-${HEX}`,
    });
    expect(splitDestination(`reg:5000/img@sha256:${HEX}`)).toMatchObject({
      repository: "img",
      tag: `sha256-${HEX}`,
    });
    expect(splitDestination("reg:5000/ns/img")).toMatchObject({ repository: "ns/img", tag: "latest" });
  });

  it("names catalog objects like clusterresources.go", () => {
    expect(catalogObjectName("cs", "docker://reg/redhat/redhat-operator-index:v4.19")).toBe(
      "cs-redhat-operator-index-v4-19",
    );
    expect(catalogObjectName("cc", "docker://reg/ns/certified-operator-index:V4.20_Extra")).toBe(
      "cc-certified-operator-index-v4-20-extra",
    );
    expect(catalogObjectName("cs", `docker://reg/ns/catalog@sha256:${HEX}`)).toBe("cs-catalog-0123456789ab");
  });

  it("formats durations like Go", () => {
    expect(goDuration(0)).toBe("0s");
    expect(goDuration(36.5)).toBe("36.5ms");
    expect(goDuration(62_500)).toBe("1m2.5s");
    expect(goDuration(3_723_000)).toBe("1h2m3s");
  });

  it("derives destinations like the collectors", () => {
    const isc = readIsc(`kind: ImageSetConfiguration
mirror:
  platform:
    architectures: [arm64]
    channels: [{name: stable-4.18, type: ocp}]
  additionalImages:
    - name: quay.io/ns/img:1.0@sha256:${HEX}
    - name: quay.io/ns/other:2.0
      targetRepo: moved/other
      targetTag: v2
  helm:
    repositories:
      - name: podinfo
        url: https://stefanprodan.github.io/podinfo
        charts: [{name: podinfo, version: 6.7.0}]
  blockedImages:
    - name: machine-config-operator
`);
    const { images, totals } = collect(isc, "reg:5000", "localhost:55000");
    expect(totals).toEqual({ release: 3, operator: 0, additional: 2, helm: 1 });
    expect(images.map((i) => `${i.source}=${i.destination}`)).toEqual([
      expect.stringMatching(/=docker:\/\/reg:5000\/openshift\/release:4\.19\.7-aarch64-(cli|installer)$/),
      expect.stringMatching(/=docker:\/\/reg:5000\/openshift\/release:4\.19\.7-aarch64-(cli|installer)$/),
      "docker://quay.io/openshift-release-dev/ocp-release:4.19.7-aarch64=docker://reg:5000/openshift/release-images:4.19.7-aarch64",
      `docker://quay.io/ns/img@sha256:${HEX}=docker://reg:5000/ns/img:1.0`,
      "docker://quay.io/ns/other:2.0=docker://reg:5000/moved/other:v2",
      "docker://quay.io/fixture-helm/podinfo:6.7.0=docker://reg:5000/fixture-helm/podinfo:6.7.0",
    ]);
  });
});
