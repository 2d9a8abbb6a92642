import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { sha256Digest, type Manifest, type ManifestInfo } from "./client.ts";
import { RegistryError } from "./errors.ts";
import {
  verifiedCondition,
  verifyImages,
  type ExpectedImage,
  type ManifestChecker,
  type VerifyResult,
} from "./verify.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;

/** An in-memory registry: `repository:reference` -> digest, with optional failures and delays. */
class MemoryRegistry implements ManifestChecker {
  readonly registry: string;
  readonly heads: string[] = [];
  pings = 0;
  pingError: RegistryError | undefined;
  failing = new Map<string, RegistryError>();
  noDigestHeader = false;
  /** Repositories prepared, with how many checks of that repository had started by then. */
  readonly prepared: [string, number][] = [];
  private readonly content: Map<string, string>;

  constructor(registry: string, content: Record<string, string>) {
    this.registry = registry;
    this.content = new Map(Object.entries(content));
  }

  async ping(): Promise<void> {
    this.pings++;
    await sleep(1);
    if (this.pingError) throw this.pingError;
  }

  async headManifest(repository: string, reference: string): Promise<ManifestInfo | undefined> {
    const key = `${repository}:${reference}`;
    this.heads.push(key);
    await sleep(Math.floor(Math.random() * 3));
    const failure = this.failing.get(key);
    if (failure) throw failure;
    const digest = reference.startsWith("sha256:")
      ? this.has(repository, reference)
        ? reference
        : undefined
      : this.content.get(key);
    if (digest === undefined) return undefined;
    return {
      digest: this.noDigestHeader ? "" : digest,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      size: 1,
    };
  }

  prepare(repository: string): void {
    this.prepared.push([repository, this.heads.filter((h) => h.startsWith(`${repository}:`)).length]);
  }

  async getManifest(repository: string, reference: string): Promise<Manifest | undefined> {
    await sleep(0);
    const body = Buffer.from(`${repository}:${reference}`);
    return this.content.has(`${repository}:${reference}`)
      ? { body, digest: sha256Digest(body), mediaType: "", size: body.length }
      : undefined;
  }

  private has(repository: string, digest: string): boolean {
    return [...this.content].some(([k, v]) => k.startsWith(`${repository}:`) && v === digest);
  }
}

const host = "reg.example.com:8443";
const memory = () =>
  new MemoryRegistry(host, {
    "mirror/openshift/release-images:4.16.3-x86_64": d("a"),
    "mirror/openshift/release:c1": d("b"),
    "mirror/redhat/redhat-operator-index:v4.16": d("c"),
    "mirror/app/one:1.0": d("d"),
    "mirror/app/two:1.0": d("e"),
  });

const run: ExpectedImage[] = [
  {
    destination: `${host}/mirror/openshift/release-images:4.16.3-x86_64`,
    expectedDigest: d("a"),
    kind: "release",
  },
  { destination: `${host}/mirror/openshift/release@${d("b")}`, kind: "release" },
  { destination: `${host}/mirror/redhat/redhat-operator-index:v4.16`, kind: "catalog" },
  { destination: `${host}/mirror/app/one:1.0`, expectedDigest: d("d") },
  { destination: `${host}/mirror/app/two:1.0` },
];

describe("verifyImages", () => {
  it("counts present images and compares the digests it knows", async () => {
    const reg = memory();
    const result = await verifyImages(run, reg, { concurrency: 3 });
    expect(result).toEqual({
      target: `${host}/mirror`,
      checked: 5,
      present: 5,
      missing: 0,
      mismatched: 0,
      errors: 0,
      digestsCompared: 3,
      problems: [],
      releasePayloadMissing: false,
      catalogsMissing: [],
    });
    expect(reg.pings).toBe(1);
    expect(reg.heads).toContain(`mirror/openshift/release:${d("b")}`);
  });

  it("prepares each repository once, before its first check", async () => {
    const reg = memory();
    const images: ExpectedImage[] = Array.from({ length: 40 }, (_, i) => ({
      destination: `${host}/mirror/repo-${Math.floor(i / 10)}:t${i}`,
    }));
    await verifyImages(images, reg, { concurrency: 4 });
    expect(reg.prepared).toEqual([0, 1, 2, 3].map((r) => [`mirror/repo-${r}`, 0]));
  });

  it("lists the first problems in input order whatever the completion order", async () => {
    const images: ExpectedImage[] = Array.from({ length: 60 }, (_, i) => ({
      destination: `${host}/mirror/gone/img-${i}:1`,
      ...(i % 7 === 0 && { kind: "catalog" as const }),
    }));
    const results: VerifyResult[] = [];
    for (const concurrency of [1, 8, 64]) results.push(await verifyImages(images, memory(), { concurrency }));
    for (const r of results) expect(r).toEqual(results[0]);
    const [first] = results;
    expect(first?.missing).toBe(60);
    expect(first?.problems.map((p) => p.destination)).toEqual(images.slice(0, 20).map((i) => i.destination));
    expect(first?.catalogsMissing).toEqual(
      [0, 7, 14, 21, 28, 35, 42, 49, 56].map((i) => `${host}/mirror/gone/img-${i}:1`),
    );
    expect(first?.target).toBe(`${host}/mirror/gone`);
  });

  it("reports missing release payloads and catalogs, and digest mismatches", async () => {
    const images: ExpectedImage[] = [
      ...run.slice(2),
      { destination: `${host}/mirror/openshift/release-images:4.16.4-x86_64`, kind: "release" },
      { destination: `${host}/mirror/app/one:1.0`, expectedDigest: d("f"), kind: "image" },
    ];
    const result = await verifyImages(images, memory(), { maxProblems: 5 });
    expect(result).toMatchObject({
      checked: 5,
      present: 3,
      missing: 1,
      mismatched: 1,
      errors: 0,
      releasePayloadMissing: true,
    });
    expect(result.problems).toEqual([
      {
        destination: `${host}/mirror/openshift/release-images:4.16.4-x86_64`,
        problem: "missing",
        kind: "release",
      },
      {
        destination: `${host}/mirror/app/one:1.0`,
        problem: "digest-mismatch",
        kind: "image",
        expected: d("f"),
        actual: d("d"),
      },
    ]);
  });

  it("falls back to the manifest body when the registry sends no digest header", async () => {
    const reg = memory();
    reg.noDigestHeader = true;
    const body = Buffer.from("mirror/app/one:1.0");
    const ok = await verifyImages(
      [{ destination: `${host}/mirror/app/one:1.0`, expectedDigest: sha256Digest(body) }],
      reg,
    );
    expect(ok).toMatchObject({ present: 1, digestsCompared: 1 });
    const bad = await verifyImages(
      [{ destination: `${host}/mirror/app/one:1.0`, expectedDigest: d("d") }],
      reg,
    );
    expect(bad.problems[0]).toMatchObject({ problem: "digest-mismatch", actual: sha256Digest(body) });
  });

  it("fails every image of a registry whose ping fails, pinging once", async () => {
    const reg = memory();
    reg.pingError = new RegistryError(
      "unauthorized",
      `registry ${host}: ping: the registry rejected the credentials (HTTP 401)`,
      401,
    );
    const result = await verifyImages(run, reg, { concurrency: 4 });
    expect(result).toMatchObject({ checked: 5, errors: 5, present: 0 });
    expect(reg.pings).toBe(1);
    expect(reg.heads).toEqual([]);
    expect(result.firstError).toEqual({
      destination: run[0]?.destination,
      kind: "unauthorized",
      message: `registry ${host}: ping: the registry rejected the credentials (HTTP 401)`,
    });
  });

  it("stops checking a registry after a timeout, but not after a per-image refusal", async () => {
    const reg = memory();
    reg.failing.set(
      "mirror/openshift/release-images:4.16.3-x86_64",
      new RegistryError("timeout", "registry did not answer in time"),
    );
    const result = await verifyImages(run, reg, { concurrency: 1 });
    expect(result).toMatchObject({ errors: 5, present: 0 });
    expect(reg.heads).toHaveLength(1);

    const other = memory();
    other.failing.set("mirror/app/one:1.0", new RegistryError("forbidden", "not allowed"));
    const partial = await verifyImages(run, other, { concurrency: 1 });
    expect(partial).toMatchObject({ errors: 1, present: 4 });
  });

  it("uses one client per registry from a factory, and rejects references it cannot read", async () => {
    const a = memory();
    const b = new MemoryRegistry("other.example.com", { "x/y:1": d("9") });
    const made: string[] = [];
    const factory = (registry: string, repository: string) => {
      made.push(`${registry}/${repository}`);
      return registry === host ? a : b;
    };
    const result = await verifyImages(
      [
        ...run,
        { destination: "other.example.com/x/y:1", expectedDigest: d("9") },
        { destination: "not a reference" },
      ],
      factory,
    );
    expect(result).toMatchObject({ checked: 7, present: 6, errors: 1, target: "" });
    expect(result.firstError).toMatchObject({ destination: "not a reference", kind: "invalid-reference" });
    expect(a.pings + b.pings).toBe(2);
    expect(new Set(made)).toEqual(
      new Set([...run.map((i) => i.destination.replace(/[:@][^/]*$/, "")), "other.example.com/x/y"]),
    );
  });

  it("refuses destinations on another registry than a single client's", async () => {
    const result = await verifyImages([{ destination: "elsewhere.example.com/a/b:1" }], memory());
    expect(result.errors).toBe(1);
    expect(result.problems[0]?.message).toMatch(/not on registry reg\.example\.com:8443/);
  });

  it("stops when aborted, counting unchecked images as errors", async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await verifyImages(run, memory(), { signal: controller.signal });
    expect(result).toMatchObject({ errors: 5, present: 0 });
    expect(result.firstError?.kind).toBe("aborted");
  });

  it("does not call an empty list verified", async () => {
    const result = await verifyImages([], memory());
    expect(result).toMatchObject({ checked: 0, target: "" });
    expect(verifiedCondition(result)).toMatchObject({
      status: "False",
      reason: "NothingToVerify",
      message: expect.stringMatching(/^the run lists no images to verify in the registry: /) as string,
    });
  });
});

describe("verifiedCondition", () => {
  const base: VerifyResult = {
    target: "registry.example.com:8443/mirror",
    checked: 120,
    present: 120,
    missing: 0,
    mismatched: 0,
    errors: 0,
    digestsCompared: 120,
    problems: [],
    releasePayloadMissing: false,
    catalogsMissing: [],
  };
  const R = "registry.example.com:8443/mirror";

  it("is True when everything is present", () => {
    expect(verifiedCondition(base)).toEqual({
      status: "True",
      reason: "AllImagesPresent",
      message: `all 120 images are present in ${R} with the expected digests`,
    });
  });

  it("names the release payload and catalogs among missing images", () => {
    const result: VerifyResult = {
      ...base,
      present: 116,
      missing: 3,
      mismatched: 1,
      problems: [
        { destination: `${R}/openshift/release-images:4.16.3-x86_64`, problem: "missing", kind: "release" },
        { destination: `${R}/redhat/redhat-operator-index:v4.16`, problem: "missing", kind: "catalog" },
        { destination: `${R}/app/x:1`, problem: "missing", kind: "image" },
        { destination: `${R}/app/y:1`, problem: "digest-mismatch", expected: d("a"), actual: d("b") },
      ],
      releasePayloadMissing: true,
      catalogsMissing: [`${R}/redhat/redhat-operator-index:v4.16`],
    };
    expect(verifiedCondition(result)).toEqual({
      status: "False",
      reason: "ImagesMissing",
      message:
        `3 of 120 images are missing from ${R}, including the release payload (${R}/openshift/release-images:4.16.3-x86_64) ` +
        `and the operator catalog ${R}/redhat/redhat-operator-index:v4.16; missing: ${R}/app/x:1; ` +
        "1 more has a different digest than mirrored: re-run the MirrorJob (change spec.runRequest)",
    });
  });

  it("shortens long lists", () => {
    const problems = Array.from({ length: 20 }, (_, i) => ({
      destination: `${R}/app/i${i}:1`,
      problem: "missing" as const,
    }));
    const condition = verifiedCondition({ ...base, present: 70, missing: 50, problems });
    expect(condition.message).toBe(
      `50 of 120 images are missing from ${R}; missing: ${R}/app/i0:1, ${R}/app/i1:1, ${R}/app/i2:1 and 17 more: ` +
        "re-run the MirrorJob (change spec.runRequest)",
    );
  });

  it("explains digest mismatches", () => {
    const condition = verifiedCondition({
      ...base,
      present: 119,
      mismatched: 1,
      problems: [
        { destination: `${R}/app/y:1`, problem: "digest-mismatch", expected: d("a"), actual: d("b") },
      ],
    });
    expect(condition.reason).toBe("DigestMismatch");
    expect(condition.message).toBe(
      `1 of 120 images in ${R} has a different digest than mirrored, e.g. ${R}/app/y:1 (expected ${d("a")}, found ${d("b")}): ` +
        "something pushed over these tags after the run; re-run the MirrorJob (change spec.runRequest) and make sure nothing else writes to these repositories",
    );
  });

  it.each([
    ["unauthorized", "RegistryAuthFailed", /spec\.registry\.pushSecretRef/],
    ["forbidden", "RegistryAuthFailed", /pull access/],
    ["tls", "RegistryTLSFailed", /spec\.registry\.caBundleRef/],
    ["unreachable", "RegistryUnreachable", /network policies, spec\.proxy/],
    ["timeout", "RegistryUnreachable", /reachable/],
    ["server", "RegistryUnreachable", /verification runs again every minute/],
    ["rate-limited", "RegistryUnreachable", /verification runs again every minute/],
    ["invalid-reference", "ImagesMissing", /image list is malformed/],
  ] as const)("maps %s errors to %s", (kind, reason, advice) => {
    const condition = verifiedCondition({
      ...base,
      present: 0,
      errors: 120,
      firstError: { destination: `${R}/a:1`, kind, message: "what went wrong" },
    });
    expect(condition.status).toBe("False");
    expect(condition.reason).toBe(reason);
    expect(condition.message).toMatch(
      new RegExp(`^120 of 120 images could not be checked in ${R}: what went wrong; `),
    );
    expect(condition.message).toMatch(advice);
  });

  it("keeps messages bounded", () => {
    const condition = verifiedCondition({
      ...base,
      present: 0,
      errors: 120,
      firstError: { destination: "x", kind: "server", message: "y".repeat(10_000) },
    });
    expect(condition.message.length).toBeLessThanOrEqual(2_000);
  });
});
