import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { shareConnections } from "./kube-connections.ts";

const dir = mkdtempSync(join(tmpdir(), "kube-connections-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function config(caFile: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:6443", caFile }],
    users: [{ name: "u", token: "secret-token" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

async function dispatcherOf(kc: KubeConfig) {
  const context = new RequestContext("https://127.0.0.1:6443/api/v1/pods", HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  expect(context.getHeaders().Authorization).toBe("Bearer secret-token");
  return context.getDispatcher();
}

describe("shareConnections", () => {
  const caFile = join(dir, "ca.crt");
  writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n");

  it("gives every request of a KubeConfig the same connection pool (client-node makes one each)", async () => {
    const plain = config(caFile);
    expect(await dispatcherOf(plain)).not.toBe(await dispatcherOf(plain));

    const kc = shareConnections(config(caFile));
    expect(shareConnections(kc)).toBe(kc);
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).toBe(first);
    expect(await dispatcherOf(kc)).toBe(first);
  });

  it("takes a new pool when a certificate file changes, and one per KubeConfig", async () => {
    const kc = shareConnections(config(caFile));
    const first = await dispatcherOf(kc);
    utimesSync(caFile, new Date(), new Date(Date.now() + 60_000));
    const second = await dispatcherOf(kc);
    expect(second).not.toBe(first);
    expect(await dispatcherOf(kc)).toBe(second);
    expect(await dispatcherOf(shareConnections(config(caFile)))).not.toBe(second);
  });
});
