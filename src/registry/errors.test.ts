import { describe, expect, it } from "vitest";
import { describeErrorBody, kindForStatus, redact, transportError } from "./errors.ts";

function withCode(code: string): Error {
  return Object.assign(new Error("inner"), { code });
}

describe("registry errors", () => {
  it("reads distribution error bodies", () => {
    const body = JSON.stringify({
      errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: {} }],
    });
    expect(describeErrorBody(body)).toBe("MANIFEST_UNKNOWN: manifest unknown");
    expect(describeErrorBody("<html>")).toBeUndefined();
  });

  it("classifies HTTP statuses", () => {
    expect([401, 403, 404, 429, 503, 400].map(kindForStatus)).toEqual([
      "unauthorized",
      "forbidden",
      "not-found",
      "rate-limited",
      "server",
      "protocol",
    ]);
  });

  it("explains TLS failures and how to fix them", () => {
    const err = transportError(
      "reg:5000",
      "ping",
      new Error("fetch failed", { cause: withCode("SELF_SIGNED_CERT_IN_CHAIN") }),
    );
    expect(err.kind).toBe("tls");
    expect(err.message).toBe(
      "TLS verification failed for registry reg:5000: certificate signed by an unknown authority " +
        "(SELF_SIGNED_CERT_IN_CHAIN); trust its CA with caBundleRef, or set tlsVerify: false",
    );
  });

  it("explains connection failures and timeouts", () => {
    expect(transportError("reg:5000", "ping", withCode("ECONNREFUSED")).message).toBe(
      "registry reg:5000 is unreachable for ping: connection refused",
    );
    expect(transportError("reg:5000", "ping", withCode("UND_ERR_HEADERS_TIMEOUT")).kind).toBe("timeout");
  });

  it("reads token-server, OAuth and plain-text error bodies", () => {
    expect(describeErrorBody('{"details":"incorrect username or password"}')).toBe(
      "incorrect username or password",
    );
    expect(describeErrorBody('{"error":"invalid_grant","error_description":"expired"}')).toBe(
      "invalid_grant: expired",
    );
    expect(describeErrorBody("upstream connect error\n  or disconnect")).toBe(
      "upstream connect error or disconnect",
    );
    expect(describeErrorBody("<html><body>Bad gateway</body></html>")).toBeUndefined();
    expect(describeErrorBody("x".repeat(500))).toHaveLength(303);
  });

  it("removes Authorization values a server echoes", () => {
    expect(describeErrorBody('{"errors":[{"code":"DENIED","message":"bad Bearer eyJ.abc.def"}]}')).toBe(
      "DENIED: bad Bearer [redacted]",
    );
    expect(describeErrorBody("got Basic dXNlcjpwYXNz")).toBe("got Basic [redacted]");
  });

  it("redacts known secrets, but not trivially short ones", () => {
    expect(redact("user pw=hunter22 and hunter22", ["hunter22", "pw"])).toBe(
      "user pw=[redacted] and [redacted]",
    );
  });

  it("explains a proxy that refuses the tunnel", () => {
    const err = new Error("Proxy response (407) !== 200 when HTTP Tunneling");
    expect(transportError("reg:5000", "ping", err).message).toBe(
      "registry reg:5000 is unreachable for ping: the proxy refused to open a tunnel to it " +
        "(HTTP 407, proxy authentication required)",
    );
  });
});
