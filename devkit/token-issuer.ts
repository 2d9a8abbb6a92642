/**
 * A small but real token server for distribution's `auth.token` mode (the Docker
 * registry v2 Bearer token flow): HTTPS on 127.0.0.1, Basic credentials checked
 * against a fixed user list, JWTs signed with ES256 by node:crypto.
 *
 * How distribution 2.8 trusts these tokens (registry/auth/token/token.go): the JWT
 * header carries either `x5c` (a certificate chain verified against the registry's
 * `rootcertbundle`, the leaf's key then checks the signature) or `kid` (a libtrust
 * fingerprint of a key from that bundle). We use `x5c`: the signing certificate is
 * issued by a signing CA whose certificate is the `rootcertbundle`. ES256 signatures
 * are the raw 64-byte `r || s` (JWS), i.e. `dsaEncoding: "ieee-p1363"`. The claims it
 * checks: `iss` equals `auth.token.issuer`, `aud` equals `auth.token.service`, `exp`
 * and `nbf` (60 s leeway), and `access` grants `[{type, name, actions}]`.
 */
import { startTlsServer } from "./tls-server.ts";
import {
  createPrivateKey,
  randomBytes,
  sign,
  timingSafeEqual,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createCertificateAuthority, issueCertificate, type CertificateAuthority } from "./pki.ts";

export interface TokenUser {
  readonly password: string;
  /** Actions this user may be granted on any repository (default: pull and push). */
  readonly actions?: readonly string[];
}

export interface TokenIssuerOptions {
  /** Folder for the issuer's keys and certificates. */
  readonly dir: string;
  /** CA that issues the issuer's HTTPS serving certificate (clients must trust it). */
  readonly servingCa: CertificateAuthority;
  readonly users: Readonly<Record<string, TokenUser>>;
  /** `auth.token.service` of the registry (the token's audience). */
  readonly service: string;
  /** `auth.token.issuer` of the registry. */
  readonly issuer?: string;
  /** Token lifetime in seconds (default 300). */
  readonly lifetimeSeconds?: number;
}

export interface TokenRequestRecord {
  readonly user: string | undefined;
  readonly scopes: readonly string[];
  readonly status: number;
}

export interface TokenIssuer {
  /** `https://127.0.0.1:<port>/token` */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM file with the CA of the signing certificate: the registry's `rootcertbundle`. */
  readonly rootCertBundle: string;
  /** Every token request so far (user, requested scopes, answer status). */
  readonly requests: readonly TokenRequestRecord[];
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** `repository:ns/img:pull,push` -> access entry (names may not contain ':'; `registry:catalog:*` works). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter((a) => a !== ""),
  };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function basicUser(
  header: string | undefined,
  users: TokenIssuerOptions["users"],
): string | undefined | null {
  if (header === undefined) return undefined;
  const match = /^Basic\s+(\S+)$/i.exec(header);
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  const name = decoded.slice(0, colon);
  const user = users[name];
  return user !== undefined && safeEqual(decoded.slice(colon + 1), user.password) ? name : null;
}

export async function startTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const signingCa = createCertificateAuthority(options.dir, "token-signing-ca");
  const signer = issueCertificate(signingCa, options.dir, "token-signer", {
    commonName: "token-signer",
    usage: "client",
  });
  const serving = issueCertificate(options.servingCa, options.dir, "token-server", {
    commonName: "127.0.0.1",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "server",
  });
  const key: KeyObject = createPrivateKey(readFileSync(signer.keyFile));
  const x5c = new X509Certificate(readFileSync(signer.certFile)).raw.toString("base64");
  const header = base64url(JSON.stringify({ typ: "JWT", alg: "ES256", x5c: [x5c] }));
  const issuer = options.issuer ?? "hubmirror-test-issuer";
  const lifetime = options.lifetimeSeconds ?? 300;
  const requests: TokenRequestRecord[] = [];

  const issue = (user: string, access: Access[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const claims = base64url(
      JSON.stringify({
        iss: issuer,
        sub: user,
        aud: options.service,
        exp: now + lifetime,
        nbf: now - 1,
        iat: now,
        jti: randomBytes(12).toString("hex"),
        access,
      }),
    );
    const signingInput = `${header}.${claims}`;
    const signature = sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" });
    return `${signingInput}.${base64url(signature)}`;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "https://127.0.0.1");
    const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ").filter((x) => x !== ""));
    const reply = (status: number, body: unknown, user?: string): void => {
      requests.push({ user, scopes, status });
      res.writeHead(status, {
        "content-type": "application/json",
        ...(status === 401 && { "www-authenticate": 'Basic realm="token"' }),
      });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" || url.pathname !== "/token") {
      reply(404, { details: "not found" });
      return;
    }
    if (url.searchParams.get("service") !== options.service) {
      reply(400, { details: "unknown service" });
      return;
    }
    const user = basicUser(req.headers.authorization, options.users);
    if (user === undefined || user === null) {
      reply(401, { details: "invalid username or password" });
      return;
    }
    const allowed = new Set(options.users[user]?.actions ?? ["pull", "push"]);
    const access: Access[] = [];
    for (const scope of scopes) {
      const parsed = parseScope(scope);
      if (parsed?.type !== "repository") continue;
      const actions = parsed.actions.filter((a) => allowed.has(a));
      if (actions.length > 0) access.push({ ...parsed, actions });
    }
    const token = issue(user, access);
    reply(
      200,
      { token, access_token: token, expires_in: lifetime, issued_at: new Date().toISOString() },
      user,
    );
  };

  const server = await startTlsServer("token issuer", serving, handle);
  return {
    realm: `https://127.0.0.1:${server.port}/token`,
    service: options.service,
    issuer,
    rootCertBundle: signingCa.certFile,
    requests,
    stop: () => server.stop(),
  };
}
