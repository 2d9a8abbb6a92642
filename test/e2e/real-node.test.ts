/**
 * The real node (devkit/node.ts): kubelet + containerd run the project's image, built
 * from its Dockerfile with buildah, under the `restricted` Pod Security profile. This file
 * starts its own control plane (one that serves a node: kube-scheduler, ServiceAccount
 * tokens, the node controllers) and its own node; the shared control plane of the other e2e
 * files has no node, so the test pod runner and this node never meet.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1Pod,
  type V1PodSpec,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helmBinary, kubectlBinary, repoRoot } from "../../devkit/binaries.ts";
import { startControlPlane, type ControlPlane } from "../../devkit/control-plane.ts";
import { projectImage, type ImageInfo } from "../../devkit/node-images.ts";
import { NODE_NAME, nodeControlPlaneOptions, startNode, type RealNode } from "../../devkit/node.ts";
import { waitFor } from "../../devkit/processes.ts";

const say = (line: string) => {
  process.stdout.write(`[real-node] ${line}\n`);
};

let dir = "";
let cp: ControlPlane | undefined;
let node: RealNode | undefined;
let image: ImageInfo | undefined;
let imageRef = "";
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
  const [controlPlane, built] = await Promise.all([
    startControlPlane(clusterDir, nodeControlPlaneOptions(clusterDir)),
    projectImage(say),
  ]);
  cp = controlPlane;
  image = built;
  say(
    `control plane and project image ready in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(${image.name}, ${(image.sizeBytes / 1e6).toFixed(1)} MB, ${image.cached ? "cached" : `built in ${image.buildSeconds.toFixed(0)} s`})`,
  );
  hostTunablesBefore = hostTunables();
  node = await startNode(cp, { dir: join(dir, "node"), cleanupDir: dir, log: say });
  const pushStarted = Date.now();
  imageRef = await node.pushImage(image.name);
  say(`pushed ${imageRef} in ${((Date.now() - pushStarted) / 1000).toFixed(1)} s`);
  kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigFile);
  core = kc.makeApiClient(CoreV1Api);
  await restrictedNamespace(namespace);
}, 1_200_000);

afterAll(async () => {
  await node?.stop();
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

describe("a real node", () => {
  it("is Ready and untainted, with the pinned kubelet and Debian's containerd", async () => {
    const n = await core.readNode({ name: NODE_NAME });
    expect(n.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(n.spec?.taints ?? []).toEqual([]);
    expect(n.status?.nodeInfo?.kubeletVersion).toBe("v1.32.3");
    expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./);
    say(`node Ready ${node?.readySeconds.toFixed(1) ?? "?"} s after the kubelet started`);
  });

  it("is confined: its network reaches only its bridge, and the host's tunables and iptables are untouched", () => {
    const sandbox = node?.sandbox;
    if (sandbox === undefined) throw new Error("no node");
    const routes = JSON.parse(sandbox.run("ip", ["-j", "-4", "route", "show"])) as {
      dst: string;
      dev: string;
    }[];
    expect(routes).toEqual([expect.objectContaining({ dst: "10.244.0.0/24", dev: "hm0" })]);
    const links = (JSON.parse(sandbox.run("ip", ["-j", "link", "show"])) as { ifname: string }[]).map(
      (l) => l.ifname,
    );
    expect(links.filter((l) => !/^veth/.test(l)).sort()).toEqual(["hm0", "lo"]);
    // kube-proxy's and the kubelet's rules exist in the node's namespace, none on the host.
    expect(sandbox.run("iptables-save", [])).toContain("KUBE-SERVICES");
    expect(execFileSync("iptables-save", { encoding: "utf8" })).not.toContain("KUBE-");
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

  it("installs the Helm chart with the built image: the Deployment becomes Ready and /metrics answers through its Service", async () => {
    const release = "hub-mirror-operator";
    await restrictedNamespace(release);
    const colon = imageRef.lastIndexOf(":");
    const helmHome = join(dir, "helm");
    mkdirSync(helmHome, { recursive: true });
    const started = Date.now();
    await promisify(execFile)(
      helmBinary(),
      [
        "install",
        release,
        join(repoRoot, "charts/hub-mirror-operator"),
        "--namespace",
        release,
        "--kubeconfig",
        cp?.kubeconfigFile ?? "",
        "--set",
        `image.repository=${imageRef.slice(0, colon)}`,
        "--set",
        `image.tag=${imageRef.slice(colon + 1)}`,
        "--set",
        "openshift.enabled=false",
        "--wait",
        "--timeout",
        "3m",
      ],
      {
        // Helm's caches and config (and the Kubernetes discovery cache, ~/.kube/cache by
        // default) in the test folder, not in the host's HOME.
        env: {
          ...process.env,
          HOME: helmHome,
          HELM_CACHE_HOME: join(helmHome, "cache"),
          HELM_CONFIG_HOME: join(helmHome, "config"),
          HELM_DATA_HOME: join(helmHome, "data"),
          KUBECACHEDIR: join(helmHome, "kube-cache"),
        },
        timeout: 240_000,
      },
    );
    say(`helm install --wait: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const apps = kc.makeApiClient(AppsV1Api);
    const deployment = await apps.readNamespacedDeployment({ name: release, namespace: release });
    expect(deployment.status?.readyReplicas).toBe(deployment.spec?.replicas);
    expect(deployment.status?.readyReplicas).toBeGreaterThanOrEqual(1);
    const service = await core.readNamespacedService({ name: release, namespace: release });
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
      release,
    );
    await core.createNamespacedPod({ namespace: release, body: probe });
    await waitFor(
      "metrics-probe to succeed",
      async () => {
        const p = await core.readNamespacedPod({ name: "metrics-probe", namespace: release });
        if (p.status?.phase === "Failed") throw new Error("metrics-probe failed");
        return p.status?.phase === "Succeeded" ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const out = await core.readNamespacedPodLog({ name: "metrics-probe", namespace: release });
    expect(out.split("\n")[0]).toBe("200");
    expect(out).toContain("leader_election_master_status");
  }, 300_000);
});
