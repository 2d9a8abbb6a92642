/**
 * A fault-injecting HTTPS reverse proxy on 127.0.0.1 in front of a real registry:
 * requests are forwarded to the registry unless an injected fault matches them, in
 * which case the server answers with a chosen status and headers (429 with
 * `Retry-After`, 503, ...), never answers (a hanging server), drops the
 * connection, or forwards the request late (a slow registry). Routes can also answer some paths itself (e.g. a paginated tag list,
 * which distribution 2.8 does not paginate). Every request is logged with its time.
 */
import { startTlsServer } from "../../devkit/tls-server.ts";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { Agent, request, type Dispatcher } from "undici";
import { issueCertificate, type CertificateAuthority } from "../../devkit/pki.ts";

export type FaultAction =
  | { readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body?: string }
  /** Forward the request after this many ms (a slow registry: copies take long enough to watch). */
  | { readonly delayMs: number }
  | "hang"
  | "reset";

export interface Fault {
  readonly method?: string;
  /** Matched against the path with its query. */
  readonly path?: RegExp;
  /** How many matching requests get the fault (default: every one). */
  readonly times?: number;
  readonly action: FaultAction;
}

export interface RouteAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  /** performance.now() when the request arrived. */
  readonly at: number;
  /** `status`, `hang`, `reset`, `route`, `forwarded` or `delayed` (forwarded late). */
  readonly handling: string;
  readonly status?: number;
}

export interface FaultServer {
  /** `127.0.0.1:<port>` */
  readonly host: string;
  readonly log: readonly LoggedRequest[];
  inject(fault: Fault): void;
  route(method: string, path: RegExp, answer: (url: URL, headers: IncomingHttpHeaders) => RouteAnswer): void;
  /** Removes faults and routes, and empties the log. */
  reset(): void;
  stop(): Promise<void>;
}

export interface FaultServerOptions {
  readonly dir: string;
  readonly name?: string;
  /** CA that issues the server's certificate (use the registry's, so clients trust both). */
  readonly ca: CertificateAuthority;
  /** The registry requests are forwarded to; without one, unmatched requests get 502. */
  readonly upstream?: { readonly host: string; readonly caPem: string };
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

interface ActiveFault {
  readonly fault: Fault;
  remaining: number;
}

function matches(f: { method?: string; path?: RegExp }, method: string, path: string): boolean {
  return (f.method === undefined || f.method === method) && (f.path === undefined || f.path.test(path));
}

export async function startFaultServer(options: FaultServerOptions): Promise<FaultServer> {
  const name = options.name ?? "fault-server";
  const cert = issueCertificate(options.ca, options.dir, name, {
    commonName: "127.0.0.1",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "server",
  });
  const faults: ActiveFault[] = [];
  const routes: {
    method: string;
    path: RegExp;
    answer: (url: URL, h: IncomingHttpHeaders) => RouteAnswer;
  }[] = [];
  const log: LoggedRequest[] = [];
  const upstream: Dispatcher | undefined =
    options.upstream && new Agent({ connect: { ca: options.upstream.caPem } });

  const forward = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<number> => {
    if (options.upstream === undefined || upstream === undefined) {
      res.writeHead(502).end();
      return 502;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k) && k !== "host") headers[k] = v;
    }
    const method: Dispatcher.HttpMethod = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD";
    const answer = await request(`https://${options.upstream.host}${path}`, {
      dispatcher: upstream,
      method,
      headers,
      ...(hasBody && { body: req }),
      ...(method === "HEAD" && { reset: false }),
    });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(answer.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
    }
    res.writeHead(answer.statusCode, out);
    if (method === "HEAD") {
      await answer.body.dump();
      res.end();
    } else {
      for await (const chunk of answer.body) res.write(chunk as Buffer);
      res.end();
    }
    return answer.statusCode;
  };

  /** Delayed requests not yet forwarded (cleared on stop). */
  const pending = new Set<NodeJS.Timeout>();
  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    at: number,
    handling: "forwarded" | "delayed",
  ): void => {
    forward(req, res, path).then(
      (status) => log.push({ method, path, at, handling, status }),
      () => {
        log.push({ method, path, at, handling, status: 502 });
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    );
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const at = performance.now();
    const active = faults.find((f) => f.remaining > 0 && matches(f.fault, method, path));
    if (active !== undefined) {
      active.remaining--;
      const action = active.fault.action;
      if (action === "hang") {
        log.push({ method, path, at, handling: "hang" });
        return; // never answered; the socket is destroyed on stop()
      }
      if (action === "reset") {
        log.push({ method, path, at, handling: "reset" });
        req.socket.destroy();
        return;
      }
      if ("delayMs" in action) {
        const timer = setTimeout(() => {
          pending.delete(timer);
          send(req, res, method, path, at, "delayed");
        }, action.delayMs);
        pending.add(timer);
        return;
      }
      log.push({ method, path, at, handling: "status", status: action.status });
      res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
      res.end(method === "HEAD" ? undefined : (action.body ?? ""));
      return;
    }
    const route = routes.find((r) => r.method === method && r.path.test(path));
    if (route !== undefined) {
      const answer = route.answer(new URL(path, "https://127.0.0.1"), req.headers);
      log.push({ method, path, at, handling: "route", status: answer.status });
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(method === "HEAD" ? undefined : (answer.body ?? ""));
      return;
    }
    send(req, res, method, path, at, "forwarded");
  };

  const server = await startTlsServer(name, cert, handle);
  return {
    host: `127.0.0.1:${server.port}`,
    log,
    inject(fault) {
      faults.push({ fault, remaining: fault.times ?? Infinity });
    },
    route(method, path, answer) {
      routes.push({ method, path, answer });
    },
    reset() {
      faults.length = 0;
      routes.length = 0;
      log.length = 0;
    },
    async stop() {
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
      await server.stop();
      await upstream?.close();
    },
  };
}
