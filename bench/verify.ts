/**
 * Benchmark of run verification (issue 5): how fast the operator's verifier checks N
 * mirrored images, against (a) the registry's own HEAD ceiling from a load tool and
 * (b) what a runbook script does, a sequential `skopeo inspect --raw` loop.
 *
 *   node bench/verify.ts [--sizes 1000,10000] [--repeats 3] [--concurrency 32]
 *                        [--auth token|htpasswd] [--skopeo-sample 50]
 *                        [--ab-requests 3000] [--ab-concurrency 8,32] [--keep]
 *
 * It starts its own registry (Debian's docker-registry, TLS, token auth by default: see
 * BENCHMARKS.md for why), seeds N distinct small manifests (one shared config and
 * layer blob per repository, 100 tags per repository), and for each N runs rounds of:
 *
 * - verifier: verifyImages + RegistryClient in a child process (peak RSS is its own),
 *   over all N references with expected digests, from a cold start (ping, tokens);
 * - ceiling: `ab -k -i` (ApacheBench, keep-alive HEAD) at several concurrencies on one
 *   manifest URL with the same Accept and Authorization headers, and a raw undici Pool
 *   in a separate Node process over the same N HEAD requests; the higher is the ceiling;
 *
 * alternating their order between rounds, and then a sequential `skopeo inspect --raw
 * --authfile --cert-dir` loop over an evenly spread sample, scaled to N.
 *
 * The machine may be shared: before each round it waits (briefly) for CPU pressure from
 * other processes to fall, records it, and besides wall-clock rates it reports the CPU
 * time per request of each client and of the registry (from /proc), which background
 * load barely changes. Everything listens on 127.0.0.1 only; time is bounded (about
 * 8 minutes, hard stop at 12). Prints medians, ratios, Markdown tables and JSON.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { Agent, request } from "undici";
import { RegistryClient, sha256Digest } from "../src/registry/client.ts";
import { MANIFEST_ACCEPT, MediaType } from "../src/registry/media-types.ts";
import type { ExpectedImage } from "../src/registry/verify.ts";
import { stopAll } from "../devkit/processes.ts";
import { startRegistry, type RegistryAuth, type TestRegistry } from "../devkit/registry.ts";
import { pushBlob, putManifest } from "../devkit/registry-writer.ts";
import type { WorkerJob, WorkerResult } from "./verify-worker.ts";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const TAGS_PER_REPOSITORY = 100;
/** No new size starts after this; later rounds are skipped after ROUND_LIMIT_MS. */
const TIME_LIMIT_MS = 6 * 60_000;
const ROUND_LIMIT_MS = 8 * 60_000;
/** Hard stop: the benchmark ends (failing) rather than run on. */
const HARD_LIMIT_MS = 12 * 60_000;

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,10000" },
    repeats: { type: "string", default: "3" },
    concurrency: { type: "string", default: "32" },
    auth: { type: "string", default: "token" },
    "skopeo-sample": { type: "string", default: "50" },
    "ab-requests": { type: "string", default: "3000" },
    "ab-concurrency": { type: "string", default: "8,32" },
    keep: { type: "boolean", default: false },
  },
});
const sizes = args.sizes.split(",").map(Number);
const repeats = Number(args.repeats);
const concurrency = Number(args.concurrency);
const authMode = args.auth as RegistryAuth;
const skopeoSample = Number(args["skopeo-sample"]);
const abRequests = Number(args["ab-requests"]);
const abConcurrency = args["ab-concurrency"].split(",").map(Number);
const startedAt = Date.now();

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const mib = (bytes: number) => `${fmt(bytes / 1024 / 1024, 1)} MiB`;
const log = (line: string) => {
  process.stderr.write(`[${fmt((Date.now() - startedAt) / 1000, 0).padStart(4)} s] ${line}\n`);
};

async function which(tool: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
}

/** `some avg10` of /proc/pressure/cpu: % of the last 10 s some task waited for a CPU. */
function cpuPressure(): number {
  try {
    return Number(/some avg10=([\d.]+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** Waits (at most `maxMs`) for other work on the machine to calm down; measurements share 2 cores. */
async function awaitQuiet(maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (cpuPressure() > 10 && Date.now() < deadline) {
    log(`CPU pressure ${fmt(cpuPressure(), 1)} % (other processes); waiting for it to fall below 10 %`);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
  }
}

const clockTicks = Number((await run("getconf", ["CLK_TCK"])).stdout.trim()) || 100;
/** CPU seconds a process has used so far (user + system). */
function processCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

// ---------------------------------------------------------------- seeding

const config = Buffer.from(
  JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
);
const layer = Buffer.from("hub-mirror-operator benchmark layer\n");

function manifestFor(k: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha256Digest(layer), size: layer.length }],
      annotations: { "dev.hubmirror.bench": String(k) },
    }),
  );
}

const repositoryOf = (k: number) => `bench/r${Math.floor(k / TAGS_PER_REPOSITORY)}`;

async function seed(registry: TestRegistry, from: number, to: number): Promise<ExpectedImage[]> {
  const client = new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    connections: 16,
    proxy: {},
  });
  const images: ExpectedImage[] = [];
  try {
    for (let r = Math.floor(from / TAGS_PER_REPOSITORY); r * TAGS_PER_REPOSITORY < to; r++) {
      await pushBlob(client, `bench/r${r}`, config);
      await pushBlob(client, `bench/r${r}`, layer);
    }
    let next = from;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let k = next++; k < to; k = next++) {
          await putManifest(client, repositoryOf(k), `t${k}`, MediaType.ociManifest, manifestFor(k));
        }
      }),
    );
  } finally {
    await client.close();
  }
  for (let k = 0; k < to; k++) {
    images.push({
      destination: `${registry.host}/${repositoryOf(k)}:t${k}`,
      expectedDigest: sha256Digest(manifestFor(k)),
    });
  }
  return images;
}

// ---------------------------------------------------------------- measurements

/** The worker process running now, ended by the watchdog if need be. */
let running: ChildProcess | undefined;

async function worker(job: WorkerJob, dir: string): Promise<WorkerResult> {
  const jobFile = join(dir, `job-${randomBytes(4).toString("hex")}.json`);
  writeFileSync(jobFile, JSON.stringify(job), { mode: 0o600 });
  const child = spawn(process.execPath, ["--expose-gc", join(here, "verify-worker.ts"), jobFile], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  running = child;
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  running = undefined;
  rmSync(jobFile, { force: true });
  if (code !== 0) throw new Error(`${job.mode} worker exited with ${code}`);
  const result = JSON.parse(out.trim().split("\n").pop() ?? "") as WorkerResult;
  if (!result.ok) throw new Error(`${job.mode} worker: not every image verified: ${result.summary}`);
  return result;
}

interface AbResult {
  readonly concurrency: number;
  readonly perSecond: number;
  /** CPU time of ab itself per request (ms). */
  readonly clientMs: number;
  /** CPU time of the registry per request during the run (ms). */
  readonly registryMs: number;
}

/** CPU seconds of this process's waited-for children so far (cutime + cstime). */
function childrenCpu(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[13]) + Number(fields[14])) / clockTicks;
}

async function bearerFor(registry: TestRegistry, repository: string): Promise<string> {
  const basic = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString("base64")}`;
  const issuer = registry.tokenIssuer;
  if (issuer === undefined) return basic;
  const agent = new Agent({ connect: { ca: registry.caPem } });
  try {
    const url = new URL(issuer.realm);
    url.searchParams.set("service", issuer.service);
    url.searchParams.set("scope", `repository:${repository}:pull`);
    const res = await request(url, { dispatcher: agent, headers: { authorization: basic } });
    return `Bearer ${((await res.body.json()) as { token: string }).token}`;
  } finally {
    await agent.close();
  }
}

async function ab(registry: TestRegistry, authorization: string, c: number): Promise<AbResult> {
  const url = `https://${registry.host}/v2/${repositoryOf(0)}/manifests/t0`;
  const registry0 = processCpu(registry.pid);
  const children0 = childrenCpu();
  const { stdout } = await run(
    "ab",
    [
      "-k",
      "-q",
      "-i",
      "-c",
      String(c),
      "-n",
      String(abRequests),
      "-H",
      `Authorization: ${authorization}`,
      "-H",
      `Accept: ${MANIFEST_ACCEPT}`,
      url,
    ],
    { maxBuffer: 1 << 20 },
  );
  const field = (name: string) => new RegExp(`${name}:\\s+([\\d.]+)`).exec(stdout)?.[1];
  const failed = Number(field("Failed requests") ?? "0") + Number(field("Non-2xx responses") ?? "0");
  if (failed > 0) throw new Error(`ab: ${failed} failed requests`);
  return {
    concurrency: c,
    perSecond: Number(field("Requests per second")),
    clientMs: ((childrenCpu() - children0) * 1000) / abRequests,
    registryMs: ((processCpu(registry.pid) - registry0) * 1000) / abRequests,
  };
}

async function skopeoLoop(
  registry: TestRegistry,
  certDir: string,
  images: readonly ExpectedImage[],
): Promise<number> {
  const step = Math.max(1, Math.floor(images.length / skopeoSample));
  const sample = images.filter((_, i) => i % step === 0).slice(0, skopeoSample);
  const started = performance.now();
  for (const image of sample) {
    await run("skopeo", [
      "inspect",
      "--raw",
      "--authfile",
      registry.authFile,
      "--cert-dir",
      certDir,
      `docker://${image.destination}`,
    ]);
  }
  return (performance.now() - started) / sample.length;
}

// ---------------------------------------------------------------- main

interface Measured {
  readonly result: WorkerResult;
  /** Registry CPU per request during the run (ms). */
  readonly registryMs: number;
}

interface Round {
  /** CPU pressure (other processes) just before the round. */
  readonly pressure: number;
  readonly verifier: Measured;
  readonly raw: Measured;
  readonly ab: readonly AbResult[];
}

interface SizeReport {
  readonly n: number;
  readonly rounds: Round[];
  skopeoMsPerImage: number;
}

async function measured(job: WorkerJob, registry: TestRegistry, n: number): Promise<Measured> {
  const cpu0 = processCpu(registry.pid);
  const result = await worker(job, dir);
  return { result, registryMs: ((processCpu(registry.pid) - cpu0) * 1000) / n };
}

const dir = mkdtempSync(join(tmpdir(), "hubmirror-bench-verify-"));
const watchdog = setTimeout(() => {
  log(`still running after ${HARD_LIMIT_MS / 60_000} minutes: stopping`);
  running?.kill("SIGKILL");
  void stopAll().finally(() => process.exit(2));
}, HARD_LIMIT_MS);
watchdog.unref();
const tools = {
  ab: await which("ab"),
  wrk: await which("wrk"),
  h2load: await which("h2load"),
  skopeo: await which("skopeo"),
};
log(
  `machine: ${cpus().length} cores, load average ${loadavg()
    .map((l) => fmt(l, 2))
    .join(" ")}; tools: ${JSON.stringify(tools)}`,
);
if (!tools.skopeo) throw new Error("skopeo is missing: run `bash hack/setup.sh`");

const registry = await startRegistry(join(dir, "registry"), "bench-registry", { auth: authMode });
const certDir = join(dir, "skopeo-certs");
mkdirSync(certDir);
copyFileSync(registry.caFile, join(certDir, "ca.crt"));
const reports: SizeReport[] = [];
try {
  log(`registry ${registry.host} (${authMode} auth), pid ${registry.pid}`);
  let seeded = 0;
  let images: ExpectedImage[] = [];
  for (const n of sizes) {
    if (Date.now() - startedAt > TIME_LIMIT_MS) {
      log(`time limit reached; skipping N = ${n}`);
      break;
    }
    const seedStart = performance.now();
    images = await seed(registry, seeded, n);
    log(`seeded ${n - seeded} manifests in ${fmt((performance.now() - seedStart) / 1000, 1)} s (N = ${n})`);
    seeded = n;
    const refsFile = join(dir, `refs-${n}.json`);
    writeFileSync(refsFile, JSON.stringify(images.slice(0, n)));
    const base = {
      host: registry.host,
      caPem: registry.caPem,
      username: registry.username,
      password: registry.password,
      refsFile,
      concurrency,
      ...(registry.tokenIssuer !== undefined && {
        token: { realm: registry.tokenIssuer.realm, service: registry.tokenIssuer.service },
      }),
    };
    const authorization = await bearerFor(registry, repositoryOf(0));
    const report: SizeReport = { n, rounds: [], skopeoMsPerImage: NaN };
    for (let round = 1; round <= repeats; round++) {
      if (round > 1 && Date.now() - startedAt > ROUND_LIMIT_MS) {
        log(`time budget used: N = ${n} gets ${round - 1} rounds`);
        break;
      }
      await awaitQuiet(10_000);
      const pressure = cpuPressure();
      // Alternate the order, so that load arriving mid-round does not always hit the same one.
      const order = round % 2 === 1 ? ["verifier", "ab", "raw"] : ["raw", "ab", "verifier"];
      let verifier: Measured | undefined;
      let raw: Measured | undefined;
      const abRound: AbResult[] = [];
      for (const what of order) {
        if (what === "verifier") verifier = await measured({ ...base, mode: "verifier" }, registry, n);
        else if (what === "raw") raw = await measured({ ...base, mode: "raw" }, registry, n);
        else if (tools.ab) for (const c of abConcurrency) abRound.push(await ab(registry, authorization, c));
      }
      if (verifier === undefined || raw === undefined) throw new Error("round incomplete");
      report.rounds.push({ pressure, verifier, raw, ab: abRound });
      const v = verifier.result;
      log(
        `N = ${n} round ${round}: verifier ${fmt(v.perSecond)}/s (${fmt(v.elapsedMs / 1000, 2)} s, peak RSS ${mib(v.maxRss)}); ` +
          `ab ${abRound.map((a) => `c${a.concurrency} ${fmt(a.perSecond)}/s`).join(", ")}; raw undici ${fmt(raw.result.perSecond)}/s; ` +
          `CPU pressure before ${fmt(pressure, 1)} %, after ${fmt(cpuPressure(), 1)} %`,
      );
    }
    await awaitQuiet(10_000);
    report.skopeoMsPerImage = await skopeoLoop(registry, certDir, images.slice(0, n));
    log(
      `N = ${n}: skopeo inspect --raw ${fmt(report.skopeoMsPerImage, 1)} ms per image (sample of ${skopeoSample})`,
    );
    reports.push(report);
  }
} finally {
  await registry.stop();
  await stopAll();
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- report

const cores = cpus().length;
/** Requests per second the machine could serve if the registry and this client had all its cores. */
const capacity = (registryMs: number, clientMs: number) => (cores * 1000) / (registryMs + clientMs);
const throughputRows: string[] = [];
const cpuRows: string[] = [];
const summary: Record<string, unknown>[] = [];
for (const r of reports) {
  const rounds = r.rounds;
  const bestAb = (round: Round) => Math.max(0, ...round.ab.map((a) => a.perSecond));
  const bestAbRun = (round: Round) =>
    round.ab.reduce<AbResult | undefined>((x, a) => (x && x.perSecond >= a.perSecond ? x : a), undefined);
  const verifier = median(rounds.map((x) => x.verifier.result.perSecond));
  const abBest = median(rounds.map(bestAb));
  const raw = median(rounds.map((x) => x.raw.result.perSecond));
  const ceiling = Math.max(abBest, raw);
  const ratio = median(
    rounds.map((x) => x.verifier.result.perSecond / Math.max(bestAb(x), x.raw.result.perSecond)),
  );
  const skopeo = 1000 / r.skopeoMsPerImage;
  const peak = median(rounds.map((x) => x.verifier.result.maxRss));
  const heapBefore = median(rounds.map((x) => x.verifier.result.heapBeforeGc));
  const heapAfter = median(rounds.map((x) => x.verifier.result.heapAfterGc));
  const verifierMs = median(rounds.map((x) => x.verifier.result.cpuMs / r.n));
  const rawMs = median(rounds.map((x) => x.raw.result.cpuMs / r.n));
  const abMs = median(rounds.map((x) => bestAbRun(x)?.clientMs ?? NaN));
  const registryMs = {
    verifier: median(rounds.map((x) => x.verifier.registryMs)),
    raw: median(rounds.map((x) => x.raw.registryMs)),
    ab: median(rounds.map((x) => bestAbRun(x)?.registryMs ?? NaN)),
  };
  const cap = {
    verifier: capacity(registryMs.verifier, verifierMs),
    raw: capacity(registryMs.raw, rawMs),
    ab: capacity(registryMs.ab, abMs),
  };
  const capCeiling = Math.max(cap.raw, Number.isFinite(cap.ab) ? cap.ab : 0);
  summary.push({
    n: r.n,
    verifierPerSecond: verifier,
    verifierSeconds: median(rounds.map((x) => x.verifier.result.elapsedMs / 1000)),
    abPerSecond: abBest,
    rawUndiciPerSecond: raw,
    ceilingPerSecond: ceiling,
    verifierOverCeilingMedianOfRounds: ratio,
    skopeoMsPerImage: r.skopeoMsPerImage,
    skopeoScaledSeconds: (r.skopeoMsPerImage * r.n) / 1000,
    verifierOverSkopeo: verifier / skopeo,
    verifierPeakRssBytes: peak,
    verifierRssBeforeBytes: median(rounds.map((x) => x.verifier.result.rssBefore)),
    verifierHeapBeforeGcBytes: heapBefore,
    verifierHeapAfterGcBytes: heapAfter,
    cpuMsPerRequest: { verifier: verifierMs, rawUndici: rawMs, ab: abMs },
    registryCpuMsPerRequest: registryMs,
    cpuCapacityPerSecond: cap,
    rounds: rounds.map((x) => ({
      cpuPressureBefore: x.pressure,
      verifier: Math.round(x.verifier.result.perSecond),
      raw: Math.round(x.raw.result.perSecond),
      ab: x.ab.map((a) => [a.concurrency, Math.round(a.perSecond)]),
    })),
  });
  throughputRows.push(
    `| ${r.n} | ${fmt(verifier)}/s (${fmt(median(rounds.map((x) => x.verifier.result.elapsedMs / 1000)), 1)} s) | ` +
      `${fmt(abBest)}/s | ${fmt(raw)}/s | ${fmt(ratio * 100)} % | ` +
      `${fmt(r.skopeoMsPerImage, 1)} ms = ${fmt(skopeo, 1)}/s (${fmt((r.skopeoMsPerImage * r.n) / 1000)} s) | ${fmt(verifier / skopeo)}x | ` +
      `${mib(peak)} | ${mib(heapBefore)} / ${mib(heapAfter)} |`,
  );
  cpuRows.push(
    `| ${r.n} | ${fmt(verifierMs, 3)} / ${fmt(registryMs.verifier, 2)} | ${fmt(rawMs, 3)} / ${fmt(registryMs.raw, 2)} | ` +
      `${fmt(abMs, 3)} / ${fmt(registryMs.ab, 2)} | ${fmt(cap.verifier)} / ${fmt(cap.raw)} / ${fmt(cap.ab)} | ` +
      `${fmt((cap.verifier / capCeiling) * 100)} % |`,
  );
}
process.stdout.write(
  [
    "",
    `verify benchmark: ${authMode} auth, concurrency ${concurrency}, ${repeats} rounds, medians; ` +
      `${cores} cores, load average at end ${loadavg()
        .map((l) => fmt(l, 2))
        .join(" ")}`,
    "",
    "Wall clock:",
    "",
    "| N | verifier | ceiling: ab -k (best c) | ceiling: raw undici | verifier / ceiling (median of rounds) | skopeo loop (scaled to N) | verifier / skopeo | verifier peak RSS | verifier heap after GC: before / after |",
    "|---|---|---|---|---|---|---|---|---|",
    ...throughputRows,
    "",
    "CPU per request in ms (client / registry), and the throughput that CPU cost allows on all cores:",
    "",
    "| N | verifier | raw undici | ab | capacity: verifier / raw / ab | verifier / best capacity |",
    "|---|---|---|---|---|---|",
    ...cpuRows,
    "",
    JSON.stringify(summary),
    "",
  ].join("\n"),
);
