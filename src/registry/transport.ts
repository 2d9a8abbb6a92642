/**
 * The registry client's HTTP layer on undici: one long-lived dispatcher (connection pool)
 * per registry, custom CA bundles, HTTPS proxies, bounded retries with backoff, and errors
 * that never carry credentials or tokens. Authentication is the client's (client.ts) and
 * the token flow's (bearer-tokens.ts); this layer sends what they give it.
 *
 * Keep-alive for HEAD: undici closes an HTTP/1.1 connection after every HEAD request
 * unless told otherwise (a guard against servers that wrongly send a body with HEAD).
 * Registries answer HEAD correctly, and a new TLS handshake per manifest check would
 * cost more than the check itself, so HEAD requests here keep the connection
 * (`reset: false`); see BENCHMARKS.md for what that is worth.
 */
import { rootCertificates } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import type { Dispatcher } from "undici";
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
  backoffDelay,
  isRetryableStatus,
  isRetryableTransport,
  parseRetryAfter,
  type RetryPolicy,
} from "./http.ts";
import { createDispatcher, proxySecrets, type ProxySettings } from "./proxy.ts";

/** One request to the registry (or, with another origin, to its token service). */
export interface RegistryCall {
  readonly method: Dispatcher.HttpMethod;
  /** Path and query. */
  readonly path: string;
  /** What the request is for, in messages (e.g. `HEAD manifest app:1.0`). */
  readonly operation: string;
  /** The token scope it needs (`repository:<name>:pull`), if any. */
  readonly scope: string | undefined;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
}

/** What the client needs of an answer: undici's ResponseData has it, and so has a HEAD reply. */
export interface Reply {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: {
    dump(): Promise<void>;
    text(): Promise<string>;
    json(): Promise<unknown>;
    arrayBuffer(): Promise<ArrayBuffer>;
  };
}

export interface TransportOptions {
  /** `host[:port]` of the registry. */
  readonly registry: string;
  readonly proxy: ProxySettings;
  /** PEM certificates trusted in addition to the system roots. */
  readonly caBundle: string | undefined;
  readonly tlsVerify: boolean;
  readonly timeoutMs: number;
  readonly connections: number;
  readonly pipelining: number;
  readonly allowH2: boolean;
  readonly retry: RetryPolicy;
  /** Values never to appear in a message: the password and its Basic encoding. */
  readonly secrets: readonly string[];
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

/** Error bodies are read up to this size. */
const MAX_ERROR_BODY = 64 * 1024;

const IDEMPOTENT = new Set<string>(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

export class RegistryTransport {
  readonly registry: string;
  /** `https://<registry>` */
  readonly origin: string;
  private readonly dispatcher: Dispatcher;
  private readonly retry: RetryPolicy;
  /** Values that must never appear in a message: passwords, Authorization values, tokens. */
  private readonly secrets = new Set<string>();
  /** Attempts made for answers returned after retrying, for their error messages. */
  private readonly attempts = new WeakMap<object, number>();

  constructor(options: TransportOptions) {
    this.registry = options.registry;
    this.origin = `https://${options.registry}`;
    this.retry = options.retry;
    this.dispatcher = createDispatcher(options.proxy, {
      tls: {
        rejectUnauthorized: options.tlsVerify,
        ...(options.caBundle !== undefined && { ca: [...rootCertificates, options.caBundle] }),
      },
      timeoutMs: options.timeoutMs,
      connections: options.connections,
      pipelining: options.pipelining,
      allowH2: options.allowH2,
    });
    for (const secret of [...options.secrets, ...proxySecrets(options.proxy)]) this.secrets.add(secret);
  }

  /** Never to appear in a message (credentials, tokens). */
  addSecret(value: string): void {
    this.secrets.add(value);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** Runs one public operation; any error that leaves it is a RegistryError without secrets. */
  async guard<T>(operation: () => Promise<T>): Promise<T> {
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

  async readBody<T>(body: Promise<T>, operation: string): Promise<T> {
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

  /**
   * One HTTP exchange with bounded retries: 429 and 5xx answers wait for `Retry-After`
   * (seconds or an HTTP date) or an exponential backoff; timeouts and dropped
   * connections are retried for idempotent methods. A refused connection or a TLS
   * failure is not retried. The final answer is returned as it is (the caller turns
   * it into an error); a final transport failure is thrown as a RegistryError.
   */
  async exchange(origin: string, call: RegistryCall, authorization: string | undefined): Promise<Reply> {
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

  /**
   * ` (message from the body)`, or "" when the body says nothing readable. Secrets are
   * removed from the whole body before it is shortened, so no fragment of one survives.
   */
  async errorDetail(res: Reply): Promise<string> {
    const text = await res.body.text().catch(() => "");
    const detail = describeErrorBody(redact(text.slice(0, MAX_ERROR_BODY), this.secrets));
    return detail !== undefined ? ` (${detail})` : "";
  }

  /** Throws a RegistryError unless the status is expected; consumes the body unless told not to. */
  async expectStatus(
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

/** The first value of a response header. */
export function header(res: Reply, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
