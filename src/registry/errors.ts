/**
 * Registry failures as messages a user can act on. Messages name the registry, the
 * operation and the cause; they never contain credentials or tokens.
 */

export type RegistryErrorKind =
  | "unreachable"
  | "tls"
  | "timeout"
  | "unauthorized"
  | "forbidden"
  | "not-found"
  | "rate-limited"
  | "server"
  | "protocol";

export class RegistryError extends Error {
  override readonly name = "RegistryError";
  readonly kind: RegistryErrorKind;
  readonly status: number | undefined;

  constructor(kind: RegistryErrorKind, message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
    this.status = status;
  }
}

/**
 * A registry's (or token server's) error body as a short message:
 * OCI distribution `{"errors":[{"code","message","detail"}]}`, Docker token servers'
 * `{"details": "..."}`, OAuth2 `{"error", "error_description"}`, or a short plain-text
 * body (proxies, load balancers). Undefined when there is nothing readable.
 */
export function describeErrorBody(body: string): string | undefined {
  // Servers that echo the request's Authorization header must not put it in a message.
  const text = body.trim().replace(/\b(Bearer|Basic)\s+[\w.~+/=-]+/gi, "$1 [redacted]");
  if (text === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return plainText(text);
  }
  if (parsed === null || typeof parsed !== "object") return undefined;
  const record = parsed as {
    errors?: unknown;
    details?: unknown;
    error?: unknown;
    error_description?: unknown;
    message?: unknown;
  };
  if (Array.isArray(record.errors)) {
    const parts = (record.errors as { code?: unknown; message?: unknown }[])
      .map((e) => [e.code, e.message].filter((x) => typeof x === "string" && x !== "").join(": "))
      .filter((x) => x !== "");
    return parts.length > 0 ? truncate(parts.join("; ")) : undefined;
  }
  const parts = [record.error, record.error_description, record.details, record.message].filter(
    (x): x is string => typeof x === "string" && x !== "",
  );
  return parts.length > 0 ? truncate(parts.join(": ")) : undefined;
}

const MAX_DETAIL = 300;

function truncate(text: string): string {
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}...` : text;
}

/** Plain text (not HTML) collapsed to one line; HTML pages say nothing useful in a condition. */
function plainText(text: string): string | undefined {
  if (/^<!doctype|^<html|<body/i.test(text)) return undefined;
  const line = text.replace(/\s+/g, " ").trim();
  return line === "" ? undefined : truncate(line);
}

/**
 * Replaces every occurrence of the given secrets (passwords, `Authorization` values,
 * tokens) with `[redacted]`. Secrets shorter than 4 characters are left alone: they
 * would redact ordinary words and are no secret worth the name.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4 && out.includes(secret)) out = out.split(secret).join("[redacted]");
  }
  return out;
}

export function kindForStatus(status: number): RegistryErrorKind {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not-found";
  if (status === 429) return "rate-limited";
  if (status >= 500) return "server";
  return "protocol";
}

const TLS_CODES: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "certificate signed by an unknown authority",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "certificate signed by an unknown authority",
  SELF_SIGNED_CERT_IN_CHAIN: "certificate signed by an unknown authority",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
  CERT_HAS_EXPIRED: "certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "certificate is not valid for this host name",
};

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EHOSTUNREACH: "host unreachable",
  UND_ERR_SOCKET: "connection closed by the registry",
  EPIPE: "connection closed by the registry",
  EAI_AGAIN: "host name lookup failed (temporary)",
  ENETUNREACH: "network unreachable",
  UND_ERR_PRX_TLS: "TLS connection to the proxy failed",
};

const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/** The first code in an error's cause chain that this module knows. */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (code in TLS_CODES || code in NETWORK_CODES || TIMEOUT_CODES.has(code))) {
      return code;
    }
  }
  return undefined;
}

/** Turns a transport failure (undici/Node error) into a RegistryError. */
export function transportError(registry: string, operation: string, err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = errorCode(err);
  if (code !== undefined && code in TLS_CODES) {
    return new RegistryError(
      "tls",
      `TLS verification failed for registry ${registry}: ${TLS_CODES[code]} (${code}); ` +
        `trust its CA with caBundleRef, or set tlsVerify: false`,
      undefined,
      { cause: err },
    );
  }
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new RegistryError(
      "timeout",
      `registry ${registry} did not answer ${operation} in time (${code})`,
      undefined,
      {
        cause: err,
      },
    );
  }
  const reason = code !== undefined ? NETWORK_CODES[code] : (proxyRefusal(err) ?? messageOf(err));
  return new RegistryError(
    "unreachable",
    `registry ${registry} is unreachable for ${operation}: ${reason}`,
    undefined,
    {
      cause: err,
    },
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** undici's "Proxy response (407) !== 200 when HTTP Tunneling", said plainly. */
function proxyRefusal(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const status = /Proxy response \((\d+)\)/.exec(e.message)?.[1];
    if (status !== undefined) {
      return `the proxy refused to open a tunnel to it (HTTP ${status}${status === "407" ? ", proxy authentication required" : ""})`;
    }
  }
  return undefined;
}
