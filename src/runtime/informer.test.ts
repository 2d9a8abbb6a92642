import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { StoppableWatch, trimForCache, WATCH_TIMEOUT_SECONDS } from "./informer.ts";

/** A stand-in API server for one watch request: records it, answers with `lines`, then waits or ends. */
async function server(lines: readonly string[], end: boolean) {
  const requests: URL[] = [];
  const open = new Set<ServerResponse>();
  const s = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(new URL(req.url ?? "/", "http://127.0.0.1"));
    res.writeHead(200, { "content-type": "application/json" });
    res.flushHeaders();
    for (const line of lines) res.write(`${line}\n`);
    if (end) res.end();
    else open.add(res);
  });
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: "c",
        server: `http://127.0.0.1:${String((s.address() as AddressInfo).port)}`,
        // client-node refuses plain HTTP unless told to skip TLS verification.
        skipTLSVerify: true,
      },
    ],
    users: [{ name: "u" }],
    contexts: [{ name: "c", cluster: "c", user: "u" }],
    currentContext: "c",
  });
  return {
    kc,
    requests,
    close: async () => {
      for (const res of open) res.end();
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    },
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe("StoppableWatch", () => {
  it("asks the API server for a watch timeout of 5 to 10 minutes and bookmarks, and waits longer than that for data", async () => {
    const api = await server([], false);
    closers.push(api.close);
    const watch = new StoppableWatch(api.kc);
    // client-node gives up on a watch that is silent for this long (its default: 30 s).
    expect(Reflect.get(watch, "requestTimeoutMs")).toBe(WATCH_TIMEOUT_SECONDS.max * 1000 + 60_000);
    for (let i = 0; i < 5; i++) {
      const controller = await watch.watch(
        "/api/v1/configmaps",
        { resourceVersion: "5" },
        () => undefined,
        () => undefined,
      );
      controller.abort();
    }
    expect(api.requests).toHaveLength(5);
    for (const url of api.requests) {
      const timeout = Number(url.searchParams.get("timeoutSeconds"));
      expect(timeout).toBeGreaterThanOrEqual(WATCH_TIMEOUT_SECONDS.min);
      expect(timeout).toBeLessThanOrEqual(WATCH_TIMEOUT_SECONDS.max);
      expect(url.searchParams.get("allowWatchBookmarks")).toBe("true");
      expect(url.searchParams.get("resourceVersion")).toBe("5");
      expect(url.searchParams.get("watch")).toBe("true");
    }
  });

  it("says when a watch expired (410 Gone), and passes every event on", async () => {
    const gone = { type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } };
    const added = { type: "ADDED", object: { metadata: { name: "a", resourceVersion: "7" } } };
    const api = await server([JSON.stringify(added), JSON.stringify(gone)], true);
    closers.push(api.close);
    let expired = 0;
    const watch = new StoppableWatch(api.kc, () => {
      expired++;
    });
    const phases: string[] = [];
    await new Promise<void>((resolve) => {
      void watch.watch(
        "/api/v1/configmaps",
        {},
        (phase) => phases.push(phase),
        () => {
          resolve();
        },
      );
    });
    expect(phases).toEqual(["ADDED", "ERROR"]);
    expect(expired).toBe(1);
  });
});

describe("trimForCache", () => {
  it("drops managedFields and keeps everything else", () => {
    const obj = {
      metadata: {
        name: "a",
        resourceVersion: "7",
        labels: { x: "y" },
        managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }],
      },
      spec: { z: 1 },
    };
    expect(trimForCache(obj)).toBe(obj);
    expect(obj).toEqual({
      metadata: { name: "a", resourceVersion: "7", labels: { x: "y" } },
      spec: { z: 1 },
    });
    expect(trimForCache({ kind: "Status" })).toEqual({ kind: "Status" });
    expect(trimForCache(null)).toBeNull();
  });
});
