/**
 * A small OCI distribution client on undici: one long-lived connection pool per
 * registry, challenge-driven authentication (Basic, and Bearer tokens cached per
 * scope), custom CA bundles and errors that never carry credentials.
 */
import { createHash } from "node:crypto";
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher } from "undici";
import { parseChallenges, type Challenge } from "./challenge.ts";
import { RegistryError, describeErrorBody, kindForStatus, transportError } from "./errors.ts";
import { MANIFEST_ACCEPT } from "./media-types.ts";

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

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
}

export interface ManifestInfo {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

export interface Manifest extends ManifestInfo {
  readonly body: Buffer;
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

/** Tokens are refreshed this long before the registry says they expire. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** Registries that omit `expires_in` issue tokens valid for 60 s (distribution spec). */
const DEFAULT_TOKEN_LIFETIME_S = 60;

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function repositoryScope(repository: string, action: Action): string {
  return `repository:${repository}:${action}`;
}

export class RegistryClient {
  readonly registry: string;
  private readonly credentials: Credentials | undefined;
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly origin: string;
  /** How the registry wants to be authenticated, learnt from its first challenge. */
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.credentials = options.credentials;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.origin = `https://${options.registry}`;
    const ca = options.caBundle !== undefined ? [...rootCertificates, options.caBundle] : undefined;
    this.agent = new Agent({
      connections: options.connections ?? 16,
      connect: {
        timeout: this.timeoutMs,
        rejectUnauthorized: options.tlsVerify ?? true,
        ...(ca && { ca }),
      },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** `GET /v2/`: proves the registry answers and accepts the credentials. */
  async ping(): Promise<void> {
    const res = await this.send({ method: "GET", path: "/v2/", operation: "ping", scope: undefined });
    await this.expectStatus(res, [200], "ping");
  }

  async headManifest(repository: string, reference: string): Promise<ManifestInfo | undefined> {
    const operation = `HEAD manifest ${repository}:${reference}`;
    const res = await this.send({
      method: "HEAD",
      path: `/v2/${repository}/manifests/${reference}`,
      operation,
      scope: repositoryScope(repository, "pull"),
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    await this.expectStatus(res, [200], operation);
    return {
      digest: header(res, "docker-content-digest") ?? "",
      mediaType: header(res, "content-type") ?? "",
      size: Number(header(res, "content-length") ?? "0"),
    };
  }

  async getManifest(repository: string, reference: string): Promise<Manifest | undefined> {
    const operation = `GET manifest ${repository}:${reference}`;
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
    const body = Buffer.from(await res.body.arrayBuffer());
    return {
      body,
      digest: header(res, "docker-content-digest") ?? sha256Digest(body),
      mediaType: header(res, "content-type") ?? "",
      size: body.length,
    };
  }

  /** Uploads a manifest under a tag or digest and returns its digest. */
  async putManifest(repository: string, reference: string, mediaType: string, body: Buffer): Promise<string> {
    const operation = `PUT manifest ${repository}:${reference}`;
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
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const operation = `HEAD blob ${repository}@${digest}`;
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
  }

  /** Uploads a blob in one request (POST then PUT), unless the registry has it already. */
  async pushBlob(repository: string, data: Buffer): Promise<string> {
    const digest = sha256Digest(data);
    if (await this.blobExists(repository, digest)) return digest;
    const scope = repositoryScope(repository, "push,pull");
    const operation = `upload blob ${repository}@${digest}`;
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
  }

  private async send(call: Call): Promise<Dispatcher.ResponseData> {
    const first = await this.dispatch(call, await this.authorization(call.scope, call.operation));
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
    const second = await this.dispatch(call, await this.authorization(scope, call.operation));
    if (second.statusCode !== 401) return second;
    await second.body.dump();
    throw new RegistryError(
      "unauthorized",
      `registry ${this.registry}: ${call.operation}: the registry rejected the credentials (HTTP 401)`,
      401,
    );
  }

  private async dispatch(call: Call, authorization: string | undefined): Promise<Dispatcher.ResponseData> {
    try {
      return await this.agent.request({
        origin: this.origin,
        method: call.method,
        path: call.path,
        headers: { ...call.headers, ...(authorization !== undefined && { authorization }) },
        ...(call.body !== undefined && { body: call.body }),
      });
    } catch (err) {
      throw transportError(this.registry, call.operation, err);
    }
  }

  private async authorization(scope: string | undefined, operation: string): Promise<string | undefined> {
    if (this.challenge === undefined || this.credentials === undefined) return undefined;
    if (this.challenge.scheme === "basic") return basicAuthorization(this.credentials);
    const token = await this.token(scope, operation);
    return `Bearer ${token}`;
  }

  /** The Bearer token flow: GET realm?service=..&scope=.. with Basic credentials. */
  private async token(scope: string | undefined, operation: string): Promise<string> {
    const key = scope ?? "";
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.value;
    const params = this.challenge?.params ?? {};
    const realm = params.realm;
    if (realm === undefined) {
      throw new RegistryError("protocol", `registry ${this.registry}: Bearer challenge without a realm`);
    }
    const url = new URL(realm);
    if (params.service !== undefined) url.searchParams.set("service", params.service);
    if (scope !== undefined) url.searchParams.set("scope", scope);
    const tokenOperation = `token request for ${operation}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.agent.request({
        origin: url.origin,
        method: "GET",
        path: `${url.pathname}${url.search}`,
        headers: this.credentials ? { authorization: basicAuthorization(this.credentials) } : {},
      });
    } catch (err) {
      throw transportError(url.host, tokenOperation, err);
    }
    await this.expectStatus(res, [200], tokenOperation, false);
    const body = (await res.body.json()) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const value = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof value !== "string" || value === "") {
      throw new RegistryError(
        "protocol",
        `registry ${this.registry}: ${tokenOperation}: no token in the answer`,
      );
    }
    const lifetime = typeof body.expires_in === "number" ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    this.tokens.set(key, { value, expiresAt: Date.now() + lifetime * 1000 - TOKEN_EXPIRY_MARGIN_MS });
    return value;
  }

  /** Throws a RegistryError unless the status is expected; consumes the body unless told not to. */
  private async expectStatus(
    res: Dispatcher.ResponseData,
    expected: readonly number[],
    operation: string,
    dumpBody = true,
  ): Promise<void> {
    if (expected.includes(res.statusCode)) {
      if (dumpBody) await res.body.dump();
      return;
    }
    const text = await res.body.text().catch(() => "");
    const detail = describeErrorBody(text.slice(0, 64 * 1024));
    throw new RegistryError(
      kindForStatus(res.statusCode),
      `registry ${this.registry}: ${operation}: HTTP ${res.statusCode}${detail !== undefined ? ` (${detail})` : ""}`,
      res.statusCode,
    );
  }
}

function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
