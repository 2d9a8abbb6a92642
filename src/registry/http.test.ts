import { describe, expect, it } from "vitest";
import { backoffDelay, isRetryableStatus, isRetryableTransport, nextLink, parseRetryAfter } from "./http.ts";

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("reads delay-seconds", () => {
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
  });
  it("reads HTTP dates, and clamps past ones to 0", () => {
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", now)).toBe(0);
  });
  it("ignores absent and unreadable values", () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("-1", now)).toBeUndefined();
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });
});

describe("backoffDelay", () => {
  const policy = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
  it("doubles per attempt between half and full, capped", () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(2, policy, () => 1)).toBe(400);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(backoffDelay(10, policy, () => 0)).toBe(500);
  });
});

describe("retry classification", () => {
  it("retries 429 and transient 5xx only", () => {
    expect([429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 501, 505].some(isRetryableStatus)).toBe(false);
  });
  it("retries timeouts and dropped connections, not refusals or TLS failures", () => {
    expect(isRetryableTransport("timeout", "UND_ERR_HEADERS_TIMEOUT")).toBe(true);
    expect(isRetryableTransport("unreachable", "ECONNRESET")).toBe(true);
    expect(isRetryableTransport("unreachable", "UND_ERR_SOCKET")).toBe(true);
    expect(isRetryableTransport("unreachable", "ECONNREFUSED")).toBe(false);
    expect(isRetryableTransport("tls", "SELF_SIGNED_CERT_IN_CHAIN")).toBe(false);
  });
});

describe("nextLink", () => {
  it("finds rel=next among link values", () => {
    expect(nextLink('</v2/a/tags/list?last=x&n=2>; rel="next"')).toBe("/v2/a/tags/list?last=x&n=2");
    expect(nextLink('<https://r/first>; rel="first", </v2/next?n=1>; rel=next')).toBe("/v2/next?n=1");
    expect(nextLink(['<https://r/p>; rel="prev"', '</n>; title="x"; rel="last next"'])).toBe("/n");
  });
  it("returns undefined without a next link", () => {
    expect(nextLink(undefined)).toBeUndefined();
    expect(nextLink('</prev>; rel="prev"')).toBeUndefined();
    expect(nextLink("garbage")).toBeUndefined();
  });
});
