/**
 * TCP plumbing between the host and the real node's network namespace (see node.ts), run as
 * its own process: `node netns-forward.ts '<json>'` (the JSON is a ForwardConfig; it holds
 * addresses and socket paths only, never a secret). Unix sockets live in the file system,
 * which both namespaces share, so they carry connections across the namespace boundary:
 *
 * - `tcpToUnix`: listen on TCP addresses (inside the namespace: the API server's address for
 *   the kubelet and the pods), forward each connection to a Unix socket;
 * - `unixToTcp`: listen on a Unix socket (on the host), forward each connection to a TCP
 *   address (the API server on 127.0.0.1);
 * - `connectProxy`: an HTTP CONNECT proxy on a Unix socket (inside the namespace): the API
 *   server's egress selector sends its traffic to kubelets, pods and Services through it.
 *
 * Bytes are relayed unchanged (TLS stays end to end). Prints `ready` once every listener is up.
 */
import { rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";

export interface ForwardConfig {
  readonly tcpToUnix?: readonly { readonly listen: string; readonly to: string }[];
  readonly unixToTcp?: readonly { readonly listen: string; readonly to: string }[];
  readonly connectProxy?: readonly { readonly listen: string }[];
}

/** `host:port` -> [host, port] */
export function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(":");
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535)
    throw new Error(`bad address ${address}`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ""), port];
}

function relay(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.once("error", end);
  b.once("error", end);
  a.once("close", end);
  b.once("close", end);
}

function listen(server: Server, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    if (where.startsWith("/")) {
      rmSync(where, { force: true });
      server.listen(where, () => {
        resolve();
      });
    } else {
      const [host, port] = splitHostPort(where);
      server.listen(port, host, () => {
        resolve();
      });
    }
  });
}

function dial(target: string): Socket {
  if (target.startsWith("/")) return connect(target);
  const [host, port] = splitHostPort(target);
  return connect(port, host);
}

/** Reads an HTTP request head (up to 8 KiB), answers CONNECT with a tunnel. */
function serveConnect(client: Socket): void {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (head.length > 8192) client.destroy();
      return;
    }
    client.off("data", onData);
    client.pause();
    const requestLine = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
    const match = /^CONNECT (\S+) HTTP\/1\.[01]$/.exec(requestLine);
    if (match?.[1] === undefined) {
      client.end("HTTP/1.1 405 Method Not Allowed\r\n\r\n");
      return;
    }
    let upstream: Socket;
    try {
      upstream = dial(match[1]);
    } catch {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const rest = head.subarray(end + 4);
    upstream.once("connect", () => {
      client.write("HTTP/1.1 200 Connection established\r\n\r\n");
      if (rest.length > 0) upstream.write(rest);
      relay(client, upstream);
      client.resume();
    });
    upstream.once("error", () => {
      if (!client.destroyed) client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    });
  };
  client.on("data", onData);
  client.once("error", () => client.destroy());
}

export async function forward(config: ForwardConfig): Promise<Server[]> {
  const servers: Server[] = [];
  for (const { listen: where, to } of [...(config.tcpToUnix ?? []), ...(config.unixToTcp ?? [])]) {
    const server = createServer((client) => {
      relay(client, dial(to));
    });
    await listen(server, where);
    servers.push(server);
  }
  for (const { listen: where } of config.connectProxy ?? []) {
    const server = createServer(serveConnect);
    await listen(server, where);
    servers.push(server);
  }
  return servers;
}

if (import.meta.main) {
  const config = JSON.parse(process.argv[2] ?? "{}") as ForwardConfig;
  await forward(config);
  process.stdout.write("ready\n");
}
