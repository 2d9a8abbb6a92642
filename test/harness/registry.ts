/**
 * A real container registry for tests: Debian's `docker-registry` (distribution 2.8)
 * over TLS with its own CA and htpasswd (bcrypt) authentication, on a free loopback port.
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

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  readonly host: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly username: string;
  readonly password: string;
  /** A dockerconfigjson file (mode 0600) with the registry's credentials, for skopeo/oc-mirror. */
  readonly authFile: string;
  stop(): Promise<void>;
}

export async function startRegistry(dir: string, name = "registry"): Promise<TestRegistry> {
  mkdirSync(dir, { recursive: true });
  const ca = createCertificateAuthority(dir, `${name}-ca`);
  const serving = issueCertificate(ca, dir, name, {
    commonName: "127.0.0.1",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "server",
  });
  const username = "mirror";
  const password = randomBytes(18).toString("base64url");
  const htpasswdFile = join(dir, "htpasswd");
  writeFileSync(htpasswdFile, execFileSync("htpasswd", ["-Bbn", username, password]));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const configFile = join(dir, "config.yml");
  writeFileSync(
    configFile,
    stringify({
      version: 0.1,
      log: { level: "warn", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: {
        addr: host,
        secret: randomBytes(16).toString("hex"),
        tls: { certificate: serving.certFile, key: serving.keyFile },
      },
      auth: { htpasswd: { realm: `${name}-realm`, path: htpasswdFile } },
    }),
  );
  const proc = startProcess({
    name,
    command: "docker-registry",
    args: ["serve", configFile],
    logFile: join(dir, `${name}.log`),
  });
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
    throw err;
  } finally {
    await agent.close();
  }
  const authFile = join(dir, "auth.json");
  const auth = Buffer.from(`${username}:${password}`).toString("base64");
  writeFileSync(authFile, JSON.stringify({ auths: { [host]: { auth } } }), { mode: 0o600 });
  return { host, caFile: ca.certFile, caPem: ca.pem, username, password, authFile, stop: () => proc.stop() };
}
