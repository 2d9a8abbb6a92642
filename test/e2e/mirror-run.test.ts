/**
 * The mirror run end to end on the real control plane: `create MirrorJob` leads to a
 * preflighted Job whose pod (played by the test pod runner: the real wrapper script, the
 * oc-mirror fixture program and the real reporter) reports progress and a result, and the
 * status and Events say what happened. Every test runs in a namespace that enforces the
 * `restricted` Pod Security standard, so every Job's pod template is checked against it.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, EventsV1Api } from "@kubernetes/client-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import { LABELS } from "../../src/job/names.ts";
import { adminKubeConfig, useNamespace, waitFor } from "../harness/kube.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  dockerConfigJson,
  mirrorJobs,
  startOperator,
  type RunningOperator,
} from "../harness/operator.ts";
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

afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  await operator?.stop();
  operator = undefined;
});

const IMAGES = ["quay.io/example/alpha:1.0", "quay.io/example/beta:2.0", "quay.io/example/gamma:3.0"];

function spec(
  extra: Record<string, unknown> = {},
  mirror: Record<string, unknown> = { additionalImages: IMAGES.map((name) => ({ name })) },
) {
  return {
    imageSet: { inline: { mirror } },
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

describe("a successful run", () => {
  it("reports progress while running and per-category counts at the end", async () => {
    await start();
    behaviours.set("ok", { scenario: "success", delayMs: 700 });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await mjs.create(ns.name, "ok", spec());

    const running = await mjs.waitFor(
      ns.name,
      "ok",
      "progress with copied images",
      (mj) => (mj.status?.currentRun?.progress?.copied ?? 0) > 0,
    );
    expect(running.status?.phase).toBe("Mirroring");
    expect(condition(running, "Reconciling")?.status).toBe("True");
    expect(condition(running, "PreflightPassed")?.status).toBe("True");

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
  it("reports a partial failure (exit 12) with the failed images, then recovers on the next run", async () => {
    await start();
    behaviours.set("partial", { scenario: "partial" });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    const mirror = {
      additionalImages: IMAGES.map((name) => ({ name })),
      operators: [
        { catalog: "registry.example.com/redhat/redhat-operator-index:v4.19", packages: [{ name: "foo" }] },
      ],
    };
    await mjs.create(ns.name, "partial", spec({}, mirror));

    const failed = await mjs.waitFor(
      ns.name,
      "partial",
      "Mirrored=False",
      (mj) => condition(mj, "Mirrored")?.status === "False",
    );
    expect(condition(failed, "Mirrored")?.reason).toBe("RunPartiallyFailed");
    expect(failed.status?.lastRun).toMatchObject({ result: "PartiallyFailed", exitCode: 12 });
    expect(failed.status?.lastRun?.failedCategories).toEqual(["operator", "additional"]);
    expect(failed.status?.lastRun?.failedImages?.map((f) => f.image)).toContain(IMAGES[2]);
    expect(condition(failed, "Ready")?.status).toBe("False");
    expect(await eventReasons()).toContain("RunPartiallyFailed");
    // The images that failed to copy are missing from the registry, and verification says which.
    const verified = await mjs.waitFor(
      ns.name,
      "partial",
      "Verified=False",
      (mj) => condition(mj, "Verified")?.status === "False",
    );
    expect(condition(verified, "Verified")?.reason).toBe("ImagesMissing");
    expect(condition(verified, "Verified")?.message).toContain("example/gamma:3.0");

    behaviours.set("partial", { scenario: "success" });
    await mjs.patchSpec(ns.name, "partial", { runRequest: "retry-1" });
    const recovered = await mjs.waitFor(
      ns.name,
      "partial",
      "Ready=True after retry",
      (mj) => condition(mj, "Ready")?.status === "True",
    );
    expect(condition(recovered, "Verified")?.status).toBe("True");
    expect(recovered.status?.lastHandledRunRequest).toBe("retry-1");
    expect(recovered.status?.lastRun?.trigger).toBe("RunRequest");
    expect(condition(recovered, "Ready")?.status).toBe("True");
  });

  it("reports a total failure and is not stuck", async () => {
    await start();
    behaviours.set("broken", { scenario: "failure" });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await mjs.create(ns.name, "broken", spec());
    const failed = await mjs.waitFor(
      ns.name,
      "broken",
      "RunFailed",
      (mj) => condition(mj, "Mirrored")?.reason === "RunFailed",
    );
    expect(failed.status?.phase).toBe("Failed");
    expect(failed.status?.lastRun?.message).toMatch(/failed/);
    expect(await eventReasons()).toContain("RunFailed");

    behaviours.set("broken", { scenario: "success" });
    await mjs.patchSpec(ns.name, "broken", { runRequest: "again" });
    await mjs.waitFor(
      ns.name,
      "broken",
      "Mirrored=True",
      (mj) => condition(mj, "Mirrored")?.status === "True",
    );
  });

  it("reports oc-mirror's fatal exit (255) as a crash", async () => {
    await start();
    behaviours.set("fatal", { scenario: "crash" });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await mjs.create(ns.name, "fatal", spec());
    const crashed = await mjs.waitFor(
      ns.name,
      "fatal",
      "RunCrashed",
      (mj) => condition(mj, "Mirrored")?.reason === "RunCrashed",
    );
    expect(crashed.status?.lastRun).toMatchObject({ result: "Crashed", exitCode: 255 });
  });

  it("reports a killed oc-mirror container (no exit code, stale heartbeat) as a crash", async () => {
    await start();
    behaviours.set("killed", { scenario: "success", delayMs: 2_000, killAfterMs: 1_500 });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await mjs.create(ns.name, "killed", spec());
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

    behaviours.set("killed", { scenario: "success" });
    await mjs.patchSpec(ns.name, "killed", { runRequest: "after-crash" });
    await mjs.waitFor(
      ns.name,
      "killed",
      "Mirrored=True",
      (mj) => condition(mj, "Mirrored")?.status === "True",
    );
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
    behaviours.set("adopt", { scenario: "success", delayMs: 1_000 });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
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
    const done = await mjs.waitFor(
      ns.name,
      "adopt",
      "Mirrored=True",
      (mj) => condition(mj, "Mirrored")?.status === "True",
    );
    expect(await jobsOf("adopt")).toHaveLength(1);
    expect(done.status?.lastRun?.result).toBe("Succeeded");
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
      behaviours.set("replicas", { scenario: "success" });
      await createPushSecret(kc, ns.name);
      await createRegistryCa(kc, ns.name);
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
    behaviours.set("secret-scan", { scenario: "partial" });
    await createPushSecret(kc, ns.name);
    await createRegistryCa(kc, ns.name);
    await mjs.create(ns.name, "secret-scan", spec());
    const mj = await mjs.waitFor(
      ns.name,
      "secret-scan",
      "the run to end",
      (m) => m.status?.lastRun !== undefined,
    );
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString("base64");
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
    for (const [what, text] of haystacks) {
      expect(text.includes(registry.password), `${what} contains the password`).toBe(false);
      expect(text.includes(auth), `${what} contains the base64 auth`).toBe(false);
    }
  });
});
