/**
 * A real Kubernetes node for tests: containerd (Debian's, with runc and the bridge CNI
 * plugin), the kubelet and kube-proxy (built from the same k8s.io/kubernetes module as the
 * API server), and a registry the node pulls its images from. All of it runs inside the
 * node's own network, PID and mount namespaces (node-sandbox.ts); the control plane stays on
 * the host's 127.0.0.1 and must have been started for a node (`nodeControlPlaneOptions`).
 *
 * How traffic crosses the namespace boundary (netns-forward.ts), with nothing sent to any
 * address outside the node's namespace or 127.0.0.1:
 * - node -> API server: a forwarder inside the namespace listens on the node's address at the
 *   API server's port (the address the API server advertises, so the `kubernetes` Service's
 *   endpoint, reached from pods through kube-proxy's rules for its ClusterIP) and relays each
 *   connection over a Unix socket to a forwarder on the host, which connects to 127.0.0.1.
 * - API server -> kubelet and pods (logs, exec, port-forward, the Service proxy): the API
 *   server's egress selector sends that traffic to an HTTP CONNECT proxy on a Unix socket,
 *   served inside the namespace.
 * - images: the registry (Debian's docker-registry, TLS with its own CA, htpasswd) listens on
 *   the node's address; buildah pushes to it from the host's storage after entering the
 *   node's network namespace; containerd pulls with credentials from its own config file.
 *
 * Persistent volumes: hostPath volumes made by a small external provisioner in the test process
 * (node-provisioner.ts) for the default StorageClass `hubmirror-hostpath`; the real PV binder
 * binds them.
 */
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { kubeBinary, repoRoot } from "./binaries.ts";
import { writeKubeconfig, type ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";
import { startProvisioner, type Provisioner } from "./node-provisioner.ts";
import { createHostLink, type HostLink } from "./node-host-link.ts";
import { createNodeSandbox, type NodeSandbox } from "./node-sandbox.ts";
import { PAUSE_IMAGE, pauseImage, pushImage } from "./node-images.ts";
import { createCertificateAuthority, issueCertificate } from "./pki.ts";
import { startProcess, waitFor, type ManagedProcess } from "./processes.ts";

/** The node's network: a bridge with the node's address; pods get addresses on it. */
export const NODE_NETWORK = {
  bridge: "hm0",
  nodeIp: "10.244.0.1",
  podSubnet: "10.244.0.0/24",
  prefixLength: 24,
  serviceClusterIpRange: "10.0.0.0/24",
  registryPort: 5000,
  kubeletPort: 10250,
} as const;

export const NODE_NAME = "hubmirror-node";

/** Options for startControlPlane so that it can serve a node (its folder is `clusterDir`). */
export function nodeControlPlaneOptions(clusterDir: string): ControlPlaneOptions {
  return {
    forNode: {
      advertiseAddress: NODE_NETWORK.nodeIp,
      egressProxySocket: join(clusterDir, "egress.sock"),
      serviceClusterIpRange: NODE_NETWORK.serviceClusterIpRange,
    },
  };
}

export interface NodeOptions {
  /** The node's folder (removed by stop()). */
  readonly dir: string;
  /**
   * The folder to remove if the test runner dies before stop() (default: `dir`), e.g. a
   * folder holding both the node and its control plane.
   */
  readonly cleanupDir?: string;
  /** Progress lines (timings). */
  readonly log?: (line: string) => void;
  /**
   * A link between the host and the node (node-host-link.ts), so that pods reach servers the
   * host runs for them on its end of the link (e.g. an offline upstream and a target registry
   * started with `listenAddress: node.hostLink.hostAddress`). Off by default: then nothing of
   * the node is reachable from the host's network or reaches it.
   */
  readonly hostLink?: boolean;
}

export interface NodeRegistry {
  /** `10.244.0.1:5000`: the registry as the node (and pods) reach it. */
  readonly host: string;
  readonly caFile: string;
  /** dockerconfigjson file with its credentials (mode 0600). */
  readonly authFile: string;
}

export interface RealNode {
  readonly name: string;
  readonly ip: string;
  readonly dir: string;
  readonly sandbox: NodeSandbox;
  readonly registry: NodeRegistry;
  /** Seconds from the kubelet's start until the node was Ready and untainted. */
  readonly readySeconds: number;
  /** Pushes an image from the harness's buildah storage; returns the reference pods use. */
  pushImage(image: string): Promise<string>;
  /** Log files: containerd, kubelet, kube-proxy, registry, forwarders. */
  readonly logs: Readonly<Record<string, string>>;
  /** The host link (with `hostLink: true`). */
  readonly hostLink?: HostLink;
  stop(): Promise<void>;
}

/** The reference of a local image in the node's registry (its registry host replaced). */
export function nodeImageReference(image: string, registryHost: string): string {
  const slash = image.indexOf("/");
  const first = slash < 0 ? "" : image.slice(0, slash);
  const path = /[.:]/.test(first) || first === "localhost" ? image.slice(slash + 1) : image;
  return `${registryHost}/${path}`;
}

function forwarderProcess(
  start: (o: Parameters<typeof startProcess>[0]) => ManagedProcess,
  name: string,
  logFile: string,
  config: object,
): ManagedProcess {
  return start({
    name,
    command: process.execPath,
    args: [join(repoRoot, "devkit/netns-forward.ts"), JSON.stringify(config)],
    logFile,
  });
}

async function waitForLine(proc: ManagedProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  await waitFor(
    `${proc.name}: ${String(pattern)} in ${proc.logFile}`,
    () => {
      try {
        return pattern.test(readFileSync(proc.logFile, "utf8")) ? true : undefined;
      } catch {
        return undefined;
      }
    },
    { timeoutMs, intervalMs: 50, process: proc },
  );
}

function nodeReady(node: V1Node): boolean {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
  const tainted = (node.spec?.taints ?? []).some((t) => t.key.startsWith("node.kubernetes.io/"));
  return ready && !tainted;
}

export async function startNode(cp: ControlPlane, options: NodeOptions): Promise<RealNode> {
  const forNode = cp.forNode;
  if (forNode === undefined) throw new Error("startNode: the control plane was not started for a node");
  const log = options.log ?? (() => undefined);
  const dir = options.dir;
  const ip = NODE_NETWORK.nodeIp;
  if (forNode.advertiseAddress !== ip)
    throw new Error(`the control plane advertises ${forNode.advertiseAddress}, not ${ip}`);
  mkdirSync(dir, { recursive: true });
  const logs: Record<string, string> = {};
  const hostProcesses: ManagedProcess[] = [];
  let provisioner: Provisioner | undefined;

  const sandbox = await createNodeSandbox(dir, {
    bridge: { name: NODE_NETWORK.bridge, address: `${ip}/${NODE_NETWORK.prefixLength}` },
    ...(options.cleanupDir !== undefined && { cleanupDir: options.cleanupDir }),
  });
  const stop = async () => {
    await provisioner?.stop();
    await sandbox.stop();
    for (const p of hostProcesses.reverse()) await p.stop();
    // HUBMIRROR_KEEP_HARNESS=1 keeps the logs and configs (the processes are gone either way).
    if (process.env.HUBMIRROR_KEEP_HARNESS !== "1") rmSync(dir, { recursive: true, force: true });
  };

  try {
    const pki = join(dir, "pki");
    mkdirSync(pki, { recursive: true });
    const started = Date.now();
    const hostLink = options.hostLink === true ? createHostLink(sandbox) : undefined;

    // Plumbing between the namespace and the host.
    const apiSocket = join(dir, "api.sock");
    logs.hostForwarder = join(dir, "forward-host.log");
    const hostForwarder = forwarderProcess(startProcess, "forward-host", logs.hostForwarder, {
      unixToTcp: [{ listen: apiSocket, to: `127.0.0.1:${cp.port}` }],
    });
    hostProcesses.push(hostForwarder);
    logs.nodeForwarder = join(dir, "forward-node.log");
    const nodeForwarder = forwarderProcess((o) => sandbox.start(o), "forward-node", logs.nodeForwarder, {
      tcpToUnix: [
        { listen: `${ip}:${cp.port}`, to: apiSocket },
        { listen: `127.0.0.1:${cp.port}`, to: apiSocket },
      ],
      connectProxy: [{ listen: forNode.egressProxySocket }],
    });
    await Promise.all([
      waitForLine(hostForwarder, /^ready$/m, 20_000),
      waitForLine(nodeForwarder, /^ready$/m, 20_000),
    ]);

    // The node's registry.
    const registryDir = join(dir, "registry");
    mkdirSync(registryDir, { recursive: true });
    const registryCa = createCertificateAuthority(registryDir, "node-registry-ca");
    const registryCert = issueCertificate(registryCa, registryDir, "node-registry", {
      commonName: ip,
      subjectAltNames: [`IP:${ip}`],
      usage: "server",
    });
    const certDir = join(registryDir, "certs");
    mkdirSync(certDir);
    writeFileSync(join(certDir, "ca.crt"), registryCa.pem);
    const registryUser = "node";
    const registryPassword = randomBytes(18).toString("base64url");
    writeFileSync(
      join(registryDir, "htpasswd"),
      execFileSync("htpasswd", ["-Bbn", registryUser, registryPassword], { encoding: "utf8" }),
    );
    const registryHost = `${ip}:${NODE_NETWORK.registryPort}`;
    writeFileSync(
      join(registryDir, "config.yml"),
      stringify({
        version: 0.1,
        log: { level: "info", accesslog: { disabled: true } },
        storage: { filesystem: { rootdirectory: join(registryDir, "data") }, delete: { enabled: true } },
        http: {
          addr: registryHost,
          secret: randomBytes(16).toString("hex"),
          tls: { certificate: registryCert.certFile, key: registryCert.keyFile },
        },
        auth: { htpasswd: { realm: "node-registry", path: join(registryDir, "htpasswd") } },
      }),
    );
    const authFile = join(registryDir, "auth.json");
    writeFileSync(
      authFile,
      JSON.stringify({
        auths: {
          [registryHost]: { auth: Buffer.from(`${registryUser}:${registryPassword}`).toString("base64") },
        },
      }),
      { mode: 0o600 },
    );
    logs.registry = join(dir, "registry.log");
    const pushLog = join(dir, "push.log");
    logs.push = pushLog;
    const registry = sandbox.start({
      name: "node-registry",
      command: "docker-registry",
      args: ["serve", join(registryDir, "config.yml")],
      logFile: logs.registry,
    });
    await waitForLine(registry, /listening on/, 20_000);
    const push = async (image: string) => {
      const reference = nodeImageReference(image, registryHost);
      await pushImage(image, reference, {
        authFile,
        certDir,
        logFile: pushLog,
        netnsOf: sandbox.initPid,
      });
      return reference;
    };
    await pauseImage(log);
    const pause = await push(PAUSE_IMAGE);

    // containerd.
    const c = join(dir, "containerd");
    const certsD = join(c, "certs.d", registryHost);
    mkdirSync(certsD, { recursive: true });
    writeFileSync(
      join(certsD, "hosts.toml"),
      [
        `server = "https://${registryHost}"`,
        `[host."https://${registryHost}"]`,
        `  capabilities = ["pull", "resolve"]`,
        `  ca = "${registryCa.certFile}"`,
        "",
      ].join("\n"),
    );
    const cniConfDir = join(dir, "cni", "net.d");
    mkdirSync(cniConfDir, { recursive: true });
    writeFileSync(
      join(cniConfDir, "10-hubmirror.conflist"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "hubmirror",
        plugins: [
          {
            type: "bridge",
            bridge: NODE_NETWORK.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: "host-local",
              ranges: [[{ subnet: NODE_NETWORK.podSubnet, gateway: ip }]],
              routes: [{ dst: "0.0.0.0/0" }],
              dataDir: join(dir, "cni", "ipam"),
            },
          },
        ],
      }),
    );
    const containerdSocket = join(c, "containerd.sock");
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    writeFileSync(
      join(c, "config.toml"),
      [
        "version = 2",
        `root = "${join(c, "root")}"`,
        `state = "${join(c, "state")}"`,
        "[grpc]",
        `  address = "${containerdSocket}"`,
        "[metrics]",
        '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${join(c, "opt")}"`,
        `[${cri}]`,
        `  sandbox_image = "${pause}"`,
        "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        "  disable_apparmor = true",
        "  enable_selinux = false",
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        `[${cri}.containerd]`,
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        `[${cri}.containerd.runtimes.runc]`,
        '  runtime_type = "io.containerd.runc.v2"',
        `[${cri}.containerd.runtimes.runc.options]`,
        "  SystemdCgroup = false",
        `[${cri}.cni]`,
        '  bin_dir = "/usr/lib/cni"',
        `  conf_dir = "${cniConfDir}"`,
        `[${cri}.registry]`,
        `  config_path = "${join(c, "certs.d")}"`,
        `[${cri}.registry.configs."${registryHost}".auth]`,
        `  username = "${registryUser}"`,
        `  password = "${registryPassword}"`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    logs.containerd = join(dir, "containerd.log");
    const containerd = sandbox.start({
      name: "containerd",
      command: "containerd",
      args: ["--config", join(c, "config.toml")],
      logFile: logs.containerd,
    });
    await waitForLine(containerd, /containerd successfully booted/, 30_000);

    // Identities of the kubelet and kube-proxy; the kubelet's serving certificate.
    const server = `https://${ip}:${cp.port}`;
    const kubeletClient = issueCertificate(cp.ca, pki, "kubelet-client", {
      commonName: `system:node:${NODE_NAME}`,
      organizations: ["system:nodes"],
      usage: "client",
    });
    const kubeletServing = issueCertificate(cp.ca, pki, "kubelet-serving", {
      commonName: NODE_NAME,
      subjectAltNames: [`IP:${ip}`, `DNS:${NODE_NAME}`],
      usage: "server",
    });
    const proxyClient = issueCertificate(cp.ca, pki, "kube-proxy", {
      commonName: "system:kube-proxy",
      usage: "client",
    });
    const k = join(dir, "kubelet");
    mkdirSync(k, { recursive: true });
    const kubeletKubeconfig = join(k, "kubeconfig");
    writeKubeconfig(kubeletKubeconfig, server, cp.caFile, kubeletClient.certFile, kubeletClient.keyFile);
    // Pods get no name server (the node has no cluster DNS and must send nothing outside).
    writeFileSync(join(k, "resolv.conf"), "options ndots:1\n");
    writeFileSync(
      join(k, "config.yaml"),
      stringify({
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        address: ip,
        port: NODE_NETWORK.kubeletPort,
        readOnlyPort: 0,
        tlsCertFile: kubeletServing.certFile,
        tlsPrivateKeyFile: kubeletServing.keyFile,
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: true },
          x509: { clientCAFile: cp.caFile },
        },
        authorization: { mode: "Webhook" },
        cgroupDriver: "cgroupfs",
        cgroupRoot: sandbox.cgroupRoot,
        failSwapOn: false,
        containerRuntimeEndpoint: `unix://${containerdSocket}`,
        imageServiceEndpoint: `unix://${containerdSocket}`,
        podLogsDir: join(dir, "pod-logs"),
        volumePluginDir: join(k, "volume-plugins"),
        resolvConf: join(k, "resolv.conf"),
        clusterDomain: "cluster.local",
        // A shared test machine: evict only when it is really full; never collect images.
        evictionHard: {
          "memory.available": "100Mi",
          "nodefs.available": "1%",
          "nodefs.inodesFree": "1%",
          "imagefs.available": "1%",
        },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        serializeImagePulls: false,
        nodeStatusUpdateFrequency: "2s",
        nodeStatusReportFrequency: "10s",
        syncFrequency: "5s",
        fileCheckFrequency: "20s",
        rotateCertificates: false,
        serverTLSBootstrap: false,
      }),
    );
    logs.kubelet = join(dir, "kubelet.log");
    const kubeletStarted = Date.now();
    const kubelet = sandbox.start({
      name: "kubelet",
      command: kubeBinary("kubelet"),
      args: [
        `--config=${join(k, "config.yaml")}`,
        `--kubeconfig=${kubeletKubeconfig}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${ip}`,
        `--root-dir=${join(k, "root")}`,
        `--cert-dir=${join(k, "pki")}`,
        "--v=1",
      ],
      logFile: logs.kubelet,
    });

    // kube-proxy: the Services' rules, in the node's namespace only.
    const kp = join(dir, "kube-proxy");
    mkdirSync(kp, { recursive: true });
    writeKubeconfig(join(kp, "kubeconfig"), server, cp.caFile, proxyClient.certFile, proxyClient.keyFile);
    writeFileSync(
      join(kp, "config.yaml"),
      stringify({
        apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
        kind: "KubeProxyConfiguration",
        mode: "iptables",
        clientConnection: { kubeconfig: join(kp, "kubeconfig") },
        hostnameOverride: NODE_NAME,
        clusterCIDR: NODE_NETWORK.podSubnet,
        healthzBindAddress: "127.0.0.1:10256",
        metricsBindAddress: "127.0.0.1:10249",
        // Leave the kernel's conntrack settings alone (nf_conntrack_max is host-wide).
        conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
        // Masquerade Service traffic: without br_netfilter (a host-wide module), a pod that
        // reaches a pod on the same bridge through a Service would not see the replies NATed.
        iptables: { masqueradeAll: true, localhostNodePorts: false, syncPeriod: "30s", minSyncPeriod: "1s" },
        nodePortAddresses: ["primary"],
      }),
    );
    logs.kubeProxy = join(dir, "kube-proxy.log");
    sandbox.start({
      name: "kube-proxy",
      command: kubeBinary("kube-proxy"),
      args: [`--config=${join(kp, "config.yaml")}`, "--v=1"],
      logFile: logs.kubeProxy,
    });

    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigFile);
    const core = kc.makeApiClient(CoreV1Api);
    await waitFor(
      `node ${NODE_NAME} Ready without taints`,
      async () => (nodeReady(await core.readNode({ name: NODE_NAME })) ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 250, process: kubelet },
    );
    const readySeconds = (Date.now() - kubeletStarted) / 1000;
    provisioner = await startProvisioner(kc, join(dir, "volumes"));
    log(
      `node ${NODE_NAME} Ready ${readySeconds.toFixed(1)} s after the kubelet started (${((Date.now() - started) / 1000).toFixed(1)} s in all)`,
    );

    return {
      name: NODE_NAME,
      ip,
      dir,
      sandbox,
      registry: { host: registryHost, caFile: registryCa.certFile, authFile },
      readySeconds,
      pushImage: push,
      logs,
      ...(hostLink !== undefined && { hostLink }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
