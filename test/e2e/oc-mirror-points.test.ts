/**
 * The twelve points of issue 13, each as a user meets it with the real oc-mirror run by the
 * operator's Job (test pod runner, offline upstream): what the operator got wrong when it read
 * or drove the real binary, and how it behaves now. Each describe is one point; each of its
 * tests failed on the code before the fixes (main at 8f354f1) and passes now.
 */
import { createServer, type Server } from "node:net";
import { once } from "node:events";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { LABELS, mirrorJobNames, runNames } from "../../src/job/names.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { readResultConfigMap } from "../../src/report/result.ts";
import { adminKubeConfig, useNamespace } from "../harness/kube.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  upstream,
  upstreamImageSet,
  upstreamSource,
  type MirrorJobObject,
  type RunningOperator,
  type SourceInputOptions,
} from "../harness/operator.ts";
import { startHelmRepo } from "../harness/helm-repo.ts";
import type { PodBehaviour } from "../../devkit/pod-runner.ts";
import {
  startUpstream,
  upstreamInfo,
  type OfflineUpstream,
  type UpstreamInfo,
} from "../../devkit/upstream.ts";
import { proxyDir, startSourceProxy } from "../harness/upstream-proxy.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const mjs = mirrorJobs(kc);
const registry = inject("registry");

const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});
const podRunner = usePodRunner(ns);
let operator: RunningOperator | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  await operator?.stop();
  operator = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** The target registry, as the tests read it. */
const target = new RegistryClient({
  registry: registry.host,
  credentials: { username: registry.username, password: registry.password },
  caBundle: registry.caPem,
  timeoutMs: 10_000,
});
afterAll(() => target.close());

function spec(imageSet: unknown, extra: Record<string, unknown> = {}, up?: UpstreamInfo) {
  return {
    imageSet: { inline: imageSet },
    source: upstreamSource(up),
    registry: {
      url: `${registry.host}/${ns.name}`,
      pushSecretRef: { name: "push" },
      caBundleRef: { name: "registry-ca" },
    },
    apply: { mode: "None" },
    ...extra,
  };
}

/** The operator, the target's push Secret and CA, and the source's inputs. */
async function setUp(sourceOptions: SourceInputOptions = {}): Promise<void> {
  operator = await startOperator(kc);
  await createPushSecret(kc, ns.name);
  await createRegistryCa(kc, ns.name);
  await createSourceInputs(kc, ns.name, sourceOptions);
}

/** Creates the MirrorJob and waits for its first run to end. */
async function firstRun(
  name: string,
  body: Record<string, unknown>,
  behaviour?: PodBehaviour,
): Promise<MirrorJobObject> {
  if (behaviour !== undefined) podRunner.behaviours.set(name, behaviour);
  await mjs.create(ns.name, name, body);
  return mjs.waitFor(ns.name, name, "the run to end", (mj) => mj.status?.lastRun !== undefined, 90_000);
}

/** Asks for another run and waits for it to end (and to be verified, if it is to be). */
async function nextRun(name: string, previous: MirrorJobObject, patch: Record<string, unknown>) {
  const before = previous.status?.lastRun?.id;
  await mjs.patchSpec(ns.name, name, patch);
  return mjs.waitFor(
    ns.name,
    name,
    "the next run to end",
    (mj) => mj.status?.lastRun !== undefined && mj.status.lastRun.id !== before,
    90_000,
  );
}

/**
 * Waits until the MirrorJob is done with its last run: nothing in progress, and the run
 * verified if it is one the operator verifies (it finished as Succeeded or PartiallyFailed).
 */
function settled(name: string): Promise<MirrorJobObject> {
  return mjs.waitFor(ns.name, name, "the run to be settled (nothing more to do)", (mj) => {
    const last = mj.status?.lastRun;
    if (last === undefined || condition(mj, "Reconciling") !== undefined) return false;
    return (
      (last.result !== "Succeeded" && last.result !== "PartiallyFailed") || last.verification !== undefined
    );
  });
}

/** Waits until the spec is refused (Stalled, InvalidSpec) or, if it is not, a run has ended. */
function refusedOrRun(name: string): Promise<MirrorJobObject> {
  return mjs.waitFor(
    ns.name,
    name,
    "InvalidSpec (or a run)",
    (mj) => condition(mj, "Stalled")?.reason === "InvalidSpec" || mj.status?.lastRun !== undefined,
    90_000,
  );
}

/** Where a destination of the run would be: `<registry>/<ns>/<repository>`. */
function repo(repository: string): string {
  return `${ns.name}/${repository}`;
}

async function jobsOf(name: string) {
  return (await batch.listNamespacedJob({ namespace: ns.name, labelSelector: `${LABELS.mirrorJob}=${name}` }))
    .items;
}

/** The result ConfigMap of the MirrorJob's last run, as the controller reads it. */
async function lastResult(mj: MirrorJobObject) {
  const id = mj.status?.lastRun?.id ?? "";
  const cm = await core.readNamespacedConfigMap({
    namespace: ns.name,
    name: runNames(mj.metadata.name, id).result,
  });
  return readResultConfigMap(cm);
}

/** What the run's reporter printed (oc-mirror's output as `kubectl logs -c reporter` shows it). */
function reporterLog(name: string): string {
  const logs = join(podRunner.root(), "logs");
  return readdirSync(logs)
    .filter((f) => f.startsWith(`${ns.name}_${name}-`) && f.endsWith(".reporter.log"))
    .map((f) => readFileSync(join(logs, f), "utf8"))
    .join("");
}

function hexOf(digest: string): string {
  return digest.replace(/^sha256:/, "");
}

describe("1. a collection failure (exit 4 with no Results) is a failed run that copied nothing", () => {
  it("reports the run as failed with oc-mirror's reason, verifies nothing and copied none of the other images", async () => {
    await setUp();
    const up = upstream();
    const imageSet = upstreamImageSet({
      operators: { catalog: `${up.source.host}/redhat/no-such-index:v4.19` },
      additionalImages: ["multiArch", "tagOnly"],
    });
    const mj = await firstRun("collect", spec(imageSet));
    expect(mj.status?.lastRun).toMatchObject({
      result: "Failed",
      exitCode: 4,
      failedCategories: ["operator"],
    });
    expect(condition(mj, "Mirrored")).toMatchObject({ status: "False", reason: "RunFailed" });
    expect(mj.status?.lastRun?.message).toMatch(
      /could not collect the operator images \(exit code 4\) and copied nothing: collect catalog .*redhat\/no-such-index:v4\.19.*manifest unknown/,
    );
    expect(mj.status?.lastRun?.message).not.toMatch(/other images were mirrored/);
    expect(mj.status?.lastRun?.images).toEqual({});
    const done = await settled("collect");
    expect(done.status?.lastRun?.verification).toBeUndefined();
    expect(condition(done, "Verified")?.status).not.toBe("True");
    // Indeed nothing was copied, not even the additional images that exist.
    expect(await target.headManifest(repo("demo/toolbox"), "1.0")).toBeUndefined();
    expect(await target.headManifest(repo("demo/busybox"), "stable")).toBeUndefined();
  });
});

describe("1b. a run whose every copy failed (exit 8, Results 0 / N) is failed too", () => {
  it("does not say the other images were mirrored when there were none", async () => {
    await setUp();
    const mj = await firstRun("none", spec(upstreamImageSet({ additionalImages: ["missing"] })));
    expect(mj.status?.lastRun).toMatchObject({
      result: "Failed",
      exitCode: 8,
      failedCategories: ["additional"],
      images: { additional: { copied: 0, failed: 1, total: 1 } },
    });
    expect(mj.status?.lastRun?.message).toMatch(/copied none of the 1 images/);
    expect(mj.status?.lastRun?.message).not.toMatch(/other images were mirrored/);
    expect(mj.status?.lastRun?.failedImages?.map((f) => f.image)).toEqual([
      upstream().content.images.missing.reference,
    ]);
    const done = await settled("none");
    expect(done.status?.lastRun?.verification).toBeUndefined();
  });
});

describe("2. a catalog pinned by digest without targetTag is verified where oc-mirror pushed it", () => {
  it("verifies the rebuilt catalog under the tag of the generated CatalogSource, and the run is Ready", async () => {
    await setUp();
    const up = upstream();
    const catalog = `${up.source.host}/redhat/redhat-operator-index@${up.content.catalog.digest}`;
    const mj = await firstRun("pinned", spec(upstreamImageSet({ operators: { catalog } })));
    expect(mj.status?.lastRun?.result).toBe("Succeeded");
    const done = await settled("pinned");
    expect(condition(done, "Verified")).toMatchObject({ status: "True", reason: "AllImagesPresent" });
    expect(condition(done, "Ready")?.status).toBe("True");
    expect(done.status?.lastRun?.verification).toMatchObject({ missing: 0, mismatched: 0 });
    // The catalog oc-mirror pushed is tagged with the digest of the rebuilt (filtered) catalog,
    // which only the mirror pass knows; the dry run's mapping named another tag.
    const result = await lastResult(done);
    const catalogSource = result.clusterResources.find((o) => o.object.kind === "CatalogSource");
    const image = (catalogSource?.object.spec as { image?: string } | undefined)?.image ?? "";
    expect(image).toMatch(
      new RegExp(`^${registry.host}/${ns.name}/redhat/redhat-operator-index:sha256-[0-9a-f]{64}$`),
    );
    const pushedTag = image.slice(image.lastIndexOf(":") + 1);
    expect(await target.headManifest(repo("redhat/redhat-operator-index"), pushedTag)).toBeDefined();
    const planned = result.mapping.find((e) => e.destination.includes("/redhat/redhat-operator-index:"));
    expect(planned?.destination).toBeDefined();
    expect(planned?.destination).not.toBe(image);
    const plannedTag = planned?.destination.slice(planned.destination.lastIndexOf(":") + 1) ?? "";
    expect(await target.headManifest(repo("redhat/redhat-operator-index"), plannedTag)).toBeUndefined();
  });
});

describe("3. a run reports its own failed images, never an earlier run's errors file", () => {
  it("on oc-mirror 5 (which keeps logs/ across runs), a successful run after a partial one lists no failed image", async () => {
    await setUp();
    const line = { line: "5" } as const;
    const failing = upstreamImageSet({ additionalImages: ["multiArch", "missing"] });
    const first = await firstRun("errors", spec(failing, { mirror: line }), line);
    expect(first.status?.lastRun).toMatchObject({ result: "PartiallyFailed", exitCode: 8 });
    expect(first.status?.lastRun?.failedImages?.map((f) => f.image)).toEqual([
      upstream().content.images.missing.reference,
    ]);
    // The first run's errors file stays in the workspace (5.x does not clear logs/).
    const logs = join(
      podRunner.root(),
      "pvc",
      ns.name,
      mirrorJobNames("errors").workspace,
      "working-dir",
      "logs",
    );
    expect(readdirSync(logs).filter((f) => f.startsWith("mirroring_errors_"))).toHaveLength(1);

    const second = await nextRun("errors", first, {
      imageSet: { inline: upstreamImageSet({ additionalImages: ["multiArch"] }) },
    });
    expect(second.status?.lastRun).toMatchObject({
      result: "Succeeded",
      exitCode: 0,
      images: { additional: { copied: 1, failed: 0, total: 1 } },
    });
    expect(second.status?.lastRun?.failedImages).toEqual([]);
    expect(second.status?.lastRun?.message).not.toMatch(/missing/);
  });
});

describe("4. the dry run's cluster resources are never reported as the run's", () => {
  it("on oc-mirror 5 (whose dry run writes cluster-resources/), a mirror pass that cannot start reports none", async () => {
    await setUp();
    const line = { line: "5" } as const;
    // Between the dry run and the mirror pass something else takes oc-mirror's cache port:
    // the mirror pass stops before it clears cluster-resources/ (exit 1).
    const held: Server[] = [];
    cleanups.push(async () => {
      for (const s of held) await new Promise((resolve) => s.close(resolve));
    });
    const mj = await firstRun(
      "dryrun",
      spec(upstreamImageSet({ additionalImages: ["multiArch", "tagOnly"] }), { mirror: line }),
      {
        ...line,
        beforeOcMirror: async (pass) => {
          if (pass.pass !== 2) return;
          const server = createServer();
          held.push(server);
          server.listen(pass.port, "127.0.0.1");
          await once(server, "listening");
        },
      },
    );
    expect(mj.status?.lastRun).toMatchObject({ result: "Failed", exitCode: 1 });
    expect(reporterLog("dryrun")).toMatch(/already bound/);
    const result = await lastResult(mj);
    // The dry run had generated them (5.x), for images that were never copied.
    expect(reporterLog("dryrun")).toMatch(/Generating IDMS|Generating ITMS/);
    expect(result.clusterResources).toEqual([]);
    expect(
      existsSync(
        join(
          podRunner.root(),
          "pvc",
          ns.name,
          mirrorJobNames("dryrun").workspace,
          "working-dir",
          "cluster-resources",
          "itms-oc-mirror.yaml",
        ),
      ),
    ).toBe(false);
  });
});

describe("5. logLevel error keeps what the reporter reads", () => {
  it("reports per-category counts and the failed image, and shows only oc-mirror's errors in the run's log", async () => {
    await setUp();
    const mj = await firstRun(
      "quiet",
      spec(upstreamImageSet({ additionalImages: ["multiArch", "tagOnly", "missing"] }), {
        mirror: { logLevel: "error" },
      }),
    );
    expect(mj.status?.lastRun).toMatchObject({
      result: "PartiallyFailed",
      exitCode: 8,
      images: { additional: { copied: 2, failed: 1, total: 3 } },
    });
    expect(mj.status?.lastRun?.failedImages?.map((f) => f.image)).toEqual([
      upstream().content.images.missing.reference,
    ]);
    const log = reporterLog("quiet")
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("reporter:"));
    expect(log.length).toBeGreaterThan(0);
    for (const l of log) expect(l).not.toMatch(/\[INFO\]/);
    expect(log.join("\n")).toMatch(/\[ERROR\].*demo\/missing:1\.0/);
  });
});

describe("6. a release given by tag is resolved with the source credentials", () => {
  it("mirrors a release named by its tag from an authenticated registry", async () => {
    await setUp();
    const mj = await firstRun("bytag", spec(upstreamImageSet({ release: { byTag: "4.19.2" } })));
    expect(mj.status?.lastRun?.message ?? "").not.toMatch(/authentication required/);
    expect(mj.status?.lastRun).toMatchObject({ result: "Succeeded", exitCode: 0 });
    const release = mj.status?.lastRun?.images?.release;
    expect(release?.copied).toBeGreaterThan(0);
    expect(release).toEqual({ copied: release?.total, failed: 0, total: release?.total });
    expect(await target.headManifest(repo("openshift/release-images"), "4.19.2-x86_64")).toBeDefined();
    const done = await settled("bytag");
    expect(condition(done, "Verified")).toMatchObject({ status: "True", reason: "AllImagesPresent" });
  });
});

describe("7. releases come from the user's update graph, signature server and key", () => {
  let own: OfflineUpstream;
  let info: UpstreamInfo;
  beforeAll(async () => {
    own = await startUpstream(proxyDir(inject("harnessDir"), "points-upstream"));
    info = upstreamInfo(own);
  }, 120_000);
  afterAll(async () => {
    await own.stop();
  });
  afterEach(() => {
    own.restoreSignatures();
  });

  it("mirrors a channel range with graph: true through the operator's Job, asking only the given services", async () => {
    await setUp({ upstream: info });
    const before = own.requests().length;
    const mj = await firstRun("release", spec(upstreamImageSet({ release: true }, info), {}, info));
    expect(mj.status?.lastRun).toMatchObject({ result: "Succeeded", exitCode: 0 });
    const release = mj.status?.lastRun?.images?.release;
    expect(release).toEqual({ copied: release?.total, failed: 0, total: release?.total });
    const done = await settled("release");
    expect(condition(done, "Verified")).toMatchObject({ status: "True", reason: "AllImagesPresent" });
    // Every release of the range, and the graph image the init container provided.
    for (const v of info.content.release.versions) {
      expect(await target.headManifest(repo("openshift/release-images"), v.tag), v.tag).toBeDefined();
    }
    expect(await target.headManifest(repo("openshift/graph-image"), "latest")).toBeDefined();
    const [job] = await jobsOf("release");
    expect(job?.spec?.template.spec?.initContainers?.map((c) => c.name)).toEqual([
      "merge-auth",
      "pull-graph-image",
    ]);
    // oc-mirror asked the given update graph for the channel, and the given signature server
    // for each release's signature (verified with the given key: see the next test).
    const asked = own.requests().slice(before);
    expect(
      asked.filter((r) => r.path.endsWith("/graph") && r.query.channel === info.content.release.channel)
        .length,
    ).toBeGreaterThan(0);
    for (const v of info.content.release.versions) {
      expect(
        asked.some((r) => r.path.endsWith(`sha256=${hexOf(v.digest)}/signature-1`) && r.status === 200),
        `signature of ${v.version}`,
      ).toBe(true);
    }
  });

  it("refuses a release whose signature the given key did not make", async () => {
    await setUp({ upstream: info });
    own.breakSignature("4.19.2");
    const mj = await firstRun("forged", spec(upstreamImageSet({ release: true }, info), {}, info));
    expect(mj.status?.lastRun).toMatchObject({ result: "Failed", exitCode: 2 });
    expect(mj.status?.lastRun?.message).toMatch(/invalid signature/);
    expect(await target.headManifest(repo("openshift/release-images"), "4.19.2-x86_64")).toBeUndefined();
  });

  it("pulls through the mirrors of a given registries.conf", async () => {
    const up = upstream();
    await setUp();
    // Images named on a registry that does not answer (nothing listens on port 1), which the
    // registries.conf redirects to the source.
    const nowhere = "127.0.0.1:1";
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: { name: "registries" },
        data: {
          "registries.conf": [
            "[[registry]]",
            `prefix = "${nowhere}/demo"`,
            `location = "${up.source.host}/demo"`,
            "",
          ].join("\n"),
        },
      },
    });
    const imageSet = {
      kind: "ImageSetConfiguration",
      apiVersion: "mirror.openshift.io/v2alpha1",
      mirror: {
        additionalImages: [
          { name: `${nowhere}/demo/busybox:stable` },
          { name: `${nowhere}/demo/toolbox:1.0` },
        ],
      },
    };
    const mj = await firstRun(
      "regconf",
      spec(imageSet, { source: { ...upstreamSource(), registriesConfRef: { name: "registries" } } }),
    );
    expect(mj.status?.lastRun).toMatchObject({
      result: "Succeeded",
      images: { additional: { copied: 2, failed: 0, total: 2 } },
    });
    expect((await target.headManifest(repo("demo/busybox"), "stable"))?.digest).toBe(
      up.content.images.tagOnly.digest,
    );
  });
});

describe("8. fields naming files inside the oc-mirror container are refused", () => {
  async function expectRefused(name: string, imageSet: unknown, field: RegExp) {
    await setUp();
    await mjs.create(ns.name, name, spec(imageSet));
    const mj = await refusedOrRun(name);
    expect(mj.status?.lastRun).toBeUndefined();
    expect(condition(mj, "Stalled")?.message).toMatch(field);
    expect(condition(mj, "Stalled")?.message).toMatch(/names a file inside the oc-mirror container/);
    expect(condition(mj, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(await jobsOf(name)).toEqual([]);
  }

  it("refuses targetCatalogSourceTemplate (oc-mirror would silently drop it)", async () => {
    const imageSet = upstreamImageSet({ operators: true });
    const operators = (imageSet.mirror.operators ?? []).map((o) => ({
      ...(o as Record<string, unknown>),
      targetCatalogSourceTemplate: "/templates/catalog-source.yaml",
    }));
    await expectRefused(
      "template",
      { ...imageSet, mirror: { ...imageSet.mirror, operators } },
      /mirror\.operators\[0\]\.targetCatalogSourceTemplate/,
    );
  });

  it("refuses a local helm chart (oc-mirror would fail to collect it)", async () => {
    const imageSet = {
      ...upstreamImageSet({ additionalImages: ["tagOnly"] }),
      mirror: {
        ...upstreamImageSet({ additionalImages: ["tagOnly"] }).mirror,
        helm: { local: [{ name: "chart", path: "/charts/chart-1.0.0.tgz" }] },
      },
    };
    await expectRefused("localchart", imageSet, /mirror\.helm\.local\[0\]/);
  });
});

describe("9. progress totals are oc-mirror's own count of the images to copy", () => {
  it("at log level debug, never shows a collector's per-category count as the total", async () => {
    const up = upstream();
    // A helm repository that answers late: the run stays in helm collection for a while after
    // oc-mirror printed its debug line "[CollectAll] total additional images to copy 2".
    const helm = await startHelmRepo(proxyDir(inject("harnessDir"), "helm"), {
      chart: "demo",
      image: `${up.source.host}/demo/pause:3.10`,
      indexDelayMs: 5_000,
    });
    cleanups.push(() => helm.stop());
    await setUp({ caPem: helm.caPem });
    const imageSet = upstreamImageSet({ additionalImages: ["multiArch", "tagOnly"] });
    await mjs.create(
      ns.name,
      "totals",
      spec(
        {
          ...imageSet,
          mirror: {
            ...imageSet.mirror,
            helm: {
              repositories: [{ name: "demo", url: helm.url, charts: [{ name: "demo", version: "1.0.0" }] }],
            },
          },
        },
        { mirror: { logLevel: "debug" } },
      ),
    );
    const totals = new Set<number>();
    const done = await mjs.waitFor(
      ns.name,
      "totals",
      "the run to end (recording the totals shown meanwhile)",
      (mj) => {
        const progress = mj.status?.currentRun?.progress;
        if (progress !== undefined) totals.add(progress.total);
        return mj.status?.lastRun !== undefined;
      },
      120_000,
    );
    expect(helm.requests).toContain("/charts/index.yaml");
    expect(reporterLog("totals")).toMatch(/\[CollectAll\] total additional images to copy 2/);
    expect(done.status?.lastRun).toMatchObject({
      result: "Succeeded",
      images: { additional: { copied: 2, failed: 0, total: 2 }, helm: { copied: 1, failed: 0, total: 1 } },
    });
    // oc-mirror's "images to copy 3": the sum of its Results lines' totals.
    expect([...totals].filter((t) => t !== 0 && t !== 3)).toEqual([]);
    expect(totals.size).toBeGreaterThan(0);
  });
});

describe("10. exit code 2 is described as what it is", () => {
  it("says a release that could not be collected was not copied, with oc-mirror's reason", async () => {
    await setUp();
    const up = upstream();
    const missingRelease = `${up.source.host}/openshift-release-dev/ocp-release:4.19.9-x86_64`;
    const imageSet = {
      kind: "ImageSetConfiguration",
      apiVersion: "mirror.openshift.io/v2alpha1",
      mirror: { platform: { release: missingRelease, graph: false } },
    };
    const mj = await firstRun("exit2", spec(imageSet));
    expect(mj.status?.lastRun).toMatchObject({
      result: "Failed",
      exitCode: 2,
      failedCategories: ["release"],
    });
    const message = mj.status?.lastRun?.message ?? "";
    expect(message).toMatch(
      /could not collect the release images \(exit code 2\) and copied nothing: .*4\.19\.9-x86_64/,
    );
    expect(message).not.toMatch(/cancels the remaining copies/);
  });
});

describe("11. a run that copied nothing is never verified", () => {
  it("does not verify a run whose mirror pass stopped at collection, though an earlier run's images are all there", async () => {
    const up = upstream();
    const proxy = await startSourceProxy(proxyDir(inject("harnessDir"), "catalog"), up);
    cleanups.push(() => proxy.stop());
    await setUp({ hosts: [proxy.host], caPem: proxy.caPem });
    const catalog = proxy.via(up.content.catalog.reference);
    const first = await firstRun("nothing", spec(upstreamImageSet({ operators: { catalog } })));
    expect(first.status?.lastRun?.result).toBe("Succeeded");
    const verified = await mjs.waitFor(
      ns.name,
      "nothing",
      "Verified=True",
      (m) => condition(m, "Verified")?.status === "True",
    );

    // The next run: the dry run lists the same images (all in the target already), then the
    // catalog disappears from the source before the mirror pass collects it.
    podRunner.behaviours.set("nothing", {
      beforeOcMirror: (pass) => {
        if (pass.pass === 2) {
          proxy.server.inject({
            path: /^\/v2\/redhat\/redhat-operator-index\/manifests\//,
            action: {
              status: 404,
              body: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
            },
          });
        }
      },
    });
    const second = await nextRun("nothing", verified, { runRequest: "again" });
    const id = second.status?.lastRun?.id ?? "?";
    const done = await settled("nothing");
    // Not verified: its mapping lists images an earlier run put there, which proves nothing.
    expect(done.status?.lastRun?.verification).toBeUndefined();
    expect(condition(done, "Verified")?.message ?? "").not.toContain(id);
    expect(done.status?.lastRun).toMatchObject({ id, result: "Failed", exitCode: 4 });
    expect(done.status?.lastRun?.message).toMatch(/copied nothing/);
    expect(condition(done, "Ready")?.status).toBe("False");
  });
});

describe("12. a digest-only image of a registry with a port mirrors on both oc-mirror lines", () => {
  for (const line of ["4.20", "5"] as const) {
    it(`oc-mirror ${line}: mirrors it to <registry>/demo/pause:sha256-<hex>`, async () => {
      await setUp();
      const up = upstream();
      const name = `digest-${line.replace(".", "-")}`;
      const mj = await firstRun(
        name,
        spec(upstreamImageSet({ additionalImages: ["digestPinned", "tagOnly"] }), { mirror: { line } }),
        { line },
      );
      expect(mj.status?.lastRun).toMatchObject({
        result: "Succeeded",
        exitCode: 0,
        images: { additional: { copied: 2, failed: 0, total: 2 } },
      });
      const pause = up.content.images.digestPinned.digest;
      expect((await target.headManifest(repo("demo/pause"), `sha256-${hexOf(pause)}`))?.digest).toBe(pause);
      const done = await settled(name);
      expect(condition(done, "Verified")).toMatchObject({ status: "True", reason: "AllImagesPresent" });
      // What the operator did for oc-mirror 5 is said, not hidden.
      if (line === "5") {
        expect(condition(done, "PreflightPassed")?.message).toMatch(
          new RegExp(`added targetTag sha256-${hexOf(pause)} to .*demo/pause@${pause}`),
        );
      }
    });
  }

  it("refuses a targetTag for oc-mirror 4.20, which would refuse the whole configuration", async () => {
    await setUp();
    const imageSet = upstreamImageSet({ additionalImages: ["digestPinned"], digestPinnedTargetTag: "3.10" });
    await mjs.create(ns.name, "tag420", spec(imageSet, { mirror: { line: "4.20" } }));
    const mj = await refusedOrRun("tag420");
    expect(mj.status?.lastRun).toBeUndefined();
    expect(condition(mj, "Stalled")?.message).toMatch(/additionalImages\[0\]\.targetTag.*needs oc-mirror 5/);
    expect(await jobsOf("tag420")).toEqual([]);
  });
});
