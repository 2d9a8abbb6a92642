import { describe, expect, it } from "vitest";
import { describeErrorBody, kindForStatus, transportError } from "./errors.ts";

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
});
