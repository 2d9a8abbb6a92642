/**
 * Certificates for the test control plane and registries, made with the openssl CLI
 * (a real, well-kept tool; a Node library would add a dependency for what three
 * commands do). Keys are EC P-256, valid for two days: long enough for any run.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface KeyPair {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface CertificateAuthority extends KeyPair {
  readonly pem: string;
}

export interface CertificateRequest {
  readonly commonName: string;
  /** Organizations (Kubernetes reads them as groups). */
  readonly organizations?: readonly string[];
  /** `IP:127.0.0.1`, `DNS:localhost`, ... */
  readonly subjectAltNames?: readonly string[];
  readonly usage: "server" | "client";
}

function openssl(args: readonly string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function newKey(file: string): void {
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file]);
}

function subject(req: { commonName: string; organizations?: readonly string[] }): string {
  return [...(req.organizations ?? []).map((o) => `/O=${o}`), `/CN=${req.commonName}`].join("");
}

export function createCertificateAuthority(dir: string, name: string): CertificateAuthority {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  newKey(keyFile);
  openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    keyFile,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    "-out",
    certFile,
  ]);
  return { keyFile, certFile, pem: readFileSync(certFile, "utf8") };
}

export function issueCertificate(
  ca: CertificateAuthority,
  dir: string,
  name: string,
  req: CertificateRequest,
): KeyPair {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  newKey(keyFile);
  openssl(["req", "-new", "-key", keyFile, "-subj", subject(req), "-out", csrFile]);
  const extensions = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage=${req.usage === "server" ? "serverAuth" : "clientAuth"}`,
    ...(req.subjectAltNames?.length ? [`subjectAltName=${req.subjectAltNames.join(",")}`] : []),
  ];
  writeFileSync(extFile, `${extensions.join("\n")}\n`);
  openssl([
    "x509",
    "-req",
    "-in",
    csrFile,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    extFile,
    "-out",
    certFile,
  ]);
  return { keyFile, certFile };
}

/** An EC key pair for signing service-account tokens: returns [privateKeyFile, publicKeyFile]. */
export function createSigningKey(dir: string, name: string): [string, string] {
  const keyFile = join(dir, `${name}.key`);
  const pubFile = join(dir, `${name}.pub`);
  newKey(keyFile);
  openssl(["pkey", "-in", keyFile, "-pubout", "-out", pubFile]);
  return [keyFile, pubFile];
}
