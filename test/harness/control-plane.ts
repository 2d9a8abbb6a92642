/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, PodSecurity
 * admission) and kube-controller-manager (Job, garbage-collector, namespace and
 * service-account controllers), on free loopback ports. There is no scheduler and
 * no kubelet: pods stay Pending unless a test pod runner sets their status.
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

export interface ControlPlane {
  readonly dir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly caFile: string;
  /** Kubeconfig of a cluster admin (group system:masters). */
  readonly kubeconfigFile: string;
  stop(): Promise<void>;
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

async function httpOk(url: string, dispatcher?: Agent): Promise<boolean> {
  const res = await request(url, { dispatcher, headersTimeout: 2_000, bodyTimeout: 2_000 });
  await res.body.dump();
  return res.statusCode === 200;
}

export async function startControlPlane(dir: string): Promise<ControlPlane> {
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
      subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
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
    const etcd = startProcess({
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
    processes.push(etcd);
    await waitFor(
      "etcd health",
      async () => ((await httpOk(`http://127.0.0.1:${etcdPort}/health`)) ? true : undefined),
      {
        timeoutMs: START_TIMEOUT_MS,
        process: etcd,
      },
    );

    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startProcess({
      name: "kube-apiserver",
      command: kubeBinary("kube-apiserver"),
      args: [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        `--secure-port=${apiPort}`,
        "--bind-address=127.0.0.1",
        `--cert-dir=${pki}`,
        `--tls-cert-file=${serving.certFile}`,
        `--tls-private-key-file=${serving.keyFile}`,
        `--client-ca-file=${ca.certFile}`,
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        "--disable-admission-plugins=ServiceAccount",
        `--service-account-issuer=${server}/`,
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
      ],
      logFile: join(dir, "kube-apiserver.log"),
    });
    processes.push(apiserver);

    const kubeconfigFile = join(dir, "admin.kubeconfig");
    writeKubeconfig(kubeconfigFile, server, ca.certFile, admin.certFile, admin.keyFile);
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

    const controllerManager = startProcess({
      name: "kube-controller-manager",
      command: kubeBinary("kube-controller-manager"),
      args: [
        `--kubeconfig=${kubeconfigFile}`,
        "--leader-elect=false",
        // root-ca-certificate-publisher: kube-root-ca.crt in every namespace, which the Job pods'
        // projected token volume names (as ServiceAccount admission would add it).
        "--controllers=job-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller",
        `--root-ca-file=${ca.certFile}`,
        "--use-service-account-credentials=false",
        "--secure-port=0",
      ],
      logFile: join(dir, "kube-controller-manager.log"),
    });
    processes.push(controllerManager);

    return {
      dir,
      server,
      caFile: ca.certFile,
      kubeconfigFile,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
