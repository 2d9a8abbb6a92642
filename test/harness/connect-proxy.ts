/**
 * A small but real forward proxy on 127.0.0.1 for HTTPS: it answers `CONNECT host:port`
 * by opening a TCP tunnel (what squid does for TLS traffic), optionally requiring
 * `Proxy-Authorization: Basic`, and records every tunnel it opened or refused.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";

export interface ConnectProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `host:port` targets of CONNECT requests, with the answer given. */
  readonly tunnels: readonly { readonly target: string; readonly status: number }[];
  stop(): Promise<void>;
}

export async function startConnectProxy(
  options: { username?: string; password?: string } = {},
): Promise<ConnectProxy> {
  const tunnels: { target: string; status: number }[] = [];
  const sockets = new Set<Socket | Duplex>();
  const expected =
    options.username !== undefined
      ? `Basic ${Buffer.from(`${options.username}:${options.password ?? ""}`).toString("base64")}`
      : undefined;
  const server: Server = createServer((_req, res) => {
    res.writeHead(405).end();
  });
  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    const target = req.url ?? "";
    if (expected !== undefined && req.headers["proxy-authorization"] !== expected) {
      tunnels.push({ target, status: 407 });
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="proxy"\r\n\r\n',
      );
      return;
    }
    const [host, port] = target.split(":");
    const upstream = connect(Number(port), host ?? "127.0.0.1", () => {
      tunnels.push({ target, status: 200 });
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.once("close", () => sockets.delete(upstream));
    upstream.on("error", () => {
      tunnels.push({ target, status: 502 });
      client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    });
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("proxy has no address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    tunnels,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}
