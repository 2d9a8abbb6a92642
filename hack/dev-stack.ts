/**
 * `npm start`: runs the operator, in one of two modes.
 *
 * - **Cluster mode** (KUBECONFIG set, or ~/.kube/config present and its cluster answering):
 *   checks that the MirrorJob CRD is installed (installs it from config/crd/ when missing and
 *   allowed), then runs the manager in this process against that cluster, with Lease-based
 *   leader election (so an operator already installed there keeps this one on standby),
 *   logging JSON lines (pino) to stdout until Ctrl-C.
 * - **Local mode** (no cluster configured, or `--local`, or `--check`): the local development
 *   stack, all on 127.0.0.1. A real control plane (etcd, kube-apiserver,
 *   kube-controller-manager) with stand-in CRDs for the OpenShift APIs the operator applies to,
 *   the offline upstream of devkit/upstream.ts (a source registry with a release channel,
 *   an operator catalog and additional images; an update graph and release signature server), a
 *   target registry, the operator in this process, and the test pod runner playing the kubelet
 *   for the Jobs' pods, which run the real oc-mirror (built by hack/setup.sh). It creates a
 *   namespace, Secrets, ConfigMaps and a sample MirrorJob (config/samples/release-and-operator.yaml
 *   pointed at the upstream: a release range with its update graph, an operator package and
 *   three additional images, apply.mode Auto), prints the MirrorJob's status changes until its
 *   run ends, then what the target registry holds and the objects applied, then how to use the
 *   stack, and runs until Ctrl-C. `--check` stops after the sample run and exits 0 only if it
 *   succeeded, every image is in the target and the objects are applied.
 *
 * Nothing outlives the stack: harness processes run under `setpriv --pdeathsig KILL`; the pod
 * runner's processes (not started that way) are killed on shutdown and, should this process be
 * killed outright, by a small reaper process that notices its pipe from this one closing and
 * also removes the stack's folder (`$TMPDIR/hubmirror-dev-*`).
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
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
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  VersionApi,
  Watch,
  type KubernetesObject,
} from "@kubernetes/client-node";
import type { V1CustomResourceDefinition } from "@kubernetes/client-node";
import { pino } from "pino";
import { parse, stringify } from "yaml";
import { KINDS, PULL_SECRET } from "../src/apply/kinds.ts";
import { GROUP, PLURAL, VERSION } from "../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../src/api/status.ts";
import { configFromEnv, runManager, type Manager } from "../src/cli/manager.ts";
import { LABELS, labelValue } from "../src/job/names.ts";
import { OC_MIRROR_LINES, type OcMirrorLine } from "../src/ocmirror/lines.ts";
import { stripAnsi } from "../src/ocmirror/progress.ts";
import { destinationEntries } from "../src/ocmirror/mapping.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { parseReference } from "../src/registry/reference.ts";
import { readResultConfigMap } from "../src/report/result.ts";
import { cacheDir, kubectlBinary, ocMirrorBinary, repoRoot } from "../devkit/binaries.ts";
import { startControlPlane } from "../devkit/control-plane.ts";
import { installCrds, projectCrds } from "../devkit/crds.ts";
import { installOpenShiftStandIns, OPENSHIFT_NAMESPACES, openshiftCrds } from "../devkit/openshift.ts";
import { startPodRunner, type PodRunner } from "../devkit/pod-runner.ts";
import { stopAll } from "../devkit/processes.ts";
import { startRegistry, type TestRegistry } from "../devkit/registry.ts";
import { startUpstream, type OfflineUpstream } from "../devkit/upstream.ts";

const USAGE = `usage: node hack/dev-stack.ts [--local | --cluster] [--check]

  (no option)  cluster mode if KUBECONFIG is set or ~/.kube/config reaches a cluster,
               otherwise the local development stack
  --local      the local development stack, even if a cluster is configured
  --cluster    cluster mode (fails if no cluster is configured)
  --check      the local stack: run the sample MirrorJob to its end, print, stop; exit 0
               only if it succeeded, the target holds its images and its objects are applied

environment: HUBMIRROR_* (the manager's settings, see README; HUBMIRROR_OC_MIRROR_LINE picks
  the oc-mirror line the local stack's Jobs run), and HUBMIRROR_OC_MIRROR (an oc-mirror binary
  of your own for the default line, instead of the one hack/setup.sh builds)
`;

const CRD_NAME = `${PLURAL}.${GROUP}`;
/** The sample MirrorJob's namespace (the operator's own, as in config/samples). */
const NAMESPACE = "hub-mirror-operator";
const START_TIME = Date.now();
/** How long the sample run may take (a real run of its 20 images takes well under a minute). */
const SAMPLE_TIMEOUT_MS = 300_000;

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

/**
 * The pod runner's folders of `oc-mirror` shims (one per line): every process of a Job's pod
 * has one of them first in its PATH.
 */
const shimDirOf = (dir: string) => join(dir, "pods", "bin");

/** Pids of processes whose environment has `PATH=<shimDir>/<line>:` (the pods' processes). */
function podProcesses(dir: string): number[] {
  const marker = `PATH=${shimDirOf(dir)}/`;
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

interface OcMirrorBuild {
  readonly line: OcMirrorLine;
  readonly binary: string;
  /** What the binary says it is (`oc-mirror --v2 version`), e.g. v4.20.0-9b186403. */
  readonly version: string;
}

const isLine = (value: unknown): value is OcMirrorLine =>
  (OC_MIRROR_LINES as readonly unknown[]).includes(value);

/** The real oc-mirror of a line (hack/setup.sh builds it) and its version, or why not. */
function ocMirrorBuild(
  line: OcMirrorLine,
  dir: string,
): OcMirrorBuild | { line: OcMirrorLine; problem: string } {
  let binary: string;
  try {
    binary = ocMirrorBinary(line);
  } catch (err) {
    return { line, problem: errorText(err) };
  }
  const home = join(dir, "oc-mirror-version");
  mkdirSync(home, { recursive: true });
  try {
    const out = execFileSync(binary, ["--v2", "version", "--output=json"], {
      encoding: "utf8",
      env: { HOME: home, TMPDIR: home, PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 30_000,
    });
    const json = safeJson(/\{[\s\S]*\}/.exec(out)?.[0] ?? "") as
      { clientVersion?: { gitVersion?: unknown } } | undefined;
    const version = json?.clientVersion?.gitVersion;
    return { line, binary, version: typeof version === "string" ? version : "(version not reported)" };
  } catch (err) {
    return { line, problem: `${binary} --v2 version failed: ${errorText(err)}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Local mode: status lines

interface MirrorJobLike {
  metadata?: { name?: string; namespace?: string; generation?: number };
  spec?: { registry?: { url?: string }; mirror?: { line?: unknown } };
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
  // Applied only where apply.mode asks for it (the sample's is Auto).
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

type Outcome = "Succeeded" | "Failed" | "AwaitingApproval";

/**
 * The end of the sample's run, if it has ended: Ready, failed (Stalled or phase Failed), or
 * waiting for the approval of a disruptive change.
 */
function outcome(mj: MirrorJobLike): Outcome | undefined {
  const status = mj.status;
  if (status?.observedGeneration !== mj.metadata?.generation) return undefined;
  const has = (type: string, value: string) =>
    status?.conditions?.some((c) => c.type === type && c.status === value) === true;
  if (has("Ready", "True")) return "Succeeded";
  if (has("Stalled", "True") || (status?.phase === "Failed" && status.currentRun === undefined))
    return "Failed";
  if (status?.phase === "AwaitingApproval" && status.currentRun === undefined) return "AwaitingApproval";
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

/** The user sample the stack's sample is made from (its metadata and Secret/ConfigMap names). */
const SAMPLE_FILE = "config/samples/release-and-operator.yaml";

/** The Secrets and ConfigMaps the sample refers to (the registry's as in the sample file). */
const INPUTS = {
  push: "mirror-registry-push",
  pull: "mirror-registry-pull",
  registryCa: "mirror-registry-ca",
  sourcePull: "source-pull-secret",
  sourceCa: "source-ca",
  releaseKey: "release-verification-key",
} as const;

/** The target registry's second user, for the pull secret the cluster gets (not the pusher). */
const READER = "reader";

function dockerConfigJson(host: string, username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`).toString("base64");
  return JSON.stringify({ auths: { [host]: { auth } } });
}

const registryPath = (reference: string, host: string) =>
  reference.startsWith(`${host}/`) ? reference.slice(host.length + 1) : reference;

/** `repo:sha256-<64 hex>` as `repo:sha256-<12 hex>...` (only for display; comparisons use the whole). */
const shortTag = (path: string) => path.replace(/:sha256-([0-9a-f]{12})[0-9a-f]{52}$/, ":sha256-$1...");

const shortDigest = (digest: string | undefined) =>
  digest === undefined ? "(missing)" : digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, "$1");

/** What the upstream serves, for the printout. */
function describeUpstream(up: OfflineUpstream): void {
  const host = up.source.host;
  const path = (ref: string) => registryPath(ref, host);
  const versions = up.release.versions;
  say("the offline upstream, in place of Red Hat's registries and services (TLS with its own CAs):");
  say(`  registry https://${host} (every pull needs its credentials):`);
  say(
    `    release channel ${up.release.channel}: ${versions.map((v) => v.version).join(", ")}` +
      ` (${path(versions[0]?.reference ?? "").replace(/:[^:]*$/, "")}, each with ${versions[0]?.components.length ?? 0} components)`,
  );
  say(`    update graph data image ${path(up.release.graphImageReference)}`);
  say(
    `    operator catalog ${path(up.catalog.reference)}: packages ${up.catalog.packages.map((p) => p.name).join(", ")}`,
  );
  say(
    `    images ${path(up.images.multiArch.reference)} (index: linux/amd64, linux/arm64), ` +
      `${path(up.images.digestPinned.reference).replace(/@(sha256:[0-9a-f]{12})[0-9a-f]+$/, "@$1...")}, ` +
      path(up.images.tagOnly.reference),
  );
  say(`  update graph ${up.graphUrl}`);
  say(`  release signatures ${up.signatureUrl} (signed with a test GPG key made at start)`);
}

/**
 * config/samples/release-and-operator.yaml, pointed at the upstream and the target: the whole
 * release channel with its update graph, the catalog's demo-operator package and the three
 * additional images, applied to the stand-in OpenShift APIs.
 */
function sampleMirrorJob(up: OfflineUpstream, target: TestRegistry): Record<string, unknown> {
  const sample = parse(readFileSync(join(repoRoot, SAMPLE_FILE), "utf8")) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  };
  return {
    ...sample,
    metadata: { ...sample.metadata, namespace: NAMESPACE },
    spec: {
      ...sample.spec,
      imageSet: {
        inline: up.imageSetConfig({ release: true, operators: true, additionalImages: true }),
      },
      registry: {
        url: `${target.host}/mirror`,
        pushSecretRef: { name: INPUTS.push },
        pullSecretRef: { name: INPUTS.pull },
        caBundleRef: { name: INPUTS.registryCa },
      },
      source: {
        pullSecretRef: { name: INPUTS.sourcePull },
        caBundleRef: { name: INPUTS.sourceCa },
        release: {
          updateGraphURL: up.graphUrl,
          signatureURL: up.signatureUrl,
          signatureKeyRef: { name: INPUTS.releaseKey },
          graphImage: up.release.graphImageReference,
        },
      },
      // A new ImageTagMirrorSet drains nodes on OpenShift, so it needs approval by default;
      // this cluster has no nodes.
      apply: { mode: "Auto", disruptive: "Allow" },
    },
  };
}

async function createSampleObjects(
  kc: KubeConfig,
  up: OfflineUpstream,
  target: TestRegistry,
  readerPassword: string,
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
  const secret = (name: string, host: string, username: string, password: string) =>
    core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: {
        metadata: { name },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": dockerConfigJson(host, username, password) },
      },
    });
  const configMap = (name: string, key: string, value: string) =>
    core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: { metadata: { name }, data: { [key]: value } },
    });
  await Promise.all([
    secret(INPUTS.push, target.host, target.username, target.password),
    secret(INPUTS.pull, target.host, READER, readerPassword),
    secret(INPUTS.sourcePull, up.source.host, up.source.username, up.source.password),
    configMap(INPUTS.registryCa, "ca-bundle.crt", target.caPem),
    // The source registry's CA and the update graph and signature server's.
    configMap(INPUTS.sourceCa, "ca-bundle.crt", up.caFiles.map((f) => readFileSync(f, "utf8")).join("")),
    configMap(INPUTS.releaseKey, "verification-key.asc", readFileSync(up.publicKeyFile, "utf8")),
  ]);
}

function registryClient(registry: { host: string; username: string; password: string; caPem: string }) {
  return new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    timeoutMs: 10_000,
    retries: 1,
  });
}

/**
 * Every image of the run's mapping (oc-mirror's dry run, kept in the run's result ConfigMap) as
 * the target registry holds it, its digest compared with the source's. True if every image is
 * there and every comparable digest is the source's.
 */
async function showMirrored(
  kc: KubeConfig,
  mj: MirrorJobLike,
  up: OfflineUpstream,
  target: TestRegistry,
): Promise<boolean> {
  const jobName = mj.status?.lastRun?.jobName;
  if (jobName === undefined) {
    say("no finished run to show");
    return false;
  }
  let cm;
  try {
    cm = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: NAMESPACE, name: `${jobName}-result` });
  } catch (err) {
    say(`cannot read the run's result ConfigMap ${NAMESPACE}/${jobName}-result: ${errorText(err)}`);
    return false;
  }
  const result = readResultConfigMap(cm);
  const entries = destinationEntries(result.mapping, `${target.host}/mirror`).sort((a, b) =>
    a.destination.localeCompare(b.destination),
  );
  if (entries.length === 0) {
    say(`the run's mapping names no image in ${target.host}/mirror ${result.problems.join("; ")}`);
    return false;
  }
  const [src, dst] = [registryClient(up.source), registryClient(target)];
  const rows: [string, string, string][] = [];
  let ok = true;
  let compared = 0;
  try {
    for (const entry of entries) {
      const ref = parseReference(entry.destination);
      const found = await dst.headManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
      const digest = found?.digest;
      let note: string;
      let want: string | undefined;
      if (entry.sourceDigest !== undefined) {
        want = entry.sourceDigest;
        note = "source by digest";
      } else if (entry.source.startsWith(`${up.source.host}/`)) {
        const s = parseReference(entry.source);
        want = (await src.headManifest(s.repository, s.digest ?? s.tag ?? "latest"))?.digest;
        note = "source by tag";
      } else if (entry.source.endsWith("/graph-preparation")) {
        want = up.release.graphImage.digest;
        note = "the upstream's graph data image";
      } else {
        note = `rebuilt by oc-mirror (the catalog filtered to the sample's packages)`;
      }
      if (digest === undefined) {
        ok = false;
        rows.push([shortTag(registryPath(entry.destination, target.host)), "MISSING", note]);
        continue;
      }
      let verdict = note;
      if (want !== undefined) {
        compared++;
        if (want === digest) verdict = `= ${note}`;
        else {
          ok = false;
          verdict = `DIFFERS from the ${note}: ${want}`;
        }
      }
      rows.push([shortTag(registryPath(entry.destination, target.host)), shortDigest(digest), verdict]);
    }
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
  const width = Math.max(...rows.map((r) => r[0].length));
  say(
    `the target registry ${target.host} holds (every image of the run's mapping, digests read from both registries):`,
  );
  for (const [path, digest, verdict] of rows)
    say(`  ${path.padEnd(width)}  ${digest.padEnd(19)}  ${verdict}`);
  say(
    `  ${rows.filter((r) => r[1] !== "MISSING").length} of ${rows.length} images present; ` +
      `${compared} compared with the source: ${ok ? "all the source's digests" : "NOT all the source's digests"}`,
  );
  const counted = Object.values(mj.status?.lastRun?.images ?? {}).reduce((n, c) => n + (c?.total ?? 0), 0);
  if (counted > rows.length) {
    say(
      `  (oc-mirror counted ${counted} copies: ${counted - rows.length} of them into its own cache, ` +
        "the catalog it rebuilds from there)",
    );
  }
  return ok;
}

/** The message of an oc-mirror log line (`2026/11/27 10:03:34  [INFO]   : <message>`). */
const ocMirrorMessage = (line: string) =>
  stripAnsi(line)
    .replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\s+\[\w+\]\s+:\s?/, "")
    .trimEnd();

/**
 * What oc-mirror itself said in the mirror pass of the run (the reporter echoes oc-mirror's
 * output: `kubectl logs -c reporter`; the pod runner keeps each container's output in a file):
 * its version, the number of images, its Results and the files it generated.
 */
function showOcMirrorOutput(logDir: string, jobName: string): void {
  const files = (() => {
    try {
      return readdirSync(logDir).filter(
        (f) => f.startsWith(`${NAMESPACE}_${jobName}-`) && f.endsWith(".reporter.log"),
      );
    } catch {
      return [];
    }
  })();
  const file = files.sort().at(-1);
  if (file === undefined) {
    say(`(no reporter log of Job ${jobName} in ${logDir})`);
    return;
  }
  const all = readFileSync(join(logDir, file), "utf8").split("\n").map(ocMirrorMessage);
  // The wrapper runs oc-mirror twice (a dry run, then the mirror pass): the last greeting starts the mirror pass.
  const start = all.findLastIndex((m) => m.startsWith("👋 Hello"));
  const pass = all.slice(Math.max(start, 0));
  const copies = pass.filter((m) => m.startsWith("Success copying ")).length;
  const firstCopy = pass.findIndex((m) => m.startsWith("Success copying "));
  const kept = pass.flatMap((m, i) => {
    if (/environment version|images to copy|^=== Results ===|^[✓✗] |^mirror time/.test(m.trimStart()))
      return [m];
    if (i === firstCopy) return [`(${copies} lines "Success copying <source> ➡️ <target or its cache>")`];
    if (/^📄 Generating .* file\.\.\.$|^📄 Generating Signature Configmap/.test(m)) return [m];
    return [];
  });
  say(`oc-mirror's own output, mirror pass (kubectl logs -c reporter; here ${join(logDir, file)}):`);
  for (const m of kept) say(`  ${m}`);
}

type Obj = KubernetesObject & {
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
};

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const asRecord = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
const asString = (v: unknown): string => (typeof v === "string" ? v : "");

/** What an applied object says, in a line (and sub-lines for mirror sets). */
function objectSummary(obj: Obj): string[] {
  const spec = asRecord(obj.spec);
  const mirrors = (list: unknown) =>
    asArray(list).map((m) => {
      const r = asRecord(m);
      return `${asString(r.source)} -> ${asArray(r.mirrors).map(asString).join(", ")}`;
    });
  switch (obj.kind) {
    case "ImageDigestMirrorSet":
      return mirrors(spec.imageDigestMirrors);
    case "ImageTagMirrorSet":
      return mirrors(spec.imageTagMirrors);
    case "CatalogSource":
      return [`image ${asString(spec.image)} (${asString(spec.sourceType) || "?"})`];
    case "ClusterCatalog":
      return [`image ${asString(asRecord(asRecord(asRecord(spec.source).image)).ref)}`];
    case "UpdateService":
      return [`releases ${asString(spec.releases)}`, `graphDataImage ${asString(spec.graphDataImage)}`];
    case "ConfigMap": {
      const keys = [...Object.keys(obj.binaryData ?? {}), ...Object.keys(obj.data ?? {})];
      const short = keys.map((k) => k.replace(/^(sha256-[0-9a-f]{12})[0-9a-f]{52}/, "$1..."));
      return [`${keys.length} release signatures: ${short.join(", ")}`];
    }
    default:
      return [];
  }
}

/**
 * The objects the operator applied (status.appliedResources), read back from the API server,
 * and the pull secret's entry for the target (never its credentials). True if the generated
 * kinds are all there and the pull secret has the sample's entry.
 */
async function showApplied(kc: KubeConfig, mj: MirrorJobLike, target: TestRegistry): Promise<boolean> {
  const applied = mj.status?.appliedResources ?? [];
  const api = KubernetesObjectApi.makeApiClient(kc);
  const apiVersionOf = (kind: string) => KINDS.find((k) => k.kind === kind)?.apiVersion ?? "v1";
  const rows: { kind: string; namespace: string; name: string; lines: string[] }[] = [];
  let ok = mj.status?.conditions?.some((c) => c.type === "Applied" && c.status === "True") === true;
  for (const r of applied) {
    if (r.kind === "Secret") continue; // the pull secret, below
    let lines: string[];
    try {
      const obj = await api.read<Obj>({
        apiVersion: apiVersionOf(r.kind),
        kind: r.kind,
        metadata: { name: r.name, ...(r.namespace !== undefined && { namespace: r.namespace }) },
      });
      lines = objectSummary(obj);
    } catch (err) {
      ok = false;
      lines = [`NOT FOUND: ${errorText(err)}`];
    }
    rows.push({ kind: r.kind, namespace: r.namespace ?? "", name: r.name, lines });
  }
  const generated = [
    "ImageDigestMirrorSet",
    "ImageTagMirrorSet",
    "CatalogSource",
    "ClusterCatalog",
    "UpdateService",
    "ConfigMap",
  ];
  const missingKinds = generated.filter((k) => !rows.some((r) => r.kind === k));
  if (missingKinds.length > 0) ok = false;

  // The pull secret: which registries it has entries for, and whether the target's is the
  // sample's pull Secret's (compared here, never printed).
  const core = kc.makeApiClient(CoreV1Api);
  const auths = async (namespace: string, name: string): Promise<Record<string, unknown>> => {
    const secret = await core.readNamespacedSecret({ namespace, name });
    const text = Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8");
    return asRecord(asRecord(safeJson(text)).auths);
  };
  let pullSecretLine: string;
  try {
    const [cluster, sample] = await Promise.all([
      auths(PULL_SECRET.namespace, PULL_SECRET.name),
      auths(NAMESPACE, INPUTS.pull),
    ]);
    const entry = cluster[target.host];
    const same = entry !== undefined && JSON.stringify(entry) === JSON.stringify(sample[target.host]);
    if (!same) ok = false;
    const others = Object.keys(cluster).filter((host) => host !== target.host);
    pullSecretLine =
      `auths ${target.host}: ` +
      (entry === undefined
        ? "MISSING"
        : same
          ? `the credentials of Secret ${NAMESPACE}/${INPUTS.pull} (not shown)`
          : `NOT the credentials of Secret ${NAMESPACE}/${INPUTS.pull}`) +
      (others.length > 0 ? `; also ${others.join(", ")}` : "");
  } catch (err) {
    ok = false;
    pullSecretLine = `cannot read: ${errorText(err)}`;
  }
  rows.push({
    kind: "Secret",
    namespace: PULL_SECRET.namespace,
    name: PULL_SECRET.name,
    lines: [pullSecretLine],
  });

  const condition = mj.status?.conditions?.find((c) => c.type === "Applied");
  say(
    `the objects oc-mirror generated, applied by the operator (status.appliedResources, read back from the API server)` +
      // The message's first part (the list of changes that follows is the table below).
      (condition !== undefined
        ? `; Applied=${condition.status}: ${condition.message.replace(/ \(.*$/s, "")}`
        : "") +
      ":",
  );
  const kindWidth = Math.max(4, ...rows.map((r) => r.kind.length));
  const nsWidth = Math.max(9, ...rows.map((r) => r.namespace.length));
  const nameWidth = Math.max(4, ...rows.map((r) => r.name.length));
  say(`  ${"KIND".padEnd(kindWidth)}  ${"NAMESPACE".padEnd(nsWidth)}  ${"NAME".padEnd(nameWidth)}  CONTENT`);
  for (const row of rows) {
    const [first = "", ...rest] = row.lines;
    say(
      `  ${row.kind.padEnd(kindWidth)}  ${row.namespace.padEnd(nsWidth)}  ${row.name.padEnd(nameWidth)}  ${first}`,
    );
    for (const line of rest) say(`  ${"".padEnd(kindWidth + nsWidth + nameWidth + 4)}  ${line}`);
  }
  if (missingKinds.length > 0) say(`  NOT APPLIED: ${missingKinds.join(", ")}`);
  return ok;
}

/**
 * The API server makes a CRD's watch cache on the first request for its resource and answers
 * requests served from that cache with 429 ("storage is (re)initializing") until it is filled.
 * On a real cluster these CRDs have been in use long before; here they were just created, and
 * the operator backs off 10 s, then 20 s... after a 429 (measured: the sample's run ended up
 * to 50 s later). So touch each resource, by the cache, until it answers (bounded: 30 s).
 */
async function warmWatchCaches(kc: KubeConfig, crds: readonly V1CustomResourceDefinition[]): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  for (const crd of crds) {
    const group = crd.spec.group;
    const plural = crd.spec.names.plural;
    const version = crd.spec.versions.find((v) => v.served)?.name ?? "";
    for (let attempt = 1; ; attempt++) {
      try {
        await api.listClusterCustomObject({ group, version, plural, resourceVersion: "0", limit: 1 });
        break;
      } catch (err) {
        if (!isStatus(err, 429) || attempt >= 120) {
          throw new Error(`listing ${plural}.${group} (to fill its watch cache): ${errorText(err)}`, {
            cause: err,
          });
        }
        await sleep(250);
      }
    }
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
    const config = configFromEnv({
      HUBMIRROR_NAMESPACE: NAMESPACE,
      POD_NAME: "dev-stack",
      HUBMIRROR_LEADER_ELECTION: "false",
      HUBMIRROR_HEALTH_PORT: "0",
      HUBMIRROR_OPERATOR_IMAGE: "localhost/hub-mirror-operator:dev",
      HUBMIRROR_HEARTBEAT_TIMEOUT_SECONDS: "30",
      ...process.env,
    });
    say(`local development stack (${why}); files in ${dir}`);
    // Before anything starts: without the real oc-mirror there is nothing to show.
    const builds = OC_MIRROR_LINES.map((line) => ocMirrorBuild(line, dir));
    const build = builds.find((b) => b.line === config.defaultOcMirrorLine);
    if (build === undefined || !("binary" in build)) {
      throw new Error(
        `oc-mirror ${config.defaultOcMirrorLine} (HUBMIRROR_OC_MIRROR_LINE) is not available: ` +
          (build !== undefined && "problem" in build ? build.problem : "unknown line"),
      );
    }
    say(
      "starting etcd, kube-apiserver, kube-controller-manager, the offline upstream and a target registry on 127.0.0.1 ...",
    );
    const readerPassword = randomBytes(18).toString("base64url");
    const [cluster, up, target] = await Promise.all([
      startControlPlane(join(dir, "cluster")),
      startUpstream(join(dir, "upstream")),
      startRegistry(join(dir, "target"), "target", {
        extraUsers: { [READER]: { password: readerPassword } },
      }),
    ]);
    say(`control plane, upstream and target ready in ${((Date.now() - START_TIME) / 1000).toFixed(1)} s`);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigFile);
    await installCrds(kc);
    await installOpenShiftStandIns(kc);
    await warmWatchCaches(kc, [...projectCrds(), ...openshiftCrds()]);
    say(`installed CRD ${CRD_NAME} from config/crd/, and what the operator applies to on OpenShift:`);
    say(
      "  stand-in CRDs for ImageDigestMirrorSet, ImageTagMirrorSet, CatalogSource, ClusterCatalog and UpdateService " +
        "(real groups and kinds, open schemas: devkit/openshift.ts),",
    );
    say(
      `  namespaces ${OPENSHIFT_NAMESPACES.join(", ")}, and ${PULL_SECRET.namespace}/${PULL_SECRET.name} (no entries)`,
    );
    describeUpstream(up);

    // The oc-mirror line each MirrorJob's pods run: spec.mirror.line, else the operator's.
    const lines = new Map<string, OcMirrorLine>();
    const lineKey = (namespace: string, name: string) => `${namespace}/${labelValue(name)}`;
    const namespaces: string[] = [NAMESPACE];
    runner = startPodRunner({
      kc,
      root: join(dir, "pods"),
      // Every namespace with a MirrorJob (refreshed below), so applied MirrorJobs run too.
      namespaces: () => namespaces,
      behaviour: (pod) => ({
        line:
          lines.get(`${pod.metadata?.namespace ?? ""}/${pod.metadata?.labels?.[LABELS.mirrorJob] ?? ""}`) ??
          config.defaultOcMirrorLine,
      }),
    });
    const origin = (b: OcMirrorBuild) =>
      b.binary.startsWith(join(cacheDir(), "oc-mirror"))
        ? "built from source by hack/setup.sh"
        : "HUBMIRROR_OC_MIRROR";
    say(
      `oc-mirror is real: the Jobs run oc-mirror ${build.version} (line ${build.line}, ${origin(build)}: ${build.binary}).`,
    );
    const other = builds.filter((b) => b.line !== build.line);
    for (const b of other) {
      say(
        "binary" in b
          ? `  MirrorJobs with spec.mirror.line "${b.line}" run ${b.version} (${origin(b)}: ${b.binary}).`
          : `  oc-mirror ${b.line} is not available (${b.problem}).`,
      );
    }
    say(
      "This stack has no kubelet (nor scheduler): the test pod runner (devkit/pod-runner.ts)\n" +
        "  plays the kubelet for the Jobs' pods. It runs their containers as local processes, not\n" +
        "  images (the oc-mirror container's wrapper script with that binary as `oc-mirror`; the\n" +
        "  operator's CLI for the others), with their volumes as local folders, and reports their\n" +
        "  status to the API server.",
    );
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
          for (const item of list.items ?? []) {
            const line = item.spec?.mirror?.line;
            lines.set(
              lineKey(item.metadata?.namespace ?? "", item.metadata?.name ?? ""),
              isLine(line) ? line : config.defaultOcMirrorLine,
            );
          }
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
      config,
      kc,
      pino(
        { level: process.env.HUBMIRROR_LOG_LEVEL ?? "debug" },
        pino.destination({ dest: logFile, sync: true }),
      ),
    );
    say(
      `operator running in this process (log: ${logFile}); it may apply objects for MirrorJobs in ` +
        `${config.applyNamespaces.join(", ")} (HUBMIRROR_APPLY_NAMESPACES)`,
    );

    await createSampleObjects(kc, up, target, readerPassword);
    const sample = sampleMirrorJob(up, target);
    const sampleFile = join(dir, "sample-mirrorjob.yaml");
    writeFileSync(sampleFile, stringify(sample));
    const sampleName = (sample.metadata as { name: string }).name;
    say(
      `created namespace ${NAMESPACE}: Secrets ${INPUTS.push}, ${INPUTS.pull} and ${INPUTS.sourcePull}, ` +
        `ConfigMaps ${INPUTS.registryCa}, ${INPUTS.sourceCa} and ${INPUTS.releaseKey}, and MirrorJob ${sampleName} ` +
        `(${SAMPLE_FILE} pointed at the upstream: ${sampleFile}):`,
    );
    const first = up.release.versions[0]?.version ?? "?";
    const last = up.release.versions.at(-1)?.version ?? "?";
    say(
      `  release channel ${up.release.channel} ${first} to ${last} with graph: true, operator package demo-operator, ` +
        "3 additional images;",
    );
    say(`  into ${target.host}/mirror, apply.mode Auto (disruptive: Allow)`);
    lines.set(lineKey(NAMESPACE, sampleName), config.defaultOcMirrorLine);
    let ended: ((o: Outcome) => void) | undefined;
    const end = new Promise<Outcome>((done) => (ended = done));
    let last_: MirrorJobLike | undefined;
    say("");
    say("MirrorJob status changes (phase, conditions with their reasons, progress):");
    stopWatch = watchMirrorJobs(kc, (mj) => {
      if (mj.metadata?.namespace !== NAMESPACE || mj.metadata.name !== sampleName) return;
      last_ = mj;
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
    const result = await Promise.race([end, sleep(SAMPLE_TIMEOUT_MS, "timeout" as const)]);
    // Let the last changes (Verified after Mirrored on a failure) print.
    await sleep(result === "Succeeded" ? 200 : 2_000);
    say("");
    say(
      result === "timeout"
        ? `the sample MirrorJob did not finish within ${SAMPLE_TIMEOUT_MS / 1000} s (see ${logFile})`
        : `the sample MirrorJob ${NAMESPACE}/${sampleName} ended: ${result}`,
    );
    if (result !== "Succeeded") {
      // Why, in the operator's words.
      for (const c of last_?.status?.conditions ?? []) {
        if (c.status !== "True" && c.message !== "")
          say(`  ${c.type}=${c.status}(${c.reason}): ${c.message}`);
      }
      const message = last_?.status?.lastRun?.message;
      if (message !== undefined) say(`  last run: ${message}`);
    }
    say("");
    say(`$ kubectl get mirrorjobs -A`);
    process.stdout.write(kubectlGet(cluster.kubeconfigFile));
    let shown = false;
    if (result === "Succeeded" && last_ !== undefined) {
      // The latest object (the watch may be a little behind).
      const mj = (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: NAMESPACE,
        name: sampleName,
      })) as MirrorJobLike;
      say("");
      showOcMirrorOutput(join(dir, "pods", "logs"), mj.status?.lastRun?.jobName ?? "");
      say("");
      const mirrored = await showMirrored(kc, mj, up, target);
      say("");
      const applied = await showApplied(kc, mj, target);
      shown = mirrored && applied;
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
    const [sourceCerts, targetCerts] = [certDir(up.source, "source"), certDir(target, "target")];
    say(`
how to use the stack (from another terminal):
  export KUBECONFIG=${cluster.kubeconfigFile}
  alias kubectl=${kubectl}   # matches the API server (v1.32)
  kubectl get mirrorjobs -A
  kubectl -n ${NAMESPACE} describe mirrorjob ${sampleName}
  kubectl get imagedigestmirrorsets,imagetagmirrorsets,clustercatalogs
  kubectl get catalogsources,updateservices -A; kubectl -n openshift-config-managed get configmaps
  kubectl apply -f ${sampleFile}   # edit it first: another name, other content of the upstream
registries (TLS with their own CA, htpasswd user "mirror"):
  source  https://${up.source.host}  CA ${up.source.caFile}  authfile ${up.source.authFile}
  target  https://${target.host}  CA ${target.caFile}  authfile ${target.authFile}
  e.g. skopeo inspect --authfile ${target.authFile} --cert-dir ${targetCerts} docker://${target.host}/mirror/demo/toolbox:1.0
       (--cert-dir ${sourceCerts} for the source)
update graph and signatures: ${up.httpsUrl} (CA ${up.httpsCaFile}); release key ${up.publicKeyFile}
logs: operator ${logFile}
      pods ${join(dir, "pods", "logs")}/ (one file per container), others ${dir}/*/*.log and ${dir}/upstream/*/*.log
MirrorJobs in any namespace are run (with their Secrets and ConfigMaps there), by the real
oc-mirror; what they mirror must be reachable from this machine (the upstream is on 127.0.0.1).`);
    if (check) await shutdown(result === "Succeeded" && shown ? 0 : 1);
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
