/**
 * Proxy settings for registry traffic (`HTTP(S)_PROXY` / `NO_PROXY`, or a MirrorJob's
 * `spec.proxy`), and the undici dispatcher that honours them.
 *
 * The client uses the settings it is given verbatim. The operator builds them with
 * `proxyFromEnvironment()` (its own Deployment's environment, e.g. injected by OLM) or
 * `proxySettings(spec.proxy)`; both always exempt in-cluster and loopback traffic
 * (`OPERATOR_NO_PROXY`), so a proxy never sees calls to services of the cluster.
 */
import { createHash } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { Agent, EnvHttpProxyAgent, type Dispatcher } from "undici";

export interface ProxySettings {
  /** Proxy for `http://` origins. */
  readonly httpProxy?: string;
  /** Proxy for `https://` origins (registries are always reached over HTTPS). */
  readonly httpsProxy?: string;
  /** Comma-separated hosts, domains (`.example.com`), `host:port` or `*` that bypass the proxy. */
  readonly noProxy?: string;
}

/** Always bypass the proxy for these (cluster services and loopback). */
export const OPERATOR_NO_PROXY: readonly string[] = [".svc", ".svc.cluster.local", "localhost", "127.0.0.1"];

/** Adds the operator's own exemptions to a NO_PROXY list, keeping order and dropping duplicates. */
export function withOperatorNoProxy(noProxy: string | undefined): string {
  const entries = (noProxy ?? "")
    .split(/[,\s]+/)
    .map((e) => e.trim())
    .filter((e) => e !== "");
  const seen = new Set(entries.map((e) => e.toLowerCase()));
  for (const extra of OPERATOR_NO_PROXY) if (!seen.has(extra)) entries.push(extra);
  return entries.join(",");
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

/**
 * Settings as curl, Go and undici read them: lower-case names win over upper-case
 * ones; an empty value means "not set". The operator's exemptions are always added.
 */
export function proxyFromEnvironment(env: NodeJS.ProcessEnv = process.env): ProxySettings {
  return proxySettings({
    httpProxy: nonEmpty(env.http_proxy) ?? nonEmpty(env.HTTP_PROXY),
    httpsProxy: nonEmpty(env.https_proxy) ?? nonEmpty(env.HTTPS_PROXY),
    noProxy: nonEmpty(env.no_proxy) ?? nonEmpty(env.NO_PROXY),
  });
}

/** Normalized settings from e.g. a MirrorJob's `spec.proxy`, with the operator's exemptions added. */
export function proxySettings(input: {
  httpProxy?: string | undefined;
  httpsProxy?: string | undefined;
  noProxy?: string | undefined;
}): ProxySettings {
  const httpProxy = nonEmpty(input.httpProxy);
  const httpsProxy = nonEmpty(input.httpsProxy);
  return {
    ...(httpProxy !== undefined && { httpProxy }),
    ...(httpsProxy !== undefined && { httpsProxy }),
    noProxy: withOperatorNoProxy(input.noProxy),
  };
}

/**
 * True when registry traffic (always HTTPS) goes through a proxy. As in Go's net/http
 * (which oc-mirror uses), only HTTPS_PROXY applies to https origins; undici on its own
 * would fall back to HTTP_PROXY, which the operator does not want.
 */
export function usesProxy(settings: ProxySettings | undefined): boolean {
  return nonEmpty(settings?.httpsProxy) !== undefined;
}

/** Passwords embedded in proxy URLs (`http://user:secret@proxy:3128`), to keep out of messages. */
export function proxySecrets(settings: ProxySettings | undefined): string[] {
  const secrets: string[] = [];
  for (const uri of [settings?.httpProxy, settings?.httpsProxy]) {
    if (uri === undefined) continue;
    try {
      const url = new URL(uri);
      if (url.password !== "") secrets.push(url.password, decodeURIComponent(url.password));
    } catch {
      // An unparsable proxy URL fails in undici with a message of its own.
    }
  }
  return secrets;
}

export interface DispatcherOptions {
  readonly tls: { readonly ca?: readonly string[]; readonly rejectUnauthorized: boolean };
  readonly timeoutMs: number;
  readonly connections: number;
  readonly pipelining?: number;
  readonly allowH2?: boolean;
}

/** SecureContexts by their CA list, most recently used last (see secureContextFor). */
const secureContexts = new Map<string, SecureContext>();
const MAX_SECURE_CONTEXTS = 16;

/**
 * One SecureContext per CA list, shared by every client and connection that trusts it: given
 * a `ca` list, Node would otherwise parse the whole list (the system roots plus the bundle)
 * for each new connection, and a fresh context per client costs a few milliseconds of CPU and
 * some megabytes of native memory each time (an operator verifying a thousand runs made a
 * thousand). Bounded: the least recently used of more than MAX_SECURE_CONTEXTS lists goes.
 */
export function secureContextFor(ca: readonly string[]): SecureContext {
  const key = createHash("sha256").update(ca.join("\0")).digest("hex");
  const known = secureContexts.get(key);
  if (known !== undefined) {
    secureContexts.delete(key);
    secureContexts.set(key, known);
    return known;
  }
  const context = createSecureContext({ ca: [...ca] });
  secureContexts.set(key, context);
  for (const oldest of secureContexts.keys()) {
    if (secureContexts.size <= MAX_SECURE_CONTEXTS) break;
    secureContexts.delete(oldest);
  }
  return context;
}

/**
 * One long-lived dispatcher for a registry: a plain Agent, or, when an HTTPS proxy is set,
 * an EnvHttpProxyAgent given explicit values (so it never reads the environment on
 * its own) that tunnels HTTPS with CONNECT and applies the registry's TLS settings
 * inside the tunnel.
 */
export function createDispatcher(proxy: ProxySettings | undefined, options: DispatcherOptions): Dispatcher {
  const tls = {
    rejectUnauthorized: options.tls.rejectUnauthorized,
    ...(options.tls.ca !== undefined && { secureContext: secureContextFor(options.tls.ca) }),
  };
  const agentOptions = {
    connections: options.connections,
    ...(options.pipelining !== undefined && { pipelining: options.pipelining }),
    ...(options.allowH2 !== undefined && { allowH2: options.allowH2 }),
    connect: { timeout: options.timeoutMs, ...tls },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  };
  const httpsProxy = nonEmpty(proxy?.httpsProxy);
  if (httpsProxy === undefined) return new Agent(agentOptions);
  return new EnvHttpProxyAgent({
    ...agentOptions,
    httpProxy: nonEmpty(proxy?.httpProxy) ?? "",
    httpsProxy,
    noProxy: proxy?.noProxy ?? "",
    connectTimeout: options.timeoutMs,
    requestTls: { ...tls, timeout: options.timeoutMs },
    proxyTls: { ...tls, timeout: options.timeoutMs },
  });
}
