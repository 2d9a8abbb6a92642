/**
 * A small OCI distribution client on undici: one long-lived dispatcher (connection
 * pool) per registry, challenge-driven authentication (Basic, and Bearer tokens cached
 * per scope until they expire), custom CA bundles, HTTPS proxies, bounded retries
 * with backoff, and errors that never carry credentials or tokens.
 *
 * Keep-alive for HEAD: undici closes an HTTP/1.1 connection after every HEAD request
 * unless told otherwise (a guard against servers that wrongly send a body with HEAD).
 * Registries answer HEAD correctly, and a new TLS handshake per manifest check would
 * cost more than the check itself, so HEAD requests here keep the connection
 * (`reset: false`); see BENCHMARKS.md for what that is worth.
 */
import { createHash } from "node:crypto";
import { rootCertificates } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import type { Dispatcher } from "undici";
import { parseChallenges, type Challenge } from "./challenge.ts";
import type { Credentials } from "./credentials.ts";
import {
  RegistryError,
  describeErrorBody,
  errorCode,
  kindForStatus,
  redact,
  transportError,
  type RegistryErrorKind,
} from "./errors.ts";
import {
  DEFAULT_RETRY_POLICY,
  backoffDelay,
  isRetryableStatus,
  isRetryableTransport,
  nextLink,
  parseRetryAfter,
  type RetryPolicy,
} from "./http.ts";
import { MANIFEST_ACCEPT } from "./media-types.ts";
import { createDispatcher, proxyFromEnvironment, proxySecrets, type ProxySettings } from "./proxy.ts";

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

type Action = "pull" | "push,pull";

interface Call {
  readonly method: Dispatcher.HttpMethod;
  readonly path: string;
  readonly operation: string;
  readonly scope: string | undefined;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
}

interface CachedToken {
  readonly value: string;
  readonly expiresAt: number;
}

/** What the client needs of an answer: undici's ResponseData has it, and so has a HEAD reply. */
interface Reply {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: {
    dump(): Promise<void>;
    text(): Promise<string>;
    json(): Promise<unknown>;
    arrayBuffer(): Promise<ArrayBuffer>;
  };
}

const EMPTY_BODY: Reply["body"] = {
  dump: () => Promise.resolve(),
  text: () => Promise.resolve(""),
  json: () => Promise.resolve(null),
  arrayBuffer: () => Promise.resolve(new ArrayBuffer(0)),
};

/**
 * A HEAD exchange on undici's handler API: no body stream, no per-response Readable,
 * one small object per request. Manifest checks are the verifier's hot path.
 */
class HeadHandler implements Dispatcher.DispatchHandler, Reply {
  statusCode = 0;
  headers: Reply["headers"] = {};
  readonly body = EMPTY_BODY;
  private readonly resolve: (reply: Reply) => void;
  private readonly reject: (err: Error) => void;

  constructor(resolve: (reply: Reply) => void, reject: (err: Error) => void) {
    this.resolve = resolve;
    this.reject = reject;
  }

  onRequestStart(): void {
    // nothing to set up
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Reply["headers"],
  ): void {
    this.statusCode = statusCode;
    this.headers = headers;
  }

  onResponseData(): void {
    // HEAD answers carry no content
  }

  onResponseEnd(): void {
    this.resolve(this);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.reject(error);
  }
}

/** Tokens are refreshed this long before the registry says they expire. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** Registries that omit `expires_in` issue tokens valid for 60 s (distribution spec). */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Error bodies are read up to this size. */
const MAX_ERROR_BODY = 64 * 1024;

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function repositoryScope(repository: string, action: Action): string {
  return `repository:${repository}:${action}`;
}

const IDEMPOTENT = new Set<string>(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

export class RegistryClient {
  readonly registry: string;
  private readonly credentials: Credentials | undefined;
  private readonly dispatcher: Dispatcher;
  private readonly origin: string;
  private readonly retry: RetryPolicy;
  /** Values that must never appear in a message: passwords, Authorization values, tokens. */
  private readonly secrets = new Set<string>();
  /** How the registry wants to be authenticated, learnt from its first challenge. */
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** Token requests under way, so that concurrent calls for one scope share one request. */
  private readonly pendingTokens = new Map<string, Promise<string>>();
  private readonly basic: string | undefined;
  /** Attempts made for answers returned after retrying, for their error messages. */
  private readonly attempts = new WeakMap<object, number>();

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.credentials = options.credentials;
    const timeoutMs = options.timeoutMs ?? 30_000;
    this.origin = `https://${options.registry}`;
    this.retry = {
      retries: options.retries ?? DEFAULT_RETRY_POLICY.retries,
      baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: options.maxRetryDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
    };
    const proxy = options.proxy ?? proxyFromEnvironment();
    this.dispatcher = createDispatcher(proxy, {
      tls: {
        rejectUnauthorized: options.tlsVerify ?? true,
        ...(options.caBundle !== undefined && { ca: [...rootCertificates, options.caBundle] }),
      },
      timeoutMs,
      connections: options.connections ?? 16,
      pipelining: options.pipelining ?? 1,
      allowH2: options.allowH2 ?? false,
    });
    if (this.credentials !== undefined) {
      const encoded = Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString(
        "base64",
      );
      this.basic = `Basic ${encoded}`;
      this.secrets.add(this.credentials.password).add(encoded);
      if (options.preemptiveBasic === true) this.challenge = { scheme: "basic", params: {} };
    }
    for (const secret of proxySecrets(proxy)) this.secrets.add(secret);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
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
    const cached = this.tokens.get(scope);
    if (cached !== undefined && cached.expiresAt > Date.now()) return;
    const token = this.token(scope, `prepare ${repository}`);
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

  /** Uploads a manifest under a tag or digest and returns its digest. */
  async putManifest(repository: string, reference: string, mediaType: string, body: Buffer): Promise<string> {
    const operation = `PUT manifest ${repository}:${reference}`;
    return this.guard(async () => {
      const res = await this.send({
        method: "PUT",
        path: `/v2/${repository}/manifests/${reference}`,
        operation,
        scope: repositoryScope(repository, "push,pull"),
        headers: { "content-type": mediaType },
        body,
      });
      await this.expectStatus(res, [201], operation);
      return header(res, "docker-content-digest") ?? sha256Digest(body);
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

  /** Uploads a blob in one request (POST then PUT), unless the registry has it already. */
  async pushBlob(repository: string, data: Buffer): Promise<string> {
    const digest = sha256Digest(data);
    if (await this.blobExists(repository, digest)) return digest;
    const scope = repositoryScope(repository, "push,pull");
    const operation = `upload blob ${repository}@${digest}`;
    return this.guard(async () => {
      const started = await this.send({
        method: "POST",
        path: `/v2/${repository}/blobs/uploads/`,
        operation,
        scope,
      });
      await this.expectStatus(started, [202], operation);
      const location = header(started, "location");
      if (location === undefined) {
        throw new RegistryError(
          "protocol",
          `registry ${this.registry}: ${operation}: no Location in upload response`,
        );
      }
      const url = new URL(location, this.origin);
      if (url.origin !== this.origin) {
        throw new RegistryError(
          "protocol",
          `registry ${this.registry}: ${operation}: upload redirected to another host`,
        );
      }
      url.searchParams.set("digest", digest);
      const done = await this.send({
        method: "PUT",
        path: `${url.pathname}${url.search}`,
        operation,
        scope,
        headers: { "content-type": "application/octet-stream" },
        body: data,
      });
      await this.expectStatus(done, [201], operation);
      return digest;
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
    const url = new URL(target, this.origin);
    if (url.origin !== this.origin) {
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

  /** Runs one public operation; any error that leaves it is a RegistryError without secrets. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      const error =
        err instanceof RegistryError
          ? err
          : errorCode(err) !== undefined
            ? transportError(this.registry, "request", err)
            : new RegistryError(
                "protocol",
                `registry ${this.registry}: ${err instanceof Error ? err.message : String(err)}`,
                undefined,
                { cause: err },
              );
      const message = redact(error.message, this.secrets);
      if (message === error.message) throw error;
      throw new RegistryError(error.kind, message, error.status, { cause: error.cause });
    }
  }

  private async readBody<T>(body: Promise<T>, operation: string): Promise<T> {
    try {
      return await body;
    } catch (err) {
      if (err instanceof SyntaxError) {
        throw new RegistryError(
          "protocol",
          `registry ${this.registry}: ${operation}: the answer is not valid JSON`,
        );
      }
      throw transportError(this.registry, operation, err);
    }
  }

  private async send(call: Call): Promise<Reply> {
    const sent = await this.authorization(call.scope, call.operation);
    const first = await this.exchange(this.origin, call, sent);
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
    this.tokens.delete(scope ?? "");
    const authorization = await this.authorization(scope, call.operation);
    // The same credentials again would be refused again: say so without asking twice.
    const second = authorization === sent ? undefined : await this.exchange(this.origin, call, authorization);
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

  /**
   * One HTTP exchange with bounded retries: 429 and 5xx answers wait for `Retry-After`
   * (seconds or an HTTP date) or an exponential backoff; timeouts and dropped
   * connections are retried for idempotent methods. A refused connection or a TLS
   * failure is not retried. The final answer is returned as it is (the caller turns
   * it into an error); a final transport failure is thrown as a RegistryError.
   */
  private async exchange(origin: string, call: Call, authorization: string | undefined): Promise<Reply> {
    const host = origin === this.origin ? this.registry : new URL(origin).host;
    const headers = authorization === undefined ? (call.headers ?? {}) : { ...call.headers, authorization };
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.retry.retries;
      let res: Reply;
      try {
        res =
          call.method === "HEAD"
            ? await new Promise<Reply>((resolve, reject) => {
                this.dispatcher.dispatch(
                  { origin, method: "HEAD", path: call.path, headers, reset: false },
                  new HeadHandler(resolve, reject),
                );
              })
            : await this.dispatcher.request({
                origin,
                method: call.method,
                path: call.path,
                headers,
                ...(call.body !== undefined && { body: call.body }),
              });
      } catch (err) {
        const error = transportError(host, call.operation, err);
        if (last || !IDEMPOTENT.has(call.method) || !isRetryableTransport(error.kind, errorCode(err))) {
          throw attempt > 0 ? withAttempts(error, attempt + 1) : error;
        }
        await sleep(backoffDelay(attempt, this.retry));
        continue;
      }
      if (!isRetryableStatus(res.statusCode)) return res;
      if (last) {
        if (attempt > 0) this.attempts.set(res, attempt + 1);
        return res;
      }
      const retryAfter = parseRetryAfter(header(res, "retry-after"));
      if (retryAfter !== undefined && retryAfter > this.retry.maxDelayMs) {
        const detail = await this.errorDetail(res);
        throw new RegistryError(
          kindForStatus(res.statusCode),
          `registry ${host}: ${call.operation}: HTTP ${res.statusCode}${detail}, and it asks to retry ` +
            `after ${Math.ceil(retryAfter / 1000)} s, longer than the client waits (${Math.ceil(this.retry.maxDelayMs / 1000)} s)`,
          res.statusCode,
        );
      }
      await res.body.dump().catch(() => undefined);
      await sleep(retryAfter ?? backoffDelay(attempt, this.retry));
    }
  }

  private async authorization(scope: string | undefined, operation: string): Promise<string | undefined> {
    if (this.challenge === undefined || this.credentials === undefined) return undefined;
    if (this.challenge.scheme === "basic") return this.basic;
    return `Bearer ${await this.token(scope, operation)}`;
  }

  /** The Bearer token flow: GET realm?service=..&scope=.. with Basic credentials. */
  private token(scope: string | undefined, operation: string): Promise<string> | string {
    const key = scope ?? "";
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.value;
    const pending = this.pendingTokens.get(key);
    if (pending !== undefined) return pending;
    const request = this.fetchToken(key, scope, operation).finally(() => {
      this.pendingTokens.delete(key);
    });
    this.pendingTokens.set(key, request);
    return request;
  }

  private async fetchToken(key: string, scope: string | undefined, operation: string): Promise<string> {
    const params = this.challenge?.params ?? {};
    const realm = params.realm;
    if (realm === undefined) {
      throw new RegistryError("protocol", `registry ${this.registry}: Bearer challenge without a realm`);
    }
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(
        "protocol",
        `registry ${this.registry}: Bearer challenge with an invalid realm`,
      );
    }
    if (url.protocol !== "https:") {
      throw new RegistryError(
        "protocol",
        `registry ${this.registry}: its token service ${url.origin} is not HTTPS; credentials are not sent there`,
      );
    }
    if (params.service !== undefined) url.searchParams.set("service", params.service);
    if (scope !== undefined) url.searchParams.set("scope", scope);
    const tokenOperation = `token request for ${operation}`;
    const res = await this.exchange(
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
      const detail = await this.errorDetail(res);
      throw new RegistryError(
        res.statusCode === 401 ? "unauthorized" : "forbidden",
        `registry ${this.registry}: ${operation}: the token service ${url.host} rejected the credentials ` +
          `(HTTP ${res.statusCode}${detail})`,
        res.statusCode,
      );
    }
    await this.expectStatus(res, [200], tokenOperation, false);
    const body = (await this.readBody(res.body.json(), tokenOperation)) as {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
    } | null;
    const value = typeof body?.token === "string" && body.token !== "" ? body.token : body?.access_token;
    if (typeof value !== "string" || value === "") {
      throw new RegistryError(
        "protocol",
        `registry ${this.registry}: ${tokenOperation}: no token in the answer`,
      );
    }
    this.secrets.add(value);
    const lifetime =
      typeof body?.expires_in === "number" && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, (lifetime * 1000) / 2);
    this.tokens.set(key, { value, expiresAt: Date.now() + lifetime * 1000 - margin });
    return value;
  }

  /**
   * ` (message from the body)`, or "" when the body says nothing readable. Secrets are
   * removed from the whole body before it is shortened, so no fragment of one survives.
   */
  private async errorDetail(res: Reply): Promise<string> {
    const text = await res.body.text().catch(() => "");
    const detail = describeErrorBody(redact(text.slice(0, MAX_ERROR_BODY), this.secrets));
    return detail !== undefined ? ` (${detail})` : "";
  }

  /** Throws a RegistryError unless the status is expected; consumes the body unless told not to. */
  private async expectStatus(
    res: Reply,
    expected: readonly number[],
    operation: string,
    dumpBody = true,
  ): Promise<void> {
    if (expected.includes(res.statusCode)) {
      if (dumpBody) await res.body.dump();
      return;
    }
    const detail = await this.errorDetail(res);
    const attempts = this.attempts.get(res);
    throw new RegistryError(
      kindForStatus(res.statusCode),
      `registry ${this.registry}: ${operation}: HTTP ${res.statusCode}${detail}` +
        (attempts !== undefined ? ` (after ${attempts} attempts)` : ""),
      res.statusCode,
    );
  }
}

function withAttempts(error: RegistryError, attempts: number): RegistryError {
  const kind: RegistryErrorKind = error.kind;
  return new RegistryError(kind, `${error.message} (after ${attempts} attempts)`, error.status, {
    cause: error.cause,
  });
}

function header(res: Reply, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
