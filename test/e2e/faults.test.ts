/**
 * The faults a hub sees (issue 16), on a control plane of this file's own (the API server is
 * restarted and etcd compacted here, which must not disturb other files' tests), with the
 * operator as a real child process (`node src/cli/main.ts manager`, killed with SIGKILL) and
 * the dev kit's pod runner completing the runs (its benchmark stand-in for oc-mirror, so the
 * runs take no time unless a test holds them at a gate).
 *
 * Each test asserts what the user sees (every MirrorJob Succeeded with Ready=True), that
 * nothing is lost (every run finishes, objects created while the operator could not see them
 * are picked up) and that nothing is duplicated (exactly one Job per run, as this file's own
 * watch saw them), and that no MirrorJob's phase ever went backwards.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ApiextensionsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../../src/api/status.ts";
import { LABELS } from "../../src/job/names.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { DEFAULT_RETRY_POLICY } from "../../src/registry/http.ts";
import { repoRoot } from "../../devkit/binaries.ts";
import { startControlPlane, type ControlPlane } from "../../devkit/control-plane.ts";
import { installCrds, projectCrds } from "../../devkit/crds.ts";
import { buildImage, pushImage } from "../../devkit/images.ts";
import { startPodRunner, type PodRunner } from "../../devkit/pod-runner.ts";
import { freePort } from "../../devkit/ports.ts";
import { startProcess, waitFor, type ManagedProcess } from "../../devkit/processes.ts";
import { startRegistry, type TestRegistry } from "../../devkit/registry.ts";
import { dockerConfigJson } from "../../devkit/source-inputs.ts";
import { createCertificateAuthority } from "../../devkit/pki.ts";
import { startFaultServer, type FaultServer } from "../harness/fault-server.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";
import { watchRuns, type RunWatch } from "../../devkit/run-watch.ts";
import { pullEntry } from "../../src/apply/pull-secret.ts";
import { Applier } from "../../src/runtime/applier.ts";
import { isStatus } from "../../src/runtime/kube-api.ts";

const SOURCE_IMAGE = "registry.example.com/faults/app:1";
const OPERATOR_NAMESPACE = "hub-mirror-operator";
/** Phases in the order a run goes through them; a MirrorJob's phase never goes back. */
const RANK: Readonly<Record<string, number>> = {
  Pending: 0,
  Queued: 0,
  Preflight: 1,
  Mirroring: 2,
  Verifying: 3,
  Applying: 4,
  Succeeded: 5,
};

type MirrorJob = KubernetesObject & { status?: MirrorJobStatus };

interface Seen {
  readonly phases: string[];
  readonly jobs: Set<string>;
  last?: MirrorJob;
}

const dir = mkdtempSync(join(tmpdir(), "hubmirror-faults-"));
let cp: ControlPlane;
let registry: TestRegistry;
/** A fault-injecting proxy in front of the registry (test/harness/fault-server.ts). */
let fault: FaultServer;
let faultCaPem = "";
/** MirrorJobs whose runs push to (and are verified in) the registry behind the fault proxy. */
const behindFault = new Set<string>();
let kc: KubeConfig;
let runner: PodRunner;
let operator: ManagedProcess | undefined;
let operatorPort = 0;
let generation = 0;
const namespaces: string[] = [];
/** Pods of these MirrorJobs wait (after they started running) until their gate opens. */
const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
/** MirrorJobs whose pod is running and waits at its gate. */
const held = new Set<string>();
const seen = new Map<string, Seen>();
let runWatch: RunWatch | undefined;

function gate(name: string) {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  gates.set(name, { open, opened });
}

function track(key: string): Seen {
  let s = seen.get(key);
  if (s === undefined) seen.set(key, (s = { phases: [], jobs: new Set() }));
  return s;
}

async function readyz(): Promise<boolean> {
  try {
    const res = await request(`http://127.0.0.1:${String(operatorPort)}/readyz`, { headersTimeout: 2_000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/** The operator as its own process; the same POD_NAME each time, as a container restarted in its pod. */
async function startOperator(): Promise<ManagedProcess> {
  generation++;
  operatorPort = await freePort();
  const proc = startProcess({
    name: `hubmirror-harness-faults-operator-${String(generation)}`,
    command: process.execPath,
    args: ["src/cli/main.ts", "manager"],
    cwd: repoRoot,
    logFile: join(dir, "operator.log"),
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      KUBECONFIG: cp.kubeconfigFile,
      POD_NAME: "faults-operator",
      HUBMIRROR_NAMESPACE: OPERATOR_NAMESPACE,
      HUBMIRROR_HEALTH_PORT: String(operatorPort),
      HUBMIRROR_OPERATOR_IMAGE: "example.invalid/hub-mirror-operator:faults",
      HUBMIRROR_LOG_LEVEL: "debug",
      // Every run of a test at once (the limits are tested by the scale smoke run; the pods
      // here are stand-ins that push nothing, so runs into one target need not take turns).
      HUBMIRROR_MAX_RUNS: "50",
      HUBMIRROR_MAX_RUNS_PER_REGISTRY: "50",
      HUBMIRROR_MAX_RUNS_PER_TARGET: "50",
    },
  });
  operator = proc;
  await waitFor("the operator's /readyz", async () => ((await readyz()) ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 100,
    process: proc,
  });
  return proc;
}

async function sigkill(proc: ManagedProcess): Promise<void> {
  process.kill(proc.pid, "SIGKILL");
  expect(await proc.exited).toBe("SIGKILL");
}

function operatorLog(): string {
  try {
    return readFileSync(join(dir, "operator.log"), "utf8");
  } catch {
    return "";
  }
}

async function namespaceWithInputs(
  name: string,
  target: { host: string; caPem: string } = { host: "", caPem: "" },
): Promise<string> {
  const host = target.host || registry.host;
  const caPem = target.caPem || registry.caPem;
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name } } });
  await core.createNamespacedSecret({
    namespace: name,
    body: {
      metadata: { name: "push" },
      type: "kubernetes.io/dockerconfigjson",
      stringData: {
        ".dockerconfigjson": dockerConfigJson(host, registry.username, registry.password),
      },
    },
  });
  await core.createNamespacedConfigMap({
    namespace: name,
    body: { metadata: { name: "registry-ca" }, data: { "ca-bundle.crt": caPem } },
  });
  namespaces.push(name);
  return name;
}

async function createMirrorJobs(
  namespace: string,
  names: readonly string[],
  host: string = registry.host,
): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const name of names)
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "MirrorJob",
        metadata: { name },
        spec: {
          imageSet: { inline: { mirror: { additionalImages: [{ name: SOURCE_IMAGE }] } } },
          registry: {
            url: `${host}/mirror`,
            pushSecretRef: { name: "push" },
            caBundleRef: { name: "registry-ca" },
          },
          apply: { mode: "None" },
        },
      },
    });
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i)}`);

async function untilJobs(namespace: string, mjs: readonly string[]): Promise<void> {
  await waitFor(
    `a Job for each of ${mjs.join(", ")}`,
    () => (mjs.every((mj) => track(`${namespace}/${mj}`).jobs.size > 0) ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

async function untilSucceeded(namespace: string, mjs: readonly string[], timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `${mjs.join(", ")} Succeeded with Ready=True`,
    () =>
      mjs.every((mj) => {
        const status = track(`${namespace}/${mj}`).last?.status;
        return (
          status?.phase === "Succeeded" &&
          status.conditions?.find((c) => c.type === "Ready")?.status === "True"
        );
      })
        ? true
        : undefined,
    { timeoutMs, intervalMs: 100 },
  );
}

/** One Job per MirrorJob (one run each), the one its status names, and phases that only went forward. */
async function expectOneRunEach(namespace: string, mjs: readonly string[]): Promise<void> {
  const batch = kc.makeApiClient(BatchV1Api);
  const onCluster = (await batch.listNamespacedJob({ namespace })).items;
  for (const mj of mjs) {
    const s = track(`${namespace}/${mj}`);
    const status = s.last?.status;
    expect(status?.phase, mj).toBe("Succeeded");
    expect(status?.lastRun?.result, mj).toBe("Succeeded");
    expect([...s.jobs], mj).toEqual([status?.lastRun?.jobName]);
    expect(
      onCluster
        .filter((j) => j.metadata?.ownerReferences?.some((o) => o.name === mj))
        .map((j) => j.metadata?.name),
      mj,
    ).toEqual([status?.lastRun?.jobName]);
    const ranks = s.phases.map((p) => RANK[p] ?? -1);
    expect(ranks, `${mj}: ${s.phases.join(" -> ")}`).toEqual([...ranks].sort((a, b) => a - b));
    expect(ranks, `${mj}: ${s.phases.join(" -> ")}`).not.toContain(-1);
  }
}

beforeAll(async () => {
  cp = await startControlPlane(join(dir, "cluster"), {
    controllerManagerArgs: ["--kube-api-qps=200", "--kube-api-burst=400"],
  });
  registry = await startRegistry(join(dir, "registry"));
  kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigFile);
  await installCrds(kc);
  const client = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
  });
  const image = await buildImage({ name: "faults-app" });
  await pushImage(client, "mirror/faults/app", "1", image);
  for (const mj of ["reg-503", "reg-429", "reg-hang"])
    await pushImage(client, `mirror/${mj}/app`, "1", image);
  await client.close();
  const faultCa = createCertificateAuthority(dir, "fault-ca");
  faultCaPem = faultCa.pem;
  fault = await startFaultServer({
    dir,
    ca: faultCa,
    upstream: { host: registry.host, caPem: registry.caPem },
  });
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } });

  // This file's own view of MirrorJobs and run Jobs, across API server restarts.
  runWatch = await watchRuns(kc, {
    mirrorJob(key, mj) {
      const s = track(key);
      s.last = mj;
      const phase = mj.status?.phase;
      if (phase !== undefined && s.phases.at(-1) !== phase) s.phases.push(phase);
    },
    job(key, job) {
      track(key).jobs.add(job.metadata?.name ?? "");
    },
  });

  runner = startPodRunner({
    kc,
    root: join(dir, "pods"),
    namespaces: () => namespaces,
    discovery: "watch",
    behaviour: (pod) => {
      const mj = pod.metadata?.labels?.[LABELS.mirrorJob] ?? "";
      return {
        benchmark: {
          images: [
            {
              source: SOURCE_IMAGE,
              destination: behindFault.has(mj)
                ? `${fault.host}/mirror/${mj}/app:1`
                : `${registry.host}/mirror/faults/app:1`,
            },
          ],
        },
        beforeStart: () => {
          const gate = gates.get(mj);
          if (gate !== undefined) held.add(mj);
          return gate?.opened;
        },
      };
    },
  });
  await startOperator();
}, 180_000);

afterAll(async () => {
  await runWatch?.stop();
  await operator?.stop(10_000);
  await runner.stop();
  await fault.stop();
  await registry.stop();
  await cp.stop();
  if (process.env.HUBMIRROR_KEEP_HARNESS === "1") console.log(`faults folder kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe("faults", () => {
  // A failed test leaves no pod held.
  afterEach(() => {
    for (const gate of gates.values()) gate.open();
  });

  it("the operator killed with SIGKILL three times during runs: one Job per run, every run finishes", async () => {
    const namespace = await namespaceWithInputs("faults-kill");
    const mjs = names("kill", 6);
    for (const mj of mjs) gate(mj);
    await createMirrorJobs(namespace, mjs);
    await untilJobs(namespace, mjs);

    // 1: every run's Job exists, every pod is held running.
    let current = operator;
    if (current === undefined) throw new Error("no operator");
    await sigkill(current);
    current = await startOperator();
    // 2: two runs end while the operator comes up, and it is killed as it reads their results.
    gates.get("kill-0")?.open();
    gates.get("kill-1")?.open();
    await waitFor(
      "kill-0 and kill-1 past Mirroring",
      () =>
        ["kill-0", "kill-1"].some(
          (mj) => (RANK[track(`${namespace}/${mj}`).last?.status?.phase ?? ""] ?? 0) > 2,
        )
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    await sigkill(current);
    current = await startOperator();
    // 3: two more end, and it is killed at once.
    gates.get("kill-2")?.open();
    gates.get("kill-3")?.open();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await sigkill(current);
    await startOperator();
    gates.get("kill-4")?.open();
    gates.get("kill-5")?.open();

    await untilSucceeded(namespace, mjs);
    await expectOneRunEach(namespace, mjs);
    expect(generation).toBeGreaterThanOrEqual(4);
  }, 300_000);

  it("the API server restarted mid-run: the operator recovers without a restart of its own, with no duplicate action", async () => {
    const namespace = await namespaceWithInputs("faults-apiserver");
    const mjs = names("api", 4);
    for (const mj of mjs) gate(mj);
    const before = operator;
    await createMirrorJobs(namespace, mjs);
    await untilJobs(namespace, mjs);
    // Every pod running (the pod runner, a test harness, does not retry its own writes).
    await waitFor("every pod held running", () => (mjs.every((mj) => held.has(mj)) ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 100,
    });

    await cp.restartApiServer();
    for (const mj of mjs) gates.get(mj)?.open();
    await untilSucceeded(namespace, mjs);
    await expectOneRunEach(namespace, mjs);
    // A MirrorJob created after the restart is served by the same process.
    await createMirrorJobs(namespace, ["api-after"]);
    await untilSucceeded(namespace, ["api-after"]);
    await expectOneRunEach(namespace, ["api-after"]);
    expect(operator).toBe(before);
    expect(before?.hasExited()).toBe(false);
    expect(await readyz()).toBe(true);
  }, 300_000);

  it("watches expire (etcd compacted, the API server restarted while the operator was frozen): the informers list again, nothing missed or repeated", async () => {
    const namespace = await namespaceWithInputs("faults-compaction");
    const done = names("old", 2);
    await createMirrorJobs(namespace, done);
    await untilSucceeded(namespace, done);
    const proc = operator;
    if (proc === undefined) throw new Error("no operator");
    const logBefore = operatorLog().length;

    // Frozen, the operator sees nothing of what happens next. Thawed, it lists again in one of
    // three ways, depending on how long the freeze lasted and how the frozen process finds its
    // connections closed: a watch resumes from a resource version etcd compacted away and the
    // restarted API server's watch cache does not hold (410 Gone, then a new list); a watch
    // finds its connection broken and its informer starts over with a new list; or, frozen for
    // longer than its Lease allows, it steps down and leads again with a new controller and
    // new caches. Any of them must miss nothing and repeat nothing. (The 410 path itself:
    // src/runtime/informer.test.ts.)
    process.kill(proc.pid, "SIGSTOP");
    try {
      const fresh = names("new", 3);
      await createMirrorJobs(namespace, fresh);
      // A change to a Secret a MirrorJob uses, which the operator must see too.
      await kc
        .makeApiClient(CoreV1Api)
        .patchNamespacedSecret(
          { namespace, name: "push", body: { metadata: { labels: { touched: "yes" } } } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
      await cp.compactEtcd();
      await cp.restartApiServer();
      await cp.compactEtcd();
    } finally {
      process.kill(proc.pid, "SIGCONT");
    }

    const fresh = names("new", 3);
    await untilSucceeded(namespace, fresh);
    await expectOneRunEach(namespace, [...done, ...fresh]);
    const relisted = operatorLog()
      .slice(logBefore)
      .split("\n")
      .filter(
        (line) =>
          line.includes("watch expired (410 Gone)") ||
          line.includes("informer failed; restarting") ||
          line.includes("leading: starting the controller"),
      );
    expect(relisted.length, "the operator's informers listed again").toBeGreaterThan(0);
    expect(proc.hasExited()).toBe(false);
  }, 300_000);

  it("the registry answers 503, 429 or not at all during verification: bounded retries, a clear condition, verified once it answers", async () => {
    const namespace = await namespaceWithInputs("faults-registry", { host: fault.host, caPem: faultCaPem });
    const mjs = ["reg-503", "reg-429", "reg-hang"];
    for (const mj of mjs) behindFault.add(mj);
    fault.reset();
    const manifests = (mj: string) => new RegExp(`^/v2/mirror/${mj}/app/manifests/`);
    fault.inject({ method: "HEAD", path: manifests("reg-503"), action: { status: 503, body: "{}" } });
    fault.inject({
      method: "HEAD",
      path: manifests("reg-429"),
      action: { status: 429, headers: { "Retry-After": "1" }, body: "{}" },
    });
    fault.inject({ method: "HEAD", path: manifests("reg-hang"), action: "hang" });
    await createMirrorJobs(namespace, mjs, fault.host);

    // What the user sees: the run Succeeded, verification could not reach the registry, and
    // the MirrorJob waits for it in phase Verifying (not Failed), Ready=False saying why.
    // Read from the API server itself (not this file's watch), so a timeout says what it saw.
    const custom = kc.makeApiClient(CustomObjectsApi);
    const latest = new Map<string, MirrorJob["status"]>();
    const refresh = async (mj: string) => {
      const object = (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: mj,
      })) as MirrorJob;
      latest.set(mj, object.status);
      return object.status;
    };
    const condition = (mj: string, type: string) => latest.get(mj)?.conditions?.find((c) => c.type === type);
    const attempts = (mj: string) =>
      fault.log.filter((r) => r.method === "HEAD" && manifests(mj).test(r.path)).length;
    // The HEAD requests of each one's first verification, counted when it reports.
    const firstAttempts = await Promise.all(
      mjs.map((mj) =>
        waitFor(
          `Verified=False RegistryUnreachable on ${mj}`,
          async () => {
            const status = await refresh(mj);
            const verified = condition(mj, "Verified");
            if (verified?.reason === "RegistryUnreachable") return attempts(mj);
            throw new Error(
              `phase ${String(status?.phase)}, last run ${String(status?.lastRun?.result)}, Verified ${String(verified?.reason)}: ${String(verified?.message)}`,
            );
          },
          // The hanging registry alone takes the client's 4 attempts of 30 s each (about 2 min).
          { timeoutMs: 240_000, intervalMs: 250 },
        ),
      ),
    );
    for (const mj of mjs) {
      const status = await refresh(mj);
      expect(status?.lastRun?.result, mj).toBe("Succeeded");
      expect(status?.phase, mj).toBe("Verifying");
      expect(condition(mj, "Ready"), mj).toMatchObject({ status: "False", reason: "RegistryUnreachable" });
      expect(condition(mj, "Verified")?.message, mj).toContain(
        "verification runs again every minute until the registry answers",
      );
    }
    expect(condition("reg-503", "Verified")?.message).toContain("HTTP 503");
    // Bounded: the client's few attempts for the one image of a verification, not a retry storm.
    for (const n of firstAttempts) {
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(DEFAULT_RETRY_POLICY.retries + 1);
    }

    // The registry is back: the next verification (within a minute) finds every image.
    fault.reset();
    await untilSucceeded(namespace, mjs, 180_000);
    for (const mj of mjs) {
      expect(track(`${namespace}/${mj}`).last?.status?.lastRun?.verification?.reason, mj).toBe(
        "AllImagesPresent",
      );
      await refresh(mj);
      expect(condition(mj, "Verified")?.status, mj).toBe("True");
    }
    await expectOneRunEach(namespace, mjs);
  }, 480_000);

  it("a concurrent writer updates openshift-config/pull-secret in a loop during 20 merges: no entry of either writer is lost", async () => {
    await installOpenShiftStandIns(kc);
    const core = kc.makeApiClient(CoreV1Api);
    const where = { namespace: "openshift-config", name: "pull-secret" };
    const auths = (secret: { data?: Record<string, string> }) =>
      (
        JSON.parse(Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8")) as {
          auths: Record<string, unknown>;
        }
      ).auths;
    const before = auths(await core.readNamespacedSecret(where));

    // The other writer: read, add an entry, replace at the version read; again on a conflict.
    const stop = { now: false };
    const written: string[] = [];
    let conflicts = 0;
    const writer = (async () => {
      for (let i = 0; !stop.now;) {
        const secret = await core.readNamespacedSecret(where);
        const host = `writer-${String(i)}.example.com`;
        const config = {
          auths: { ...auths(secret), [host]: { auth: Buffer.from(`w:${String(i)}`).toString("base64") } },
        };
        try {
          await core.replaceNamespacedSecret({
            ...where,
            body: {
              metadata: { name: where.name, resourceVersion: secret.metadata?.resourceVersion },
              type: secret.type,
              data: { ".dockerconfigjson": Buffer.from(JSON.stringify(config)).toString("base64") },
            },
          });
          written.push(host);
          i++;
        } catch (err) {
          if (!isStatus(err, 409)) throw err;
          conflicts++;
        }
      }
    })();

    const applier = new Applier(kc);
    const entries = Array.from({ length: 20 }, (_, i) => {
      const host = `mirror-${String(i)}.example.com:5000`;
      const entry = pullEntry(
        dockerConfigJson(host, `u${String(i)}`, "p"),
        `${host}/x`,
        "spec.registry.pushSecretRef",
      );
      if (typeof entry === "string") throw new Error(entry);
      return { host, entry };
    });
    try {
      for (const { entry } of entries) expect(await applier.mergePullSecret(entry)).toBe(true);
    } finally {
      stop.now = true;
      await writer;
    }

    const final = auths(await core.readNamespacedSecret(where));
    for (const { host, entry } of entries) expect(final[host], host).toEqual(entry.entry);
    expect(written.length).toBeGreaterThan(0);
    for (const host of written) expect(final[host], host).toBeDefined();
    for (const [host, value] of Object.entries(before)) expect(final[host], host).toEqual(value);
    console.log(
      `pull secret: 20 merges beside ${String(written.length)} writes of the other writer (${String(conflicts)} of its writes conflicted)`,
    );
  }, 300_000);

  it("the MirrorJob CRD deleted and re-created while the operator runs: it reports, waits and resumes", async () => {
    const namespace = await namespaceWithInputs("faults-crd");
    const api = kc.makeApiClient(ApiextensionsV1Api);
    const crdName = `${PLURAL}.${GROUP}`;
    const proc = operator;
    const logBefore = operatorLog().length;

    await api.deleteCustomResourceDefinition({ name: crdName });
    await waitFor(
      "the CRD to be gone",
      async () => {
        try {
          await api.readCustomResourceDefinition({ name: crdName });
          return undefined;
        } catch {
          return true;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    // It says so (the informer of MirrorJobs fails and retries), and stays up.
    await waitFor(
      "the operator's log of the missing MirrorJob API",
      () => {
        const log = operatorLog().slice(logBefore);
        return /informer (start )?failed/.test(log) && log.includes(`/${PLURAL}`) ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(proc?.hasExited()).toBe(false);

    await installCrds(kc, projectCrds());
    await createMirrorJobs(namespace, ["after-crd"]);
    await untilSucceeded(namespace, ["after-crd"]);
    await expectOneRunEach(namespace, ["after-crd"]);
    expect(operator).toBe(proc);
    expect(proc?.hasExited()).toBe(false);
  }, 300_000);
});
