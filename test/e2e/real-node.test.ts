/**
 * The real node (devkit/node.ts): kubelet + containerd run the project's image, built
 * from its Dockerfile with buildah, under the `restricted` Pod Security profile; then the
 * operator, installed with its Helm chart, runs MirrorJobs whose pods run the real oc-mirror
 * in a container (an image of the binary hack/setup.sh built) against the offline upstream.
 * This file starts its own control plane (one that serves a node: kube-scheduler,
 * ServiceAccount tokens, the node controllers) and its own node; the shared control plane of
 * the other e2e files has no node, so the test pod runner and this node never meet.
 *
 * The node's pods reach the upstream and the target registry through the node's host link
 * (devkit/node-host-link.ts): both listen on the host's end of it, and the content names
 * that address. Nothing else is reachable from the node.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Container,
  type V1Job,
  type V1Pod,
  type V1PodSpec,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helmBinary, kubectlBinary, repoRoot } from "../../devkit/binaries.ts";
import { startControlPlane, type ControlPlane } from "../../devkit/control-plane.ts";
import { NODE_LINK_INTERFACE } from "../../devkit/node-host-link.ts";
import {
  ocMirrorImage,
  projectImage,
  type ImageInfo,
  type OcMirrorImageInfo,
} from "../../devkit/node-images.ts";
import { NODE_NAME, nodeControlPlaneOptions, startNode, type RealNode } from "../../devkit/node.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";
import { waitFor } from "../../devkit/processes.ts";
import { startRegistry, type TestRegistry } from "../../devkit/registry.ts";
import { createSourceInputs, dockerConfigJson, upstreamSource } from "../../devkit/source-inputs.ts";
import { startUpstream, upstreamInfo, type OfflineUpstream } from "../../devkit/upstream.ts";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../../src/api/status.ts";

const say = (line: string) => {
  process.stdout.write(`[real-node] ${line}\n`);
};

let dir = "";
let cp: ControlPlane | undefined;
let node: RealNode | undefined;
let image: ImageInfo | undefined;
let imageRef = "";
let ocMirror: OcMirrorImageInfo | undefined;
let ocMirrorRef = "";
/** The offline upstream and the target registry, on the host's end of the node's host link. */
let upstream: OfflineUpstream | undefined;
let target: TestRegistry | undefined;
const readerPassword = randomBytes(18).toString("base64url");
/** The host link's counters right after the probe pod (what the MirrorJobs add comes after). */
let linkAfterProbe: { allowed: number; refused: number } | undefined;
let kc: KubeConfig;
let core: CoreV1Api;
const namespace = "real-node";
/** Host kernel tunables the kubelet would change, read before the node started. */
const TUNABLES = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops"];
let hostTunablesBefore: Record<string, string> = {};

function hostTunables(): Record<string, string> {
  return Object.fromEntries(TUNABLES.map((t) => [t, readFileSync(`/proc/sys/${t}`, "utf8").trim()]));
}

async function restrictedNamespace(name: string): Promise<void> {
  await core.createNamespace({
    body: {
      metadata: {
        name,
        labels: {
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/enforce-version": "latest",
        },
      },
    },
  });
  await waitFor(
    `the default ServiceAccount and kube-root-ca.crt in ${name}`,
    async () => {
      await core.readNamespacedServiceAccount({ name: "default", namespace: name });
      await core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace: name });
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hubmirror-node-"));
  const clusterDir = join(dir, "cluster");
  const started = Date.now();
  const [controlPlane, [built, builtOcMirror]] = await Promise.all([
    startControlPlane(clusterDir, nodeControlPlaneOptions(clusterDir)),
    (async () => [await projectImage(say), await ocMirrorImage(say)] as const)(),
  ]);
  cp = controlPlane;
  image = built;
  ocMirror = builtOcMirror;
  const about = (i: ImageInfo) =>
    `${i.name}, ${(i.sizeBytes / 1e6).toFixed(1)} MB, ${i.cached ? "cached" : `built in ${i.buildSeconds.toFixed(0)} s`}`;
  say(
    `control plane and images ready in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(${about(image)}; ${about(ocMirror)})`,
  );
  hostTunablesBefore = hostTunables();
  node = await startNode(cp, { dir: join(dir, "node"), cleanupDir: dir, log: say, hostLink: true });
  const link = node.hostLink;
  if (link === undefined) throw new Error("the node has no host link");
  const pushStarted = Date.now();
  imageRef = await node.pushImage(image.name);
  const pushedProject = Date.now();
  ocMirrorRef = await node.pushImage(ocMirror.name);
  say(
    `pushed ${imageRef} in ${((pushedProject - pushStarted) / 1000).toFixed(1)} s, ` +
      `${ocMirrorRef} in ${((Date.now() - pushedProject) / 1000).toFixed(1)} s`,
  );
  // What the MirrorJobs mirror from and to, where the node's pods reach it (and only that).
  const upstreamStarted = Date.now();
  [upstream, target] = await Promise.all([
    startUpstream(join(dir, "upstream"), { listenAddress: link.hostAddress }),
    startRegistry(join(dir, "target"), "target", {
      listenAddress: link.hostAddress,
      extraUsers: { reader: { password: readerPassword } },
    }),
  ]);
  link.allow(
    [upstream.source.host, upstream.httpsUrl, target.host].map((h) => Number(/:(\d+)$/.exec(h)?.[1])),
  );
  say(
    `upstream ${upstream.source.host} (update graph ${upstream.httpsUrl}) and target ${target.host} ` +
      `ready in ${((Date.now() - upstreamStarted) / 1000).toFixed(1)} s`,
  );
  kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigFile);
  core = kc.makeApiClient(CoreV1Api);
  await restrictedNamespace(namespace);
}, 1_200_000);

afterAll(async () => {
  await node?.stop();
  await upstream?.stop();
  await target?.stop();
  await cp?.stop();
  if (dir !== "" && process.env.HUBMIRROR_KEEP_HARNESS !== "1") rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** A container that passes the `restricted` profile with the image's own (numeric) user. */
function restrictedContainer(
  name: string,
  args: readonly string[],
  extra: Partial<V1Container> = {},
): V1Container {
  return {
    name,
    image: imageRef,
    args: [...args],
    env: [
      { name: "HOME", value: "/home/work" },
      { name: "TMPDIR", value: "/tmp" },
    ],
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    },
    volumeMounts: [
      { name: "home", mountPath: "/home/work" },
      { name: "tmp", mountPath: "/tmp" },
    ],
    ...extra,
  };
}

function restrictedPod(
  name: string,
  spec: Partial<V1PodSpec> & Pick<V1PodSpec, "containers">,
  inNamespace = namespace,
): V1Pod {
  return {
    metadata: { name, namespace: inNamespace },
    spec: {
      restartPolicy: "Never",
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      volumes: [
        { name: "home", emptyDir: {} },
        { name: "tmp", emptyDir: {} },
      ],
      ...spec,
    },
  };
}

async function podPhase(name: string, phases: readonly string[], timeoutMs = 120_000): Promise<V1Pod> {
  return waitFor(
    `pod ${name} in ${phases.join("/")}`,
    async () => {
      const pod = await core.readNamespacedPod({ name, namespace });
      const phase = pod.status?.phase ?? "";
      if (phase === "Failed" && !phases.includes("Failed")) {
        throw new Error(`pod ${name} failed: ${JSON.stringify(pod.status?.containerStatuses ?? [])}`);
      }
      return phases.includes(phase) ? pod : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

function logs(pod: string, container: string): Promise<string> {
  return core.readNamespacedPodLog({ name: pod, namespace, container });
}

/** Seconds from a pod's creation until its first container started. */
function startSeconds(pod: V1Pod): number {
  const created = pod.metadata?.creationTimestamp;
  const startedAt = pod.status?.containerStatuses
    ?.map((s) => s.state?.terminated?.startedAt ?? s.state?.running?.startedAt)
    .find((d) => d !== undefined);
  if (created === undefined || startedAt === undefined) return NaN;
  return (new Date(startedAt).getTime() - new Date(created).getTime()) / 1000;
}

/** The chart's release (and its namespace) and the MirrorJobs' namespace. */
const RELEASE = "hub-mirror-operator";
const MIRRORS = "mirrors";

/** Runs a command bounded, with HOME and the Kubernetes caches in the test folder. */
async function run(command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const home = join(dir, "home");
  mkdirSync(home, { recursive: true });
  const { stdout } = await promisify(execFile)(command, [...args], {
    // Helm's caches and config (and the Kubernetes discovery cache, ~/.kube/cache by
    // default) in the test folder, not in the host's HOME.
    env: {
      ...process.env,
      HOME: home,
      HELM_CACHE_HOME: join(home, "helm-cache"),
      HELM_CONFIG_HOME: join(home, "helm-config"),
      HELM_DATA_HOME: join(home, "helm-data"),
      KUBECACHEDIR: join(home, "kube-cache"),
    },
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

const helm = (args: readonly string[]) =>
  run(helmBinary(), [...args, "--kubeconfig", cp?.kubeconfigFile ?? ""], 240_000);
const kubectl = (args: readonly string[]) =>
  run(kubectlBinary(), ["--kubeconfig", cp?.kubeconfigFile ?? "", ...args]);

/** containerd's client inside the node, on the kubelet's namespace of containers. */
function ctr(args: readonly string[]): string {
  const socket = join(node?.dir ?? "", "containerd", "containerd.sock");
  return node?.sandbox.run("ctr", ["--address", socket, "--namespace", "k8s.io", ...args]) ?? "";
}

/** `containerd://<id>` -> `<id>` */
function containerId(statusId: string | undefined): string {
  const id = (statusId ?? "").replace(/^containerd:\/\//, "");
  if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`not a containerd container id: ${statusId ?? ""}`);
  return id;
}

/** The OCI runtime spec containerd holds for a container: its user and its mounts. */
function containerSpec(statusId: string): {
  process: { user: { uid: number } };
  mounts: { destination: string }[];
} {
  const info = JSON.parse(ctr(["containers", "info", containerId(statusId)])) as {
    Spec: { process: { user: { uid: number } }; mounts: { destination: string }[] };
  };
  return info.Spec;
}

function jobActive(job: V1Job): boolean {
  return !(job.status?.conditions ?? []).some(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  );
}

async function mirrorJobStatus(name: string): Promise<MirrorJobStatus> {
  const mj = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: MIRRORS,
    plural: PLURAL,
    name,
  })) as { status?: MirrorJobStatus };
  return mj.status ?? {};
}

function waitForRun(
  name: string,
  done: (status: MirrorJobStatus) => boolean,
  timeoutMs: number,
): Promise<MirrorJobStatus> {
  return waitFor(
    `MirrorJob ${MIRRORS}/${name}'s run to end`,
    async () => {
      const status = await mirrorJobStatus(name);
      return done(status) ? status : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** The pod of a run's Job. */
async function runPod(runId: string): Promise<V1Pod> {
  const pods = await core.listNamespacedPod({
    namespace: MIRRORS,
    labelSelector: `hubmirror.dev/run=${runId}`,
  });
  expect(pods.items).toHaveLength(1);
  const pod = pods.items[0];
  if (pod === undefined) throw new Error(`no pod of run ${runId}`);
  return pod;
}

/** The Secrets and ConfigMaps the MirrorJobs refer to: the target's push and pull credentials, its CA, the source inputs. */
async function createMirrorInputs(): Promise<void> {
  const up = upstream;
  const t = target;
  if (up === undefined || t === undefined) throw new Error("no upstream");
  const secret = (name: string, username: string, password: string) =>
    core.createNamespacedSecret({
      namespace: MIRRORS,
      body: {
        metadata: { name },
        type: "kubernetes.io/dockerconfigjson",
        stringData: { ".dockerconfigjson": dockerConfigJson(t.host, username, password) },
      },
    });
  await secret("target-push", t.username, t.password);
  await secret("target-pull", "reader", readerPassword);
  await core.createNamespacedConfigMap({
    namespace: MIRRORS,
    body: { metadata: { name: "target-ca" }, data: { "ca-bundle.crt": t.caPem } },
  });
  await createSourceInputs(kc, MIRRORS, upstreamInfo(up));
}

/** A MirrorJob of the whole upstream (release channel with its graph, an operator, images) into the target. */
async function createMirrorJob(name: string, spec: Record<string, unknown>): Promise<void> {
  const up = upstream;
  const t = target;
  if (up === undefined || t === undefined) throw new Error("no upstream");
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: MIRRORS,
    plural: PLURAL,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "MirrorJob",
      metadata: { name },
      spec: {
        imageSet: { inline: up.imageSetConfig({ release: true, operators: true, additionalImages: true }) },
        registry: {
          url: `${t.host}/mirror`,
          pushSecretRef: { name: "target-push" },
          pullSecretRef: { name: "target-pull" },
          caBundleRef: { name: "target-ca", key: "ca-bundle.crt" },
        },
        source: upstreamSource(upstreamInfo(up)),
        // A new ImageTagMirrorSet drains nodes on OpenShift, so it needs approval by default.
        apply: { mode: "Auto", disruptive: "Allow" },
        ...spec,
      },
    },
  });
}

describe("a real node", () => {
  it("is Ready and untainted, with the pinned kubelet and Debian's containerd", async () => {
    const n = await core.readNode({ name: NODE_NAME });
    expect(n.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(n.spec?.taints ?? []).toEqual([]);
    expect(n.status?.nodeInfo?.kubeletVersion).toBe("v1.32.3");
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./);
    say(`node Ready ${node?.readySeconds.toFixed(1) ?? "?"} s after the kubelet started`);
  });

  it("is confined: its network reaches only its bridge and its host link, and the host's tunables and iptables are untouched", () => {
    const sandbox = node?.sandbox;
    const link = node?.hostLink;
    if (sandbox === undefined || link === undefined) throw new Error("no node");
    const routes = JSON.parse(sandbox.run("ip", ["-j", "-4", "route", "show"])) as {
      dst: string;
      dev: string;
    }[];
    // No default route: anything but the bridge's subnet and the link's /30 is unroutable.
    expect(routes).toEqual([
      expect.objectContaining({ dst: "10.244.0.0/24", dev: "hm0" }),
      expect.objectContaining({ dst: link.subnet, dev: NODE_LINK_INTERFACE }),
    ]);
    const links = (JSON.parse(sandbox.run("ip", ["-j", "link", "show"])) as { ifname: string }[]).map(
      (l) => l.ifname,
    );
    expect(links.filter((l) => !/^veth/.test(l)).sort()).toEqual(["hm0", NODE_LINK_INTERFACE, "lo"]);
    // The host sees the link's /30 only (the node's 10.244.0.0/24 is not routed to it).
    const hostRoutes = JSON.parse(
      execFileSync("ip", ["-j", "-4", "route", "show"], { encoding: "utf8" }),
    ) as {
      dst: string;
      dev: string;
    }[];
    expect(hostRoutes.filter((r) => r.dev === link.hostInterface)).toEqual([
      expect.objectContaining({ dst: link.subnet }),
    ]);
    expect(hostRoutes.filter((r) => r.dst.startsWith("10.244."))).toEqual([]);
    // kube-proxy's and the kubelet's rules, and the link's, exist in the node's namespace, none on the host.
    const nodeRules = sandbox.run("iptables-save", []);
    expect(nodeRules).toContain("KUBE-SERVICES");
    expect(nodeRules).toContain(`-A FORWARD -o ${NODE_LINK_INTERFACE} -j HUBMIRROR-HOST-LINK`);
    const hostRules = execFileSync("iptables-save", { encoding: "utf8" });
    expect(hostRules).not.toContain("KUBE-");
    expect(hostRules).not.toContain("HUBMIRROR");
    // The kubelet found the tunables it wants (bind-mounted in its /proc) and changed none.
    expect(hostTunables()).toEqual(hostTunablesBefore);
    expect(sandbox.run("cat", ["/proc/sys/vm/overcommit_memory", "/proc/sys/kernel/panic"])).toBe("1\n10\n");
  });

  it("runs the project image under the restricted profile: its CLI, a Secret at 0444, emptyDir HOME and TMPDIR", async () => {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "creds" }, stringData: { "auth.json": '{"auths":{}}' } },
    });
    const check = [
      "const fs = require('node:fs');",
      "const os = require('node:os');",
      "const mode = fs.statSync('/var/run/secrets/hubmirror/auth.json').mode & 0o777;",
      "fs.readFileSync('/var/run/secrets/hubmirror/auth.json');",
      "fs.writeFileSync(os.homedir() + '/probe', 'x');",
      "fs.writeFileSync(os.tmpdir() + '/probe', 'x');",
      "let rootWritable = true; try { fs.writeFileSync('/app/probe', 'x'); } catch { rootWritable = false; }",
      "console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), mode: mode.toString(8), rootWritable, home: os.homedir(), tmp: os.tmpdir() }));",
    ].join(" ");
    const secretMount = { name: "creds", mountPath: "/var/run/secrets/hubmirror", readOnly: true };
    const pod = restrictedPod("restricted-cli", {
      volumes: [
        { name: "home", emptyDir: {} },
        { name: "tmp", emptyDir: {} },
        { name: "creds", secret: { secretName: "creds", defaultMode: 0o444 } },
      ],
      containers: [
        restrictedContainer("cli", ["--help"]),
        restrictedContainer("checks", [], {
          command: ["node", "-e", check],
          volumeMounts: [
            { name: "home", mountPath: "/home/work" },
            { name: "tmp", mountPath: "/tmp" },
            secretMount,
          ],
        }),
      ],
    });
    await core.createNamespacedPod({ namespace, body: pod });
    const done = await podPhase("restricted-cli", ["Succeeded"], 180_000);
    say(
      `restricted pod (first pull of the image included): started ${startSeconds(done).toFixed(1)} s after creation`,
    );
    expect(await logs("restricted-cli", "cli")).toContain("usage: hub-mirror-operator <command>");
    const facts = JSON.parse((await logs("restricted-cli", "checks")).trim()) as Record<string, unknown>;
    expect(facts).toEqual({
      uid: 1000,
      gid: 1000,
      mode: "444",
      rootWritable: false,
      home: "/home/work",
      tmp: "/tmp",
    });
  });

  it("lets its pods reach the upstream and the target on the host link, and nothing else", async () => {
    const link = node?.hostLink;
    if (link === undefined || upstream === undefined || target === undefined) throw new Error("no node");
    // A server on the host's end of the link at a port the link does not allow: it must see nothing.
    const accepted: string[] = [];
    const server: Server = createServer((socket) => {
      accepted.push(socket.remoteAddress ?? "?");
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, link.hostAddress, resolve));
    const closedPort = (server.address() as { port: number }).port;
    // The host's address on its own network, if it has one.
    const hostAddress = (
      JSON.parse(
        execFileSync("ip", ["-j", "-4", "addr", "show", "scope", "global"], { encoding: "utf8" }),
      ) as {
        ifname: string;
        addr_info?: { local?: string }[];
      }[]
    )
      .filter((i) => i.ifname !== link.hostInterface)
      .flatMap((i) => (i.addr_info ?? []).map((a) => a.local ?? ""))
      .find((a) => a !== "");
    const hostPort = (h: string) => Number(/:(\d+)$/.exec(h)?.[1]);
    const probes: Record<string, [string, number]> = {
      target: [link.hostAddress, hostPort(target.host)],
      source: [link.hostAddress, hostPort(upstream.source.host)],
      updateGraph: [link.hostAddress, hostPort(upstream.httpsUrl)],
      otherHostLinkPort: [link.hostAddress, closedPort],
      outside: ["1.1.1.1", 443],
      ...(hostAddress !== undefined && { hostNetwork: [hostAddress, 22] as [string, number] }),
    };
    const script = [
      "const net = require('node:net');",
      `const probes = ${JSON.stringify(probes)};`,
      "const one = ([host, port]) => new Promise((resolve) => {",
      "  const s = net.connect({ host, port, timeout: 5000 });",
      "  s.once('connect', () => { s.destroy(); resolve('connected'); });",
      "  s.once('timeout', () => { s.destroy(); resolve('timeout'); });",
      "  s.once('error', (e) => resolve(e.code));",
      "});",
      "(async () => { const out = {}; for (const [k, v] of Object.entries(probes)) out[k] = await one(v); console.log(JSON.stringify(out)); })();",
    ].join("\n");
    const before = link.counters();
    await core.createNamespacedPod({
      namespace,
      body: restrictedPod("link-probe", {
        containers: [restrictedContainer("probe", [], { command: ["node", "-e", script] })],
      }),
    });
    await podPhase("link-probe", ["Succeeded"]);
    const results = JSON.parse((await logs("link-probe", "probe")).trim()) as Record<string, string>;
    const after = link.counters();
    linkAfterProbe = after;
    await new Promise((resolve) => server.close(resolve));
    say(`from a pod: ${JSON.stringify(results)}`);
    expect(results).toMatchObject({
      target: "connected",
      source: "connected",
      updateGraph: "connected",
      otherHostLinkPort: "ECONNREFUSED",
    });
    // Unroutable in the node's namespace: the packet never reaches any interface.
    expect(results.outside).toMatch(/^E(NET|HOST)UNREACH$/);
    if (hostAddress !== undefined) expect(results.hostNetwork).toMatch(/^E(NET|HOST)UNREACH$/);
    expect(accepted).toEqual([]);
    // One SYN refused by the link's chain (the other port); the rest went to allowed ports.
    expect(after.refused - before.refused).toBe(1);
    expect(after.allowed - before.allowed).toBeGreaterThan(0);
  });

  it("completes a Job whose pod kube-scheduler placed on the node", async () => {
    const batch = kc.makeApiClient(BatchV1Api);
    const template = restrictedPod("unused", {
      containers: [restrictedContainer("work", [], { command: ["node", "-e", "console.log('job ran')"] })],
    });
    await batch.createNamespacedJob({
      namespace,
      body: {
        metadata: { name: "scheduled" },
        spec: { backoffLimit: 0, template: { spec: template.spec } },
      },
    });
    const job = await waitFor(
      "Job scheduled to complete",
      async () => {
        const j = await batch.readNamespacedJob({ name: "scheduled", namespace });
        const conditions = j.status?.conditions ?? [];
        if (conditions.some((c) => c.type === "Failed" && c.status === "True")) throw new Error("Job failed");
        return conditions.some((c) => c.type === "Complete" && c.status === "True") ? j : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    expect(job.status?.succeeded).toBe(1);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: "job-name=scheduled" });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0];
    expect(pod?.spec?.nodeName).toBe(NODE_NAME);
    say(
      `Job pod started ${pod === undefined ? "?" : startSeconds(pod).toFixed(1)} s after creation (image cached)`,
    );
  });

  it("lets a pod read a ConfigMap from the API server with its ServiceAccount token (through the kubernetes Service)", async () => {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: "reader" } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "data" }, data: { value: "hello" } },
    });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: "reader" },
        rules: [{ apiGroups: [""], resources: ["configmaps"], resourceNames: ["data"], verbs: ["get"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: "reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace }],
      },
    });
    const script = [
      "import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';",
      "const kc = new KubeConfig(); kc.loadFromCluster();",
      "const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'data', namespace: process.env.NS });",
      "console.log(JSON.stringify({ server: kc.getCurrentCluster().server, value: cm.data.value }));",
    ].join(" ");
    const pod = restrictedPod("api-reader", {
      serviceAccountName: "reader",
      containers: [
        restrictedContainer("read", [], {
          command: ["node", "--input-type=module", "-e", script],
          env: [
            { name: "HOME", value: "/home/work" },
            { name: "TMPDIR", value: "/tmp" },
            { name: "NS", value: namespace },
          ],
        }),
      ],
    });
    await core.createNamespacedPod({ namespace, body: pod });
    await podPhase("api-reader", ["Succeeded"]);
    const out = JSON.parse((await logs("api-reader", "read")).trim()) as { server: string; value: string };
    expect(out).toEqual({ server: "https://10.0.0.1:443", value: "hello" });
  });

  it("restarts a container killed with SIGKILL through the runtime (after kubectl exec into it)", async () => {
    const pod = restrictedPod("killed", {
      restartPolicy: "Always",
      containers: [
        restrictedContainer("sleeper", [], { command: ["node", "-e", "setInterval(() => {}, 1000)"] }),
      ],
    });
    await core.createNamespacedPod({ namespace, body: pod });
    const running = await waitFor(
      "pod killed running",
      async () => {
        const p = await core.readNamespacedPod({ name: "killed", namespace });
        return p.status?.containerStatuses?.[0]?.state?.running !== undefined ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    // kubectl exec: API server -> CONNECT proxy -> kubelet -> containerd's streaming server.
    const exec = await promisify(execFile)(
      kubectlBinary(),
      [
        "--kubeconfig",
        cp?.kubeconfigFile ?? "",
        "--namespace",
        namespace,
        "exec",
        "killed",
        "--",
        "node",
        "-e",
        "console.log(process.getuid(), process.pid)",
      ],
      { env: { ...process.env, KUBECACHEDIR: join(dir, "kube-cache") }, timeout: 60_000 },
    );
    expect(exec.stdout.trim()).toMatch(/^1000 \d+$/);
    const containerId = (running.status?.containerStatuses?.[0]?.containerID ?? "").replace(
      /^containerd:\/\//,
      "",
    );
    expect(containerId).toMatch(/^[0-9a-f]{64}$/);
    const socket = join(node?.dir ?? "", "containerd", "containerd.sock");
    const killedAt = Date.now();
    node?.sandbox.run("ctr", [
      "--address",
      socket,
      "--namespace",
      "k8s.io",
      "task",
      "kill",
      "--signal",
      "SIGKILL",
      containerId,
    ]);
    const restarted = await waitFor(
      "the killed container to be restarted",
      async () => {
        const p = await core.readNamespacedPod({ name: "killed", namespace });
        const status = p.status?.containerStatuses?.[0];
        return status !== undefined && status.restartCount >= 1 && status.state?.running !== undefined
          ? status
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    say(`SIGKILLed container running again after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
    expect(restarted.lastState?.terminated?.exitCode).toBe(137);
    expect(restarted.lastState?.terminated?.reason).toBe("Error");
    await core.deleteNamespacedPod({ name: "killed", namespace, gracePeriodSeconds: 0 });
  });

  it("binds a claim to a provisioned hostPath volume that a restricted pod writes and another reads", async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: "data" },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      },
    });
    const bound = await waitFor(
      "claim data to be Bound",
      async () => {
        const pvc = await core.readNamespacedPersistentVolumeClaim({ name: "data", namespace });
        return pvc.status?.phase === "Bound" ? pvc : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(bound.spec?.storageClassName).toBe("hubmirror-hostpath");
    const withClaim = (name: string, script: string) =>
      restrictedPod(name, {
        volumes: [
          { name: "home", emptyDir: {} },
          { name: "tmp", emptyDir: {} },
          { name: "data", persistentVolumeClaim: { claimName: "data" } },
        ],
        containers: [
          restrictedContainer("c", [], {
            command: ["node", "-e", script],
            volumeMounts: [
              { name: "home", mountPath: "/home/work" },
              { name: "tmp", mountPath: "/tmp" },
              { name: "data", mountPath: "/data" },
            ],
          }),
        ],
      });
    await core.createNamespacedPod({
      namespace,
      body: withClaim("writer", "require('node:fs').writeFileSync('/data/note', 'kept')"),
    });
    await podPhase("writer", ["Succeeded"]);
    await core.createNamespacedPod({
      namespace,
      body: withClaim(
        "reader",
        "process.stdout.write(require('node:fs').readFileSync('/data/note', 'utf8'))",
      ),
    });
    await podPhase("reader", ["Succeeded"]);
    expect(await logs("reader", "c")).toBe("kept");
    // Deleting the claim releases the volume; the provisioner deletes it.
    const pv = bound.spec?.volumeName ?? "";
    for (const pod of ["writer", "reader"]) await core.deleteNamespacedPod({ name: pod, namespace });
    await core.deleteNamespacedPersistentVolumeClaim({ name: "data", namespace });
    await waitFor(
      `volume ${pv} to be deleted`,
      async () =>
        (await core.listPersistentVolume()).items.some((v) => v.metadata?.name === pv) ? undefined : true,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  });

  it("reports OOMKilled for a container over its memory limit", async () => {
    const pod = restrictedPod("oom", {
      containers: [
        restrictedContainer("hog", [], {
          command: ["node", "-e", "const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));"],
          resources: { limits: { memory: "64Mi" }, requests: { memory: "64Mi" } },
        }),
      ],
    });
    await core.createNamespacedPod({ namespace, body: pod });
    const failed = await podPhase("oom", ["Failed"]);
    const terminated = failed.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.reason).toBe("OOMKilled");
    expect(terminated?.exitCode).toBe(137);
  });

  it("installs the Helm chart with the built images: the Deployment becomes Ready and /metrics answers through its Service", async () => {
    // What the operator applies to (stand-in CRDs, the OpenShift namespaces and pull secret),
    // and the MirrorJobs' namespace: the chart's Roles go into each.
    await installOpenShiftStandIns(kc);
    await restrictedNamespace(RELEASE);
    await restrictedNamespace(MIRRORS);
    const colon = imageRef.lastIndexOf(":");
    const started = Date.now();
    await helm([
      "install",
      RELEASE,
      join(repoRoot, "charts/hub-mirror-operator"),
      "--namespace",
      RELEASE,
      "--set",
      `image.repository=${imageRef.slice(0, colon)}`,
      "--set",
      `image.tag=${imageRef.slice(colon + 1)}`,
      "--set",
      `ocMirrorImage=${ocMirrorRef}`,
      "--set",
      `ocMirrorLine=${ocMirror?.line ?? ""}`,
      "--set",
      `watchNamespaces={${RELEASE},${MIRRORS}}`,
      "--set",
      `applyNamespaces={${MIRRORS}}`,
      // One replica: the container killed below is the one that adopts the run.
      "--set",
      "replicaCount=1",
      // A whole oc-mirror container killed (cgroup v2 kills the container's every process on
      // OOM) shows as a stale heartbeat: 30 s instead of 120.
      "--set",
      "heartbeatTimeoutSeconds=30",
      "--wait",
      "--timeout",
      "3m",
    ]);
    say(`helm install --wait: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const apps = kc.makeApiClient(AppsV1Api);
    const deployment = await apps.readNamespacedDeployment({ name: RELEASE, namespace: RELEASE });
    expect(deployment.status?.readyReplicas).toBe(deployment.spec?.replicas);
    expect(deployment.status?.readyReplicas).toBeGreaterThanOrEqual(1);
    const service = await core.readNamespacedService({ name: RELEASE, namespace: RELEASE });
    const port = service.spec?.ports?.find((p) => p.name === "metrics")?.port;
    const url = `http://${service.spec?.clusterIP ?? ""}:${String(port)}/metrics`;
    const script = `const r = await fetch(${JSON.stringify(url)}); process.stdout.write(r.status + "\\n" + (await r.text()));`;
    const probe = restrictedPod(
      "metrics-probe",
      {
        containers: [
          restrictedContainer("probe", [], { command: ["node", "--input-type=module", "-e", script] }),
        ],
      },
      RELEASE,
    );
    await core.createNamespacedPod({ namespace: RELEASE, body: probe });
    await waitFor(
      "metrics-probe to succeed",
      async () => {
        const p = await core.readNamespacedPod({ name: "metrics-probe", namespace: RELEASE });
        if (p.status?.phase === "Failed") throw new Error("metrics-probe failed");
        return p.status?.phase === "Succeeded" ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const out = await core.readNamespacedPodLog({ name: "metrics-probe", namespace: RELEASE });
    expect(out.split("\n")[0]).toBe("200");
    expect(out).toContain("leader_election_master_status");
  }, 300_000);
});

describe("MirrorJobs on the real node, run by the operator the chart installed", () => {
  let firstRun = "";

  it("mirrors, verifies and applies: the real oc-mirror in a restricted pod, merge-auth and pull-graph-image before it, the reporter beside it with the pod's only token", async () => {
    await createMirrorInputs();
    const created = Date.now();
    await createMirrorJob("ocp", {});
    const status = await waitForRun("ocp", (s) => s.lastRun !== undefined, 360_000);
    const runSeconds = (Date.now() - created) / 1000;
    expect(status.lastRun?.result, JSON.stringify(status)).toBe("Succeeded");
    const conditions = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c]));
    expect(conditions.Mirrored).toMatchObject({ status: "True", reason: "RunSucceeded" });
    expect(conditions.Verified).toMatchObject({ status: "True", reason: "AllImagesPresent" });
    await waitFor(
      "ocp Ready (applied)",
      async () => {
        const s = await mirrorJobStatus("ocp");
        return s.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    firstRun = status.lastRun?.id ?? "";
    expect(status.lastRun?.images).toEqual({
      release: { copied: 10, failed: 0, total: 10 },
      operator: { copied: 7, failed: 0, total: 7 },
      additional: { copied: 3, failed: 0, total: 3 },
    });

    // The objects oc-mirror generated, applied to the stand-in APIs, and the pull secret entry.
    const custom = kc.makeApiClient(CustomObjectsApi);
    const owned = `hubmirror.dev/owner-namespace=${MIRRORS},hubmirror.dev/owner-name=ocp`;
    const idms = (await custom.listClusterCustomObject({
      group: "config.openshift.io",
      version: "v1",
      plural: "imagedigestmirrorsets",
      labelSelector: owned,
    })) as { items: unknown[] };
    expect(idms.items.length).toBeGreaterThanOrEqual(1);
    const catalogs = (await custom.listNamespacedCustomObject({
      group: "operators.coreos.com",
      version: "v1alpha1",
      namespace: "openshift-marketplace",
      plural: "catalogsources",
      labelSelector: owned,
    })) as { items: { spec?: { image?: string } }[] };
    expect(catalogs.items.map((c) => c.spec?.image)).toEqual([
      `${target?.host ?? ""}/mirror/redhat/redhat-operator-index:v4.19`,
    ]);
    const pullSecret = await core.readNamespacedSecret({
      namespace: "openshift-config",
      name: "pull-secret",
    });
    const auths = (
      JSON.parse(Buffer.from(pullSecret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8")) as {
        auths: Record<string, { auth: string }>;
      }
    ).auths;
    expect(auths[target?.host ?? ""]?.auth).toBe(Buffer.from(`reader:${readerPassword}`).toString("base64"));

    // The Job's pod, as the kubelet ran it.
    const pod = await runPod(firstRun);
    expect(pod.spec?.nodeName).toBe(NODE_NAME);
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    const init = pod.status?.initContainerStatuses ?? [];
    expect(init.map((c) => [c.name, c.image, c.state?.terminated?.exitCode])).toEqual([
      ["merge-auth", imageRef, 0],
      ["pull-graph-image", imageRef, 0],
    ]);
    const containers = pod.status?.containerStatuses ?? [];
    expect(containers.map((c) => [c.name, c.image, c.state?.terminated?.exitCode]).sort()).toEqual([
      ["oc-mirror", ocMirrorRef, 0],
      ["reporter", imageRef, 0],
    ]);
    // The runtime's own record of each container: its user and what is mounted where.
    const specs = Object.fromEntries(
      [...init, ...containers].map((c) => [c.name, containerSpec(c.containerID ?? "")]),
    );
    const tokenMounts = (name: string) =>
      (specs[name]?.mounts ?? [])
        .map((m) => m.destination)
        .filter((d) => d.startsWith("/var/run/secrets/kubernetes.io"));
    expect(tokenMounts("oc-mirror")).toEqual([]);
    expect(tokenMounts("merge-auth")).toEqual([]);
    expect(tokenMounts("pull-graph-image")).toEqual([]);
    expect(tokenMounts("reporter")).toEqual(["/var/run/secrets/kubernetes.io/serviceaccount"]);
    expect(specs["oc-mirror"]?.process.user.uid).toBe(1001);
    expect(specs.reporter?.process.user.uid).toBe(1000);
    // oc-mirror's own output, through the reporter (kubectl logs job/<run> -c reporter).
    const reporterLog = await core.readNamespacedPodLog({
      name: pod.metadata?.name ?? "",
      namespace: MIRRORS,
      container: "reporter",
    });
    expect(reporterLog).toContain(`environment version: ${ocMirror?.version ?? "?"}`);
    expect(reporterLog).toMatch(/3 \/ 3 additional images mirrored successfully/);
    const initStarted = init[0]?.state?.terminated?.startedAt;
    say(
      `MirrorJob ocp: run ${firstRun} Succeeded ${runSeconds.toFixed(1)} s after creation; its pod's first container ` +
        `started ${initStarted === undefined ? "?" : ((new Date(initStarted).getTime() - new Date(pod.metadata?.creationTimestamp ?? 0).getTime()) / 1000).toFixed(1)} s after the pod was created (first pull of the oc-mirror image included)`,
    );
  }, 420_000);

  it("survives its operator container SIGKILLed mid-run: the kubelet restarts it, and it adopts the running Job", async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: MIRRORS,
        plural: PLURAL,
        name: "ocp",
        body: { spec: { runRequest: "after-kill" } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const batch = kc.makeApiClient(BatchV1Api);
    const job = await waitFor(
      "the second run's Job",
      async () =>
        (
          await batch.listNamespacedJob({ namespace: MIRRORS, labelSelector: "hubmirror.dev/mirrorjob=ocp" })
        ).items.find((j) => j.metadata?.labels?.["hubmirror.dev/run"] !== firstRun),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const runId = job.metadata?.labels?.["hubmirror.dev/run"] ?? "";
    const operatorPod = (
      await core.listNamespacedPod({
        namespace: RELEASE,
        labelSelector: "app.kubernetes.io/name=hub-mirror-operator",
      })
    ).items[0];
    const operator = operatorPod?.status?.containerStatuses?.[0];
    expect(operator?.state?.running).toBeDefined();
    expect(
      jobActive(await batch.readNamespacedJob({ name: job.metadata?.name ?? "", namespace: MIRRORS })),
    ).toBe(true);
    const killedAt = Date.now();
    ctr(["task", "kill", "--signal", "SIGKILL", containerId(operator?.containerID)]);
    const restarted = await waitFor(
      "the operator container to run again",
      async () => {
        const p = await core.readNamespacedPod({
          name: operatorPod?.metadata?.name ?? "",
          namespace: RELEASE,
        });
        const s = p.status?.containerStatuses?.[0];
        return s !== undefined && s.restartCount >= 1 && s.ready ? s : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const backSeconds = (Date.now() - killedAt) / 1000;
    const activeWhenBack = jobActive(
      await batch.readNamespacedJob({ name: job.metadata?.name ?? "", namespace: MIRRORS }),
    );
    expect(restarted.lastState?.terminated).toMatchObject({ exitCode: 137 });
    const status = await waitForRun(
      "ocp",
      (s) => s.lastHandledRunRequest === "after-kill" && s.lastRun?.id === runId,
      300_000,
    );
    say(
      `operator SIGKILLed mid-run: Ready again after ${backSeconds.toFixed(1)} s (the run's Job ${activeWhenBack ? "still running" : "already done"} then); run ${runId} ${status.lastRun?.result ?? "?"}`,
    );
    expect(status.lastRun?.result).toBe("Succeeded");
    // Exactly one Job for the run (adopted, not made again), and one RunStarted Event for it.
    const jobs = await batch.listNamespacedJob({
      namespace: MIRRORS,
      labelSelector: `hubmirror.dev/run=${runId}`,
    });
    expect(jobs.items.map((j) => j.metadata?.name)).toEqual([job.metadata?.name]);
    const started = (
      await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: MIRRORS })
    ).items.filter((e) => e.reason === "RunStarted" && (e.note ?? "").includes(runId));
    expect(started).toHaveLength(1);
  }, 420_000);

  it("says the oc-mirror container was OOMKilled, and which limit to raise", async () => {
    await createMirrorJob("small", {
      imageSet: { inline: upstream?.imageSetConfig({ additionalImages: true }) },
      // Measured on the host (a memory cgroup, this upstream's additional images): oc-mirror's
      // dry run peaks at 14 MB charged and passes under 16Mi (the kernel reclaims the binary's
      // page cache); under 8Mi it is OOM-killed.
      mirror: { resources: { limits: { memory: "8Mi" } } },
    });
    const status = await waitForRun("small", (s) => s.lastRun !== undefined, 300_000);
    const runId = status.lastRun?.id ?? "";
    const pod = await runPod(runId);
    const ocMirrorStatus = pod.status?.containerStatuses?.find((c) => c.name === "oc-mirror");
    expect(ocMirrorStatus?.state?.terminated).toMatchObject({ reason: "OOMKilled", exitCode: 137 });
    const expected =
      `run ${runId} crashed: container oc-mirror of pod ${pod.metadata?.name ?? ""} was OOMKilled: it exceeded its memory limit of 8Mi. ` +
      "Raise spec.mirror.resources.limits.memory, then change spec.runRequest to run again";
    expect(status.lastRun).toMatchObject({ result: "Crashed", message: expected });
    expect(status.conditions?.find((c) => c.type === "Mirrored")).toMatchObject({
      status: "False",
      reason: "RunCrashed",
      message: expected,
    });
    const events = (await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: MIRRORS })).items;
    expect(events.filter((e) => e.reason === "RunCrashed").map((e) => e.note)).toEqual([expected]);
  }, 360_000);

  it("shows no secret value in any container's log, the pod specs, Jobs, Events or the MirrorJobs' status", async () => {
    const up = upstream;
    const t = target;
    if (up === undefined || t === undefined) throw new Error("no upstream");
    const secrets = [
      up.source.password,
      t.password,
      readerPassword,
      Buffer.from(`${up.source.username}:${up.source.password}`).toString("base64"),
      Buffer.from(`${t.username}:${t.password}`).toString("base64"),
      Buffer.from(`reader:${readerPassword}`).toString("base64"),
    ];
    const texts: Record<string, string> = {};
    for (const ns of [RELEASE, MIRRORS]) {
      for (const pod of (await core.listNamespacedPod({ namespace: ns })).items) {
        const name = pod.metadata?.name ?? "";
        texts[`pod ${ns}/${name}`] = JSON.stringify(pod);
        for (const c of [
          ...(pod.status?.initContainerStatuses ?? []),
          ...(pod.status?.containerStatuses ?? []),
        ]) {
          texts[`logs ${ns}/${name}/${c.name}`] = await kubectl(["logs", "-n", ns, name, "-c", c.name]);
          if (c.restartCount > 0) {
            texts[`previous logs ${ns}/${name}/${c.name}`] = await kubectl([
              "logs",
              "-n",
              ns,
              name,
              "-c",
              c.name,
              "--previous",
            ]);
          }
        }
      }
      texts[`jobs ${ns}`] = JSON.stringify(
        (await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns })).items,
      );
    }
    texts.events = JSON.stringify((await kc.makeApiClient(EventsV1Api).listEventForAllNamespaces()).items);
    texts.coreEvents = JSON.stringify((await core.listEventForAllNamespaces()).items);
    texts.mirrorJobs = JSON.stringify(
      await kc
        .makeApiClient(CustomObjectsApi)
        .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: MIRRORS, plural: PLURAL }),
    );
    // What was read is real: the operator's log, oc-mirror's output, both runs' statuses.
    expect(Object.keys(texts).filter((k) => k.startsWith("logs ")).length).toBeGreaterThanOrEqual(9);
    expect(
      Object.entries(texts).find(([k]) => k.startsWith(`logs ${MIRRORS}/`) && k.endsWith("/reporter"))?.[1],
    ).toMatch(/images to copy/);
    for (const [what, text] of Object.entries(texts)) {
      for (const secret of secrets) expect(text.includes(secret), `${what} holds a secret`).toBe(false);
    }
  }, 120_000);

  it("sent nothing through the host link but to the upstream's and the target's ports", () => {
    const counters = node?.hostLink?.counters();
    say(`host link: ${JSON.stringify(counters)} packets`);
    // The probe's one refused SYN (above) and nothing else; the MirrorJobs' runs went through
    // the allowed ports (packets counted after the probe: the runs' own).
    expect(counters?.refused).toBe(1);
    expect(linkAfterProbe).toBeDefined();
    expect(counters?.allowed ?? 0).toBeGreaterThan(linkAfterProbe?.allowed ?? Infinity);
  });
});
