/**
 * One connection pool for all of the operator's API requests.
 *
 * @kubernetes/client-node 2.x builds a new undici Agent for every request it sends
 * (`KubeConfig.applySecurityAuthentication`), from the CA, client certificate and key it reads
 * again each time: every request then opens its own TCP and TLS connection, parses the
 * certificates into a new TLS context, and leaves the socket to time out. Measured with the
 * operator as its own process (bench/scale.ts): this was most of its CPU in a burst of runs
 * (Job completion to Ready p50 of seconds with 100 runs) and the native memory that grew with
 * every run (RSS at rest after 100 runs about twice that before any).
 *
 * shareConnections() keeps one Agent per set of connection settings (the cluster's server,
 * CA and TLS options and the user's client certificate and key, with the modification times
 * of the files they name, so a rotated certificate gets a new Agent): requests and watches
 * reuse kept-alive connections. Authentication headers (tokens, exec plugins) are still
 * applied per request by client-node. An Agent replaced by new settings is closed gracefully
 * (what is in flight, watches included, finishes on it).
 */
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";

type RequestContext = Parameters<KubeConfig["applySecurityAuthentication"]>[0];
type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

const SHARED = Symbol("hubmirror.sharedConnections");

function mtime(file: string | undefined): number | undefined {
  if (file === undefined || file === "") return undefined;
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** What decides the connection (not the authentication headers) of kc's current context. */
export function connectionKey(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  return createHash("sha256")
    .update(
      JSON.stringify([
        cluster?.name,
        cluster?.server,
        cluster?.caFile,
        mtime(cluster?.caFile),
        cluster?.caData,
        cluster?.skipTLSVerify,
        cluster?.tlsServerName,
        cluster?.proxyUrl,
        user?.name,
        user?.certFile,
        mtime(user?.certFile),
        user?.certData,
        user?.keyFile,
        mtime(user?.keyFile),
        user?.keyData,
      ]),
    )
    .digest("hex");
}

/** Makes every request of kc (API calls and watches) share one connection pool; returns kc. */
export function shareConnections(kc: KubeConfig): KubeConfig {
  const marked = kc as KubeConfig & { [SHARED]?: true };
  if (marked[SHARED] === true) return kc;
  marked[SHARED] = true;
  const apply = kc.applySecurityAuthentication.bind(kc);
  let current: { key: string; dispatcher: Dispatcher } | undefined;
  kc.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await apply(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return;
    const key = connectionKey(kc);
    if (current === undefined || current.key !== key) {
      const replaced = current?.dispatcher;
      current = { key, dispatcher: fresh };
      void replaced?.close().catch(() => undefined);
      return;
    }
    // The fresh Agent has opened nothing yet; it is dropped.
    context.setDispatcher(current.dispatcher);
  };
  return kc;
}
