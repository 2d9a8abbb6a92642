/**
 * Micro-benchmark of the controller's in-process costs with a fleet in the cache (issue 14):
 * reconciles per second of an idle MirrorJob, and time and heap allocation per Secret event,
 * with 1,000 MirrorJobs (10 namespaces of 100, three finished runs each: 3,000 Jobs and 9,000
 * ConfigMaps). No API server: the real controller (cache, routing, decide, its loop) with the
 * dev kit's in-memory shell.
 *
 *   node --expose-gc --max-semi-space-size=256 bench/reconcile.ts [--mirrorjobs 1000] [--rounds 5]
 *   npm run bench:reconcile
 *
 * Side by side, the landed controller's work for the same inputs (commit 8f354f1, the code
 * before the index-based cache; transcribed below as `landed*`, nothing else of it is used):
 * a Secret event zod-parsed every MirrorJob of the namespace from a copy of the informer's
 * list, and a reconcile found its Jobs and ConfigMaps by scanning copies of every cached Job
 * and ConfigMap. Prints medians of `--rounds` rounds and the ratios.
 */
import { parseArgs } from "node:util";
import { GCProfiler } from "node:v8";
import type { KubernetesObject, V1ConfigMap, V1Job, V1Secret } from "@kubernetes/client-node";
import { pino } from "pino";
import { validateMirrorJob } from "../src/api/validation.ts";
import { LABELS, MANAGER, labelValue, runNames } from "../src/job/names.ts";
import { referencedNames } from "../src/reconcile/preflight.ts";
import type { DecideSettings } from "../src/reconcile/protocol.ts";
import { inputsHash } from "../src/reconcile/triggers.ts";
import { RESULT_KEYS, encodeJsonGzip } from "../src/report/result.ts";
import type { CacheListener, RawMirrorJob } from "../src/runtime/cache.ts";
import { MirrorJobController } from "../src/runtime/controller.ts";
import { MemoryShell } from "../devkit/memory-shell.ts";

const { values: args } = parseArgs({
  options: { mirrorjobs: { type: "string", default: "1000" }, rounds: { type: "string", default: "5" } },
});
const N = Number(args.mirrorjobs);
const ROUNDS = Number(args.rounds);
const NAMESPACES = 10;
const RUNS = 3;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench:reconcile does)");

const settings: DecideSettings = {
  defaultOcMirrorImage: "r.example.com/oc-mirror:1",
  defaultOcMirrorLine: "4.20",
  operatorImage: "r.example.com/op:1",
  heartbeatTimeoutSeconds: 60,
  drainBatchWindowMs: 0,
  applyNamespaces: [],
};
const now = new Date("2026-11-27T12:00:00Z");
const owner = (namespace: string, name: string) => ({
  apiVersion: "hubmirror.dev/v1alpha1",
  kind: "MirrorJob",
  name,
  uid: `uid-${namespace}-${name}`,
  controller: true,
});

function secret(namespace: string, name: string, resourceVersion = "1"): V1Secret {
  return {
    metadata: { name, namespace, resourceVersion },
    type: "kubernetes.io/dockerconfigjson",
    data: {
      ".dockerconfigjson": Buffer.from(
        JSON.stringify({ auths: { "reg.example.com": { auth: Buffer.from("u:p").toString("base64") } } }),
      ).toString("base64"),
    },
  };
}

const spec = (i: number) => ({
  imageSet: { inline: { mirror: { additionalImages: [{ name: `quay.io/a/image-${String(i)}:1` }] } } },
  registry: { url: "reg.example.com/mirror", pushSecretRef: { name: `push-${String(i)}` } },
  apply: { mode: "None" },
  verify: { enabled: false },
});

/** A MirrorJob whose last run succeeded and whose status is what the controller itself writes. */
function mirrorJob(namespace: string, i: number): RawMirrorJob {
  const name = `mj-${String(i)}`;
  const parsed = validateMirrorJob({
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: { name, namespace },
    spec: spec(i),
  });
  if (!parsed.ok) throw new Error("invalid spec");
  const last = {
    id: `run-${String(RUNS - 1)}`,
    jobName: `${name}-run-${String(RUNS - 1)}`,
    trigger: "Created" as const,
    generation: 1,
    startTime: "2026-11-27T11:00:00Z",
    completionTime: "2026-11-27T11:10:00Z",
    inputsHash: inputsHash(parsed.value.spec, parsed.value.spec.imageSet.inline ?? { mirror: {} }),
    result: "Succeeded" as const,
    message: "ok",
  };
  return {
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: {
      name,
      namespace,
      uid: `uid-${namespace}-${name}`,
      generation: 1,
      resourceVersion: "1",
      creationTimestamp: new Date("2026-11-27T10:00:00Z"),
    },
    spec: spec(i),
    status: { lastRun: last, lastSuccessfulRun: last },
  };
}

function runObjects(namespace: string, name: string): KubernetesObject[] {
  const objects: KubernetesObject[] = [];
  for (let r = 0; r < RUNS; r++) {
    const names = runNames(name, `run-${String(r)}`);
    const labels = {
      [LABELS.managedBy]: MANAGER,
      [LABELS.mirrorJob]: labelValue(name),
      [LABELS.run]: `run-${String(r)}`,
    };
    const meta = (n: string) => ({
      name: n,
      namespace,
      labels,
      ownerReferences: [owner(namespace, name)],
      resourceVersion: "1",
    });
    const job: V1Job = {
      metadata: {
        ...meta(names.job),
        creationTimestamp: new Date(Date.parse("2026-11-27T11:00:00Z") + r * 1000),
      },
      status: { conditions: [{ type: "Complete", status: "True" }] },
    };
    const result: V1ConfigMap = {
      metadata: meta(names.result),
      binaryData: {
        [RESULT_KEYS.mapping]: encodeJsonGzip([]),
        [RESULT_KEYS.clusterResources]: encodeJsonGzip([]),
      },
    };
    objects.push(job, result, { metadata: meta(names.input) }, { metadata: meta(`${names.job}-extra`) });
  }
  return objects;
}

interface Fleet {
  readonly controller: MirrorJobController;
  readonly emit: CacheListener;
  readonly mirrorJobs: RawMirrorJob[];
  readonly jobs: V1Job[];
  readonly configMaps: V1ConfigMap[];
}

async function fleet(): Promise<Fleet> {
  let listener: CacheListener | undefined;
  const controller = new MirrorJobController({
    logger: pino({ level: "silent" }),
    settings,
    shell: new MemoryShell(),
    now: () => now,
    watch: (cache, l) => {
      listener = (resource, type, obj) => {
        cache.apply(resource, type, obj);
        l(resource, type, obj);
      };
      return { synced: () => false, stop: () => Promise.resolve() }; // no workers: the bench drives
    },
  });
  controller.start();
  const emit: CacheListener = (r, t, o) => listener?.(r, t, o);
  const mirrorJobs: RawMirrorJob[] = [];
  const jobs: V1Job[] = [];
  const configMaps: V1ConfigMap[] = [];
  for (let i = 0; i < N; i++) {
    const namespace = `ns-${String(i % NAMESPACES)}`;
    const mj = mirrorJob(namespace, i);
    mirrorJobs.push(mj);
    emit("secrets", "add", secret(namespace, `push-${String(i)}`));
    for (const o of runObjects(namespace, mj.metadata?.name ?? "")) {
      if ((o as V1Job).status !== undefined) {
        jobs.push(o);
        emit("jobs", "add", o);
      } else {
        configMaps.push(o);
        emit("configMaps", "add", o);
      }
    }
    emit("mirrorJobs", "add", mj);
  }
  // Bring every MirrorJob to the status the controller writes for it (idle from then on).
  for (const mj of mirrorJobs) {
    const key = `${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`;
    const { status } = await controller.reconcile(key);
    if (status !== undefined) mj.status = status;
  }
  await controller.stop();
  return { controller, emit, mirrorJobs, jobs, configMaps };
}

// --- The landed controller's work (8f354f1 src/runtime/controller.ts), transcribed ---

/** enqueueReferrers for a Secret: every MirrorJob of a copy of the informer's list, zod-parsed. */
function landedSecretEvent(
  obj: V1Secret,
  informerList: () => RawMirrorJob[],
  add: (key: string) => void,
): void {
  for (const mj of informerList()) {
    if (mj.metadata?.namespace !== obj.metadata?.namespace) continue;
    const parsed = validateMirrorJob(mj);
    if (parsed.ok && referencedNames(parsed.value.spec).secrets.includes(obj.metadata?.name ?? ""))
      add(`${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`);
  }
}

/** observe(): the MirrorJob's Jobs and result ConfigMaps from copies of every cached one. */
function landedObserve(
  namespace: string,
  name: string,
  jobs: () => V1Job[],
  configMaps: () => V1ConfigMap[],
) {
  const label = labelValue(name);
  const own = jobs().filter(
    (j) => j.metadata?.namespace === namespace && j.metadata.labels?.[LABELS.mirrorJob] === label,
  );
  const results = new Map(
    configMaps()
      .filter((c) => c.metadata?.namespace === namespace && c.metadata.labels?.[LABELS.mirrorJob] === label)
      .map((c) => [c.metadata?.name ?? "", c]),
  );
  return { own, results };
}

// --- Measurement ---

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/**
 * Time per call (µs) over `count` calls, and heap allocated per call (bytes): the heap's
 * growth over batches of 10 calls during which no garbage collection ran (v8.GCProfiler says;
 * a collection would hide what was allocated), median of those batches.
 */
async function measure(count: number, call: (i: number) => unknown): Promise<{ us: number; bytes: number }> {
  gc?.();
  const start = performance.now();
  for (let i = 0; i < count; i++) await call(i);
  const us = ((performance.now() - start) * 1000) / count;
  const perBatch: number[] = [];
  for (let i = 0; i < Math.min(count, 500);) {
    const profiler = new GCProfiler();
    profiler.start();
    const heap = process.memoryUsage().heapUsed;
    const end = i + 10;
    for (; i < end; i++) await call(i);
    const grown = process.memoryUsage().heapUsed - heap;
    if (profiler.stop().statistics.length === 0) perBatch.push(grown / 10);
  }
  return { us, bytes: perBatch.length > 0 ? median(perBatch) : Number.NaN };
}

const f = await fleet();
const keys = f.mirrorJobs.map((mj) => `${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`);
const unrelated = (i: number) => secret(`ns-${String(i % NAMESPACES)}`, `token-${String(i)}`, String(i + 2));
const referenced = (i: number) =>
  secret(`ns-${String(i % NAMESPACES)}`, `push-${String(i % N)}`, String(i + 2));
const copies = {
  mirrorJobs: () => [...f.mirrorJobs],
  jobs: () => [...f.jobs],
  configMaps: () => [...f.configMaps],
};
const EVENTS = 2_000;
const RECONCILES = 2_000;

const rows: Record<string, { now: number[]; landed: number[]; unit: string }> = {};
const record = (what: string, unit: string, current: number, landed: number) => {
  const row = (rows[what] ??= { now: [], landed: [], unit });
  row.now.push(current);
  row.landed.push(landed);
};
let added = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, make] of [
    ["unrelated Secret event", unrelated],
    ["referenced Secret event", referenced],
  ] as const) {
    const current = await measure(EVENTS, (i) => {
      f.emit("secrets", "update", make(i + round * EVENTS));
    });
    const landed = await measure(EVENTS, (i) => {
      landedSecretEvent(make(i + round * EVENTS), copies.mirrorJobs, () => added++);
    });
    record(`${label}: time`, "µs", current.us, landed.us);
    record(`${label}: heap allocated`, "bytes", current.bytes, landed.bytes);
  }
  const reconcile = await measure(RECONCILES, (i) => f.controller.reconcile(keys[i % keys.length] ?? ""));
  const observe = await measure(RECONCILES, (i) => {
    const [namespace = "", name = ""] = (keys[i % keys.length] ?? "").split("/");
    return landedObserve(namespace, name, copies.jobs, copies.configMaps);
  });
  // The landed reconcile did all the current one does besides its observe(): add the difference.
  record("reconcile of an idle MirrorJob: time", "µs", reconcile.us, reconcile.us + observe.us);
}

console.log(
  `${String(N)} MirrorJobs in ${String(NAMESPACES)} namespaces, ${String(f.jobs.length)} Jobs, ${String(f.configMaps.length)} ConfigMaps; ` +
    `${String(ROUNDS)} rounds of ${String(EVENTS)} events and ${String(RECONCILES)} reconciles; medians (Node ${process.version})\n`,
);
console.log("| measure | now | landed (8f354f1) | landed / now |");
console.log("| --- | --- | --- | --- |");
for (const [what, row] of Object.entries(rows)) {
  const a = median(row.now);
  const b = median(row.landed);
  const fmt = (x: number) =>
    row.unit === "bytes" ? `${Math.round(x).toLocaleString("en")} B` : `${x.toFixed(1)} µs`;
  console.log(`| ${what} | ${fmt(a)} | ${fmt(b)} | ${a > 0 ? `${(b / a).toFixed(0)}×` : "∞"} |`);
}
const perSecond = 1e6 / median(rows["reconcile of an idle MirrorJob: time"]?.now ?? [1]);
console.log(`\nreconciles per second (now): ${Math.round(perSecond).toLocaleString("en")}`);
if (added < 0) console.log(added); // keeps the baseline's work observable
