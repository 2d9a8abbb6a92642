/**
 * Fault-injecting HTTPS proxies (fault-server.ts) in front of the offline upstream's servers,
 * for faults around the real oc-mirror: a slow or failing source registry, an update graph
 * that does not answer. Each proxy has a certificate of its own CA; give that CA to the
 * MirrorJob (createSourceInputs' `caPem`) and, for the registry proxy, the source credentials
 * for its host (createSourceInputs' `hosts`). Images reach oc-mirror through the proxy only if
 * the ImageSetConfiguration names them there (`via`).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startFaultServer, type FaultServer } from "./fault-server.ts";
import { createCertificateAuthority } from "../../devkit/pki.ts";
import type { UpstreamInfo } from "../../devkit/upstream.ts";

export interface UpstreamProxy {
  readonly server: FaultServer;
  /** `127.0.0.1:<port>` */
  readonly host: string;
  /** PEM of the CA that issued the proxy's certificate. */
  readonly caPem: string;
  /** The same reference, through the proxy: `<source host>/x:1` -> `<proxy host>/x:1`. */
  via(reference: string): string;
  stop(): Promise<void>;
}

async function startProxy(
  dir: string,
  name: string,
  target: { readonly host: string; readonly caPem: string },
): Promise<UpstreamProxy> {
  mkdirSync(dir, { recursive: true });
  const ca = createCertificateAuthority(dir, `${name}-ca`);
  const server = await startFaultServer({ dir, name, ca, upstream: target });
  return {
    server,
    host: server.host,
    caPem: ca.pem,
    via: (reference) => {
      if (!reference.startsWith(`${target.host}/`)) throw new Error(`${reference} is not on ${target.host}`);
      return `${server.host}${reference.slice(target.host.length)}`;
    },
    stop: () => server.stop(),
  };
}

/** A proxy in front of the upstream's source registry (TLS; it forwards the credentials). */
export function startSourceProxy(dir: string, up: UpstreamInfo): Promise<UpstreamProxy> {
  return startProxy(dir, "source-proxy", { host: up.source.host, caPem: up.source.caPem });
}

/**
 * A proxy in front of the upstream's update-graph and signature server: `via(up.graphUrl's
 * host/path)`; use `graphUrl(proxy, up)` for spec.source.release.updateGraphURL.
 */
export function startGraphProxy(dir: string, up: UpstreamInfo): Promise<UpstreamProxy> {
  return startProxy(dir, "graph-proxy", { host: new URL(up.graphUrl).host, caPem: up.httpsCaPem });
}

/** `up.graphUrl` through the proxy. */
export function proxiedUrl(proxy: UpstreamProxy, url: string): string {
  const u = new URL(url);
  return `https://${proxy.host}${u.pathname}${u.search}`;
}

/** A folder for a test's proxy (under the harness folder, removed with it). */
export function proxyDir(harnessDir: string, name: string): string {
  return join(harnessDir, `${name}-${Math.random().toString(36).slice(2, 8)}`);
}
