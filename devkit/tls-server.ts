/**
 * An HTTPS server of the test harness on a free port of 127.0.0.1 (or of another local
 * address: `host`), whose `stop()` also ends open keep-alive connections (so tests never wait
 * for clients to hang up).
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { KeyPair } from "./pki.ts";

export interface TlsServer {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startTlsServer(
  name: string,
  serving: KeyPair,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  host = "127.0.0.1",
): Promise<TlsServer> {
  const server: Server = createServer(
    { cert: readFileSync(serving.certFile), key: readFileSync(serving.keyFile) },
    handle,
  );
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error(`${name} has no address`);
  return {
    port: address.port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}
