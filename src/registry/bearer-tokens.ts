/**
 * The Bearer token flow of the distribution spec's token authentication: when a registry's
 * challenge is `Bearer realm=..,service=..`, a token per scope (`repository:<name>:pull`) is
 * fetched from the realm with the Basic credentials, cached until shortly before it expires,
 * and shared by concurrent requests for the same scope (one token request, not one per call).
 * Tokens are added to the transport's secrets, so no message ever carries one.
 */
import type { Challenge } from "./challenge.ts";
import { RegistryError } from "./errors.ts";
import type { RegistryTransport } from "./transport.ts";

interface CachedToken {
  readonly value: string;
  readonly expiresAt: number;
}

/** Tokens are refreshed this long before the registry says they expire. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** Registries that omit `expires_in` issue tokens valid for 60 s (distribution spec). */
const DEFAULT_TOKEN_LIFETIME_S = 60;

export class BearerTokens {
  private readonly transport: RegistryTransport;
  /** `Basic <base64>` of the credentials, sent to the token service. */
  private readonly basic: string | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** Token requests under way, so that concurrent calls for one scope share one request. */
  private readonly pending = new Map<string, Promise<string>>();

  constructor(transport: RegistryTransport, basic: string | undefined) {
    this.transport = transport;
    this.basic = basic;
  }

  /** Whether a token for `scope` is cached and not about to expire. */
  has(scope: string): boolean {
    const cached = this.tokens.get(scope);
    return cached !== undefined && cached.expiresAt > Date.now();
  }

  /** Drops the token of `scope` (the registry no longer accepts it). */
  forget(scope: string): void {
    this.tokens.delete(scope);
  }

  /**
   * The token for `scope` as the `challenge` (a Bearer one) describes its service: the cached
   * one, the one a request under way will bring, or a new request's.
   */
  token(
    challenge: Challenge | undefined,
    scope: string | undefined,
    operation: string,
  ): Promise<string> | string {
    const key = scope ?? "";
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.value;
    const pending = this.pending.get(key);
    if (pending !== undefined) return pending;
    const request = this.fetch(challenge, key, scope, operation).finally(() => {
      this.pending.delete(key);
    });
    this.pending.set(key, request);
    return request;
  }

  /** GET realm?service=..&scope=.. with Basic credentials. */
  private async fetch(
    challenge: Challenge | undefined,
    key: string,
    scope: string | undefined,
    operation: string,
  ): Promise<string> {
    const transport = this.transport;
    const registry = transport.registry;
    const params = challenge?.params ?? {};
    const realm = params.realm;
    if (realm === undefined) {
      throw new RegistryError("protocol", `registry ${registry}: Bearer challenge without a realm`);
    }
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError("protocol", `registry ${registry}: Bearer challenge with an invalid realm`);
    }
    if (url.protocol !== "https:") {
      throw new RegistryError(
        "protocol",
        `registry ${registry}: its token service ${url.origin} is not HTTPS; credentials are not sent there`,
      );
    }
    if (params.service !== undefined) url.searchParams.set("service", params.service);
    if (scope !== undefined) url.searchParams.set("scope", scope);
    const tokenOperation = `token request for ${operation}`;
    const res = await transport.exchange(
      url.origin,
      {
        method: "GET",
        path: `${url.pathname}${url.search}`,
        operation: tokenOperation,
        scope: undefined,
        headers: { accept: "application/json" },
      },
      this.basic,
    );
    if (res.statusCode === 401 || res.statusCode === 403) {
      const detail = await transport.errorDetail(res);
      throw new RegistryError(
        res.statusCode === 401 ? "unauthorized" : "forbidden",
        `registry ${registry}: ${operation}: the token service ${url.host} rejected the credentials ` +
          `(HTTP ${res.statusCode}${detail})`,
        res.statusCode,
      );
    }
    await transport.expectStatus(res, [200], tokenOperation, false);
    const body = (await transport.readBody(res.body.json(), tokenOperation)) as {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
    } | null;
    const value = typeof body?.token === "string" && body.token !== "" ? body.token : body?.access_token;
    if (typeof value !== "string" || value === "") {
      throw new RegistryError("protocol", `registry ${registry}: ${tokenOperation}: no token in the answer`);
    }
    transport.addSecret(value);
    const lifetime =
      typeof body?.expires_in === "number" && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, (lifetime * 1000) / 2);
    this.tokens.set(key, { value, expiresAt: Date.now() + lifetime * 1000 - margin });
    return value;
  }
}
