import { describe, expect, it } from "vitest";
import {
  DockerConfigError,
  authKeyCandidates,
  authLookupKey,
  credentialsFor,
  normalizeAuthKey,
  parseDockerConfig,
} from "./credentials.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const auth = (user: string, password: string) => ({ auth: b64(`${user}:${password}`) });

describe("credentialsFor", () => {
  const config = {
    auths: {
      "reg.example.com:8443": auth("host-user", "host-pw"),
      "reg.example.com:8443/mirror": auth("mirror-user", "mirror-pw"),
      "reg.example.com:8443/mirror/team-a/app": auth("app-user", "app-pw"),
      "reg.example.com": auth("noport-user", "noport-pw"),
      "https://legacy.example.com/v1/": auth("legacy-user", "legacy-pw"),
      "docker.io": auth("hub-user", "hub-pw"),
      "split.example.com": { username: "split-user", password: "split-pw" },
      "helper.example.com": {},
    },
  };

  it.each([
    ["reg.example.com:8443/mirror/team-a/app:1.0", "app-user"],
    ["reg.example.com:8443/mirror/team-a/other@sha256:" + "a".repeat(64), "mirror-user"],
    ["reg.example.com:8443/mirror", "mirror-user"],
    ["reg.example.com:8443/elsewhere/x", "host-user"],
    ["reg.example.com:8443", "host-user"],
    ["reg.example.com/mirror/x", "noport-user"],
    ["docker://reg.example.com:8443/mirror/x:tag", "mirror-user"],
    ["legacy.example.com/ns/img", "legacy-user"],
    ["index.docker.io/library/busybox", "hub-user"],
    ["split.example.com/a", "split-user"],
  ])("uses the most specific key for %s", (ref, user) => {
    expect(credentialsFor(config, ref)?.username).toBe(user);
  });

  it("matches neither a host with another port nor an unrelated host", () => {
    expect(credentialsFor(config, "reg.example.com:5000/x")).toBeUndefined();
    expect(credentialsFor(config, "quay.io/x/y")).toBeUndefined();
  });

  it("gives no credentials for a credential-helper marker", () => {
    expect(credentialsFor(config, "helper.example.com/x")).toBeUndefined();
  });

  it("reads text and bytes, and the legacy .dockercfg layout (host keys only)", () => {
    const text = JSON.stringify(config);
    expect(credentialsFor(text, "reg.example.com:8443/mirror")).toEqual({
      username: "mirror-user",
      password: "mirror-pw",
    });
    expect(credentialsFor(Buffer.from(text), "reg.example.com:8443")?.username).toBe("host-user");
    const legacy = { "https://old.example.com/v1/": { ...auth("old", "pw"), email: "x@example.com" } };
    expect(credentialsFor(legacy, "old.example.com/ns/img")).toEqual({ username: "old", password: "pw" });
  });

  it("reads a parsed DockerConfig the same way", () => {
    const parsed = parseDockerConfig(config);
    expect(credentialsFor(parsed, "reg.example.com:8443/mirror/team-a/app")?.username).toBe("app-user");
    expect(credentialsFor(parsed, "legacy.example.com/x")?.username).toBe("legacy-user");
    expect(credentialsFor(parsed, "nowhere.example.com/x")).toBeUndefined();
  });

  it("keeps colons in passwords and drops NUL padding", () => {
    const c = { auths: { "r.example.com": { auth: b64("u:pa:ss\0\0") } } };
    expect(credentialsFor(c, "r.example.com/x")).toEqual({ username: "u", password: "pa:ss" });
  });

  it("decodes only the matching entry", () => {
    const c = { auths: { "good.example.com": auth("u", "p"), "bad.example.com": { auth: "%%%" } } };
    expect(credentialsFor(c, "good.example.com/x")?.username).toBe("u");
    expect(() => credentialsFor(c, "bad.example.com/x")).toThrow(DockerConfigError);
  });
});

describe("parseDockerConfig", () => {
  const secret = "s3cr3t-Value-that-must-not-leak";
  it.each([
    [`{"auths": {"r": {"auth": "${secret}`, /not valid JSON \(error at character \d+\)/],
    ["[]", /must be a JSON object/],
    [`{"auths": "${secret}"}`, /"auths" must be an object/],
    [`{"other": 1}`, /has no "auths" object/],
    [`{"auths": {"r.example.com": "${secret}"}}`, /the entry for "r.example.com" is not an object/],
    [`{"auths": {"r.example.com": {"auth": 42}}}`, /"auth" of "r.example.com" is not a string/],
    [`{"auths": {"r.example.com": {"auth": "${secret}!"}}}`, /"auth" of "r.example.com" is not base64/],
    [`{"auths": {"r.example.com": {"auth": "${b64(secret)}"}}}`, /does not decode to "username:password"/],
    [
      `{"auths": {"r.example.com": {"username": "u", "password": 7}}}`,
      /"password" of "r.example.com" is not a string/,
    ],
  ])("rejects %s clearly, without echoing values", (content, message) => {
    let error: unknown;
    try {
      parseDockerConfig(content);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DockerConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(secret);
    expect((error as Error).message).not.toContain(b64(secret));
  });

  it("decodes every entry", () => {
    const parsed = parseDockerConfig({ auths: { a: auth("u", "p"), b: {} } });
    expect(parsed.legacyFormat).toBe(false);
    expect([...parsed.auths]).toEqual([
      ["a", { username: "u", password: "p" }],
      ["b", undefined],
    ]);
  });
});

describe("key helpers", () => {
  it("normalizes keys like containers/image", () => {
    expect(normalizeAuthKey("https://r.example.com/v1/")).toBe("r.example.com");
    expect(normalizeAuthKey("http://r.example.com:5000/path")).toBe("r.example.com:5000");
    expect(normalizeAuthKey("r.example.com/ns")).toBe("r.example.com/ns");
    expect(normalizeAuthKey("r.example.com/ns", true)).toBe("r.example.com");
    expect(normalizeAuthKey("registry-1.docker.io")).toBe("index.docker.io");
  });

  it("derives lookup keys and candidates", () => {
    expect(authLookupKey("https://r:5000/a/b/")).toBe("r:5000/a/b");
    expect(authLookupKey("r:5000/a/b:v1@sha256:abc")).toBe("r:5000/a/b");
    expect(authLookupKey("r:5000")).toBe("r:5000");
    expect(authKeyCandidates("r:5000/a/b/c")).toEqual(["r:5000/a/b/c", "r:5000/a/b", "r:5000/a", "r:5000"]);
    expect(authKeyCandidates("r:5000/a/b/c", true)).toEqual(["r:5000"]);
  });
});
