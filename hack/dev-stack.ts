/**
 * `npm start`: runs the operator, in one of two modes.
 *
 * - **Cluster mode** (KUBECONFIG set, or ~/.kube/config present and its cluster answering):
 *   checks that the MirrorJob CRD is installed (installs it from config/crd/ when missing and
 *   allowed), then runs the manager in this process against that cluster, with Lease-based
 *   leader election (so an operator already installed there keeps this one on standby),
 *   logging JSON lines (pino) to stdout until Ctrl-C.
 * - **Local mode** (no cluster configured, or `--local`, or `--check`): the local development
 *   stack. A real control plane (etcd, kube-apiserver, kube-controller-manager), a source and a
 *   target registry (TLS and htpasswd on 127.0.0.1), the operator in this process and the test
 *   pod runner playing the kubelet for the Jobs' pods, with the oc-mirror fixture standing in
 *   for oc-mirror (a real `oc-mirror` on PATH is run instead, best effort). It seeds the source
 *   registry, creates a namespace, Secrets, CA ConfigMaps and a sample MirrorJob (from
 *   config/samples/additional-images.yaml), prints the MirrorJob's status changes until its run
 *   ends, then how to use the stack, and runs until Ctrl-C. `--check` stops after the sample
 *   run and exits 0 only if it succeeded.
 *
 * Nothing outlives the stack: harness processes run under `setpriv --pdeathsig KILL`; the pod
 * runner's processes (not started that way) are killed on shutdown and, should this process be
 * killed outright, by a small reaper process that notices its pipe from this one closing and
 * also removes the stack's folder (`$TMPDIR/hubmirror-dev-*`).
 */
import { execFileSync, spawn } from "node:child_process";
import {
  accessSync,
  constants,
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import type { Socket } from "node:net";
import { homedir, hostname, tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  VersionApi,
  Watch,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { parse, stringify } from "yaml";
import { GROUP, PLURAL, VERSION } from "../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../src/api/status.ts";
import { configFromEnv, runManager, type Manager } from "../src/cli/manager.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { kubectlBinary, repoRoot } from "../test/harness/binaries.ts";
import { startControlPlane } from "../test/harness/control-plane.ts";
import { installCrds, projectCrds } from "../test/harness/crds.ts";
import { buildImage, pushImage } from "../test/harness/images.ts";
import { startPodRunner, type PodRunner } from "../test/harness/pod-runner.ts";
import { stopAll } from "../test/harness/processes.ts";
import { startRegistry, type TestRegistry } from "../test/harness/registry.ts";

const USAGE = `usage: node hack/dev-stack.ts [--local | --cluster] [--check]

  (no option)  cluster mode if KUBECONFIG is set or ~/.kube/config reaches a cluster,
               otherwise the local development stack
  --local      the local development stack, even if a cluster is configured
  --cluster    cluster mode (fails if no cluster is configured)
  --check      the local stack: run the sample MirrorJob to its end, print, stop;
               exit 0 only if the sample succeeded

environment: HUBMIRROR_* (the manager's settings, see README), and for the local stack
  HUBMIRROR_DEV_OC_MIRROR=fixture      never run a real oc-mirror found on PATH
  HUBMIRROR_DEV_FIXTURE_DELAY_MS=2500  the fixture's pause per image (to watch progress)
`;

const CRD_NAME = `${PLURAL}.${GROUP}`;
/** The sample MirrorJob's namespace (the operator's own, as in config/samples). */
const NAMESPACE = "hub-mirror-operator";
const START_TIME = Date.now();

const say = (line = "") => {
  process.stdout.write(`${line}\n`);
};

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function errorText(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = typeof err.body === "string" ? safeJson(err.body) : err.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return `HTTP ${err.code}${typeof message === "string" ? `: ${message}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isStatus = (err: unknown, code: number) => err instanceof ApiException && err.code === code;

// ---------------------------------------------------------------------------------------------
// Which mode

type Mode = { kind: "local"; why: string } | { kind: "cluster"; kc: KubeConfig; why: string };

async function reachable(kc: KubeConfig): Promise<string | undefined> {
  try {
    await Promise.race([
      kc.makeApiClient(VersionApi).getCode(),
      sleep(5_000).then(() => {
        throw new Error("no answer within 5 s");
      }),
    ]);
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}

async function chooseMode(args: readonly string[]): Promise<Mode> {
  if (args.includes("--check") || args.includes("--local")) {
    return { kind: "local", why: args.includes("--check") ? "--check" : "--local" };
  }
  const envFile = process.env.KUBECONFIG ?? "";
  const homeFile = join(homedir(), ".kube", "config");
  const load = (what: string): KubeConfig => {
    const kc = new KubeConfig();
    try {
      kc.loadFromDefault();
    } catch (err) {
      fail(`cannot read ${what}: ${errorText(err)}`);
    }
    return kc;
  };
  if (envFile !== "") {
    const kc = load(`KUBECONFIG (${envFile})`);
    const problem = await reachable(kc);
    if (problem !== undefined) {
      fail(
        `KUBECONFIG is set (${envFile}) but its cluster ${kc.getCurrentCluster()?.server ?? "?"} cannot be used: ${problem}\n` +
          "unset KUBECONFIG (or run `npm start -- --local`) to start the local development stack instead",
      );
    }
    return { kind: "cluster", kc, why: `KUBECONFIG=${envFile}` };
  }
  let homeExists = true;
  try {
    accessSync(homeFile, constants.R_OK);
  } catch {
    homeExists = false;
  }
  if (homeExists) {
    const kc = load(homeFile);
    const problem = await reachable(kc);
    if (problem === undefined) return { kind: "cluster", kc, why: homeFile };
    if (args.includes("--cluster")) {
      fail(`${homeFile}: cluster ${kc.getCurrentCluster()?.server ?? "?"} cannot be used: ${problem}`);
    }
    say(
      `${homeFile} names cluster ${kc.getCurrentCluster()?.server ?? "?"}, which cannot be used (${problem}): ` +
        "starting the local development stack instead",
    );
    return { kind: "local", why: `${homeFile} unreachable` };
  }
  if (args.includes("--cluster")) fail("--cluster: neither KUBECONFIG nor ~/.kube/config is set up");
  return { kind: "local", why: "no KUBECONFIG and no ~/.kube/config" };
}

// ---------------------------------------------------------------------------------------------
// Cluster mode

async function ensureCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const hint = "ask a cluster admin to run: kubectl apply --server-side -f config/crd/";
  try {
    const crd = await api.readCustomResourceDefinition({ name: CRD_NAME });
    const served = crd.spec.versions.filter((v) => v.served).map((v) => v.name);
    if (!served.includes(VERSION)) {
      fail(
        `CRD ${CRD_NAME} is installed but does not serve ${VERSION} (serves ${served.join(", ") || "nothing"}): ` +
          "update it with `kubectl apply --server-side -f config/crd/`",
      );
    }
    say(`CRD ${CRD_NAME} is installed (serves ${served.join(", ")})`);
    return;
  } catch (err) {
    if (isStatus(err, 403)) {
      // May not read CRDs: whether MirrorJobs are served tells the same.
      try {
        await kc
          .makeApiClient(CustomObjectsApi)
          .listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 });
        say(`MirrorJobs are served (this user may not read CRDs, so ${CRD_NAME} was not inspected)`);
        return;
      } catch (listErr) {
        if (isStatus(listErr, 404)) fail(`CRD ${CRD_NAME} is not installed; ${hint}`);
        fail(
          `this user may neither read CRDs nor list MirrorJobs (${errorText(listErr)}). The manager needs ` +
            `cluster-wide access to MirrorJobs (and Jobs, Pods, Secrets, ConfigMaps...); if CRD ${CRD_NAME} ` +
            `is missing, ${hint}`,
        );
      }
    }
    if (!isStatus(err, 404)) fail(`cannot check CRD ${CRD_NAME}: ${errorText(err)}`);
  }
  say(`CRD ${CRD_NAME} is not installed: installing it from config/crd/ ...`);
  try {
    await installCrds(kc, projectCrds());
  } catch (err) {
    if (isStatus(err, 403)) fail(`this user may not install CRD ${CRD_NAME} (${errorText(err)}); ${hint}`);
    fail(`installing CRD ${CRD_NAME} failed: ${errorText(err)}; ${hint}`);
  }
  say(`CRD ${CRD_NAME} installed`);
}

async function namespaceExists(kc: KubeConfig, name: string): Promise<boolean> {
  try {
    await kc.makeApiClient(CoreV1Api).readNamespace({ name });
    return true;
  } catch {
    return false;
  }
}

async function clusterMode(kc: KubeConfig, why: string): Promise<void> {
  say(
    `cluster mode (${why}): context ${kc.getCurrentContext()}, API server ${kc.getCurrentCluster()?.server ?? "?"}`,
  );
  await ensureCrd(kc);
  const leaseNamespace =
    process.env.HUBMIRROR_NAMESPACE ??
    ((await namespaceExists(kc, NAMESPACE))
      ? NAMESPACE
      : (kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default"));
  const config = configFromEnv({
    HUBMIRROR_NAMESPACE: leaseNamespace,
    POD_NAME: `${hostname()}-dev-${process.pid}`,
    ...process.env,
  });
  say(
    config.leaderElection
      ? `leader election on: Lease ${config.namespace}/${config.leaseName} as ${config.identity} ` +
          "(if an operator in the cluster holds it, this one stands by; HUBMIRROR_LEADER_ELECTION=false turns election off)"
      : "leader election off (HUBMIRROR_LEADER_ELECTION=false): this process reconciles every MirrorJob",
  );
  say(
    `mirror Jobs will run on the cluster's nodes: oc-mirror image ${config.defaultOcMirrorImage}, ` +
      `reporter image ${config.operatorImage} (HUBMIRROR_OC_MIRROR_IMAGE, HUBMIRROR_OPERATOR_IMAGE)`,
  );
  const logger = pino({ level: process.env.HUBMIRROR_LOG_LEVEL ?? "info", base: { component: "manager" } });
  const manager = await runManager(config, kc, logger);
  say(`health: http://127.0.0.1:${manager.health.port}/healthz and /readyz`);
  say("manager logs follow (JSON lines); press Ctrl-C to stop");
  logger.info({ healthPort: manager.health.port, identity: config.identity }, "manager started");
  await new Promise<void>((done) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, done);
  });
  logger.info("shutting down");
  await manager.stop();
  say("manager stopped");
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Local mode: cleanup that survives this process

/** The pod runner's oc-mirror shim folder: every process of a Job's pod has it first in PATH. */
const shimDirOf = (dir: string) => join(dir, "pods", "bin");

/** Pids of processes whose environment has `PATH=<shimDir>:` (the pods' processes). */
function podProcesses(dir: string): number[] {
  const marker = `PATH=${shimDirOf(dir)}:`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1");
      if (environ.startsWith(marker) || environ.includes(`\0${marker}`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function killPodProcesses(dir: string): number {
  let killed = 0;
  for (const pid of podProcesses(dir)) {
    try {
      process.kill(pid, "SIGKILL");
      killed++;
    } catch {
      // already gone
    }
  }
  return killed;
}

/** `--reap <dir>`: waits for the stack's pipe to close, then kills its pods' processes and removes `dir`. */
async function reaper(dir: string): Promise<void> {
  process.on("SIGINT", () => undefined);
  process.stdin.resume();
  await new Promise<void>((done) => {
    process.stdin.once("close", done);
    process.stdin.once("end", done);
  });
  for (let round = 0; round < 5 && killPodProcesses(dir) > 0; round++) await sleep(100);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

function startReaper(dir: string): void {
  const child = spawn(process.execPath, [import.meta.filename, "--reap", dir], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  // The pipe's write end stays open for as long as this process lives (without keeping it alive).
  (child.stdin as Socket | null)?.unref();
}

// ---------------------------------------------------------------------------------------------
// Local mode: oc-mirror

/** A real `oc-mirror` on PATH, unless HUBMIRROR_DEV_OC_MIRROR=fixture. */
function realOcMirror(): string | undefined {
  if (process.env.HUBMIRROR_DEV_OC_MIRROR === "fixture") return undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "oc-mirror");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

const SIMULATED_NOTICE = `oc-mirror is simulated: the Jobs' pods are run by the test pod runner (playing the kubelet),
  and the oc-mirror in them is test/harness/ocmirror-fixture.ts, which imitates oc-mirror 4.20
  (its output, workspace, errors file and exit codes). It copies additional images from
  registries on 127.0.0.1 for real (the sample's images: the target gets the source's digests)
  and makes up every other image (releases, operators, remote registries). The real oc-mirror
  cannot be built here: the Go module proxy refuses its module. A real \`oc-mirror\` on PATH
  would be run instead (best effort).`;

// ---------------------------------------------------------------------------------------------
// Local mode: status lines

interface MirrorJobLike {
  metadata?: { name?: string; namespace?: string; generation?: number };
  spec?: { registry?: { url?: string } };
  status?: MirrorJobStatus;
}

/** One compact line for a MirrorJob's status: phase, Ready/Mirrored/Verified(/Applied), progress. */
export function statusLine(mj: MirrorJobLike): string {
  const status = mj.status;
  if (status === undefined) return "(no status yet)";
  const condition = (type: string) => {
    const c = status.conditions?.find((x) => x.type === type);
    return c === undefined ? `${type}=-` : `${type}=${c.status}(${c.reason})`;
  };
  const parts = [status.phase ?? "-", condition("Ready"), condition("Mirrored"), condition("Verified")];
  // Applied only where apply.mode asks for it (the sample's is None).
  if (status.conditions?.some((c) => c.type === "Applied") === true) parts.push(condition("Applied"));
  const progress = status.currentRun?.progress;
  if (progress !== undefined) {
    parts.push(
      `copied ${progress.copied}/${progress.total}` +
        (progress.failed > 0 ? `, ${progress.failed} failed` : "") +
        (progress.stage !== undefined ? ` (${progress.stage})` : ""),
    );
  } else if (status.lastRun?.images !== undefined) {
    const counts = Object.values(status.lastRun.images).filter((c) => c !== undefined);
    const copied = counts.reduce((n, c) => n + c.copied, 0);
    const total = counts.reduce((n, c) => n + c.total, 0);
    parts.push(`last run ${status.lastRun.result ?? "?"}: copied ${copied}/${total}`);
  }
  return parts.join("  ");
}

type Outcome = "Succeeded" | "Failed";

/** The end of the sample's run, if it has ended: Ready, or failed (Stalled or phase Failed). */
function outcome(mj: MirrorJobLike): Outcome | undefined {
  const status = mj.status;
  if (status?.observedGeneration !== mj.metadata?.generation) return undefined;
  const has = (type: string, value: string) =>
    status?.conditions?.some((c) => c.type === type && c.status === value) === true;
  if (has("Ready", "True")) return "Succeeded";
  if (has("Stalled", "True") || (status?.phase === "Failed" && status.currentRun === undefined))
    return "Failed";
  return undefined;
}

/** Watches every MirrorJob and prints a line whenever one's status line changes. */
function watchMirrorJobs(kc: KubeConfig, onChange: (mj: MirrorJobLike) => void): () => void {
  const printed = new Map<string, string>();
  const state = { stopped: false };
  let controller: AbortController | undefined;
  const path = `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const loop = async () => {
    while (!state.stopped) {
      await new Promise<void>((done) => {
        new Watch(kc)
          .watch(
            path,
            {},
            (_phase: string, obj: unknown) => {
              const mj = obj as MirrorJobLike;
              const key = `${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`;
              const line = statusLine(mj);
              if (printed.get(key) !== line) {
                printed.set(key, line);
                const seconds = ((Date.now() - START_TIME) / 1000).toFixed(1).padStart(6);
                say(`${seconds}s  ${key}  ${line}`);
              }
              onChange(mj);
            },
            () => {
              done();
            },
          )
          .then(
            (c) => {
              controller = c;
            },
            () => {
              done();
            },
          );
      });
      await sleep(1_000);
    }
  };
  void loop();
  return () => {
    state.stopped = true;
    controller?.abort();
  };
}

// ---------------------------------------------------------------------------------------------
// Local mode

function dockerConfigJson(registry: TestRegistry): string {
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString("base64");
  return JSON.stringify({ auths: { [registry.host]: { auth } } });
}

/** config/samples/additional-images.yaml, pointed at the local registries (apply.mode None: no OpenShift here). */
function sampleMirrorJob(images: readonly string[], target: TestRegistry): Record<string, unknown> {
  const sample = parse(readFileSync(join(repoRoot, "config/samples/additional-images.yaml"), "utf8")) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  };
  return {
    ...sample,
    metadata: { ...sample.metadata, namespace: NAMESPACE },
    spec: {
      ...sample.spec,
      imageSet: { inline: { mirror: { additionalImages: images.map((name) => ({ name })) } } },
      registry: {
        url: `${target.host}/mirror`,
        pushSecretRef: { name: "mirror-registry-push" },
        caBundleRef: { name: "mirror-registry-ca", key: "ca-bundle.crt" },
      },
      source: {
        pullSecretRef: { name: "source-pull-secret" },
        caBundleRef: { name: "source-registry-ca", key: "ca-bundle.crt" },
      },
      // The cluster has no OpenShift APIs (IDMS, CatalogSource...): keep the results, apply nothing.
      apply: { mode: "None" },
    },
  };
}

async function createSampleObjects(
  kc: KubeConfig,
  source: TestRegistry,
  target: TestRegistry,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: {
      metadata: {
        name: NAMESPACE,
        labels: {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/enforce-version": "latest",
        },
      },
    },
  });
  const secret = (name: string, registry: TestRegistry) =>
    core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: {
        metadata: { name },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": dockerConfigJson(registry) },
      },
    });
  const ca = (name: string, registry: TestRegistry) =>
    core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: { metadata: { name }, data: { "ca-bundle.crt": registry.caPem } },
    });
  await Promise.all([
    secret("mirror-registry-push", target),
    secret("source-pull-secret", source),
    ca("mirror-registry-ca", target),
    ca("source-registry-ca", source),
  ]);
}

/** Seeds the source registry: a two-platform image by tag, a one-platform image by digest. */
async function seedSource(source: TestRegistry): Promise<string[]> {
  const client = new RegistryClient({
    registry: source.host,
    credentials: { username: source.username, password: source.password },
    caBundle: source.caPem,
  });
  try {
    const toolbox = await buildImage({
      name: "toolbox",
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ],
      files: { "usr/share/toolbox/README": "a demo image of the hub-mirror-operator development stack\n" },
    });
    const pause = await buildImage({ name: "pause" });
    await pushImage(client, "demo/toolbox", "1.0", toolbox);
    await pushImage(client, "demo/pause", "3.10", pause);
    say(`  demo/toolbox:1.0  ${toolbox.digest}  (index: linux/amd64, linux/arm64)`);
    say(`  demo/pause:3.10   ${pause.digest}`);
    return [`${source.host}/demo/toolbox:1.0`, `${source.host}/demo/pause@${pause.digest}`];
  } finally {
    await client.close();
  }
}

/** Source and target digests of each image (proof that the copy kept them). */
async function compareDigests(
  source: TestRegistry,
  target: TestRegistry,
  images: readonly string[],
): Promise<void> {
  const client = (r: TestRegistry) =>
    new RegistryClient({
      registry: r.host,
      credentials: { username: r.username, password: r.password },
      caBundle: r.caPem,
    });
  const [src, dst] = [client(source), client(target)];
  try {
    for (const image of images) {
      const path = image.slice(source.host.length + 1);
      const [repository = "", reference = ""] = path.includes("@") ? path.split("@") : path.split(":");
      const targetTag = reference.startsWith("sha256:") ? reference.replace(":", "-") : reference;
      const a = (await src.headManifest(repository, reference))?.digest ?? "missing";
      const b = (await dst.headManifest(`mirror/${repository}`, targetTag))?.digest ?? "missing";
      say(
        `  ${target.host}/mirror/${repository}:${targetTag}  ${b}  ${a === b ? "= source" : `(source: ${a})`}`,
      );
    }
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
}

function kubectlGet(kubeconfig: string): string {
  try {
    return execFileSync(kubectlBinary(), ["--kubeconfig", kubeconfig, "get", "mirrorjobs", "-A"], {
      encoding: "utf8",
      timeout: 30_000,
    });
  } catch (err) {
    return `(kubectl get mirrorjobs failed: ${errorText(err)})\n`;
  }
}

async function localMode(why: string, check: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "hubmirror-dev-"));
  startReaper(dir);
  let runner: PodRunner | undefined;
  let operator: Manager | undefined;
  let stopWatch: (() => void) | undefined;
  let stopping = false;
  const shutdown = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      say("stopping the development stack ...");
      stopWatch?.();
      if (runner !== undefined) {
        const runnerStopped = runner.stop();
        const runnerState = { done: false };
        void runnerStopped.finally(() => (runnerState.done = true));
        // Pods still running (or starting): end them so the runner does not wait for them.
        for (let i = 0; i < 100 && !runnerState.done; i++) {
          killPodProcesses(dir);
          await sleep(100);
        }
        await runnerStopped;
      }
      await operator?.stop();
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
      say("stopped; removed " + dir);
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));

  try {
    say(`local development stack (${why}); files in ${dir}`);
    say(
      "starting etcd, kube-apiserver, kube-controller-manager, a source and a target registry on 127.0.0.1 ...",
    );
    const [cluster, source, target] = await Promise.all([
      startControlPlane(join(dir, "cluster")),
      startRegistry(join(dir, "source"), "source"),
      startRegistry(join(dir, "target"), "target"),
    ]);
    say(`control plane and registries ready in ${((Date.now() - START_TIME) / 1000).toFixed(1)} s`);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigFile);
    await installCrds(kc);
    say(`installed CRD ${CRD_NAME} from config/crd/`);

    say(`seeding the source registry ${source.host}:`);
    const images = await seedSource(source);

    const ocMirror = realOcMirror();
    const namespaces: string[] = [NAMESPACE];
    runner = startPodRunner({
      kc,
      root: join(dir, "pods"),
      // Every namespace with a MirrorJob (refreshed below), so applied MirrorJobs run too.
      namespaces: () => namespaces,
      behaviour: () => ({ delayMs: Number(process.env.HUBMIRROR_DEV_FIXTURE_DELAY_MS ?? "2500") }),
    });
    if (ocMirror !== undefined) {
      // The runner puts its oc-mirror shim first in the pods' PATH: point it at the real one.
      writeFileSync(join(shimDirOf(dir), "oc-mirror"), `#!/bin/sh\nexec "${ocMirror}" "$@"\n`, {
        mode: 0o755,
      });
      say(
        `oc-mirror: running the real ${ocMirror} found on PATH in the Jobs' pods (best effort; ` +
          "HUBMIRROR_DEV_OC_MIRROR=fixture uses the fixture instead)",
      );
    } else {
      say(SIMULATED_NOTICE);
    }
    const custom = kc.makeApiClient(CustomObjectsApi);
    const refreshNamespaces = async () => {
      while (!stopping) {
        try {
          const list = (await custom.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
          })) as {
            items?: MirrorJobLike[];
          };
          const found = new Set([NAMESPACE, ...(list.items ?? []).map((i) => i.metadata?.namespace ?? "")]);
          namespaces.splice(0, namespaces.length, ...[...found].filter((n) => n !== ""));
        } catch {
          // the API server is stopping
        }
        await sleep(1_000);
      }
    };
    void refreshNamespaces();

    const logFile = join(dir, "operator.log");
    operator = await runManager(
      configFromEnv({
        HUBMIRROR_NAMESPACE: NAMESPACE,
        POD_NAME: "dev-stack",
        HUBMIRROR_LEADER_ELECTION: "false",
        HUBMIRROR_HEALTH_PORT: "0",
        HUBMIRROR_OPERATOR_IMAGE: "localhost/hub-mirror-operator:dev",
        HUBMIRROR_HEARTBEAT_TIMEOUT_SECONDS: "30",
        ...process.env,
      }),
      kc,
      pino(
        { level: process.env.HUBMIRROR_LOG_LEVEL ?? "debug" },
        pino.destination({ dest: logFile, sync: true }),
      ),
    );
    say(`operator running in this process (log: ${logFile})`);

    await createSampleObjects(kc, source, target);
    const sample = sampleMirrorJob(images, target);
    const sampleFile = join(dir, "sample-mirrorjob.yaml");
    writeFileSync(sampleFile, stringify(sample));
    say(
      `created namespace ${NAMESPACE}: Secrets mirror-registry-push and source-pull-secret, ` +
        `ConfigMaps mirror-registry-ca and source-registry-ca, and MirrorJob tools (${sampleFile})`,
    );
    const sampleName = (sample.metadata as { name: string }).name;
    let ended: ((o: Outcome) => void) | undefined;
    const end = new Promise<Outcome>((done) => (ended = done));
    say("");
    say("MirrorJob status changes (phase, conditions with their reasons, progress):");
    stopWatch = watchMirrorJobs(kc, (mj) => {
      if (mj.metadata?.namespace !== NAMESPACE || mj.metadata.name !== sampleName) return;
      const o = outcome(mj);
      if (o !== undefined) ended?.(o);
    });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: NAMESPACE,
      body: sample,
    });
    const result = await Promise.race([end, sleep(180_000, "timeout" as const)]);
    // Let the last changes (Verified after Mirrored on a failure) print.
    await sleep(result === "Succeeded" ? 200 : 2_000);
    say("");
    say(
      result === "timeout"
        ? `the sample MirrorJob did not finish within 180 s (see ${logFile})`
        : `the sample MirrorJob ${NAMESPACE}/${sampleName} ended: ${result}`,
    );
    say("");
    say(`$ kubectl get mirrorjobs -A`);
    process.stdout.write(kubectlGet(cluster.kubeconfigFile));
    if (result === "Succeeded") {
      say("");
      say("the target registry holds the source's digests:");
      await compareDigests(source, target, images);
    }
    const kubectl = (() => {
      try {
        return kubectlBinary();
      } catch {
        return "kubectl";
      }
    })();
    // skopeo/podman read every *.crt of --cert-dir as a CA (and want a .cert for every .key).
    const certDir = (r: TestRegistry, name: string) => {
      const certs = join(dir, "certs", name);
      mkdirSync(certs, { recursive: true });
      writeFileSync(join(certs, "ca.crt"), r.caPem);
      return certs;
    };
    const [sourceCerts, targetCerts] = [certDir(source, "source"), certDir(target, "target")];
    say(`
how to use the stack (from another terminal):
  export KUBECONFIG=${cluster.kubeconfigFile}
  alias kubectl=${kubectl}   # matches the API server (v1.32)
  kubectl get mirrorjobs -A
  kubectl -n ${NAMESPACE} describe mirrorjob ${sampleName}
  kubectl apply -f ${sampleFile}   # edit it first: another name, other images
registries (TLS with their own CA, htpasswd user "mirror"):
  source  https://${source.host}  CA ${source.caFile}  authfile ${source.authFile}
  target  https://${target.host}  CA ${target.caFile}  authfile ${target.authFile}
  e.g. skopeo inspect --authfile ${target.authFile} --cert-dir ${targetCerts} docker://${target.host}/mirror/demo/toolbox:1.0
       (--cert-dir ${sourceCerts} for the source)
logs: operator ${logFile}
      pods ${join(dir, "pods", "logs")}/ (one file per container), others ${dir}/*/*.log
MirrorJobs in any namespace are run (with their Secrets and CA ConfigMaps there); images on
127.0.0.1 registries are copied, others are made up${ocMirror === undefined ? " (oc-mirror is simulated)" : ""}.`);
    if (check) await shutdown(result === "Succeeded" ? 0 : 1);
    say("press Ctrl-C to stop (everything above is removed)");
    setInterval(() => undefined, 1 << 30);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await shutdown(1);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(args: readonly string[]): Promise<void> {
  if (args[0] === "--reap" && args[1] !== undefined) return reaper(args[1]);
  if (args.includes("--help") || args.includes("-h")) {
    say(USAGE);
    return;
  }
  const unknown = args.filter((a) => !["--local", "--cluster", "--check"].includes(a));
  if (unknown.length > 0) fail(`unknown option ${unknown.join(" ")}\n${USAGE}`);
  if (args.includes("--cluster") && (args.includes("--local") || args.includes("--check"))) {
    fail("--cluster cannot be combined with --local or --check");
  }
  const mode = await chooseMode(args);
  if (mode.kind === "cluster") await clusterMode(mode.kc, mode.why);
  else await localMode(mode.why, args.includes("--check"));
}

if (import.meta.filename === resolve(process.argv[1] ?? "")) await main(process.argv.slice(2));
