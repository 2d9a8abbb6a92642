/**
 * The local development stack, all on 127.0.0.1: a real control plane (etcd, kube-apiserver,
 * kube-controller-manager) with the project's CRD and stand-in CRDs for the OpenShift APIs the
 * operator applies to, the offline upstream (upstream.ts: a source registry with a release
 * channel, an operator catalog and additional images; an update graph and release signature
 * server), a target registry, the operator (the real manager, in this process), and the Jobs'
 * pods, which run the real oc-mirror (built by hack/setup.sh), in one of two ways (`pods`):
 *
 * - `"node"`: a real node (node.ts: kubelet, containerd, kube-proxy, with kube-scheduler in the
 *   control plane) runs them as containers of the project image (built from the Dockerfile) and
 *   the oc-mirror image (node-images.ts); the upstream and the target then listen on the host's
 *   end of the node's host link (node-host-link.ts), the only address its pods reach besides
 *   the node's own. Needs root, hack/setup.sh's Debian packages and Kubernetes builds
 *   (`realNodeProblem()` says what is missing);
 * - `"runner"`: the test pod runner plays the kubelet, running their containers as local
 *   processes; everything listens on 127.0.0.1.
 *
 * `npm start` (hack/dev-stack.ts) runs it and its demo.
 *
 * Nothing outlives the stack: harness processes run under `setpriv --pdeathsig KILL`, the node
 * has its own reaper (node-reaper.ts), and the pod runner's processes are killed by `stop()`
 * or, should this process be killed outright, by the reaper of stack-reaper.ts (which the
 * caller starts).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomBytes } from "node:crypto";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { GROUP, PLURAL, VERSION } from "../src/api/mirrorjob.ts";
import { PULL_SECRET } from "../src/apply/kinds.ts";
import { runManager, type Manager, type ManagerConfig } from "../src/cli/manager.ts";
import { LABELS, labelValue } from "../src/job/names.ts";
import { OC_MIRROR_LINES, type OcMirrorLine } from "../src/ocmirror/lines.ts";
import { kubeBinary, type KubeCommand } from "./binaries.ts";
import { startControlPlane, type ControlPlane } from "./control-plane.ts";
import { installCrds, projectCrds } from "./crds.ts";
import { errorText, isApiStatus } from "./kube-errors.ts";
import { nodeControlPlaneOptions, startNode, type RealNode } from "./node.ts";
import { ocMirrorImage, projectImage } from "./node-images.ts";
import { buildOrigin, isLine, ocMirrorBuild } from "./oc-mirror-build.ts";
import { installOpenShiftStandIns, OPENSHIFT_NAMESPACES, openshiftCrds } from "./openshift.ts";
import { startPodRunner, type PodRunner } from "./pod-runner.ts";
import { stopAll } from "./processes.ts";
import { startRegistry, type TestRegistry } from "./registry.ts";
import { killPodProcesses } from "./stack-reaper.ts";
import { startUpstream, type OfflineUpstream } from "./upstream.ts";

const CRD_NAME = `${PLURAL}.${GROUP}`;
/** The target registry's second user, for the pull secret the cluster gets (not the pusher). */
const READER = "reader";

export interface LocalStackOptions {
  /** The stack's folder (made by the caller; `stop()` removes it). */
  readonly dir: string;
  /** A namespace whose pods run from the start (those of others once they hold a MirrorJob). */
  readonly namespace: string;
  /** Prints a line of what the stack does. */
  readonly say: (line?: string) => void;
  /** When the stack was asked for (epoch ms), for "ready in N s". */
  readonly startTime: number;
  /** Who runs the Jobs' pods: a real node, or the test pod runner (see the module comment). */
  readonly pods: "node" | "runner";
}

export interface RunningStack {
  readonly cluster: ControlPlane;
  readonly kc: KubeConfig;
  readonly upstream: OfflineUpstream;
  readonly target: TestRegistry;
  /** The target's second user (not the pusher): what the cluster pulls with. */
  readonly reader: { readonly username: string; readonly password: string };
  /** The operator's log. */
  readonly logFile: string;
  /** Who runs the Jobs' pods. */
  readonly pods: "node" | "runner";
  /** Where the pods' logs are: a folder of the pod runner's files, or `kubectl logs`. */
  readonly podLogs: string;
  /** The reporter's log (oc-mirror's output) of a Job's newest pod, and where it was read. */
  reporterLog(jobName: string): Promise<{ where: string; text: string } | undefined>;
}

/** Commands the real node needs (hack/setup.sh installs them). */
const NODE_COMMANDS = [
  "containerd",
  "runc",
  "buildah",
  "mmdebstrap",
  "unshare",
  "nsenter",
  "ip",
  "iptables",
  "catatonit",
];
const NODE_KUBE_COMMANDS: readonly KubeCommand[] = ["kubelet", "kube-proxy", "kube-scheduler"];

/** Why the real node cannot run here (undefined: it can). */
export function realNodeProblem(): string | undefined {
  if (process.platform !== "linux") return `${process.platform} is not Linux`;
  if (process.getuid?.() !== 0) {
    return "not root (the node needs network, PID and mount namespaces, cgroups and a veth pair)";
  }
  if (!readdirSync("/sys/fs/cgroup").includes("memory") && !existsCgroup2()) return "no memory cgroup";
  for (const command of NODE_COMMANDS) {
    try {
      execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    } catch {
      return `${command} is not installed (bash hack/setup.sh installs it)`;
    }
  }
  for (const command of NODE_KUBE_COMMANDS) {
    try {
      kubeBinary(command);
    } catch (err) {
      return `${command}: ${errorText(err)}`;
    }
  }
  return undefined;
}

function existsCgroup2(): boolean {
  try {
    return readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").split(/\s+/).includes("memory");
  } catch {
    return false;
  }
}

/** MirrorJobs as the pod runner's line lookup reads them. */
interface MirrorJobLines {
  metadata?: { name?: string; namespace?: string };
  spec?: { mirror?: { line?: unknown } };
}

export class LocalStack {
  private readonly options: LocalStackOptions;
  private runner: PodRunner | undefined;
  private node: RealNode | undefined;
  private operator: Manager | undefined;
  private stopped = false;

  constructor(options: LocalStackOptions) {
    this.options = options;
  }

  /**
   * Starts everything, the operator with `config` (its default oc-mirror line, the namespaces
   * it may apply for, ...); fails if the operator's oc-mirror line has no binary.
   */
  async start(requested: ManagerConfig): Promise<RunningStack> {
    let config = requested;
    const { dir, say } = this.options;
    // Before anything starts: without the real oc-mirror there is nothing to show.
    const builds = OC_MIRROR_LINES.map((line) => ocMirrorBuild(line, dir));
    const build = builds.find((b) => b.line === config.defaultOcMirrorLine);
    if (build === undefined || !("binary" in build)) {
      throw new Error(
        `oc-mirror ${config.defaultOcMirrorLine} (HUBMIRROR_OC_MIRROR_LINE) is not available: ` +
          (build !== undefined && "problem" in build ? build.problem : "unknown line"),
      );
    }
    const readerPassword = randomBytes(18).toString("base64url");
    const startServers = (listenAddress?: string) =>
      Promise.all([
        startUpstream(join(dir, "upstream"), { ...(listenAddress !== undefined && { listenAddress }) }),
        startRegistry(join(dir, "target"), "target", {
          extraUsers: { [READER]: { password: readerPassword } },
          ...(listenAddress !== undefined && { listenAddress }),
        }),
      ]);
    let cluster: ControlPlane;
    let up: OfflineUpstream;
    let target: TestRegistry;
    if (this.options.pods === "node") {
      say(
        "starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1, and " +
          "building (or finding cached) the project image and the oc-mirror image with buildah ...",
      );
      const clusterDir = join(dir, "cluster");
      const [cp, [project, ocMirror]] = await Promise.all([
        startControlPlane(clusterDir, nodeControlPlaneOptions(clusterDir)),
        (async () => [await projectImage(), await ocMirrorImage()] as const)(),
      ]);
      cluster = cp;
      say(
        `control plane and images ready in ${((Date.now() - this.options.startTime) / 1000).toFixed(1)} s ` +
          `(${project.name}, ${(project.sizeBytes / 1e6).toFixed(0)} MB; ${ocMirror.name}, ${(ocMirror.sizeBytes / 1e6).toFixed(0)} MB)`,
      );
      const node = await startNode(cluster, { dir: join(dir, "node"), cleanupDir: dir, hostLink: true });
      this.node = node;
      const link = node.hostLink;
      if (link === undefined) throw new Error("the real node has no host link");
      [up, target] = await startServers(link.hostAddress);
      link.allow([up.source.host, up.httpsUrl, target.host].map((h) => Number(/:(\d+)$/.exec(h)?.[1])));
      const operatorImage = await node.pushImage(project.name);
      const defaultOcMirrorImage = await node.pushImage(ocMirror.name);
      config = { ...config, operatorImage, defaultOcMirrorImage, defaultOcMirrorLine: ocMirror.line };
      say(
        `real node ${node.name} Ready (kubelet, containerd, kube-proxy in a network namespace of their own); ` +
          `the offline upstream and the target registry on ${link.hostAddress}, the host's end of the node's ` +
          `host link (its pods reach nothing else of the host), ready in ${((Date.now() - this.options.startTime) / 1000).toFixed(1)} s`,
      );
    } else {
      say(
        "starting etcd, kube-apiserver, kube-controller-manager, the offline upstream and a target registry on 127.0.0.1 ...",
      );
      [cluster, [up, target]] = await Promise.all([startControlPlane(join(dir, "cluster")), startServers()]);
      say(
        `control plane, upstream and target ready in ${((Date.now() - this.options.startTime) / 1000).toFixed(1)} s`,
      );
    }
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
    describeUpstream(up, say);

    say(
      `oc-mirror is real: the Jobs run oc-mirror ${build.version} (line ${build.line}, ${buildOrigin(build)}: ${build.binary}).`,
    );
    const other = this.options.pods === "runner" ? builds.filter((b) => b.line !== build.line) : [];
    for (const b of other) {
      say(
        "binary" in b
          ? `  MirrorJobs with spec.mirror.line "${b.line}" run ${b.version} (${buildOrigin(b)}: ${b.binary}).`
          : `  oc-mirror ${b.line} is not available (${b.problem}).`,
      );
    }
    if (this.options.pods === "runner") {
      // The oc-mirror line each MirrorJob's pods run: spec.mirror.line, else the operator's.
      const lines = new Map<string, OcMirrorLine>();
      const lineKey = (namespace: string, name: string) => `${namespace}/${labelValue(name)}`;
      const namespaces: string[] = [this.options.namespace];
      this.runner = startPodRunner({
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
      say(
        "This stack has no kubelet (nor scheduler): the test pod runner (devkit/pod-runner.ts)\n" +
          "  plays the kubelet for the Jobs' pods. It runs their containers as local processes, not\n" +
          "  images (the oc-mirror container's wrapper script with that binary as `oc-mirror`; the\n" +
          "  operator's CLI for the others), with their volumes as local folders, and reports their\n" +
          "  status to the API server.",
      );
      const custom = kc.makeApiClient(CustomObjectsApi);
      const refreshNamespaces = async () => {
        while (!this.stopped) {
          try {
            const list = (await custom.listClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural: PLURAL,
            })) as {
              items?: MirrorJobLines[];
            };
            for (const item of list.items ?? []) {
              const line = item.spec?.mirror?.line;
              lines.set(
                lineKey(item.metadata?.namespace ?? "", item.metadata?.name ?? ""),
                isLine(line) ? line : config.defaultOcMirrorLine,
              );
            }
            const found = new Set([
              this.options.namespace,
              ...(list.items ?? []).map((i) => i.metadata?.namespace ?? ""),
            ]);
            namespaces.splice(0, namespaces.length, ...[...found].filter((n) => n !== ""));
          } catch {
            // the API server is stopping
          }
          await sleep(1_000);
        }
      };
      void refreshNamespaces();
    } else {
      say(
        "The Jobs' pods run on the real node (devkit/node.ts): kube-scheduler places them, the kubelet\n" +
          `  runs their containers with containerd: oc-mirror in ${config.defaultOcMirrorImage} (that binary),\n` +
          `  the others in ${config.operatorImage} (the project's Dockerfile); other oc-mirror lines need\n` +
          "  spec.mirror.image (only the default line has an image here).",
      );
    }

    const logFile = join(dir, "operator.log");
    this.operator = await runManager(
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
    return {
      cluster,
      kc,
      upstream: up,
      target,
      reader: { username: READER, password: readerPassword },
      logFile,
      pods: this.options.pods,
      podLogs:
        this.options.pods === "runner"
          ? `${join(dir, "pods", "logs")}/ (one file per container)`
          : `kubectl logs (the node's own logs: ${join(dir, "node")}/*.log)`,
      reporterLog: (jobName) =>
        this.options.pods === "runner"
          ? Promise.resolve(runnerReporterLog(join(dir, "pods", "logs"), this.options.namespace, jobName))
          : nodeReporterLog(kc, this.options.namespace, jobName),
    };
  }

  /** Stops what has started (also after a failed or unfinished start) and removes the folder. */
  async stop(): Promise<void> {
    this.stopped = true;
    const { dir } = this.options;
    if (this.runner !== undefined) {
      const runnerStopped = this.runner.stop();
      const runnerState = { done: false };
      void runnerStopped.finally(() => (runnerState.done = true));
      // Pods still running (or starting): end them so the runner does not wait for them.
      for (let i = 0; i < 100 && !runnerState.done; i++) {
        killPodProcesses(dir);
        await sleep(100);
      }
      await runnerStopped;
    }
    await this.operator?.stop();
    await this.node?.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The reporter's log of a Job's newest pod, from the pod runner's files. */
function runnerReporterLog(
  logDir: string,
  namespace: string,
  jobName: string,
): { where: string; text: string } | undefined {
  const files = (() => {
    try {
      return readdirSync(logDir).filter(
        (f) => f.startsWith(`${namespace}_${jobName}-`) && f.endsWith(".reporter.log"),
      );
    } catch {
      return [];
    }
  })();
  const file = files.sort().at(-1);
  if (file === undefined) return undefined;
  return { where: join(logDir, file), text: readFileSync(join(logDir, file), "utf8") };
}

/** The reporter's log of a Job's newest pod, from the kubelet (`kubectl logs`). */
async function nodeReporterLog(
  kc: KubeConfig,
  namespace: string,
  jobName: string,
): Promise<{ where: string; text: string } | undefined> {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${jobName}` });
  const pod = pods.items
    .sort((a, b) =>
      String(a.metadata?.creationTimestamp ?? "").localeCompare(String(b.metadata?.creationTimestamp ?? "")),
    )
    .at(-1);
  const name = pod?.metadata?.name;
  if (name === undefined) return undefined;
  const text = await core.readNamespacedPodLog({ name, namespace, container: "reporter" });
  return { where: `kubectl -n ${namespace} logs ${name} -c reporter`, text };
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
        if (!isApiStatus(err, 429) || attempt >= 120) {
          throw new Error(`listing ${plural}.${group} (to fill its watch cache): ${errorText(err)}`, {
            cause: err,
          });
        }
        await sleep(250);
      }
    }
  }
}

/** `host/path` as `path` (for the printout). */
export const registryPath = (reference: string, host: string) =>
  reference.startsWith(`${host}/`) ? reference.slice(host.length + 1) : reference;

/** What the upstream serves, for the printout. */
function describeUpstream(up: OfflineUpstream, say: (line?: string) => void): void {
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
