/**
 * Liveness and readiness endpoints for the kubelet's probes, on a tiny node:http server.
 *
 * Why it exists: the Deployment's probes need `/healthz` (the process is alive: always 200 while
 * the event loop answers) and `/readyz` (200 only once the manager is ready, e.g. its informers
 * have synced; otherwise 503 with the reason as text). Other endpoints on the same port (such
 * as `/metrics`) plug in through `routes`, so the operator opens one port for everything.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HealthServerOptions {
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  host?: string;
  /** `true` when ready; `false` or a reason (string) when not. */
  ready: () => boolean | string;
  /** Extra routes by exact path (query strings ignored), e.g. `{ "/metrics": handler }`. */
  routes?: Record<string, RouteHandler>;
}

export interface HealthServer {
  port: number;
  /** Stops listening; open requests get a few seconds to finish. */
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 5000;

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const routes = new Map<string, RouteHandler>(Object.entries(options.routes ?? {}));
  routes.set("/healthz", (req, res) => {
    reply(req, res, 200, "ok");
  });
  routes.set("/readyz", (req, res) => {
    const verdict = readiness(options.ready);
    if (verdict === true) reply(req, res, 200, "ok");
    else reply(req, res, 503, verdict === false ? "not ready" : `not ready: ${verdict}`);
  });

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const handler = routes.get(path);
    if (handler === undefined) {
      reply(req, res, 404, "not found");
      return;
    }
    if ((path === "/healthz" || path === "/readyz") && req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      reply(req, res, 405, "method not allowed");
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        if (!res.headersSent) reply(req, res, 500, `internal error: ${errorMessage(err)}`);
        else res.destroy();
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) {
          resolve();
          return;
        }
        const force = setTimeout(() => {
          server.closeAllConnections();
        }, CLOSE_GRACE_MS);
        force.unref();
        server.close((err) => {
          clearTimeout(force);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/** `true`, or `false`, or why not; a `ready()` that throws counts as not ready. */
function readiness(ready: () => boolean | string): boolean | string {
  try {
    const verdict = ready();
    return verdict === "" ? false : verdict;
  } catch (err) {
    return `readiness check failed: ${errorMessage(err)}`;
  }
}

function reply(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
