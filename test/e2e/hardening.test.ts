/**
 * What an outside test of the operator broke, each case as a user meets it: a registry
 * check that keeps failing must back off (and say when it tries again), an object the API
 * server refuses must show up as a condition and one Event, long MirrorJob names must
 * work, a finished run's identity must be able to change nothing, Events must not repeat,
 * and a cache volume can outlive its MirrorJob.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  Watch,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import { LABELS, mirrorJobNames, runNames } from "../../src/job/names.ts";
import { startFaultServer, type FaultServer } from "../harness/fault-server.ts";
import { adminKubeConfig, isApiStatus, useNamespace, waitFor } from "../harness/kube.ts";
import {
  condition,
  createPushSecret,
  createRegistryCa,
  createSourceInputs,
  mirrorJobs,
  startOperator,
  type MirrorJobObject,
  type RunningOperator,
  upstreamImageSet,
  upstreamSource,
} from "../harness/operator.ts";
import { createCertificateAuthority, type CertificateAuthority } from "../../devkit/pki.ts";
import { freePort } from "../../devkit/ports.ts";
import { usePodRunner } from "../harness/use-pod-runner.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const events = kc.makeApiClient(EventsV1Api);
const mjs = mirrorJobs(kc);
const registry = inject("registry");

const ns = useNamespace({
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
});
const podRunner = usePodRunner(ns);
let operator: RunningOperator | undefined;

afterEach(async () => {
  if (process.env.DEBUG_OPERATOR) console.log(operator?.logs.join("").slice(-20000));
  await operator?.stop();
  operator = undefined;
});

function spec(extra: Record<string, unknown> = {}) {
  return {
    imageSet: { inline: upstreamImageSet({ additionalImages: ["multiArch", "tagOnly"] }) },
    source: upstreamSource(),
    registry: {
      url: `${registry.host}/${ns.name}`,
      pushSecretRef: { name: "push" },
      caBundleRef: { name: "registry-ca" },
    },
    apply: { mode: "None" },
    ...extra,
  };
}

async function setUp(): Promise<void> {
  operator = await startOperator(kc);
  await createPushSecret(kc, ns.name);
  await createRegistryCa(kc, ns.name);
  await createSourceInputs(kc, ns.name);
}

async function eventsOf(name: string, reason?: string) {
  const list = await events.listNamespacedEvent({ namespace: ns.name });
  return list.items.filter(
    (e) => e.regarding?.name === name && (reason === undefined || e.reason === reason),
  );
}

/** Counts the MirrorJob's versions (each status write is one) until `stop()`. */
async function countWrites(name: string): Promise<{ count: () => number; stop: () => void }> {
  let count = 0;
  const req = await new Watch(kc).watch(
    `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/${PLURAL}`,
    { fieldSelector: `metadata.name=${name}` },
    (phase) => {
      if (phase === "MODIFIED") count++;
    },
    () => undefined,
  );
  return {
    count: () => count,
    stop: () => {
      req.abort();
    },
  };
}

describe("a registry check that keeps failing", () => {
  let closedHost = "";
  let ca: CertificateAuthority;
  let wrongPassword: FaultServer;
  let resetting: FaultServer;
  beforeAll(async () => {
    const dir = join(inject("harnessDir"), `hardening-${randomBytes(3).toString("hex")}`);
    mkdirSync(dir, { recursive: true });
    ca = createCertificateAuthority(dir, "fault-ca");
    closedHost = `127.0.0.1:${String(await freePort())}`; // nothing listens there
    // Both forward to the real registry; `resetting` drops every connection (unreachable).
    wrongPassword = await startFaultServer({
      dir,
      name: "wrong-password",
      ca,
      upstream: { host: registry.host, caPem: registry.caPem },
    });
    resetting = await startFaultServer({
      dir,
      name: "resetting",
      ca,
      upstream: { host: registry.host, caPem: registry.caPem },
    });
  });
  afterAll(async () => {
    await wrongPassword.stop();
    await resetting.stop();
  });

  it("backs off (at most 6 registry requests and 10 status writes a minute), says when it tries next, and starts at once when fixed", async () => {
    resetting.inject({ action: "reset" });
    operator = await startOperator(kc);
    const auths = {
      auths: {
        [wrongPassword.host]: { auth: Buffer.from(`${registry.username}:wrong`).toString("base64") },
        [resetting.host]: {
          auth: Buffer.from(`${registry.username}:${registry.password}`).toString("base64"),
        },
        [closedHost]: { auth: Buffer.from(`${registry.username}:${registry.password}`).toString("base64") },
        [registry.host]: {
          auth: Buffer.from(`${registry.username}:${registry.password}`).toString("base64"),
        },
      },
    };
    await createPushSecret(kc, ns.name, "push", JSON.stringify(auths));
    await createSourceInputs(kc, ns.name);
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: "fault-ca" }, data: { "ca-bundle.crt": `${ca.pem}${registry.caPem}` } },
    });
    const failing = {
      "wrong-password": wrongPassword.host,
      unreachable: resetting.host,
      "closed-port": closedHost,
    };
    const writes = new Map<string, Awaited<ReturnType<typeof countWrites>>>();
    for (const [name, host] of Object.entries(failing)) {
      writes.set(name, await countWrites(name));
      await mjs.create(
        ns.name,
        name,
        spec({
          registry: {
            url: `${host}/${ns.name}`,
            pushSecretRef: { name: "push" },
            caBundleRef: { name: "fault-ca" },
          },
        }),
      );
    }
    await sleep(60_000);
    const counts = Object.fromEntries([...writes].map(([name, w]) => [name, w.count()]));
    for (const w of writes.values()) w.stop();
    const requests = { "wrong-password": wrongPassword.log.length, unreachable: resetting.log.length };
    console.log("in the first minute: registry requests", requests, "status writes", counts);
    expect(requests["wrong-password"]).toBeGreaterThan(0);
    expect(requests["wrong-password"]).toBeLessThanOrEqual(6);
    expect(requests.unreachable).toBeGreaterThan(0);
    expect(requests.unreachable).toBeLessThanOrEqual(6);
    for (const name of Object.keys(failing)) expect(counts[name]).toBeLessThanOrEqual(10);

    const reasons = {
      "wrong-password": "RegistryAuthFailed",
      unreachable: "RegistryUnreachable",
      "closed-port": "RegistryUnreachable",
    };
    for (const [name, reason] of Object.entries(reasons)) {
      const mj = await mjs.get(ns.name, name);
      expect(condition(mj, "PreflightPassed")).toMatchObject({ status: "False", reason });
      expect(condition(mj, "Stalled")?.status).toBe("True");
      const next = Date.parse(mj.status?.nextRetryTime ?? "");
      expect(next).toBeGreaterThan(Date.now() - 1_000);
      expect(next).toBeLessThan(Date.now() + 5 * 60_000 + 1_000);
      expect(await eventsOf(name, "PreflightFailed")).toHaveLength(1);
    }

    // Fixing the input: a Secret change or a spec change is acted on at once, not after the backoff.
    const fixedAt = Date.now();
    const right = { ...auths.auths, [wrongPassword.host]: auths.auths[registry.host] };
    await core.patchNamespacedSecret(
      {
        namespace: ns.name,
        name: "push",
        body: {
          data: { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: right })).toString("base64") },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await mjs.patchSpec(ns.name, "closed-port", {
      registry: { url: `${registry.host}/${ns.name}` },
    });
    for (const name of ["wrong-password", "closed-port"]) {
      await mjs.waitFor(ns.name, name, "a run started", (mj) => mj.status?.currentRun !== undefined, 15_000);
    }
    console.log(`runs started ${String(Date.now() - fixedAt)} ms after the fixes`);
  }, 150_000);
});

describe("objects the API server refuses", () => {
  async function expectRefusal(name: string, field: RegExp) {
    const created = Date.now();
    const mj = await mjs.waitFor(
      ns.name,
      name,
      "Stalled=True (ObjectRejected)",
      (m) => condition(m, "Stalled")?.reason === "ObjectRejected",
      10_000,
    );
    const message = condition(mj, "Stalled")?.message ?? "";
    expect(message).toMatch(field);
    expect(message).toMatch(/the API server refused/);
    expect(condition(mj, "Ready")).toMatchObject({ status: "False", reason: "ObjectRejected" });
    expect(mj.status?.phase).toBe("Failed");
    expect(mj.status?.currentRun).toBeUndefined();
    expect(mj.status?.nextRetryTime).toBeDefined();
    expect(await jobsOf(name)).toEqual([]);
    const warnings = await eventsOf(name, "ObjectRejected");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.type).toBe("Warning");
    expect(warnings[0]?.note).toMatch(field);
    console.log(`${name}: condition and Event after ${String(Date.now() - created)} ms`);
    return mj;
  }

  it("a cache size of 0: a condition naming spec.storage.cache.size and one Warning Event; fixed, the run starts", async () => {
    await setUp();
    await mjs.create(ns.name, "tiny-cache", spec({ storage: { cache: { size: "0" } } }));
    const refused = await expectRefusal("tiny-cache", /spec\.storage\.cache\.size/);
    // The next try finds the same refusal: no second Event.
    const next = Date.parse(refused.status?.nextRetryTime ?? "");
    await sleep(Math.max(0, next - Date.now()) + 2_000);
    expect(await eventsOf("tiny-cache", "ObjectRejected")).toHaveLength(1);

    await mjs.patchSpec(ns.name, "tiny-cache", { storage: { cache: { size: "1Gi" } } });
    await mjs.waitFor(ns.name, "tiny-cache", "Ready=True", (m) => condition(m, "Ready")?.status === "True");
  }, 90_000);

  it("resource requests above their limits: a condition naming spec.mirror.resources", async () => {
    await setUp();
    await mjs.create(
      ns.name,
      "greedy",
      spec({ mirror: { resources: { requests: { memory: "2Gi" }, limits: { memory: "1Gi" } } } }),
    );
    await expectRefusal("greedy", /spec\.mirror\.resources/);
  });
});

async function jobsOf(name: string) {
  return (
    await batch.listNamespacedJob({ namespace: ns.name, labelSelector: LABELS.mirrorJob })
  ).items.filter((j) => j.metadata?.ownerReferences?.some((r) => r.name === name));
}

describe("MirrorJob names up to 253 characters", () => {
  it("runs names of 63, 64 and 253 characters to Succeeded and cleans up on deletion", async () => {
    await setUp();
    const names = [63, 64, 253].map((length) => {
      const head = `n${String(length)}-`;
      // A DNS subdomain: dot-separated labels.
      const body = Array.from({ length: length - head.length }, (_, i) => (i % 40 === 39 ? "." : "x")).join(
        "",
      );
      return `${head}${body.replace(/\.$/, "x")}`;
    });
    for (const name of names) expect(name.length).toBeGreaterThanOrEqual(63);
    for (const name of names) await mjs.create(ns.name, name, spec());
    for (const name of names) {
      const done = await mjs.waitFor(
        ns.name,
        name,
        "Ready=True",
        (m) => condition(m, "Ready")?.status === "True",
      );
      expect(done.status?.lastRun?.result).toBe("Succeeded");
      expect(await jobsOf(name)).toHaveLength(1);
      expect((await eventsOf(name, "RunSucceeded")).length).toBe(1);
    }
    for (const name of names) await mjs.delete(ns.name, name);
    await waitFor(
      "the MirrorJobs and their Jobs to be gone",
      async () => {
        for (const name of names) {
          const gone = await mjs.get(ns.name, name).then(
            () => false,
            (err: unknown) => isApiStatus(err, 404),
          );
          if (!gone || (await jobsOf(name)).length > 0) return undefined;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 120_000);
});

/** A client acting as the run's ServiceAccount (impersonation: RBAC is checked for real). */
function asServiceAccount(serviceAccount: string): KubeConfig {
  const admin = adminKubeConfig();
  const cluster = admin.getCurrentCluster();
  const user = admin.getCurrentUser();
  if (cluster === null || user === null) throw new Error("no admin context");
  const kc2 = adminKubeConfig();
  kc2.loadFromOptions({
    clusters: [cluster],
    users: [{ ...user, name: "sa", impersonateUser: `system:serviceaccount:${ns.name}:${serviceAccount}` }],
    contexts: [{ name: "sa", cluster: cluster.name, user: "sa" }],
    currentContext: "sa",
  });
  return kc2;
}

describe("a finished run's identity", () => {
  it("can change no result once its run ended; only the reporter container has a token", async () => {
    await setUp();
    await mjs.create(ns.name, "sealed", spec());
    const first = await mjs.waitFor(
      ns.name,
      "sealed",
      "Ready=True",
      (m) => condition(m, "Ready")?.status === "True",
    );
    const firstRun = first.status?.lastRun?.id ?? "";
    const names = runNames("sealed", firstRun);
    const sa = mirrorJobNames("sealed").serviceAccount;
    const asRun = asServiceAccount(sa).makeApiClient(CoreV1Api);
    const tamper = (name: string) =>
      asRun.patchNamespacedConfigMap(
        { namespace: ns.name, name, body: { data: { "result.json": "{}" } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );

    const sealed = await core.readNamespacedConfigMap({ namespace: ns.name, name: names.result });
    expect(sealed.immutable).toBe(true);
    await expect(rbac.readNamespacedRole({ namespace: ns.name, name: names.role })).rejects.toSatisfy(
      (err: unknown) => isApiStatus(err, 404),
    );
    await expect(tamper(names.result)).rejects.toSatisfy((err: unknown) => isApiStatus(err, 403));

    // The pod: no token by default; the reporter alone mounts one.
    const [job] = await jobsOf("sealed");
    const pod = job?.spec?.template.spec;
    expect(pod?.automountServiceAccountToken).toBe(false);
    const tokenVolumes = new Set(
      (pod?.volumes ?? [])
        .filter((v) => v.projected?.sources?.some((s) => s.serviceAccountToken))
        .map((v) => v.name),
    );
    const withToken = [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]
      .filter((c) => c.volumeMounts?.some((m) => tokenVolumes.has(m.name)))
      .map((c) => c.name);
    expect(withToken).toEqual(["reporter"]);

    // A later run, while it runs, may write its own result and still not the earlier one.
    // The second run's pod waits before oc-mirror starts: the run is in progress meanwhile.
    podRunner.behaviours.set("sealed", { beforeStart: () => sleep(3_000) });
    await mjs.patchSpec(ns.name, "sealed", { runRequest: "second" });
    const running = await mjs.waitFor(
      ns.name,
      "sealed",
      "second run",
      (m) => m.status?.currentRun?.trigger === "RunRequest",
    );
    const second = runNames("sealed", running.status?.currentRun?.id ?? "");
    await waitFor(
      "the second run's Role",
      async () =>
        await rbac.readNamespacedRoleBinding({ namespace: ns.name, name: second.role }).then(
          () => true,
          () => undefined,
        ),
      { timeoutMs: 10_000 },
    );
    await asRun.readNamespacedConfigMap({ namespace: ns.name, name: second.result }); // its own: allowed
    await expect(tamper(names.result)).rejects.toSatisfy((err: unknown) => isApiStatus(err, 403));
    await mjs.waitFor(
      ns.name,
      "sealed",
      "the second run ended",
      (m) => m.status?.currentRun === undefined && m.status?.lastRun?.trigger === "RunRequest",
    );
    await expect(tamper(second.result)).rejects.toSatisfy((err: unknown) => isApiStatus(err, 403));
  }, 90_000);
});

describe("Events", () => {
  it("records each fact once, also when status writes conflict", async () => {
    await setUp();
    await mjs.create(ns.name, "busy", spec());
    // Another writer changes the object all through the run's start: status writes conflict.
    const custom = { group: GROUP, version: VERSION, plural: PLURAL };
    const api = kc.makeApiClient(CustomObjectsApi);
    const until = Date.now() + 4_000;
    for (let i = 0; Date.now() < until; i++) {
      await api.patchNamespacedCustomObject(
        {
          ...custom,
          namespace: ns.name,
          name: "busy",
          body: { metadata: { annotations: { poke: String(i) } } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await sleep(20);
    }
    await mjs.waitFor(ns.name, "busy", "Ready=True", (m) => condition(m, "Ready")?.status === "True");
    const reasons = (await eventsOf("busy")).map((e) => e.reason);
    console.log("Events:", reasons);
    for (const reason of ["RunStarted", "RunSucceeded", "Verified"]) {
      expect(reasons.filter((r) => r === reason)).toHaveLength(1);
    }
  });
});

describe("storage.cache.deletionPolicy", () => {
  it("Retain keeps the cache volume across delete and re-create, and the new run mounts it", async () => {
    await setUp();
    const names = mirrorJobNames("keeper");
    await mjs.create(ns.name, "keeper", spec());
    await mjs.waitFor(ns.name, "keeper", "Ready=True", (m) => condition(m, "Ready")?.status === "True");
    const cache = await core.readNamespacedPersistentVolumeClaim({ namespace: ns.name, name: names.cache });
    expect(cache.metadata?.ownerReferences ?? []).toEqual([]);
    const workspace = await core.readNamespacedPersistentVolumeClaim({
      namespace: ns.name,
      name: names.workspace,
    });
    expect(workspace.metadata?.ownerReferences?.[0]?.name).toBe("keeper");

    await mjs.delete(ns.name, "keeper");
    await waitFor(
      "keeper and its workspace volume to be gone",
      async () => {
        const mjGone = await mjs.get(ns.name, "keeper").then(
          () => false,
          (err: unknown) => isApiStatus(err, 404),
        );
        const wsGone = await core
          .readNamespacedPersistentVolumeClaim({ namespace: ns.name, name: names.workspace })
          .then(
            (pvc) => pvc.metadata?.deletionTimestamp !== undefined,
            (err: unknown) => isApiStatus(err, 404),
          );
        return mjGone && wsGone ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const kept = await core.readNamespacedPersistentVolumeClaim({ namespace: ns.name, name: names.cache });
    expect(kept.metadata?.uid).toBe(cache.metadata?.uid);

    await mjs.create(ns.name, "keeper", spec());
    const again = await mjs.waitFor(
      ns.name,
      "keeper",
      "Ready=True",
      (m: MirrorJobObject) => condition(m, "Ready")?.status === "True",
    );
    const [job] = await jobsOf("keeper");
    const claims = job?.spec?.template.spec?.volumes?.map((v) => v.persistentVolumeClaim?.claimName);
    expect(claims).toContain(names.cache);
    const reused = await core.readNamespacedPersistentVolumeClaim({ namespace: ns.name, name: names.cache });
    expect(reused.metadata?.uid).toBe(cache.metadata?.uid);
    expect(again.status?.lastRun?.result).toBe("Succeeded");
  }, 90_000);
});
