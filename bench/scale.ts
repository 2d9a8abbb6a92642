/**
 * A fleet's worth of MirrorJobs against the real control plane (issue 16): the operator as its
 * own process (`node dist/src/cli/main.js manager`, as the image runs it, or `src/cli/main.ts`),
 * the real kube-apiserver, etcd and kube-controller-manager (its Job controller completes the
 * Jobs), a real registry, and the dev kit's pod runner with its BENCHMARK-ONLY behaviour: each
 * pod's oc-mirror container runs the real wrapper script around a stand-in oc-mirror that
 * writes the smallest valid workspace of one additional image, and the reporter's real code
 * reads it (devkit/pod-runner.ts). So the numbers measure the operator, not oc-mirror.
 *
 *   node bench/scale.ts [--sizes 100,1000] [--idle-seconds 300] [--entry dist|src] [--operator-env NAME=VALUE] [--write]
 *   node bench/scale.ts --operator ../base/dist/src/cli/main.js --crds ../base/config/crd   # another build (a baseline), with its own CRDs
 *   npm run bench:scale            # builds dist/ first, then the full run, written into BENCHMARKS.md
 *
 * For each size N, on a fresh control plane and a fresh operator:
 *  1. the operator's RSS and heap after GC with no MirrorJob;
 *  2. N MirrorJobs (additional images only, verification on, apply mode None) created at once,
 *     spread over namespaces of 100: the time until every run's Job exists, until every
 *     MirrorJob is Succeeded with Ready=True, and per run the time from the Job's completion
 *     to Ready=True (both as this process's watches see them), p50/p95/p99;
 *  3. all idle for --idle-seconds: the operator's API requests per minute by verb and resource,
 *     watches opened, Lease renewals; its RSS and heap after GC;
 *  4. a restart of the operator (SIGTERM, a new process): the time until /readyz answers and
 *     until every key has been reconciled once with the queue empty, the requests spent, and
 *     the Jobs it created (must be 0).
 *
 * Requests are counted from the API server's own record of them, filtered to the operator's
 * identity: the operator runs as the client-certificate user `hub-mirror-operator`, and the
 * API server's audit log (policy: Metadata for that user, nothing for anyone else) records
 * each of its requests with verb, resource and time. `apiserver_request_total` itself has no
 * user or user-agent label, so it cannot be filtered to one client; its delta over the idle
 * window (all clients: the operator, kube-controller-manager, this benchmark's watches) is
 * printed beside it for comparison.
 *
 * The concurrency limits are raised to N by default (the targets are measured "with the limit
 * raised"); --default-limits keeps the operator's defaults (runs queue: the smoke run checks
 * that the queue shows and every MirrorJob still ends Succeeded). --json writes the raw
 * results. Every wait is bounded (--timeout-minutes).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { GROUP, PLURAL, VERSION } from "../src/api/mirrorjob.ts";
import { LABELS, MANAGER } from "../src/job/names.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { pinnedVersion, repoRoot } from "../devkit/binaries.ts";
import { startControlPlane, userKubeconfig, type ControlPlane } from "../devkit/control-plane.ts";
import { installCrds, projectCrds } from "../devkit/crds.ts";
import { watchRuns } from "../devkit/run-watch.ts";
import { buildImage, pushImage } from "../devkit/images.ts";
import { startPodRunner, type PodRunner } from "../devkit/pod-runner.ts";
import { freePort } from "../devkit/ports.ts";
import { startProcess, stopAll, waitFor, type ManagedProcess } from "../devkit/processes.ts";
import { startRegistry, type TestRegistry } from "../devkit/registry.ts";
import { dockerConfigJson } from "../devkit/source-inputs.ts";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "100,1000" },
    "idle-seconds": { type: "string", default: "300" },
    entry: { type: "string", default: "dist" },
    operator: { type: "string" },
    crds: { type: "string" },
    "default-limits": { type: "boolean", default: false },
    workers: { type: "string" },
    "operator-env": { type: "string", multiple: true, default: [] },
    "pod-concurrency": { type: "string", default: "64" },
    "timeout-minutes": { type: "string", default: "30" },
    write: { type: "boolean", default: false },
    json: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const SIZES = args.sizes.split(",").map(Number);
const IDLE_MS = Number(args["idle-seconds"]) * 1000;
/** The operator's entry point: this checkout's compiled dist/ (as the image), its src/, or another build. */
const ENTRY = args.operator ?? (args.entry === "src" ? "src/cli/main.ts" : "dist/src/cli/main.js");
const TIMEOUT_MS = Number(args["timeout-minutes"]) * 60_000;
const POD_CONCURRENCY = Number(args["pod-concurrency"]);
const OPERATOR_USER = "hub-mirror-operator";
const OPERATOR_NAMESPACE = "hub-mirror-operator";
const PER_NAMESPACE = 100;
/** More environment for the operator's process (`--operator-env NAME=VALUE`, repeatable). */
const operatorEnv = Object.fromEntries(
  args["operator-env"].map((pair) => {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--operator-env ${pair}: expected NAME=VALUE`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);
const SOURCE_IMAGE = "registry.example.com/bench/app:1";
const started = Date.now();
if (SIZES.some((n) => !(n > 0)) || !(IDLE_MS >= 0))
  throw new Error("--sizes and --idle-seconds must be numbers");

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const mb = (bytes: number) => round(bytes / 1024 / 1024);
const elapsed = () => round((Date.now() - started) / 1000, 0);
const say = (text: string) => {
  console.log(`[${String(elapsed()).padStart(5)} s] ${text}`);
};
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** One request of the operator as the API server's audit log records it. */
interface Audited {
  readonly at: number;
  readonly verb: string;
  /** `resource` or `resource/subresource`. */
  readonly resource: string;
  readonly code: number;
}

/** Reads the audit log: one entry per request (watches at ResponseStarted, others when complete). */
function readAudit(file: string): Audited[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const out: Audited[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const e = JSON.parse(line) as {
      stage: string;
      verb: string;
      user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string };
      requestReceivedTimestamp: string;
      responseStatus?: { code?: number };
    };
    if (e.user?.username !== OPERATOR_USER) continue;
    const counted = e.verb === "watch" ? e.stage === "ResponseStarted" : e.stage === "ResponseComplete";
    if (!counted) continue;
    const ref = e.objectRef;
    out.push({
      at: Date.parse(e.requestReceivedTimestamp),
      verb: e.verb,
      resource:
        ref?.resource === undefined
          ? "(none)"
          : ref.resource + (ref.subresource ? `/${ref.subresource}` : ""),
      code: e.responseStatus?.code ?? 0,
    });
  }
  return out;
}

function between(entries: readonly Audited[], from: number, to: number): Audited[] {
  return entries.filter((e) => e.at >= from && e.at < to);
}

function byVerbResource(entries: readonly Audited[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) counts[`${e.verb} ${e.resource}`] = (counts[`${e.verb} ${e.resource}`] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
}

/** `apiserver_request_total` by verb and resource, all clients (the API server's /metrics). */
async function apiserverRequests(cp: ControlPlane, agent: Agent): Promise<Map<string, number>> {
  const res = await request(`${cp.server}/metrics`, { dispatcher: agent, headersTimeout: 10_000 });
  const text = await res.body.text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? "", m[2] ?? ""]),
    );
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    const key = `${labels.verb ?? ""} ${labels.resource ?? ""}${labels.subresource ? `/${labels.subresource}` : ""}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** The operator's process: RSS now, and heap and RSS after a full GC (the probe below). */
interface Memory {
  readonly rssMb: number;
  readonly rssAfterGcMb: number;
  readonly heapUsedMb: number;
  readonly heapTotalMb: number;
  readonly externalMb: number;
}

/**
 * Loaded into the operator's process with --import (a data: URL, so that nothing is compiled
 * or loaded from a file): on SIGUSR2 it runs two full GCs and writes process.memoryUsage().
 */
const PROBE = `import{writeFileSync}from"node:fs";process.on("SIGUSR2",()=>{globalThis.gc();globalThis.gc();writeFileSync(process.env.HUBMIRROR_BENCH_PROBE,JSON.stringify(process.memoryUsage()))});`;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${String(pid)}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? "0");
  return kb * 1024;
}

interface Operator {
  readonly process: ManagedProcess;
  readonly port: number;
  readonly probeFile: string;
}

async function memoryOf(op: Operator): Promise<Memory> {
  const rss = rssOf(op.process.pid);
  rmSync(op.probeFile, { force: true });
  process.kill(op.process.pid, "SIGUSR2");
  const usage = await waitFor(
    "the operator's memory probe",
    () => {
      try {
        return JSON.parse(readFileSync(op.probeFile, "utf8")) as NodeJS.MemoryUsage;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return {
    rssMb: mb(rss),
    rssAfterGcMb: mb(rssOf(op.process.pid)),
    heapUsedMb: mb(usage.heapUsed),
    heapTotalMb: mb(usage.heapTotal),
    externalMb: mb(usage.external),
  };
}

async function metricsOf(op: Operator): Promise<Map<string, number>> {
  const res = await request(`http://127.0.0.1:${String(op.port)}/metrics`, { headersTimeout: 5_000 });
  const text = await res.body.text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const name = line.slice(0, line.search(/[{ ]/));
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}

async function readyz(op: Operator): Promise<boolean> {
  try {
    const res = await request(`http://127.0.0.1:${String(op.port)}/readyz`, { headersTimeout: 2_000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/** What this process's watches saw of one MirrorJob. */
interface Track {
  jobs: Set<string>;
  jobAt?: number;
  completeAt?: number;
  readyAt?: number;
  queued: boolean;
  lastPhase?: string;
}

interface SizeResult {
  readonly n: number;
  readonly load: Record<string, string>;
  readonly empty: Memory;
  readonly createSeconds: number;
  readonly allJobsSeconds: number;
  readonly allSucceededSeconds: number;
  readonly completionToReadyMs: { p50: number; p95: number; p99: number; max: number };
  readonly jobsPerMirrorJob: { min: number; max: number };
  readonly queuedSeen: number;
  readonly burstRequests: number;
  readonly burstByVerb: Record<string, number>;
  readonly idle: {
    readonly seconds: number;
    readonly perMinute: Record<string, number>;
    readonly nonWatchNonLeasePerMinute: number;
    readonly watchesOpened: Record<string, number>;
    readonly apiserverAllClientsPerMinute: number;
    readonly memory: Memory;
  };
  readonly restart: {
    readonly readySeconds: number;
    readonly settledSeconds: number;
    readonly reconciles: number;
    readonly requests: number;
    readonly byVerb: Record<string, number>;
    readonly jobsCreated: number;
    readonly memory: Memory;
  };
}

async function runSize(n: number, root: string): Promise<SizeResult> {
  const dir = join(root, `n${String(n)}`);
  mkdirSync(dir, { recursive: true });
  const loadAt: Record<string, string> = { start: load() };
  const auditFile = join(dir, "audit.log");
  const policy = join(dir, "audit-policy.yaml");
  writeFileSync(
    policy,
    stringify({
      apiVersion: "audit.k8s.io/v1",
      kind: "Policy",
      omitStages: ["RequestReceived"],
      rules: [{ level: "Metadata", users: [OPERATOR_USER] }, { level: "None" }],
    }),
  );
  say(`N=${String(n)}: control plane, registry (load ${load()})`);
  const cp = await startControlPlane(join(dir, "cluster"), {
    apiServerArgs: [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${auditFile}`,
      "--audit-log-format=json",
      "--audit-log-mode=blocking",
    ],
    // kube-controller-manager's own client defaults (20 requests/s) would make its Job
    // controller, not the operator, the bottleneck of a thousand Jobs.
    controllerManagerArgs: ["--kube-api-qps=1000", "--kube-api-burst=2000", "--concurrent-job-syncs=20"],
  });
  const registry: TestRegistry = await startRegistry(join(dir, "registry"));
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigFile);
  await installCrds(kc, projectCrds(args.crds));
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const batch = kc.makeApiClient(BatchV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const admin = new Agent({
    connect: {
      ca: readFileSync(cp.caFile),
      cert: readFileSync(join(cp.dir, "pki", "admin.crt")),
      key: readFileSync(join(cp.dir, "pki", "admin.key")),
    },
  });

  // The one image every run "mirrors": present in the target, so that verification finds it.
  const client = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
  });
  await pushImage(client, "mirror/bench/app", "1", await buildImage({ name: "bench-app" }));
  await client.close();

  // The operator's identity: its own client certificate, bound to cluster-admin.
  const operatorKubeconfig = userKubeconfig(cp.dir, cp.server, OPERATOR_USER);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: "hub-mirror-operator-bench" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: OPERATOR_USER }],
    },
  });
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } });
  const namespaces = Array.from({ length: Math.ceil(n / PER_NAMESPACE) }, (_, i) => `bench-${String(i)}`);
  for (const namespace of namespaces) {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: "push" },
        type: "kubernetes.io/dockerconfigjson",
        stringData: {
          ".dockerconfigjson": dockerConfigJson(registry.host, registry.username, registry.password),
        },
      },
    });
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "registry-ca" }, data: { "ca-bundle.crt": registry.caPem } },
    });
  }
  await waitFor(
    "kube-root-ca.crt in the namespaces",
    async () => {
      for (const namespace of namespaces)
        await core.readNamespacedConfigMap({ namespace, name: "kube-root-ca.crt" });
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );

  const limits = args["default-limits"]
    ? {}
    : {
        HUBMIRROR_MAX_RUNS: String(n),
        HUBMIRROR_MAX_RUNS_PER_REGISTRY: String(n),
        HUBMIRROR_MAX_RUNS_PER_TARGET: String(n),
      };
  let generation = 0;
  const startOperator = async (): Promise<Operator> => {
    generation++;
    const port = await freePort();
    const probeFile = join(dir, "memory-probe.json");
    const proc = startProcess({
      name: `operator-${String(generation)}`,
      command: process.execPath,
      args: [
        "--expose-gc",
        "--import",
        `data:text/javascript,${encodeURIComponent(PROBE)}`,
        ENTRY,
        "manager",
      ],
      cwd: repoRoot,
      logFile: join(dir, `operator-${String(generation)}.log`),
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        KUBECONFIG: operatorKubeconfig,
        POD_NAME: `bench-operator-${String(generation)}`,
        HUBMIRROR_NAMESPACE: OPERATOR_NAMESPACE,
        HUBMIRROR_HEALTH_PORT: String(port),
        HUBMIRROR_OPERATOR_IMAGE: "example.invalid/hub-mirror-operator:bench",
        HUBMIRROR_BENCH_PROBE: probeFile,
        ...limits,
        ...(args.workers !== undefined && { HUBMIRROR_WORKERS: args.workers }),
        ...operatorEnv,
      },
    });
    const op = { process: proc, port, probeFile };
    await waitFor("the operator's /readyz", async () => ((await readyz(op)) ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 50,
      process: proc,
    });
    return op;
  };

  say(`N=${String(n)}: operator (${ENTRY})`);
  let op = await startOperator();
  await sleep(10_000);
  const empty = await memoryOf(op);
  say(
    `N=${String(n)}: no MirrorJob: RSS ${String(empty.rssMb)} MB, heap after GC ${String(empty.heapUsedMb)} MB`,
  );

  // This process's own view: MirrorJobs and run Jobs as their watches deliver them.
  const tracks = new Map<string, Track>();
  const track = (key: string): Track => {
    let t = tracks.get(key);
    if (t === undefined) tracks.set(key, (t = { jobs: new Set(), queued: false }));
    return t;
  };
  const runWatch = await watchRuns(
    kc,
    {
      mirrorJob(key, mj) {
        const t = track(key);
        const phase: string | undefined = mj.status?.phase;
        t.lastPhase = phase;
        if (phase === "Queued") t.queued = true;
        const ready = mj.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
        if (phase === "Succeeded" && ready) t.readyAt ??= performance.now();
      },
      job(key, job) {
        const t = track(key);
        t.jobs.add(job.metadata?.name ?? "");
        t.jobAt ??= performance.now();
        if (job.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True"))
          t.completeAt ??= performance.now();
      },
    },
    1000,
  );

  const runner: PodRunner = startPodRunner({
    kc,
    root: join(dir, "pods"),
    namespaces: () => namespaces,
    discovery: "watch",
    maxConcurrentPods: POD_CONCURRENCY,
    behaviour: () => ({
      benchmark: { images: [{ source: SOURCE_IMAGE, destination: `${registry.host}/mirror/bench/app:1` }] },
    }),
  });

  // N MirrorJobs at once.
  const names = Array.from({ length: n }, (_, i) => ({
    namespace: namespaces[Math.floor(i / PER_NAMESPACE)] ?? "",
    name: `mj-${String(i).padStart(4, "0")}`,
  }));
  const spec = {
    imageSet: { inline: { mirror: { additionalImages: [{ name: SOURCE_IMAGE }] } } },
    registry: {
      url: `${registry.host}/mirror`,
      pushSecretRef: { name: "push" },
      caBundleRef: { name: "registry-ca" },
    },
    apply: { mode: "None" },
  };
  loadAt.burst = load();
  say(`N=${String(n)}: creating ${String(n)} MirrorJobs (load ${load()})`);
  const t0 = performance.now();
  const wall0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let i = next++; i < names.length; i = next++) {
        const { namespace, name } = names[i] ?? { namespace: "", name: "" };
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace,
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: "MirrorJob", metadata: { name }, spec },
        });
      }
    }),
  );
  const createSeconds = round((performance.now() - t0) / 1000, 2);
  const keys = names.map((k) => `${k.namespace}/${k.name}`);
  const progress = setInterval(() => {
    const withJob = keys.filter((k) => tracks.get(k)?.jobAt !== undefined).length;
    const done = keys.filter((k) => tracks.get(k)?.readyAt !== undefined).length;
    say(`  Jobs ${String(withJob)}/${String(n)}, Succeeded ${String(done)}/${String(n)} (load ${load()})`);
  }, 15_000);
  try {
    await waitFor(
      `every MirrorJob Succeeded with Ready=True`,
      () => {
        const failed = keys.find((k) => tracks.get(k)?.lastPhase === "Failed");
        if (failed !== undefined) throw new Error(`MirrorJob ${failed} Failed; see ${dir}`);
        return keys.every((k) => tracks.get(k)?.readyAt !== undefined) ? true : undefined;
      },
      { timeoutMs: TIMEOUT_MS, intervalMs: 100 },
    );
  } finally {
    clearInterval(progress);
  }
  const settledBurst = Date.now();
  const all = keys.map((k) => track(k));
  const allJobsSeconds = round((Math.max(...all.map((t) => t.jobAt ?? Number.NaN)) - t0) / 1000, 2);
  const allSucceededSeconds = round((Math.max(...all.map((t) => t.readyAt ?? Number.NaN)) - t0) / 1000, 2);
  const latencies = all.map((t) => (t.readyAt ?? Number.NaN) - (t.completeAt ?? Number.NaN));
  const completionToReadyMs = {
    p50: round(percentile(latencies, 50), 0),
    p95: round(percentile(latencies, 95), 0),
    p99: round(percentile(latencies, 99), 0),
    max: round(Math.max(...latencies), 0),
  };
  const jobCounts = all.map((t) => t.jobs.size);
  const queuedSeen = all.filter((t) => t.queued).length;
  const burst = between(readAudit(auditFile), wall0, settledBurst + 1);
  say(
    `N=${String(n)}: all Jobs after ${String(allJobsSeconds)} s, all Succeeded after ${String(allSucceededSeconds)} s; ` +
      `completion -> Ready p50 ${String(completionToReadyMs.p50)} ms; ${String(burst.length)} requests`,
  );

  // Idle.
  await sleep(30_000);
  loadAt.idle = load();
  say(`N=${String(n)}: idle for ${String(IDLE_MS / 1000)} s (load ${load()})`);
  const idleFrom = Date.now();
  const apiBefore = await apiserverRequests(cp, admin);
  await sleep(IDLE_MS);
  const apiAfter = await apiserverRequests(cp, admin);
  const idleTo = Date.now();
  const idleMemory = await memoryOf(op);
  const minutes = (idleTo - idleFrom) / 60_000;
  const idleEntries = between(readAudit(auditFile), idleFrom, idleTo);
  const perMinute = Object.fromEntries(
    Object.entries(byVerbResource(idleEntries)).map(([k, v]) => [k, round(v / minutes, 2)]),
  );
  const quiet = idleEntries.filter((e) => e.verb !== "watch" && e.resource !== "leases");
  const watchesOpened = byVerbResource(idleEntries.filter((e) => e.verb === "watch"));
  let allClients = 0;
  for (const [key, value] of apiAfter) allClients += value - (apiBefore.get(key) ?? 0);
  say(
    `N=${String(n)}: idle: ${JSON.stringify(perMinute)} per minute; RSS ${String(idleMemory.rssMb)} MB, heap after GC ${String(idleMemory.heapUsedMb)} MB`,
  );

  // Restart.
  loadAt.restart = load();
  say(`N=${String(n)}: restarting the operator (load ${load()})`);
  await op.process.stop(30_000);
  const jobsBefore = (
    await batch.listJobForAllNamespaces({ labelSelector: `${LABELS.managedBy}=${MANAGER}` })
  ).items.length;
  const restartFrom = Date.now();
  const r0 = performance.now();
  op = await startOperator();
  const readySeconds = round((performance.now() - r0) / 1000, 2);
  const current = op;
  const reconciles = await waitFor(
    "every key reconciled once after the restart",
    async () => {
      const m = await metricsOf(current);
      const total = m.get("controller_runtime_reconcile_total") ?? 0;
      return total >= n && m.get("workqueue_depth") === 0 ? total : undefined;
    },
    { timeoutMs: TIMEOUT_MS, intervalMs: 50 },
  );
  const settledSeconds = round((performance.now() - r0) / 1000, 2);
  const restartTo = Date.now();
  await sleep(2_000);
  const restartEntries = between(readAudit(auditFile), restartFrom, restartTo + 1);
  const jobsAfter = (await batch.listJobForAllNamespaces({ labelSelector: `${LABELS.managedBy}=${MANAGER}` }))
    .items.length;
  const restartMemory = await memoryOf(op);
  const jobsCreated =
    restartEntries.filter((e) => e.verb === "create" && e.resource === "jobs").length +
    (jobsAfter - jobsBefore);
  say(
    `N=${String(n)}: restart: ready after ${String(readySeconds)} s, settled after ${String(settledSeconds)} s, ` +
      `${String(restartEntries.length)} requests, ${String(jobsCreated)} Jobs created`,
  );
  loadAt.end = load();

  await runner.stop();
  await runWatch.stop();
  await op.process.stop();
  await admin.close();
  await registry.stop();
  await cp.stop();
  return {
    n,
    load: loadAt,
    empty,
    createSeconds,
    allJobsSeconds,
    allSucceededSeconds,
    completionToReadyMs,
    jobsPerMirrorJob: { min: Math.min(...jobCounts), max: Math.max(...jobCounts) },
    queuedSeen,
    burstRequests: burst.length,
    burstByVerb: byVerbResource(burst),
    idle: {
      seconds: round((idleTo - idleFrom) / 1000, 0),
      perMinute,
      nonWatchNonLeasePerMinute: round(quiet.length / minutes, 2),
      watchesOpened,
      apiserverAllClientsPerMinute: round(allClients / minutes, 1),
      memory: idleMemory,
    },
    restart: {
      readySeconds,
      settledSeconds,
      reconciles,
      requests: restartEntries.length,
      byVerb: byVerbResource(restartEntries),
      jobsCreated,
      memory: restartMemory,
    },
  };
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  let os = "Linux";
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? os;
  } catch {
    // keep "Linux"
  }
  const memGb = round(
    Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024 / 1024,
    0,
  );
  return `${String(cpus().length)} vCPUs (${cpu}), ${String(memGb)} GB RAM, ${os}, Node ${process.version}, kube-apiserver ${pinnedVersion("k8s", "k8s.io/kubernetes")}`;
}

function table(results: readonly SizeResult[]): string {
  const row = (label: string, f: (r: SizeResult) => string) => `| ${label} | ${results.map(f).join(" | ")} |`;
  const growth =
    results.length >= 2
      ? (() => {
          const [a, b] = [results[0], results[results.length - 1]];
          if (a === undefined || b === undefined) return [];
          const d = b.n - a.n;
          return [
            `| growth per MirrorJob, ${String(a.n)} → ${String(b.n)} | RSS at idle ${String(round(((b.idle.memory.rssMb - a.idle.memory.rssMb) * 1024) / d, 1))} KB, heap after GC ${String(round(((b.idle.memory.heapUsedMb - a.idle.memory.heapUsedMb) * 1024) / d, 1))} KB; requests of the burst ${String(round(b.burstRequests / b.n, 1))} vs ${String(round(a.burstRequests / a.n, 1))} per MirrorJob; restart ${String(round(b.restart.requests / b.n, 2))} vs ${String(round(a.restart.requests / a.n, 2))} |`,
          ];
        })()
      : [];
  return [
    `| measure | ${results.map((r) => `N = ${r.n.toLocaleString("en")}`).join(" | ")} |`,
    `| --- | ${results.map(() => "---").join(" | ")} |`,
    row(
      "RSS / heap after GC, no MirrorJob",
      (r) => `${String(r.empty.rssMb)} / ${String(r.empty.heapUsedMb)} MB`,
    ),
    row("MirrorJobs created (client side)", (r) => `${String(r.createSeconds)} s`),
    row("every run's Job exists", (r) => `${String(r.allJobsSeconds)} s`),
    row("every MirrorJob Succeeded, Ready=True", (r) => `${String(r.allSucceededSeconds)} s`),
    row(
      "Job completion → Ready=True p50 / p95 / p99 (max)",
      (r) =>
        `${String(r.completionToReadyMs.p50)} / ${String(r.completionToReadyMs.p95)} / ${String(r.completionToReadyMs.p99)} ms (${String(r.completionToReadyMs.max)})`,
    ),
    row(
      "Jobs per MirrorJob (min–max)",
      (r) => `${String(r.jobsPerMirrorJob.min)}–${String(r.jobsPerMirrorJob.max)}`,
    ),
    row(
      "operator requests, burst (per MirrorJob)",
      (r) => `${String(r.burstRequests)} (${String(round(r.burstRequests / r.n, 1))})`,
    ),
    row("idle: operator requests/min beyond watches and Leases", (r) =>
      String(r.idle.nonWatchNonLeasePerMinute),
    ),
    row("idle: watches opened/min; Lease requests/min", (r) => {
      const watches = Object.values(r.idle.watchesOpened).reduce((a, b) => a + b, 0);
      const lease = Object.entries(r.idle.perMinute)
        .filter(([k]) => k.endsWith(" leases"))
        .reduce((a, [, v]) => a + v, 0);
      return `${String(round(watches / (r.idle.seconds / 60), 2))}; ${String(round(lease, 1))}`;
    }),
    row("idle: apiserver_request_total, all clients, /min", (r) =>
      String(r.idle.apiserverAllClientsPerMinute),
    ),
    row(
      "idle: RSS / heap after GC",
      (r) => `${String(r.idle.memory.rssMb)} / ${String(r.idle.memory.heapUsedMb)} MB`,
    ),
    row(
      "restart: /readyz; every key reconciled once",
      (r) => `${String(r.restart.readySeconds)} s; ${String(r.restart.settledSeconds)} s`,
    ),
    row(
      "restart: requests (per MirrorJob); Jobs created",
      (r) =>
        `${String(r.restart.requests)} (${String(round(r.restart.requests / r.n, 2))}); ${String(r.restart.jobsCreated)}`,
    ),
    row(
      "after restart: RSS / heap after GC",
      (r) => `${String(r.restart.memory.rssMb)} / ${String(r.restart.memory.heapUsedMb)} MB`,
    ),
    row("load average (1/5/15 min) at burst; idle", (r) => `${r.load.burst ?? ""}; ${r.load.idle ?? ""}`),
    ...growth,
  ].join("\n");
}

const root = mkdtempSync(join(tmpdir(), "hubmirror-bench-scale-"));
const results: SizeResult[] = [];
try {
  for (const n of SIZES) results.push(await runSize(n, root));
} finally {
  await stopAll();
  if (!args.keep) rmSync(root, { recursive: true, force: true });
  else say(`kept ${root}`);
}
const command = `node bench/scale.ts ${process.argv.slice(2).join(" ")}`.trim();
const text = table(results);
console.log(`\n${text}\n`);
if (args.json !== undefined)
  writeFileSync(args.json, JSON.stringify({ command, machine: machine(), results }, null, 2));
if (args.write) {
  const file = join(repoRoot, "BENCHMARKS.md");
  const section = [
    "<!-- scale:begin (written by bench/scale.ts --write) -->",
    `\`${command}\` (${ENTRY}) on ${new Date().toISOString().slice(0, 10)}: ${machine()}.`,
    "",
    text,
    "<!-- scale:end -->",
  ].join("\n");
  const current = readFileSync(file, "utf8");
  const begin = current.indexOf("<!-- scale:begin");
  const end = current.indexOf("<!-- scale:end -->");
  writeFileSync(
    file,
    begin >= 0 && end > begin
      ? current.slice(0, begin) + section + current.slice(end + "<!-- scale:end -->".length)
      : `${current.trimEnd()}\n\n${section}\n`,
  );
  say(`written into ${file}`);
}
process.exit(0);
