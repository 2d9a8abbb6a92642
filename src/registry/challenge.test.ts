import { describe, expect, it } from "vitest";
import { parseChallenges } from "./challenge.ts";

describe("parseChallenges", () => {
  it("reads a Basic challenge", () => {
    expect(parseChallenges('Basic realm="registry-realm"')).toEqual([
      { scheme: "basic", params: { realm: "registry-realm" } },
    ]);
  });

  it("reads a Bearer challenge with realm, service and scope", () => {
    const header =
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:ns/img:pull,push"';
    expect(parseChallenges(header)).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.example.com/token",
          service: "registry.example.com",
          scope: "repository:ns/img:pull,push",
        },
      },
    ]);
  });

  it("reads several challenges, unquoted values and escapes", () => {
    expect(parseChallenges('Basic realm=simple, Bearer realm="a\\"b", error="invalid_token"')).toEqual([
      { scheme: "basic", params: { realm: "simple" } },
      { scheme: "bearer", params: { realm: 'a"b', error: "invalid_token" } },
    ]);
  });

  it("lower-cases schemes and parameter names", () => {
    expect(parseChallenges('BEARER Realm="x"')).toEqual([{ scheme: "bearer", params: { realm: "x" } }]);
  });

  it("returns nothing for an empty header", () => {
    expect(parseChallenges("")).toEqual([]);
  });
});
