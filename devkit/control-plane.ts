/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, PodSecurity
 * admission) and kube-controller-manager (Job, garbage-collector, namespace and
 * service-account controllers), on free loopback ports. There is no scheduler and
 * no kubelet: pods stay Pending unless a test pod runner sets their status.
 *
 * With `forNode`, the control plane serves a real node (see node.ts): kube-scheduler runs
 * too; the API server admits ServiceAccounts (tokens are mounted), authorizes kubelets with
 * the Node authorizer, advertises the address pods reach it at (the `kubernetes` Service's
 * endpoint), has that address and the Service's ClusterIP in its certificate, and reaches
 * nodes and pods through an HTTP CONNECT proxy on a Unix socket (egress selector `cluster`,
 * as konnectivity does), because they live in a network namespace it cannot route to; and
 * kube-controller-manager also runs the controllers a node needs (node lifecycle, PV binder,
 * PV/PVC protection, endpoints, ReplicaSets and Deployments, pod GC).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import {
  createCertificateAuthority,
  createSigningKey,
  issueCertificate,
  type CertificateAuthority,
} from "./pki.ts";
import { freePort } from "./ports.ts";
import { etcdBinary, kubeBinary } from "./binaries.ts";
import { startProcess, waitFor, type ManagedProcess } from "./processes.ts";

/** Options for a control plane that serves a real node (node.ts). */
export interface NodeControlPlaneOptions {
  /** The address pods and the kubelet reach the API server at (inside the node's network). */
  readonly advertiseAddress: string;
  /** Unix socket of the HTTP CONNECT proxy into the node's network (egress selector `cluster`). */
  readonly egressProxySocket: string;
  /** Service ClusterIP range (default 10.0.0.0/24; the `kubernetes` Service gets its first IP). */
  readonly serviceClusterIpRange?: string;
}

export interface ControlPlaneOptions {
  readonly forNode?: NodeControlPlaneOptions;
  /** More kube-apiserver flags (e.g. an audit policy; a later flag wins over an earlier one). */
  readonly apiServerArgs?: readonly string[];
  /** More kube-controller-manager flags (e.g. `--kube-api-qps` for a benchmark). */
  readonly controllerManagerArgs?: readonly string[];
}

export interface ControlPlane {
  readonly dir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly caFile: string;
  /** Kubeconfig of a cluster admin (group system:masters). */
  readonly kubeconfigFile: string;
  /** The port the API server listens on (127.0.0.1). */
  readonly port: number;
  /** The CA that signs the API server's certificate and the client certificates it accepts. */
  readonly ca: CertificateAuthority;
  /** Service ClusterIP range. */
  readonly serviceClusterIpRange: string;
  /** Set when the control plane serves a real node. */
  readonly forNode?: NodeControlPlaneOptions;
  /** `http://127.0.0.1:<port>` of etcd. */
  readonly etcd: string;
  /**
   * Stops kube-apiserver (SIGTERM, as a rolling restart does) and starts it again with the
   * same flags on the same port; resolves once it is ready. Clients see their connections
   * and watches end, then the same server again.
   */
  restartApiServer(): Promise<void>;
  /**
   * Compacts etcd's history up to its current revision: every resourceVersion before it is
   * gone, so a watch resumed from one gets 410 Gone. Returns the revision.
   */
  compactEtcd(): Promise<number>;
  stop(): Promise<void>;
}

const NODE_CONTROLLERS = [
  "node-lifecycle-controller",
  "persistentvolume-binder-controller",
  // Remove the kubernetes.io/pv(c)-protection finalizers once no pod uses a claim.
  "persistentvolumeclaim-protection-controller",
  "persistentvolume-protection-controller",
  "endpoints-controller",
  "endpointslice-controller",
  "replicaset-controller",
  "deployment-controller",
  "pod-garbage-collector-controller",
  "ttl-after-finished-controller",
];

/** The first address of an IPv4 CIDR plus one (the `kubernetes` Service's ClusterIP). */
export function firstServiceIp(cidr: string): string {
  const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/\d+$/.exec(cidr);
  if (match === null) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const n =
    ((Number(match[1]) << 24) | (Number(match[2]) << 16) | (Number(match[3]) << 8) | Number(match[4])) >>> 0;
  const ip = n + 1;
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join(".");
}

const START_TIMEOUT_MS = 90_000;

export function writeKubeconfig(
  file: string,
  server: string,
  caFile: string,
  certFile: string,
  keyFile: string,
): void {
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "harness", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: "user", user: { "client-certificate": certFile, "client-key": keyFile } }],
    contexts: [{ name: "harness", context: { cluster: "harness", user: "user", namespace: "default" } }],
    "current-context": "harness",
  };
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

/**
 * Issues a client certificate for `user` in `groups` (signed by the control plane's
 * CA in `dir`) and writes a kubeconfig for that restricted identity.
 */
export function userKubeconfig(
  dir: string,
  server: string,
  user: string,
  groups: readonly string[] = [],
): string {
  const pki = join(dir, "pki");
  const ca: CertificateAuthority = {
    certFile: join(pki, "ca.crt"),
    keyFile: join(pki, "ca.key"),
    pem: readFileSync(join(pki, "ca.crt"), "utf8"),
  };
  const name = `user-${user.replace(/[^a-zA-Z0-9-]/g, "_")}-${randomBytes(4).toString("hex")}`;
  const pair = issueCertificate(ca, pki, name, { commonName: user, organizations: groups, usage: "client" });
  const file = join(dir, `${name}.kubeconfig`);
  writeKubeconfig(file, server, ca.certFile, pair.certFile, pair.keyFile);
  return file;
}

/**
 * API server flags for a control plane with a real node: ServiceAccount admission on (the
 * default plugins) plus NodeRestriction, the Node authorizer, the advertised address, a client
 * certificate for the kubelets, and the egress selector that sends traffic to nodes, pods and
 * Services through the CONNECT proxy in the node's network.
 */
function nodeApiServerFlags(
  pki: string,
  ca: CertificateAuthority,
  forNode: NodeControlPlaneOptions,
): string[] {
  const kubeletClient = issueCertificate(ca, pki, "apiserver-kubelet-client", {
    commonName: "kube-apiserver-kubelet-client",
    organizations: ["system:masters"],
    usage: "client",
  });
  const egressFile = join(pki, "egress-selector.yaml");
  writeFileSync(
    egressFile,
    stringify({
      apiVersion: "apiserver.k8s.io/v1beta1",
      kind: "EgressSelectorConfiguration",
      egressSelections: [
        {
          name: "cluster",
          connection: {
            proxyProtocol: "HTTPConnect",
            transport: { uds: { udsName: forNode.egressProxySocket } },
          },
        },
      ],
    }),
  );
  return [
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    `--advertise-address=${forNode.advertiseAddress}`,
    `--kubelet-client-certificate=${kubeletClient.certFile}`,
    `--kubelet-client-key=${kubeletClient.keyFile}`,
    "--kubelet-preferred-address-types=InternalIP",
    `--egress-selector-config-file=${egressFile}`,
  ];
}

/**
 * Compacts etcd's key-value history up to its current revision (etcd's v3 JSON gateway:
 * a range request for the header's revision, then a physical compaction).
 */
async function compactEtcd(etcd: string): Promise<number> {
  const post = async (path: string, body: unknown): Promise<unknown> => {
    const res = await request(`${etcd}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`etcd ${path}: ${String(res.statusCode)} ${text}`);
    return JSON.parse(text) as unknown;
  };
  // Any key will do: the header carries the store's revision.
  const range = (await post("/v3/kv/range", { key: Buffer.from("/").toString("base64") })) as {
    header?: { revision?: string };
  };
  const revision = Number(range.header?.revision ?? "0");
  if (!(revision > 0)) throw new Error("etcd: no revision in the range response");
  await post("/v3/kv/compaction", { revision: String(revision), physical: true });
  return revision;
}

async function httpOk(url: string, dispatcher?: Agent): Promise<boolean> {
  const res = await request(url, { dispatcher, headersTimeout: 2_000, bodyTimeout: 2_000 });
  await res.body.dump();
  return res.statusCode === 200;
}

export async function startControlPlane(
  dir: string,
  options: ControlPlaneOptions = {},
): Promise<ControlPlane> {
  const forNode = options.forNode;
  const serviceClusterIpRange = forNode?.serviceClusterIpRange ?? "10.0.0.0/24";
  const pki = join(dir, "pki");
  mkdirSync(pki, { recursive: true });
  const processes: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of processes.reverse()) await p.stop();
  };
  try {
    const ca: CertificateAuthority = createCertificateAuthority(pki, "ca");
    const serving = issueCertificate(ca, pki, "apiserver", {
      commonName: "kube-apiserver",
      subjectAltNames: [
        "IP:127.0.0.1",
        "DNS:localhost",
        ...(forNode === undefined
          ? []
          : [
              `IP:${forNode.advertiseAddress}`,
              `IP:${firstServiceIp(serviceClusterIpRange)}`,
              "DNS:kubernetes",
              "DNS:kubernetes.default",
              "DNS:kubernetes.default.svc",
              "DNS:kubernetes.default.svc.cluster.local",
            ]),
      ],
      usage: "server",
    });
    const admin = issueCertificate(ca, pki, "admin", {
      commonName: "admin",
      organizations: ["system:masters"],
      usage: "client",
    });
    const [saKey, saPub] = createSigningKey(pki, "service-accounts");

    const etcdPort = await freePort();
    const etcdPeerPort = await freePort();
    const etcdProcess = startProcess({
      name: "etcd",
      command: etcdBinary(),
      args: [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      logFile: join(dir, "etcd.log"),
    });
    processes.push(etcdProcess);
    const etcd = `http://127.0.0.1:${etcdPort}`;
    await waitFor("etcd health", async () => ((await httpOk(`${etcd}/health`)) ? true : undefined), {
      timeoutMs: START_TIMEOUT_MS,
      process: etcdProcess,
    });

    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const apiServerArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--secure-port=${apiPort}`,
      "--bind-address=127.0.0.1",
      `--cert-dir=${pki}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${ca.certFile}`,
      `--service-cluster-ip-range=${serviceClusterIpRange}`,
      "--allow-privileged=true",
      `--service-account-issuer=${server}/`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      ...(forNode === undefined
        ? ["--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount"]
        : nodeApiServerFlags(pki, ca, forNode)),
      ...(options.apiServerArgs ?? []),
    ];
    const kubeconfigFile = join(dir, "admin.kubeconfig");
    writeKubeconfig(kubeconfigFile, server, ca.certFile, admin.certFile, admin.keyFile);
    /** Starts kube-apiserver (in the processes list after etcd) and waits until it is ready. */
    const startApiServer = async (): Promise<ManagedProcess> => {
      const apiserver = startProcess({
        name: "kube-apiserver",
        command: kubeBinary("kube-apiserver"),
        args: apiServerArgs,
        logFile: join(dir, "kube-apiserver.log"),
      });
      processes.splice(1, 0, apiserver);
      const adminAgent = new Agent({
        connect: { ca: ca.pem, cert: readFileSync(admin.certFile), key: readFileSync(admin.keyFile) },
      });
      try {
        await waitFor(
          "kube-apiserver /readyz",
          async () => ((await httpOk(`${server}/readyz`, adminAgent)) ? true : undefined),
          {
            timeoutMs: START_TIMEOUT_MS,
            intervalMs: 250,
            process: apiserver,
          },
        );
        await waitFor(
          "namespace default",
          async () => ((await httpOk(`${server}/api/v1/namespaces/default`, adminAgent)) ? true : undefined),
          { timeoutMs: START_TIMEOUT_MS, intervalMs: 250, process: apiserver },
        );
      } finally {
        await adminAgent.close();
      }
      return apiserver;
    };
    let apiserver = await startApiServer();

    const controllerManager = startProcess({
      name: "kube-controller-manager",
      command: kubeBinary("kube-controller-manager"),
      args: [
        `--kubeconfig=${kubeconfigFile}`,
        "--leader-elect=false",
        // root-ca-certificate-publisher: kube-root-ca.crt in every namespace, which the Job pods'
        // projected token volume names (as ServiceAccount admission would add it).
        `--controllers=${[
          "job-controller",
          "garbage-collector-controller",
          "namespace-controller",
          "serviceaccount-controller",
          "root-ca-certificate-publisher-controller",
          ...(forNode === undefined ? [] : NODE_CONTROLLERS),
        ].join(",")}`,
        `--root-ca-file=${ca.certFile}`,
        "--use-service-account-credentials=false",
        "--secure-port=0",
        ...(forNode === undefined ? [] : [`--service-cluster-ip-range=${serviceClusterIpRange}`]),
        ...(options.controllerManagerArgs ?? []),
      ],
      logFile: join(dir, "kube-controller-manager.log"),
    });
    processes.push(controllerManager);

    if (forNode !== undefined) {
      // The scheduler, as its own identity (the default RBAC binds system:kube-scheduler).
      const schedulerCert = issueCertificate(ca, pki, "kube-scheduler", {
        commonName: "system:kube-scheduler",
        usage: "client",
      });
      const schedulerKubeconfig = join(dir, "kube-scheduler.kubeconfig");
      writeKubeconfig(
        schedulerKubeconfig,
        server,
        ca.certFile,
        schedulerCert.certFile,
        schedulerCert.keyFile,
      );
      processes.push(
        startProcess({
          name: "kube-scheduler",
          command: kubeBinary("kube-scheduler"),
          args: [
            `--kubeconfig=${schedulerKubeconfig}`,
            `--authentication-kubeconfig=${schedulerKubeconfig}`,
            `--authorization-kubeconfig=${schedulerKubeconfig}`,
            "--leader-elect=false",
            "--secure-port=0",
          ],
          logFile: join(dir, "kube-scheduler.log"),
        }),
      );
    }

    return {
      dir,
      server,
      caFile: ca.certFile,
      kubeconfigFile,
      port: apiPort,
      ca,
      serviceClusterIpRange,
      ...(forNode !== undefined && { forNode }),
      etcd,
      async restartApiServer() {
        const old = apiserver;
        await old.stop();
        processes.splice(processes.indexOf(old), 1);
        apiserver = await startApiServer();
      },
      compactEtcd: () => compactEtcd(etcd),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
