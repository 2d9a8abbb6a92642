/**
 * A small OCI distribution client for reading registries (the verifier's path: ping, manifests,
 * blobs, tags): challenge-driven authentication (Basic, and Bearer tokens: bearer-tokens.ts)
 * over the HTTP layer of transport.ts (one connection pool per registry, custom CA bundles,
 * HTTPS proxies, bounded retries with backoff, errors that never carry credentials or tokens).
 * Requests it has no method for (the pushes of devkit/registry-writer.ts) go through
 * `request`, with the same authentication, retries and errors.
 */
import { createHash } from "node:crypto";
import { BearerTokens } from "./bearer-tokens.ts";
import { parseChallenges, type Challenge } from "./challenge.ts";
import type { Credentials } from "./credentials.ts";
import { RegistryError } from "./errors.ts";
import { DEFAULT_RETRY_POLICY, nextLink } from "./http.ts";
import { MANIFEST_ACCEPT } from "./media-types.ts";
import { proxyFromEnvironment, type ProxySettings } from "./proxy.ts";
import { RegistryTransport, header, type RegistryCall, type Reply } from "./transport.ts";

export type { Credentials } from "./credentials.ts";

export interface RegistryClientOptions {
  /** `host[:port]` of the registry. */
  readonly registry: string;
  readonly credentials?: Credentials;
  /** PEM certificates trusted in addition to the system roots. */
  readonly caBundle?: string;
  /** Verify the registry's certificate (default true). */
  readonly tlsVerify?: boolean;
  /** Time allowed for connecting, and for headers and body of one response (default 30 s). */
  readonly timeoutMs?: number;
  /** Connections kept open to the registry (default 16). */
  readonly connections?: number;
  /** HTTP/1.1 requests in flight per connection (default 1: no pipelining). */
  readonly pipelining?: number;
  /** Offer HTTP/2 in the TLS handshake (default false). */
  readonly allowH2?: boolean;
  /**
   * Proxy settings, used as given. Default: `proxyFromEnvironment()`, i.e. `HTTPS_PROXY`
   * and `NO_PROXY` of this process plus the operator's own exemptions.
   */
  readonly proxy?: ProxySettings;
  /** Extra attempts for 429, 5xx, timeouts and dropped connections (default 3). */
  readonly retries?: number;
  /** First backoff delay, doubled per attempt (default 250 ms). */
  readonly retryBaseDelayMs?: number;
  /**
   * Longest single wait between attempts (default 10 s). A `Retry-After` longer than
   * this fails the request at once with a message saying how long the registry asked for.
   */
  readonly maxRetryDelayMs?: number;
  /**
   * Send the credentials as Basic auth with the first request instead of waiting for the
   * registry's challenge (a registry that wants Bearer tokens challenges anyway). One request
   * instead of two for a check that runs again and again, such as the preflight's ping.
   */
  readonly preemptiveBasic?: boolean;
}

export interface ManifestInfo {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

export interface Manifest extends ManifestInfo {
  readonly body: Buffer;
}

export interface ListTagsOptions {
  /** `n` per page (default: the registry's own page size). */
  readonly pageSize?: number;
  /** Pages followed at most before failing (default 100). */
  readonly maxPages?: number;
}

export type { RegistryCall } from "./transport.ts";

/** What `request` hands back of an answer whose status was expected (its body is consumed). */
export interface RegistryAnswer {
  readonly statusCode: number;
  /** The first value of a header (name in lower case). */
  header(name: string): string | undefined;
}

/** Sends one request (see `RegistryClient.request`) and fails unless its status is in `expected`. */
export type RegistrySend = (call: RegistryCall, expected: readonly number[]) => Promise<RegistryAnswer>;

export type ScopeAction = "pull" | "push,pull";

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** The token scope of an action on a repository. */
export function repositoryScope(repository: string, action: ScopeAction): string {
  return `repository:${repository}:${action}`;
}

export class RegistryClient {
  readonly registry: string;
  private readonly credentials: Credentials | undefined;
  private readonly transport: RegistryTransport;
  private readonly tokens: BearerTokens;
  /** How the registry wants to be authenticated, learnt from its first challenge. */
  private challenge: Challenge | undefined;
  private readonly basic: string | undefined;

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.credentials = options.credentials;
    const secrets: string[] = [];
    if (this.credentials !== undefined) {
      const encoded = Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString(
        "base64",
      );
      this.basic = `Basic ${encoded}`;
      secrets.push(this.credentials.password, encoded);
      if (options.preemptiveBasic === true) this.challenge = { scheme: "basic", params: {} };
    }
    this.transport = new RegistryTransport({
      registry: options.registry,
      proxy: options.proxy ?? proxyFromEnvironment(),
      caBundle: options.caBundle,
      tlsVerify: options.tlsVerify ?? true,
      timeoutMs: options.timeoutMs ?? 30_000,
      connections: options.connections ?? 16,
      pipelining: options.pipelining ?? 1,
      allowH2: options.allowH2 ?? false,
      retry: {
        retries: options.retries ?? DEFAULT_RETRY_POLICY.retries,
        baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
        maxDelayMs: options.maxRetryDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
      },
      secrets,
    });
    this.tokens = new BearerTokens(this.transport, this.basic);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /**
   * The low-level primitive for requests this client has no method for (the write helpers of
   * devkit/registry-writer.ts): runs `steps`, whose `send` makes one request the way the methods
   * here do, with this client's authentication (challenges, Basic, Bearer tokens), retries and
   * timeouts, and fails unless the answer's status is one of `expected` (its body is consumed).
   * As from the methods, any error that leaves it is a RegistryError without secrets.
   */
  async request<T>(steps: (send: RegistrySend) => Promise<T>): Promise<T> {
    return this.guard(() =>
      steps(async (call, expected) => {
        const res = await this.send(call);
        await this.expectStatus(res, expected, call.operation);
        return { statusCode: res.statusCode, header: (name) => header(res, name) };
      }),
    );
  }

  /** `GET /v2/`: proves the registry answers and accepts the credentials. */
  async ping(): Promise<void> {
    await this.guard(async () => {
      const res = await this.send({ method: "GET", path: "/v2/", operation: "ping", scope: undefined });
      await this.expectStatus(res, [200], "ping");
    });
  }

  /** `HEAD` a manifest by tag or digest: its digest, media type and size, or undefined if absent. */
  async headManifest(repository: string, reference: string): Promise<ManifestInfo | undefined> {
    return this.guard(async () => {
      const res = await this.send({
        method: "HEAD",
        path: `/v2/${repository}/manifests/${reference}`,
        operation: `HEAD manifest ${repository}:${reference}`,
        scope: repositoryScope(repository, "pull"),
        headers: { accept: MANIFEST_ACCEPT },
      });
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      await this.expectStatus(res, [200], `HEAD manifest ${repository}:${reference}`);
      return {
        digest: header(res, "docker-content-digest") ?? "",
        mediaType: header(res, "content-type") ?? "",
        size: Number(header(res, "content-length") ?? "0"),
      };
    });
  }

  /**
   * Gets ready to read a repository: with Bearer auth, fetches its pull token in the
   * background (once; concurrent and later calls share it), so that the first request
   * for the repository does not wait for it. Never fails: a failing token request
   * fails the real request later, with its own message.
   */
  prepare(repository: string): void {
    if (this.challenge?.scheme !== "bearer" || this.credentials === undefined) return;
    const scope = repositoryScope(repository, "pull");
    if (this.tokens.has(scope)) return;
    const token = this.tokens.token(this.challenge, scope, `prepare ${repository}`);
    if (typeof token !== "string") token.catch(() => undefined);
  }

  async getManifest(repository: string, reference: string): Promise<Manifest | undefined> {
    const operation = `GET manifest ${repository}:${reference}`;
    return this.guard(async () => {
      const res = await this.send({
        method: "GET",
        path: `/v2/${repository}/manifests/${reference}`,
        operation,
        scope: repositoryScope(repository, "pull"),
        headers: { accept: MANIFEST_ACCEPT },
      });
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      await this.expectStatus(res, [200], operation, false);
      const body = Buffer.from(await this.readBody(res.body.arrayBuffer(), operation));
      return {
        body,
        digest: header(res, "docker-content-digest") ?? sha256Digest(body),
        mediaType: header(res, "content-type") ?? "",
        size: body.length,
      };
    });
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const operation = `HEAD blob ${repository}@${digest}`;
    return this.guard(async () => {
      const res = await this.send({
        method: "HEAD",
        path: `/v2/${repository}/blobs/${digest}`,
        operation,
        scope: repositoryScope(repository, "pull"),
      });
      if (res.statusCode === 404) {
        await res.body.dump();
        return false;
      }
      await this.expectStatus(res, [200], operation);
      return true;
    });
  }

  /**
   * `GET` a blob into memory (for small images: the graph image a Job puts into an OCI layout), checked
   * against its digest (sha256); undefined when the registry does not have it. Redirects (registries
   * serving blobs from object storage) are not followed.
   */
  async getBlob(repository: string, digest: string): Promise<Buffer | undefined> {
    const operation = `GET blob ${repository}@${digest}`;
    return this.guard(async () => {
      const res = await this.send({
        method: "GET",
        path: `/v2/${repository}/blobs/${digest}`,
        operation,
        scope: repositoryScope(repository, "pull"),
      });
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      await this.expectStatus(res, [200], operation, false);
      const body = Buffer.from(await this.readBody(res.body.arrayBuffer(), operation));
      if (digest.startsWith("sha256:") && sha256Digest(body) !== digest) {
        throw new RegistryError(
          "protocol",
          `registry ${this.registry}: ${operation}: the content does not match its digest`,
        );
      }
      return body;
    });
  }

  /**
   * Every tag of a repository, following `Link: <...>; rel="next"` pages (same registry
   * only, at most `maxPages`). A repository the registry does not know fails with kind
   * `not-found`.
   */
  async listTags(repository: string, options: ListTagsOptions = {}): Promise<string[]> {
    const operation = `list tags of ${repository}`;
    const maxPages = options.maxPages ?? 100;
    return this.guard(async () => {
      const tags: string[] = [];
      const seen = new Set<string>();
      let path: string | undefined =
        `/v2/${repository}/tags/list` + (options.pageSize !== undefined ? `?n=${options.pageSize}` : "");
      for (let page = 0; path !== undefined; page++) {
        if (page >= maxPages) {
          throw new RegistryError(
            "protocol",
            `registry ${this.registry}: ${operation}: more than ${maxPages} pages of tags; stopped`,
          );
        }
        seen.add(path);
        const res = await this.send({
          method: "GET",
          path,
          operation,
          scope: repositoryScope(repository, "pull"),
          headers: { accept: "application/json" },
        });
        await this.expectStatus(res, [200], operation, false);
        const body = await this.readBody(res.body.json(), operation);
        const pageTags = (body as { tags?: unknown } | null)?.tags;
        if (pageTags !== null && pageTags !== undefined) {
          if (!Array.isArray(pageTags) || !pageTags.every((t) => typeof t === "string")) {
            throw new RegistryError(
              "protocol",
              `registry ${this.registry}: ${operation}: malformed tag list`,
            );
          }
          tags.push(...pageTags);
        }
        path = this.nextPage(header(res, "link"), operation, seen);
      }
      return tags;
    });
  }

  /** The path of the next page, if any, refusing links to other hosts and loops. */
  private nextPage(
    link: string | undefined,
    operation: string,
    seen: ReadonlySet<string>,
  ): string | undefined {
    const target = nextLink(link);
    if (target === undefined) return undefined;
    const url = new URL(target, this.transport.origin);
    if (url.origin !== this.transport.origin) {
      throw new RegistryError(
        "protocol",
        `registry ${this.registry}: ${operation}: next page is on another host (${url.host}); not followed`,
      );
    }
    const path = `${url.pathname}${url.search}`;
    if (seen.has(path)) {
      throw new RegistryError(
        "protocol",
        `registry ${this.registry}: ${operation}: pagination loops; stopped`,
      );
    }
    return path;
  }

  private guard<T>(operation: () => Promise<T>): Promise<T> {
    return this.transport.guard(operation);
  }

  private readBody<T>(body: Promise<T>, operation: string): Promise<T> {
    return this.transport.readBody(body, operation);
  }

  private expectStatus(
    res: Reply,
    expected: readonly number[],
    operation: string,
    dumpBody = true,
  ): Promise<void> {
    return this.transport.expectStatus(res, expected, operation, dumpBody);
  }

  private async send(call: RegistryCall): Promise<Reply> {
    const sent = await this.authorization(call.scope, call.operation);
    const first = await this.transport.exchange(this.transport.origin, call, sent);
    if (first.statusCode !== 401) return first;
    const challenges = parseChallenges(header(first, "www-authenticate") ?? "");
    await first.body.dump();
    const challenge =
      challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
    if (challenge === undefined || this.credentials === undefined) {
      throw new RegistryError(
        "unauthorized",
        `registry ${this.registry}: ${call.operation}: authentication required` +
          (this.credentials === undefined ? " and no credentials are configured for it" : ""),
        401,
      );
    }
    // Learn (or re-learn) the scheme and drop a token the registry no longer accepts.
    this.challenge = challenge;
    const scope = call.scope ?? challenge.params.scope;
    this.tokens.forget(scope ?? "");
    const authorization = await this.authorization(scope, call.operation);
    // The same credentials again would be refused again: say so without asking twice.
    const second =
      authorization === sent
        ? undefined
        : await this.transport.exchange(this.transport.origin, call, authorization);
    if (second !== undefined && second.statusCode !== 401) return second;
    await second?.body.dump();
    const refusal = parseChallenges(header(second ?? first, "www-authenticate") ?? "").find(
      (c) => c.scheme === "bearer",
    );
    if (refusal?.params.error === "insufficient_scope") {
      throw new RegistryError(
        "forbidden",
        `registry ${this.registry}: ${call.operation}: the credentials are not allowed to do this ` +
          `(insufficient_scope${scope !== undefined ? ` for ${scope}` : ""})`,
        401,
      );
    }
    throw new RegistryError(
      "unauthorized",
      `registry ${this.registry}: ${call.operation}: the registry rejected the credentials (HTTP 401)`,
      401,
    );
  }

  private async authorization(scope: string | undefined, operation: string): Promise<string | undefined> {
    if (this.challenge === undefined || this.credentials === undefined) return undefined;
    if (this.challenge.scheme === "basic") return this.basic;
    return `Bearer ${await this.tokens.token(this.challenge, scope, operation)}`;
  }
}
