/**
 * The mirror run end to end on the real control plane: `create MirrorJob` leads to a
 * preflighted Job whose pod (played by the test pod runner: the real wrapper script, the real
 * oc-mirror and the real reporter) mirrors from the offline upstream, reports progress and a
 * result, and the status and Events say what happened. Failures are real faults around the
 * real binary: an image missing in the source, an update graph that does not answer, oc-mirror
 * or its whole container killed mid-copy (copies slowed by a proxy in front of the source).
 * Every test runs in a namespace that enforces the `restricted` Pod Security standard, so
 * every Job's pod template is checked against it.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, EventsV1Api } from "@kubernetes/client-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import { LABELS } from "../../src/job/names.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { buildImage, pushImage } from "../../devkit/images.ts";
import { adminKubeConfig, useNamespace, waitFor } from "../harness/kube.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  dockerConfigJson,
  mirrorJobs,
  startOperator,
  upstream,
  upstreamImageSet,
  upstreamSource,
  type RunningOperator,
  type SourceInputOptions,
} from "../harness/operator.ts";
import type { ImageSetParts } from "../../devkit/upstream-isc.ts";
import {
  proxiedUrl,
  proxyDir,
  startGraphProxy,
  startSourceProxy,
  type UpstreamProxy,
} from "../harness/upstream-proxy.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const events = kc.makeApiClient(EventsV1Api);
const mjs = mirrorJobs(kc);
const registry = inject("registry");

const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});

const podRunner = usePodRunner(ns);
/** What the pod runner does for pods of a MirrorJob (by name). */
const behaviours = podRunner.behaviours;
let operator: RunningOperator | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  await operator?.stop();
  operator = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** The three additional images of the upstream (multi-arch index, digest-pinned, tag-only). */
const THREE: ImageSetParts = { additionalImages: ["multiArch", "digestPinned", "tagOnly"] };

function spec(imageSet: unknown = upstreamImageSet(THREE), extra: Record<string, unknown> = {}) {
  return {
    imageSet: { inline: imageSet },
    source: upstreamSource(),
    registry: {
      // Each test mirrors under its own path: one test's images never answer for another's.
      url: `${registry.host}/${ns.name}`,
      pushSecretRef: { name: "push" },
      caBundleRef: { name: "registry-ca" },
    },
    // The run lifecycle only; applying the results is test/e2e/apply.test.ts's subject.
    apply: { mode: "None" },
    ...extra,
  };
}

async function setUp(sourceOptions: SourceInputOptions = {}): Promise<void> {
  await createPushSecret(kc, ns.name);
  await createRegistryCa(kc, ns.name);
  await createSourceInputs(kc, ns.name, sourceOptions);
}

async function jobsOf(name: string) {
  return (await batch.listNamespacedJob({ namespace: ns.name, labelSelector: `${LABELS.mirrorJob}=${name}` }))
    .items;
}

async function eventReasons(): Promise<string[]> {
  const list = await events.listNamespacedEvent({ namespace: ns.name });
  return list.items.map((e) => e.reason ?? "");
}

async function start(overrides = {}) {
  operator = await startOperator(kc, overrides);
  return operator;
}

/**
 * A proxy in front of the source registry whose blob downloads of `demo/busybox` (the tag-only
 * image) take `delayMs` each: the other images are copied while that one is still on its way.
 */
async function slowSource(delayMs: number): Promise<UpstreamProxy> {
  const proxy = await startSourceProxy(proxyDir(inject("harnessDir"), "slow-source"), upstream());
  cleanups.push(() => proxy.stop());
  proxy.server.inject({ method: "GET", path: /^\/v2\/demo\/busybox\/blobs\//, action: { delayMs } });
  return proxy;
}

/** The three additional images, named through the proxy. */
function threeVia(proxy: UpstreamProxy): unknown {
  const images = upstream().content.images;
  return {
    mirror: {
      additionalImages: [images.multiArch, images.digestPinned, images.tagOnly].map((i) => ({
        name: proxy.via(i.reference),
      })),
    },
  };
}

/** Resolves when the proxy has been asked for a blob of the slowed image (a copy is under way). */
function copyUnderWay(proxy: UpstreamProxy): Promise<true> {
  return waitFor(
    "a blob download of the slowed image",
    () => (proxy.server.log.some((r) => r.path.startsWith("/v2/demo/busybox/blobs/")) ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 20 },
  );
}

describe("a successful run", () => {
  it("reports progress while running and per-category counts at the end", async () => {
    await start();
    const proxy = await slowSource(6_000);
    await setUp({ hosts: [proxy.host], caPem: proxy.caPem });
    await mjs.create(ns.name, "ok", spec(threeVia(proxy)));

    const running = await mjs.waitFor(
      ns.name,
      "ok",
      "progress with copied images",
      (mj) => (mj.status?.currentRun?.progress?.copied ?? 0) > 0,
    );
    expect(running.status?.phase).toBe("Mirroring");
    expect(condition(running, "Reconciling")?.status).toBe("True");
    expect(condition(running, "PreflightPassed")?.status).toBe("True");
    // oc-mirror's own count ("images to copy 3"), and the slowed image still on its way.
    expect(running.status?.currentRun?.progress).toMatchObject({ total: 3, failed: 0 });
    expect(running.status?.currentRun?.progress?.copied).toBeLessThan(3);

    const done = await mjs.waitFor(
      ns.name,
      "ok",
      "Ready=True",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    expect(done.status?.phase).toBe("Succeeded");
    expect(condition(done, "Verified")).toMatchObject({ status: "True", reason: "AllImagesPresent" });
    expect(done.status?.lastRun?.verification).toMatchObject({ checked: 3, present: 3, missing: 0 });
    expect(condition(done, "Ready")).toMatchObject({
      status: "True",
      observedGeneration: done.metadata.generation,
    });
    expect(condition(done, "Reconciling")).toBeUndefined();
    expect(done.status?.lastRun).toMatchObject({
      result: "Succeeded",
      exitCode: 0,
      images: { additional: { copied: 3, total: 3, failed: 0 } },
    });
    expect(done.status?.lastSuccessfulRun?.id).toBe(done.status?.lastRun?.id);
    expect(done.status?.currentRun).toBeUndefined();
    expect(await eventReasons()).toEqual(expect.arrayContaining(["RunStarted", "RunSucceeded", "Verified"]));
    expect(await jobsOf("ok")).toHaveLength(1);
  });
});

describe("failures", () => {
  it("reports a partial failure (exit 8: an image missing in the source) with the failed image, then recovers on the next run", async () => {
    await start();
    await setUp();
    const up = upstream();
    // An image only this test names: it is missing until the test pushes it.
    const missing = `${up.source.host}/demo/missing-${ns.name}:1.0`;
    const imageSet = upstreamImageSet({ additionalImages: ["multiArch", "tagOnly"] });
    await mjs.create(
      ns.name,
      "partial",
      spec({
        ...imageSet,
        mirror: { additionalImages: [...(imageSet.mirror.additionalImages ?? []), { name: missing }] },
      }),
    );

    const failed = await mjs.waitFor(
      ns.name,
      "partial",
      "Mirrored=False",
      (mj) => condition(mj, "Mirrored")?.status === "False",
    );
    expect(condition(failed, "Mirrored")?.reason).toBe("RunPartiallyFailed");
    expect(failed.status?.lastRun).toMatchObject({
      result: "PartiallyFailed",
      exitCode: 8,
      images: { additional: { copied: 2, failed: 1, total: 3 } },
    });
    expect(failed.status?.lastRun?.failedCategories).toEqual(["additional"]);
    expect(failed.status?.lastRun?.failedImages).toEqual([
      { image: missing, error: expect.stringMatching(/manifest unknown/) as unknown },
    ]);
    expect(failed.status?.lastRun?.message).toMatch(/1 of 3 images failed .*The other images were mirrored/);
    expect(condition(failed, "Ready")?.status).toBe("False");
    expect(await eventReasons()).toContain("RunPartiallyFailed");
    // The image that failed to copy is missing from the registry, and verification says which.
    const verified = await mjs.waitFor(
      ns.name,
      "partial",
      "Verified=False",
      (mj) => condition(mj, "Verified")?.status === "False",
    );
    expect(condition(verified, "Verified")?.reason).toBe("ImagesMissing");
    expect(condition(verified, "Verified")?.message).toContain(`demo/missing-${ns.name}:1.0`);
    expect(verified.status?.lastRun?.verification).toMatchObject({ checked: 3, present: 2, missing: 1 });

    // The image appears in the source; the user asks for another run.
    const client = new RegistryClient({
      registry: up.source.host,
      credentials: { username: up.source.username, password: up.source.password },
      caBundle: up.source.caPem,
      timeoutMs: 10_000,
    });
    try {
      await pushImage(
        client,
        `demo/missing-${ns.name}`,
        "1.0",
        await buildImage({ name: `late ${ns.name}` }),
      );
    } finally {
      await client.close();
    }
    await mjs.patchSpec(ns.name, "partial", { runRequest: "retry-1" });
    const recovered = await mjs.waitFor(
      ns.name,
      "partial",
      "Ready=True after retry",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    expect(condition(recovered, "Verified")?.status).toBe("True");
    expect(recovered.status?.lastHandledRunRequest).toBe("retry-1");
    expect(recovered.status?.lastRun).toMatchObject({
      trigger: "RunRequest",
      result: "Succeeded",
      images: { additional: { copied: 3, failed: 0, total: 3 } },
    });
    expect(recovered.status?.lastRun?.failedImages).toEqual([]);
    expect(condition(recovered, "Ready")?.status).toBe("True");
  });

  it("reports a total failure (the update graph does not answer) and is not stuck", async () => {
    await start();
    const up = upstream();
    const proxy = await startGraphProxy(proxyDir(inject("harnessDir"), "graph"), up);
    cleanups.push(() => proxy.stop());
    proxy.server.inject({ action: { status: 503, body: "unavailable\n" } });
    await setUp({ caPem: proxy.caPem });
    const source = upstreamSource() as { release: Record<string, unknown> };
    await mjs.create(
      ns.name,
      "broken",
      spec(upstreamImageSet({ release: { minVersion: "4.19.3", maxVersion: "4.19.3", graph: false } }), {
        source: { ...source, release: { ...source.release, updateGraphURL: proxiedUrl(proxy, up.graphUrl) } },
      }),
    );
    const failed = await mjs.waitFor(
      ns.name,
      "broken",
      "RunFailed",
      (mj) => condition(mj, "Mirrored")?.reason === "RunFailed",
    );
    expect(failed.status?.phase).toBe("Failed");
    expect(failed.status?.lastRun).toMatchObject({ result: "Failed", exitCode: 2 });
    expect(failed.status?.lastRun?.message).toMatch(/failed/);
    // oc-mirror's own reason (the channel's graph did not answer), and that nothing was copied.
    expect(failed.status?.lastRun?.message).toMatch(
      /could not collect the release images \(exit code 2\) and copied nothing: .*no release images found/,
    );
    expect(proxy.server.log.some((r) => r.path.startsWith("/api/upgrades_info/v1/graph"))).toBe(true);
    expect(await eventReasons()).toContain("RunFailed");
    // A failed run has nothing to verify.
    expect(failed.status?.lastRun?.verification).toBeUndefined();

    proxy.server.reset();
    await mjs.patchSpec(ns.name, "broken", { runRequest: "again" });
    const fixed = await mjs.waitFor(
      ns.name,
      "broken",
      "Mirrored=True",
      (mj) => condition(mj, "Mirrored")?.status === "True",
    );
    expect(fixed.status?.lastRun?.images?.release?.copied).toBeGreaterThan(0);
  });

  it("reports oc-mirror killed mid-copy (exit 137 recorded by the wrapper) as a crash", async () => {
    await start();
    const proxy = await slowSource(4_000);
    await setUp({ hosts: [proxy.host], caPem: proxy.caPem });
    behaviours.set("fatal", {
      beforeOcMirror: (pass) => {
        if (pass.pass !== 2) return;
        void copyUnderWay(proxy).then(() => {
          pass.kill("oc-mirror");
        });
      },
    });
    await mjs.create(ns.name, "fatal", spec(threeVia(proxy)));
    const crashed = await mjs.waitFor(
      ns.name,
      "fatal",
      "RunCrashed",
      (mj) => condition(mj, "Mirrored")?.reason === "RunCrashed",
    );
    expect(crashed.status?.lastRun).toMatchObject({ result: "Crashed", exitCode: 137 });
    expect(crashed.status?.lastRun?.message).toMatch(/killed by SIGKILL/);
    expect(crashed.status?.lastRun?.verification).toBeUndefined();
    expect(await eventReasons()).toContain("RunCrashed");
  });

  it("reports a killed oc-mirror container (no exit code, stale heartbeat) as a crash", async () => {
    await start();
    const proxy = await slowSource(4_000);
    await setUp({ hosts: [proxy.host], caPem: proxy.caPem });
    behaviours.set("killed", {
      beforeOcMirror: (pass) => {
        if (pass.pass !== 2) return;
        void copyUnderWay(proxy).then(() => {
          pass.kill("container");
        });
      },
    });
    await mjs.create(ns.name, "killed", spec(threeVia(proxy)));
    const crashed = await mjs.waitFor(
      ns.name,
      "killed",
      "RunCrashed",
      (mj) => condition(mj, "Mirrored")?.reason === "RunCrashed",
      90_000,
    );
    expect(crashed.status?.lastRun?.message).toMatch(/without an exit code/);
    expect(crashed.status?.lastRun?.exitCode).toBeUndefined();
    expect(await eventReasons()).toContain("RunCrashed");

    behaviours.delete("killed");
    proxy.server.reset();
    await mjs.patchSpec(ns.name, "killed", { runRequest: "after-crash" });
    const recovered = await mjs.waitFor(
      ns.name,
      "killed",
      "Mirrored=True",
      (mj) => condition(mj, "Mirrored")?.status === "True",
    );
    expect(recovered.status?.lastRun?.images).toEqual({ additional: { copied: 3, failed: 0, total: 3 } });
  });
});

describe("preflight", () => {
  async function expectPreflightFailure(name: string, reason: string, message: RegExp) {
    const mj = await mjs.waitFor(
      ns.name,
      name,
      `PreflightPassed=False (${reason})`,
      (m) => condition(m, "PreflightPassed")?.status === "False",
    );
    expect(condition(mj, "PreflightPassed")).toMatchObject({ reason });
    expect(condition(mj, "PreflightPassed")?.message).toMatch(message);
    expect(condition(mj, "Stalled")?.status).toBe("True");
    expect(condition(mj, "Ready")?.status).toBe("False");
    expect(mj.status?.phase).toBe("Preflight");
    expect(await jobsOf(name)).toEqual([]);
    expect(await eventReasons()).toContain("PreflightFailed");
  }

  it("names a missing Secret, then starts once it exists", async () => {
    await start();
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    await mjs.create(ns.name, "nosecret", spec());
    await expectPreflightFailure(
      "nosecret",
      "SecretNotFound",
      /Secret push \(spec.registry.pushSecretRef\) not found/,
    );
    await createPushSecret(kc, ns.name);
    await mjs.waitFor(
      ns.name,
      "nosecret",
      "PreflightPassed=True",
      (m) => condition(m, "PreflightPassed")?.status === "True",
    );
  });

  it("names a malformed dockerconfigjson", async () => {
    await start();
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    // The API server refuses bad JSON in kubernetes.io/dockerconfigjson Secrets; an Opaque one gets through.
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: "push" }, type: "Opaque", stringData: { ".dockerconfigjson": "{not json" } },
    });
    await mjs.create(ns.name, "malformed", spec());
    await expectPreflightFailure(
      "malformed",
      "InvalidSecret",
      /Secret push \(spec.registry.pushSecretRef\): .dockerconfigjson is not valid JSON/,
    );
  });

  it("names an unreachable registry", async () => {
    await start();
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    await createPushSecret(kc, ns.name, "push", dockerConfigJson("127.0.0.1:1", "u", "p"));
    await mjs.create(ns.name, "unreachable", {
      ...spec(),
      registry: { url: "127.0.0.1:1/mirror", pushSecretRef: { name: "push" } },
    });
    await expectPreflightFailure(
      "unreachable",
      "RegistryUnreachable",
      /127.0.0.1:1.*unreachable.*connection refused/,
    );
  });

  it("names rejected credentials", async () => {
    await start();
    await createRegistryCa(kc, ns.name);
    await createSourceInputs(kc, ns.name);
    await createPushSecret(
      kc,
      ns.name,
      "push",
      dockerConfigJson(registry.host, registry.username, "wrong-password"),
    );
    await mjs.create(ns.name, "badauth", spec());
    await expectPreflightFailure(
      "badauth",
      "RegistryAuthFailed",
      /rejected the credentials.*spec.registry.pushSecretRef/,
    );
  });
});

describe("operator restarts and replicas", () => {
  it("adopts the running Job after a restart instead of starting another", async () => {
    await start();
    // The run's pod waits until the operator has been restarted (bounded), then mirrors.
    let restarted: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      restarted = resolve;
    });
    behaviours.set("adopt", {
      beforeStart: () =>
        Promise.race([gate, new Promise<void>((resolve) => setTimeout(resolve, 60_000).unref())]),
    });
    await setUp();
    await mjs.create(ns.name, "adopt", spec());
    await waitFor(
      "the run's pod to start",
      () => (podRunner.runner().started.some((p) => p.startsWith(`${ns.name}/adopt-`)) ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
    await operator?.stop(); // as if killed mid-run
    operator = undefined;
    await start();
    restarted();
    const done = await mjs.waitFor(
      ns.name,
      "adopt",
      "Mirrored=True",
      (mj) => condition(mj, "Mirrored")?.status === "True",
    );
    expect(await jobsOf("adopt")).toHaveLength(1);
    expect(done.status?.lastRun?.result).toBe("Succeeded");
    expect(done.status?.lastRun?.images).toEqual({ additional: { copied: 3, failed: 0, total: 3 } });
  });

  it("with two replicas, only the leader creates Jobs", async () => {
    const lease = `lease-${ns.name}`;
    const a = await startOperator(kc, {
      leaderElection: true,
      leaseName: lease,
      namespace: ns.name,
      identity: "replica-a",
    });
    const b = await startOperator(kc, {
      leaderElection: true,
      leaseName: lease,
      namespace: ns.name,
      identity: "replica-b",
    });
    try {
      await waitFor("a leader", () => (a.isLeader() || b.isLeader() ? true : undefined), {
        timeoutMs: 30_000,
      });
      expect(a.isLeader() && b.isLeader()).toBe(false);
      await setUp();
      await mjs.create(ns.name, "replicas", spec());
      await mjs.waitFor(
        ns.name,
        "replicas",
        "Mirrored=True",
        (mj) => condition(mj, "Mirrored")?.status === "True",
      );
      expect(await jobsOf("replicas")).toHaveLength(1);
      const leader = a.isLeader() ? a : b;
      const standby = a.isLeader() ? b : a;
      expect(leader.logs.join("")).toMatch(/"msg":"reconciled"/);
      expect(standby.logs.join("")).not.toMatch(/"msg":"reconciled"/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe("secrets", () => {
  it("never appear in logs, Events, status or the Job", async () => {
    const op = await start();
    await setUp();
    // A partial failure: oc-mirror's errors and the reporter's failed images are in the haystacks too.
    await mjs.create(
      ns.name,
      "secret-scan",
      spec(upstreamImageSet({ additionalImages: ["multiArch", "missing"] })),
    );
    const mj = await mjs.waitFor(
      ns.name,
      "secret-scan",
      "the run to end",
      (m) => m.status?.lastRun !== undefined,
    );
    expect(mj.status?.lastRun?.result).toBe("PartiallyFailed");
    const up = upstream();
    const secrets: [string, string][] = [
      ["the target password", registry.password],
      ["the target base64 auth", Buffer.from(`${registry.username}:${registry.password}`).toString("base64")],
      ["the source password", up.source.password],
      [
        "the source base64 auth",
        Buffer.from(`${up.source.username}:${up.source.password}`).toString("base64"),
      ],
    ];
    const jobs = await jobsOf("secret-scan");
    const pods = await core.listNamespacedPod({ namespace: ns.name });
    const evs = await events.listNamespacedEvent({ namespace: ns.name });
    const podLogs = readdirSync(join(podRunner.root(), "logs"))
      .filter((f) => f.startsWith(ns.name))
      .map((f) => readFileSync(join(podRunner.root(), "logs", f), "utf8"));
    const haystacks: [string, string][] = [
      ["operator logs", op.logs.join("")],
      ["pod logs", podLogs.join("")],
      ["status", JSON.stringify(mj.status)],
      ["events", JSON.stringify(evs.items)],
      ["jobs", JSON.stringify(jobs)],
      ["pods", JSON.stringify(pods.items)],
    ];
    expect(podLogs.length).toBeGreaterThan(0);
    // The real oc-mirror's output is among them.
    expect(podLogs.join("")).toMatch(/Hello, welcome to oc-mirror/);
    for (const [what, text] of haystacks) {
      for (const [secret, value] of secrets) {
        expect(text.includes(value), `${what} contain ${secret}`).toBe(false);
      }
    }
  });
});
