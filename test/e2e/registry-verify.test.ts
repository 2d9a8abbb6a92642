/**
 * Verification of mirrored content against real registries: distribution 2.8 over TLS
 * with htpasswd (the shared test registry) and with Bearer tokens from a token issuer
 * it trusts (started here), and a fault-injecting HTTPS proxy of our own in front of
 * the real registry for 429 / 503 / hanging answers. Every case asserts a specific
 * result or message, and how long it took.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { RegistryClients } from "../../src/registry/clients.ts";
import { RegistryError } from "../../src/registry/errors.ts";
import { verifiedCondition, verifyImages, type ExpectedImage } from "../../src/registry/verify.ts";
import { startConnectProxy } from "../harness/connect-proxy.ts";
import { startFaultServer, type FaultServer } from "../harness/fault-server.ts";
import { buildImage, pushImage } from "../../devkit/images.ts";
import { createCertificateAuthority, type CertificateAuthority } from "../../devkit/pki.ts";
import { freePort } from "../../devkit/ports.ts";
import { startRegistry, type TestRegistry } from "../../devkit/registry.ts";

const shared = inject("registry");
const workDir = join(inject("harnessDir"), `registry-verify-${randomBytes(3).toString("hex")}`);
const prefix = `verify-${randomBytes(3).toString("hex")}`;

interface Target {
  readonly host: string;
  readonly caPem: string;
  readonly username: string;
  readonly password: string;
}

const clients: { close(): Promise<void> }[] = [];
function client(target: Target, overrides: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({
    registry: target.host,
    credentials: { username: target.username, password: target.password },
    caBundle: target.caPem,
    timeoutMs: 10_000,
    proxy: {},
    ...overrides,
  });
  clients.push(c);
  return c;
}

/** Pushes a small run's worth of images and returns what the run expects, by destination. */
async function seed(target: Target): Promise<ExpectedImage[]> {
  const c = client(target);
  const release = await buildImage({
    name: `${prefix}-release`,
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ],
  });
  const component = await buildImage({ name: `${prefix}-component` });
  const catalog = await buildImage({
    name: `${prefix}-catalog`,
    labels: { "operators.operatorframework.io.index.configs.v1": "/configs" },
  });
  const extras = await Promise.all([1, 2, 3].map((i) => buildImage({ name: `${prefix}-extra-${i}` })));
  const base = prefix;
  const pushed = [
    await pushImage(c, `${base}/openshift/release-images`, "4.16.3-x86_64", release),
    await pushImage(c, `${base}/openshift/release`, component.digest, component),
    await pushImage(c, `${base}/redhat/redhat-operator-index`, "v4.16", catalog),
    ...(await Promise.all(extras.map((img, i) => pushImage(c, `${base}/extra/app-${i + 1}`, "1.0", img)))),
  ];
  const [rel, comp, cat, ...rest] = pushed;
  if (rel === undefined || comp === undefined || cat === undefined) throw new Error("seeding failed");
  return [
    { destination: rel.reference, expectedDigest: rel.digest, kind: "release" },
    { destination: `${target.host}/${base}/openshift/release@${comp.digest}`, kind: "release" },
    { destination: cat.reference, kind: "catalog" },
    ...rest.map((p) => ({ destination: p.reference, expectedDigest: p.digest, kind: "image" as const })),
  ];
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}

let tokenRegistry: TestRegistry;
let tokenImages: ExpectedImage[];
let htpasswdImages: ExpectedImage[];
let ca: CertificateAuthority;

beforeAll(async () => {
  mkdirSync(workDir, { recursive: true });
  tokenRegistry = await startRegistry(join(workDir, "token-registry"), "token-registry", {
    auth: "token",
    extraUsers: {
      reader: { password: "reader-password-123", actions: ["pull"] },
      outsider: { password: "outsider-password-123", actions: [] },
    },
  });
  [htpasswdImages, tokenImages] = await Promise.all([seed(shared), seed(tokenRegistry)]);
  ca = createCertificateAuthority(workDir, "fault-ca");
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await tokenRegistry.stop();
});

describe("verification against a real registry", () => {
  it("verifies a seeded run over TLS + htpasswd, with credentials from the dockerconfigjson, twice alike", async () => {
    const pool = new RegistryClients(readFileSync(shared.authFile), { caBundle: shared.caPem, proxy: {} });
    clients.push(pool);
    const [first, ms] = await timed(() => verifyImages(htpasswdImages, pool.clientFor, { concurrency: 4 }));
    expect(first).toMatchObject({
      target: `${shared.host}/${prefix}`,
      checked: 6,
      present: 6,
      missing: 0,
      mismatched: 0,
      errors: 0,
      digestsCompared: 5,
      problems: [],
      releasePayloadMissing: false,
      catalogsMissing: [],
    });
    expect(verifiedCondition(first)).toEqual({
      status: "True",
      reason: "AllImagesPresent",
      message: `all 6 images are present in ${shared.host}/${prefix} (5 digests compared)`,
    });
    expect(ms).toBeLessThan(10_000);
    const second = await verifyImages(htpasswdImages, pool.clientFor, { concurrency: 4 });
    expect(second).toEqual(first);
  });

  it("verifies a seeded run over TLS + Bearer tokens from the registry's token issuer", async () => {
    const before = tokenRegistry.tokenIssuer?.requests.length ?? 0;
    const [result, ms] = await timed(() =>
      verifyImages(tokenImages, client(tokenRegistry), { concurrency: 4 }),
    );
    expect(result).toMatchObject({ checked: 6, present: 6, missing: 0, mismatched: 0, errors: 0 });
    expect(verifiedCondition(result).reason).toBe("AllImagesPresent");
    expect(ms).toBeLessThan(10_000);
    // One token per repository scope (and one for the ping), even with 4 checks in flight.
    const scopes = (tokenRegistry.tokenIssuer?.requests ?? []).slice(before).flatMap((r) => r.scopes);
    expect(scopes.filter((s) => s.endsWith(`${prefix}/openshift/release:pull`))).toHaveLength(1);
    expect(new Set(scopes).size).toBe(scopes.length);
  });

  it("verifies with tokens that carry their certificate chain (x5c) instead of a key id", async () => {
    const x5c = await startRegistry(join(workDir, "x5c-registry"), "x5c-registry", {
      auth: "token",
      tokenKeyHeader: "x5c",
    });
    try {
      const images = await seed(x5c);
      const result = await verifyImages(images, client(x5c), { concurrency: 4 });
      expect(verifiedCondition(result).reason).toBe("AllImagesPresent");
    } finally {
      await x5c.stop();
    }
  });

  it("reports missing images, calling out the release payload and the catalog", async () => {
    const expected: ExpectedImage[] = [
      ...htpasswdImages,
      { destination: `${shared.host}/${prefix}/openshift/release-images:4.16.4-x86_64`, kind: "release" },
      { destination: `${shared.host}/${prefix}/redhat/certified-operator-index:v4.16`, kind: "catalog" },
      { destination: `${shared.host}/${prefix}/extra/never-pushed:2.0`, kind: "image" },
    ];
    const result = await verifyImages(expected, client(shared), { concurrency: 4 });
    expect(result).toMatchObject({ checked: 9, present: 6, missing: 3, mismatched: 0, errors: 0 });
    expect(result.releasePayloadMissing).toBe(true);
    expect(result.catalogsMissing).toEqual([
      `${shared.host}/${prefix}/redhat/certified-operator-index:v4.16`,
    ]);
    expect(result.problems.map((p) => [p.problem, p.destination])).toEqual(
      expected.slice(6).map((e) => ["missing", e.destination]),
    );
    const condition = verifiedCondition(result);
    expect(condition.status).toBe("False");
    expect(condition.reason).toBe("ImagesMissing");
    expect(condition.message).toBe(
      `3 of 9 images are missing from ${shared.host}/${prefix}, including the release payload ` +
        `(${shared.host}/${prefix}/openshift/release-images:4.16.4-x86_64) and the operator catalog ` +
        `${shared.host}/${prefix}/redhat/certified-operator-index:v4.16; missing: ` +
        `${shared.host}/${prefix}/extra/never-pushed:2.0: re-run the MirrorJob (change spec.runRequest)`,
    );
  });

  it("reports a digest that differs from the mirrored one", async () => {
    const [a, b] = htpasswdImages.slice(3);
    if (a?.expectedDigest === undefined || b?.expectedDigest === undefined) throw new Error("seed");
    const expected = [...htpasswdImages.slice(0, 3), { ...a, expectedDigest: b.expectedDigest }, b];
    const result = await verifyImages(expected, client(shared), { concurrency: 4 });
    expect(result).toMatchObject({ checked: 5, present: 4, missing: 0, mismatched: 1, errors: 0 });
    expect(result.problems).toEqual([
      {
        destination: a.destination,
        problem: "digest-mismatch",
        kind: "image",
        expected: b.expectedDigest,
        actual: a.expectedDigest,
      },
    ]);
    const condition = verifiedCondition(result);
    expect(condition.reason).toBe("DigestMismatch");
    expect(condition.message).toContain(`expected ${b.expectedDigest}, found ${a.expectedDigest}`);
  });

  it.each(["htpasswd", "token"] as const)(
    "reports wrong credentials (%s) without echoing them",
    async (mode) => {
      const target = mode === "htpasswd" ? shared : tokenRegistry;
      const images = mode === "htpasswd" ? htpasswdImages : tokenImages;
      const wrong = `wrong-${randomBytes(8).toString("hex")}`;
      const [result, ms] = await timed(() =>
        verifyImages(images, client(target, { credentials: { username: target.username, password: wrong } })),
      );
      expect(result).toMatchObject({ checked: 6, present: 0, errors: 6 });
      const condition = verifiedCondition(result);
      expect(condition.reason).toBe("RegistryAuthFailed");
      expect(condition.message).toMatch(/rejected the credentials/);
      expect(condition.message).toMatch(/spec\.registry\.pushSecretRef/);
      const everything = JSON.stringify([result, condition]);
      expect(everything).not.toContain(wrong);
      expect(everything).not.toContain(Buffer.from(`${target.username}:${wrong}`).toString("base64"));
      expect(ms).toBeLessThan(10_000);
    },
  );

  it("reports a user whose token does not grant pull on the repositories", async () => {
    const images = tokenImages.slice(0, 2);
    const c = client(tokenRegistry, {
      credentials: { username: "outsider", password: "outsider-password-123" },
    });
    const result = await verifyImages(images, c);
    expect(result).toMatchObject({ checked: 2, errors: 2 });
    const denied = verifiedCondition(result);
    expect(denied.reason).toBe("RegistryAuthFailed");
    expect(denied.message).toMatch(
      /the credentials are not allowed to do this \(insufficient_scope for repository:.*:pull\)/,
    );
    // A read-only user verifies the same images.
    const reader = client(tokenRegistry, {
      credentials: { username: "reader", password: "reader-password-123" },
    });
    expect(verifiedCondition(await verifyImages(images, reader)).reason).toBe("AllImagesPresent");
  });

  it("reports an untrusted CA with the fix", async () => {
    const c = client(shared, { caBundle: undefined });
    const result = await verifyImages(htpasswdImages, c);
    const condition = verifiedCondition(result);
    expect(condition.reason).toBe("RegistryTLSFailed");
    expect(condition.message).toMatch(/certificate signed by an unknown authority.*caBundleRef/);
  });

  it("reports a registry that is down (connection refused) quickly", async () => {
    const port = await freePort();
    const down = { ...shared, host: `127.0.0.1:${port}` };
    const images = htpasswdImages.map((i) => ({
      ...i,
      destination: i.destination.replace(shared.host, down.host),
    }));
    const [result, ms] = await timed(() => verifyImages(images, client(down)));
    expect(result).toMatchObject({ checked: 6, errors: 6, present: 0 });
    const condition = verifiedCondition(result);
    expect(condition.reason).toBe("RegistryUnreachable");
    expect(condition.message).toContain(
      `registry 127.0.0.1:${port} is unreachable for ping: connection refused`,
    );
    expect(ms).toBeLessThan(5_000);
  });
});

describe("retries and timeouts, through a fault-injecting proxy in front of the real registry", () => {
  let fault: FaultServer;
  let proxied: Target;
  let images: ExpectedImage[];

  beforeAll(async () => {
    fault = await startFaultServer({
      dir: workDir,
      ca,
      upstream: { host: shared.host, caPem: shared.caPem },
    });
    proxied = { ...shared, host: fault.host, caPem: ca.pem };
    images = htpasswdImages.map((i) => ({
      ...i,
      destination: i.destination.replace(shared.host, fault.host),
    }));
  });
  afterAll(async () => {
    await fault.stop();
  });

  const manifestHeads = () => fault.log.filter((r) => r.method === "HEAD" && r.path.includes("/manifests/"));

  it("waits as 429 Retry-After (seconds) says, then succeeds", async () => {
    fault.reset();
    fault.inject({
      method: "HEAD",
      path: /\/manifests\//,
      times: 2,
      action: { status: 429, headers: { "retry-after": "1" } },
    });
    const [result, ms] = await timed(() =>
      verifyImages(images, client(proxied, { retryBaseDelayMs: 50 }), { concurrency: 2 }),
    );
    expect(result).toMatchObject({ checked: 6, present: 6, errors: 0 });
    const limited = manifestHeads().filter((r) => r.status === 429);
    expect(limited).toHaveLength(2);
    for (const r of limited) {
      const retry = manifestHeads().find((x) => x.path === r.path && x.at > r.at);
      expect(retry?.status).toBe(200);
      expect((retry?.at ?? 0) - r.at).toBeGreaterThanOrEqual(950);
    }
    expect(ms).toBeLessThan(8_000);
  });

  it("honours Retry-After as an HTTP date", async () => {
    fault.reset();
    const date = new Date(Date.now() + 2_000).toUTCString();
    fault.inject({
      method: "HEAD",
      path: /\/manifests\//,
      times: 1,
      action: { status: 429, headers: { "retry-after": date } },
    });
    const result = await verifyImages(images.slice(0, 1), client(proxied, { retryBaseDelayMs: 10 }));
    expect(result.present).toBe(1);
    const [limited, retry] = manifestHeads();
    expect(limited?.status).toBe(429);
    expect((retry?.at ?? 0) - (limited?.at ?? 0)).toBeGreaterThanOrEqual(500);
  });

  it("fails at once when Retry-After asks for longer than the client waits", async () => {
    fault.reset();
    fault.inject({
      method: "HEAD",
      path: /\/manifests\//,
      action: { status: 429, headers: { "retry-after": "120" } },
    });
    const [result, ms] = await timed(() => verifyImages(images.slice(3, 4), client(proxied)));
    const condition = verifiedCondition(result);
    expect(condition.reason).toBe("RegistryUnreachable");
    expect(condition.message).toMatch(
      /HTTP 429, and it asks to retry after 120 s, longer than the client waits \(10 s\)/,
    );
    expect(ms).toBeLessThan(3_000);
  });

  it("retries 503 with backoff, then succeeds", async () => {
    fault.reset();
    fault.inject({ method: "HEAD", path: /\/manifests\//, times: 2, action: { status: 503, body: "{}" } });
    const [result, ms] = await timed(() =>
      verifyImages(images, client(proxied, { retryBaseDelayMs: 100 }), { concurrency: 1 }),
    );
    expect(result).toMatchObject({ checked: 6, present: 6, errors: 0 });
    const first = `/v2/${prefix}/openshift/release-images/manifests/4.16.3-x86_64`;
    const attempts = manifestHeads().filter((r) => r.path === first);
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 200]);
    expect(ms).toBeLessThan(8_000);
  });

  it("gives up on a registry that keeps answering 503, saying how often it tried", async () => {
    fault.reset();
    fault.inject({
      method: "HEAD",
      path: /\/manifests\//,
      action: {
        status: 503,
        body: JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "storage backend down" }] }),
      },
    });
    const [result, ms] = await timed(() =>
      verifyImages(images.slice(3), client(proxied, { retryBaseDelayMs: 50, retries: 2 }), {
        concurrency: 3,
      }),
    );
    expect(result).toMatchObject({ checked: 3, errors: 3, present: 0 });
    const condition = verifiedCondition(result);
    expect(condition.reason).toBe("RegistryUnreachable");
    // HEAD answers have no body, so the status is all there is to report.
    expect(condition.message).toContain(": HTTP 503 (after 3 attempts); check that the registry is up");
    expect(ms).toBeLessThan(5_000);
  });

  it("times out on a server that never answers, and stops checking that registry", async () => {
    fault.reset();
    fault.inject({ method: "HEAD", path: /\/manifests\//, action: "hang" });
    const [result, ms] = await timed(() =>
      verifyImages(images, client(proxied, { timeoutMs: 1_000, retries: 1, retryBaseDelayMs: 50 }), {
        concurrency: 2,
      }),
    );
    expect(result).toMatchObject({ checked: 6, errors: 6, present: 0 });
    const condition = verifiedCondition(result);
    expect(condition.reason).toBe("RegistryUnreachable");
    expect(condition.message).toMatch(
      /did not answer HEAD manifest .* in time \(UND_ERR_HEADERS_TIMEOUT\) \(after 2 attempts\)/,
    );
    // Two checks in flight time out twice each; the other four are not even sent.
    expect(manifestHeads()).toHaveLength(4);
    expect(ms).toBeLessThan(6_000);
  });

  it.each(["htpasswd", "token"] as const)(
    "never puts credentials or tokens in messages, even when the registry echoes them (%s)",
    async (mode) => {
      const upstream = mode === "htpasswd" ? shared : tokenRegistry;
      const echo =
        mode === "htpasswd"
          ? fault
          : await startFaultServer({
              dir: workDir,
              name: "fault-token",
              ca,
              upstream: { host: tokenRegistry.host, caPem: tokenRegistry.caPem },
            });
      try {
        echo.reset();
        echo.route("GET", /\/echo\/tags\/list/, (_url, headers) => ({
          status: 400,
          body: JSON.stringify({
            errors: [{ code: "DENIED", message: `bad header ${headers.authorization ?? ""}` }],
          }),
        }));
        // Trust the fault server and, in token mode, the token issuer (the registry's CA).
        const c = client({ ...upstream, host: echo.host, caPem: `${ca.pem}\n${upstream.caPem}` });
        await c.ping(); // learns the registry's challenge, so the next request carries credentials
        const err = await c.listTags(`${prefix}/echo`).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RegistryError);
        const message = (err as RegistryError).message;
        expect(message).toContain(
          `DENIED: bad header ${mode === "htpasswd" ? "Basic" : "Bearer"} [redacted]`,
        );
        expect(message).not.toContain(upstream.password);
        expect(message).not.toContain(
          Buffer.from(`${upstream.username}:${upstream.password}`).toString("base64"),
        );
        expect(message).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/); // no JWT
      } finally {
        if (echo !== fault) await echo.stop();
      }
    },
  );

  it("lists tags across Link pages, and refuses pages on other hosts and endless paging", async () => {
    fault.reset();
    const all = Array.from({ length: 7 }, (_, i) => `v${i}`);
    fault.route("GET", /\/v2\/[^?]*\/paged\/tags\/list/, (url) => {
      const n = Number(url.searchParams.get("n") ?? "3");
      const last = url.searchParams.get("last");
      const start = last === null ? 0 : all.indexOf(last) + 1;
      const page = all.slice(start, start + n);
      const more = start + n < all.length;
      return {
        status: 200,
        body: JSON.stringify({ name: "paged", tags: page }),
        ...(more && {
          headers: { link: `<${url.pathname}?n=${n}&last=${page[page.length - 1] ?? ""}>; rel="next"` },
        }),
      };
    });
    fault.route("GET", /\/elsewhere\/tags\/list/, () => ({
      status: 200,
      body: JSON.stringify({ tags: ["a"] }),
      headers: { link: '<https://example.com/v2/x/tags/list?last=a>; rel="next"' },
    }));
    const c = client(proxied);
    expect(await c.listTags(`${prefix}/paged`, { pageSize: 3 })).toEqual(all);
    expect(fault.log.filter((r) => r.handling === "route")).toHaveLength(3);
    await expect(c.listTags(`${prefix}/paged`, { pageSize: 2, maxPages: 2 })).rejects.toThrow(
      /more than 2 pages of tags/,
    );
    await expect(c.listTags(`${prefix}/elsewhere`)).rejects.toThrow(
      /next page is on another host \(example\.com\)/,
    );
  });

  it("lists the tags of a real repository", async () => {
    const c = client(shared);
    expect(await c.listTags(`${prefix}/openshift/release-images`)).toEqual(["4.16.3-x86_64"]);
    const err = await c.listTags(`${prefix}/no/such/repo`).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "not-found" });
    expect((err as Error).message).toMatch(/NAME_UNKNOWN: repository name not known to registry/);
  });
});

describe("HTTPS proxy", () => {
  it("tunnels through HTTPS_PROXY, bypasses it for NO_PROXY hosts, and explains a refusing proxy", async () => {
    const proxy = await startConnectProxy({ username: "proxyuser", password: "proxy-secret-pw" });
    try {
      const withAuth = proxy.url.replace("http://", "http://proxyuser:proxy-secret-pw@");
      const through = client(shared, { proxy: { httpsProxy: withAuth, noProxy: ".svc" } });
      expect(verifiedCondition(await verifyImages(htpasswdImages, through)).reason).toBe("AllImagesPresent");
      expect(proxy.tunnels).toContainEqual({ target: shared.host, status: 200 });

      const count = proxy.tunnels.length;
      const bypass = client(shared, { proxy: { httpsProxy: withAuth, noProxy: ".svc,127.0.0.1" } });
      await bypass.ping();
      expect(proxy.tunnels).toHaveLength(count);

      const badPassword = proxy.url.replace("http://", "http://proxyuser:wrong-proxy-pw@");
      const refused = client(shared, { proxy: { httpsProxy: badPassword }, retries: 0 });
      const condition = verifiedCondition(await verifyImages(htpasswdImages.slice(0, 1), refused));
      expect(condition.reason).toBe("RegistryUnreachable");
      expect(condition.message).toContain(
        "the proxy refused to open a tunnel to it (HTTP 407, proxy authentication required)",
      );
      expect(condition.message).not.toContain("wrong-proxy-pw");
    } finally {
      await proxy.stop();
    }
  });
});
