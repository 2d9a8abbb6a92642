/**
 * A real container registry for tests: Debian's `docker-registry` (distribution 2.8)
 * over TLS with its own CA on a free loopback port (or a free port of another local address,
 * `listenAddress`, which its certificate then names), authenticating either with
 * htpasswd (bcrypt, checked on every request) or with Bearer tokens from a token
 * issuer it trusts (`auth.token`: realm, service, issuer, rootcertbundle; see
 * token-issuer.ts).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { createCertificateAuthority, issueCertificate } from "./pki.ts";
import { freePort } from "./ports.ts";
import { startProcess, waitFor } from "./processes.ts";
import { startTokenIssuer, type TokenIssuer } from "./token-issuer.ts";

export type RegistryAuth = "htpasswd" | "token";

export interface RegistryOptions {
  /** How the registry authenticates clients (default htpasswd). */
  readonly auth?: RegistryAuth;
  /** Extra users besides the main one; token mode may restrict their actions (e.g. pull only). */
  readonly extraUsers?: Readonly<Record<string, { password: string; actions?: readonly string[] }>>;
  /** htpasswd bcrypt cost (htpasswd -C, 4..17; default htpasswd's own, 5). */
  readonly bcryptCost?: number;
  /** Token mode: how tokens name their signing key (default kid; see token-issuer.ts). */
  readonly tokenKeyHeader?: "kid" | "x5c";
  /** distribution log level (default warn). */
  readonly logLevel?: "error" | "warn" | "info" | "debug";
  /**
   * The local IPv4 address to listen on and to be named by (default 127.0.0.1), e.g. the
   * host's end of a real node's host link (node.ts), so that pods reach it by that name.
   */
  readonly listenAddress?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>` (`<listenAddress>:<port>`) */
  readonly host: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly username: string;
  readonly password: string;
  /** A dockerconfigjson file (mode 0600) with the registry's credentials, for skopeo/oc-mirror. */
  readonly authFile: string;
  readonly auth: RegistryAuth;
  /** The token issuer (token mode only). */
  readonly tokenIssuer?: TokenIssuer;
  /** The registry's log file. */
  readonly logFile: string;
  /** Process id of the registry (for CPU accounting in benchmarks). */
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startRegistry(
  dir: string,
  name = "registry",
  options: RegistryOptions = {},
): Promise<TestRegistry> {
  mkdirSync(dir, { recursive: true });
  const mode = options.auth ?? "htpasswd";
  const address = options.listenAddress ?? "127.0.0.1";
  const ca = createCertificateAuthority(dir, `${name}-ca`);
  const serving = issueCertificate(ca, dir, name, {
    commonName: address,
    subjectAltNames: address === "127.0.0.1" ? ["IP:127.0.0.1", "DNS:localhost"] : [`IP:${address}`],
    usage: "server",
  });
  const username = "mirror";
  const password = randomBytes(18).toString("base64url");
  const users = { ...options.extraUsers, [username]: { password } };
  const port = await freePort(address);
  const host = `${address}:${port}`;

  let tokenIssuer: TokenIssuer | undefined;
  let auth: Record<string, unknown>;
  if (mode === "token") {
    // The token issuer listens on 127.0.0.1 only.
    if (address !== "127.0.0.1") throw new Error(`${name}: token auth needs listenAddress 127.0.0.1`);
    tokenIssuer = await startTokenIssuer({
      dir,
      servingCa: ca,
      users,
      service: `${name}-service`,
      issuer: `${name}-token-issuer`,
      ...(options.tokenKeyHeader !== undefined && { keyHeader: options.tokenKeyHeader }),
    });
    auth = {
      token: {
        realm: tokenIssuer.realm,
        service: tokenIssuer.service,
        issuer: tokenIssuer.issuer,
        rootcertbundle: tokenIssuer.rootCertBundle,
      },
    };
  } else {
    const htpasswdFile = join(dir, "htpasswd");
    const cost = options.bcryptCost !== undefined ? ["-C", String(options.bcryptCost)] : [];
    writeFileSync(
      htpasswdFile,
      Object.entries(users)
        .map(([user, u]) =>
          execFileSync("htpasswd", ["-Bbn", ...cost, user, u.password])
            .toString()
            .trim(),
        )
        .join("\n") + "\n",
    );
    auth = { htpasswd: { realm: `${name}-realm`, path: htpasswdFile } };
  }

  const configFile = join(dir, "config.yml");
  writeFileSync(
    configFile,
    stringify({
      version: 0.1,
      log: { level: options.logLevel ?? "warn", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: {
        addr: host,
        secret: randomBytes(16).toString("hex"),
        tls: { certificate: serving.certFile, key: serving.keyFile },
      },
      auth,
    }),
  );
  const logFile = join(dir, `${name}.log`);
  const proc = startProcess({ name, command: "docker-registry", args: ["serve", configFile], logFile });
  const agent = new Agent({ connect: { ca: ca.pem } });
  try {
    await waitFor(
      `${name} /v2/`,
      async () => {
        const res = await request(`https://${host}/v2/`, { dispatcher: agent, headersTimeout: 2_000 });
        await res.body.dump();
        return res.statusCode === 401 ? true : undefined;
      },
      { timeoutMs: 30_000, process: proc },
    );
  } catch (err) {
    await proc.stop();
    await tokenIssuer?.stop();
    throw err;
  } finally {
    await agent.close();
  }
  const authFile = join(dir, "auth.json");
  const encoded = Buffer.from(`${username}:${password}`).toString("base64");
  writeFileSync(authFile, JSON.stringify({ auths: { [host]: { auth: encoded } } }), { mode: 0o600 });
  return {
    host,
    caFile: ca.certFile,
    caPem: ca.pem,
    username,
    password,
    authFile,
    auth: mode,
    ...(tokenIssuer !== undefined && { tokenIssuer }),
    logFile,
    pid: proc.pid,
    stop: async () => {
      await proc.stop();
      await tokenIssuer?.stop();
    },
  };
}
