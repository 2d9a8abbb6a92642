/**
 * Pure HTTP helpers of the registry client: retry policy (which answers and failures
 * are worth another attempt, how long to wait), `Retry-After` and `Link` parsing.
 */
import type { RegistryErrorKind } from "./errors.ts";

export interface RetryPolicy {
  /** Extra attempts after the first one (0 disables retries). */
  readonly retries: number;
  /** First backoff delay; doubles with every attempt. */
  readonly baseDelayMs: number;
  /** Longest single wait, for backoff and for `Retry-After`. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 3, baseDelayMs: 250, maxDelayMs: 10_000 };

/** Statuses a registry (or a proxy/load balancer in front of it) answers when retrying may help. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/**
 * Transport failures worth another attempt: timeouts and connections dropped under
 * the request. A refused connection, DNS failure or TLS failure is not: it will not
 * change within seconds, and the caller should say so quickly.
 */
export function isRetryableTransport(kind: RegistryErrorKind, code: string | undefined): boolean {
  return kind === "timeout" || code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE";
}

/** Exponential backoff with jitter: attempt 0 waits base/2..base, attempt n up to base·2ⁿ (capped). */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns the wait in
 * milliseconds (0 for a date in the past), or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the obsolete forms Date.parse reads.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * The `rel="next"` target of a `Link` header (RFC 8288), as registries send it for
 * paginated tag and catalog lists: `</v2/ns/img/tags/list?last=x&n=100>; rel="next"`.
 */
export function nextLink(header: string | readonly string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const values = typeof header === "string" ? [header] : header;
  for (const value of values) {
    const linkValue = /<([^>]*)>((?:\s*;\s*[^;,<]+)*)/g;
    for (let m = linkValue.exec(value); m !== null; m = linkValue.exec(value)) {
      const params = m[2] ?? "";
      const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))/i.exec(params);
      const rels = (rel?.[1] ?? rel?.[2] ?? "").toLowerCase().split(/\s+/);
      if (rels.includes("next")) return m[1];
    }
  }
  return undefined;
}
