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

/** OCI distribution error body: `{"errors":[{"code","message","detail"}]}`. */
export function describeErrorBody(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] };
    const parts = (parsed.errors ?? [])
      .map((e) => [e.code, e.message].filter((x) => typeof x === "string" && x !== "").join(": "))
      .filter((x) => x !== "");
    return parts.length > 0 ? parts.join("; ") : undefined;
  } catch {
    return undefined;
  }
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
};

const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

function errorCode(err: unknown): string | undefined {
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
  const reason = code !== undefined ? NETWORK_CODES[code] : err instanceof Error ? err.message : String(err);
  return new RegistryError(
    "unreachable",
    `registry ${registry} is unreachable for ${operation}: ${reason}`,
    undefined,
    {
      cause: err,
    },
  );
}
