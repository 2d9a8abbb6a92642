/**
 * A real offline "internet" on 127.0.0.1 (or another local address: `listenAddress`) for
 * oc-mirror: everything it fetches when it mirrors a release channel with its update graph, an
 * operator catalog and additional images, with TLS and authentication everywhere, started with
 * one call and stopped with one call:
 *
 * - a source registry (startRegistry: TLS with its own CA, htpasswd; pulls need credentials) holding
 *   release payloads and components (upstream-release.ts), a file-based operator catalog with its
 *   bundles and related images (upstream-catalog.ts), a graph-data image and additional images
 *   (a multi-arch index, an image referenced by digest, a tag-only image);
 * - an HTTPS server (its own CA) answering the Cincinnati update graph at `graphUrl`
 *   (UPDATE_URL_OVERRIDE) and release signatures at `signatureUrl` (OCP_SIGNATURE_URL, with its
 *   trailing slash), signed with a test GPG key made at start (OCP_SIGNATURE_VERIFICATION_PK).
 *
 * oc-mirror trusts the two CAs through SSL_CERT_DIR (Go's system pool: the update graph and
 * signature clients use it, and containers/image uses it for registries without a certs.d entry).
 * See docs/oc-mirror-offline.md for the facts behind each piece.
 */
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { RegistryClient } from "../src/registry/client.ts";
import { createSigningKey } from "./gpg.ts";
import { buildImage, pushImage, writeOciLayout } from "./images.ts";
import { createCertificateAuthority, issueCertificate } from "./pki.ts";
import { startRegistry, type TestRegistry } from "./registry.ts";
import { startTlsServer } from "./tls-server.ts";
import { pushOperatorCatalog, type OperatorCatalog } from "./upstream-catalog.ts";
import { imageSetConfig, type ImageSetConfiguration, type ImageSetParts } from "./upstream-isc.ts";
import {
  hex,
  pushReleaseStream,
  signReleases,
  type ReleaseStream,
  type ReleaseVersion,
} from "./upstream-release.ts";

export const GRAPH_PATH = "/api/upgrades_info/v1/graph";
export const SIGNATURE_PATH = "/pub/openshift-v4/signatures/openshift/release/";
const SIGNATURE_REQUEST = new RegExp(`^${SIGNATURE_PATH}sha256=([0-9a-f]{64})/signature-1$`);

interface Reply {
  readonly status: number;
  readonly type: string;
  readonly body: string | Buffer;
}

export interface AdditionalImage {
  /** What an ImageSetConfiguration names. */
  readonly reference: string;
  /** Digest of what the reference points at (the index for a multi-arch image). */
  readonly digest: string;
}

export interface UpstreamImages {
  /** `<source>/demo/toolbox:1.0`: an OCI index of linux/amd64 and linux/arm64. */
  readonly multiArch: AdditionalImage;
  /** `<source>/demo/pause@sha256:...` (also tagged 3.10 in the source). */
  readonly digestPinned: AdditionalImage;
  /** `<source>/demo/busybox:stable` */
  readonly tagOnly: AdditionalImage;
  /** `<source>/demo/missing:1.0`: never pushed. */
  readonly missing: { readonly reference: string };
}

/** The request a server answered (path and query; no headers, so no secrets). */
export interface UpstreamRequest {
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export interface OfflineUpstream {
  readonly dir: string;
  /** The source registry (TLS + htpasswd; host, caFile, authFile, username, password). */
  readonly source: TestRegistry;
  /** Base URL of the update-graph and signature server. */
  readonly httpsUrl: string;
  /** CA of the update-graph and signature server. */
  readonly httpsCaFile: string;
  /** What UPDATE_URL_OVERRIDE takes. */
  readonly graphUrl: string;
  /** What OCP_SIGNATURE_URL takes (ends with `/`). */
  readonly signatureUrl: string;
  /** Armored public key of the key that signs the releases (OCP_SIGNATURE_VERIFICATION_PK). */
  readonly publicKeyFile: string;
  /** Every CA the upstream's servers use (source registry, update-graph server). */
  readonly caFiles: readonly string[];
  /** A folder holding those CAs, for SSL_CERT_DIR (add the target registry's CA beside them). */
  readonly certDir: string;
  /** Environment oc-mirror needs for the upstream (not HOME, TMPDIR, SSL_CERT_DIR: see test/harness/ocmirror-run.ts). */
  readonly env: Readonly<Record<string, string>>;
  readonly release: ReleaseStream;
  readonly catalog: OperatorCatalog;
  readonly images: UpstreamImages;
  /** An ImageSetConfiguration of the upstream's content (see upstream-isc.ts for the parts). */
  imageSetConfig(parts: ImageSetParts): ImageSetConfiguration;
  /** Requests answered by the update-graph and signature server, oldest first. */
  requests(): readonly UpstreamRequest[];
  /**
   * From now on, serve the signature of `version` signed by another key (oc-mirror then fails
   * the release collection: exit 2). `restoreSignatures()` undoes it.
   */
  breakSignature(version: string): void;
  restoreSignatures(): void;
  /**
   * Writes the graph-data image as an OCI layout into `<workspace>/working-dir/graph-preparation/`,
   * where oc-mirror looks for it when UPDATE_URL_OVERRIDE is set and its cache has no
   * `openshift/graph-image:latest` (internal/pkg/release/local_stored_collector.go handleGraphImage).
   */
  seedGraphImage(workspaceDir: string): void;
  stop(): Promise<void>;
}

/**
 * What a test needs of an upstream started elsewhere (the global setup's), as plain data:
 * where it is, how to authenticate, and its content.
 */
export interface UpstreamInfo {
  readonly source: {
    readonly host: string;
    readonly username: string;
    readonly password: string;
    readonly caPem: string;
  };
  /** PEM of the update-graph and signature server's CA. */
  readonly httpsCaPem: string;
  readonly graphUrl: string;
  readonly signatureUrl: string;
  /** The armored public key that verifies the release signatures. */
  readonly publicKey: string;
  readonly content: UpstreamContent;
}

/** The upstream's content, as imageSetConfig reads it. */
export interface UpstreamContent {
  readonly release: {
    readonly channel: string;
    readonly versions: readonly Pick<ReleaseVersion, "version" | "tag" | "reference" | "digest">[];
    readonly graphImageReference: string;
  };
  readonly catalog: Pick<OperatorCatalog, "reference" | "digest">;
  readonly images: UpstreamImages;
}

export function upstreamInfo(upstream: OfflineUpstream): UpstreamInfo {
  return {
    source: {
      host: upstream.source.host,
      username: upstream.source.username,
      password: upstream.source.password,
      caPem: upstream.source.caPem,
    },
    httpsCaPem: readFileSync(upstream.httpsCaFile, "utf8"),
    graphUrl: upstream.graphUrl,
    signatureUrl: upstream.signatureUrl,
    publicKey: readFileSync(upstream.publicKeyFile, "utf8"),
    content: {
      release: {
        channel: upstream.release.channel,
        versions: upstream.release.versions.map(({ version, tag, reference, digest }) => ({
          version,
          tag,
          reference,
          digest,
        })),
        graphImageReference: upstream.release.graphImageReference,
      },
      catalog: { reference: upstream.catalog.reference, digest: upstream.catalog.digest },
      images: upstream.images,
    },
  };
}

export interface UpstreamOptions {
  /** OCP channel served by the update graph (default stable-4.19). */
  readonly channel?: string;
  /** Versions in the channel, oldest first (default 4.19.1, 4.19.2, 4.19.3). */
  readonly versions?: readonly string[];
  /**
   * The local IPv4 address both servers listen on and are named by (default 127.0.0.1): every
   * reference in the content (release image-references, catalog bundles, the update graph's
   * payloads, signatures) names it. A real node's pods reach the host's end of its host link
   * (node.ts), not the host's 127.0.0.1.
   */
  readonly listenAddress?: string;
}

/** Starts the offline upstream in `dir` (created) and fills it. */
export async function startUpstream(dir: string, options: UpstreamOptions = {}): Promise<OfflineUpstream> {
  mkdirSync(dir, { recursive: true });
  const channel = options.channel ?? "stable-4.19";
  const versionList = options.versions ?? ["4.19.1", "4.19.2", "4.19.3"];
  const address = options.listenAddress ?? "127.0.0.1";
  const source = await startRegistry(join(dir, "source"), "source", { listenAddress: address });
  const stops: (() => Promise<void>)[] = [() => source.stop()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const client = new RegistryClient({
      registry: source.host,
      credentials: { username: source.username, password: source.password },
      caBundle: source.caPem,
      timeoutMs: 10_000,
    });
    let release: ReleaseStream;
    let catalog: OperatorCatalog;
    let images: UpstreamImages;
    try {
      release = await pushReleaseStream(client, { channel, versions: versionList });
      catalog = await pushOperatorCatalog(client);
      images = await pushAdditionalImages(client);
    } finally {
      await client.close();
    }

    // Sign every release with the trusted key, and once more with an untrusted one (for
    // breakSignature), then stop both keys' gpg-agents: nothing is signed later.
    const gpgDir = join(dir, "gpg");
    mkdirSync(gpgDir, { recursive: true, mode: 0o700 });
    const trusted = createSigningKey(gpgDir, "release-signer");
    const untrusted = createSigningKey(gpgDir, "untrusted-signer");
    let good: Map<string, Buffer>;
    let bad: Map<string, Buffer>;
    try {
      good = signReleases(release, trusted);
      bad = signReleases(release, untrusted);
    } finally {
      trusted.close();
      untrusted.close();
    }
    const broken = new Set<string>();

    const pki = join(dir, "https");
    mkdirSync(pki, { recursive: true });
    const ca = createCertificateAuthority(pki, "upstream-https-ca");
    const serving = issueCertificate(ca, pki, "upstream-https", {
      commonName: address,
      subjectAltNames: address === "127.0.0.1" ? ["IP:127.0.0.1", "DNS:localhost"] : [`IP:${address}`],
      usage: "server",
    });
    const log: UpstreamRequest[] = [];
    const answer = (method: string | undefined, url: URL): Reply => {
      if (method !== "GET") return { status: 405, type: "text/plain", body: "method not allowed\n" };
      if (url.pathname === GRAPH_PATH) {
        const ch = url.searchParams.get("channel");
        if (ch === null || ch === "") {
          return { status: 400, type: "application/json", body: '{"kind":"missing_params"}\n' };
        }
        const arch = url.searchParams.get("arch") ?? "amd64";
        const graph = ch === channel && arch === "amd64" ? release.graph : { nodes: [], edges: [] };
        return { status: 200, type: "application/json", body: JSON.stringify(graph) };
      }
      const digestHex = SIGNATURE_REQUEST.exec(url.pathname)?.[1];
      const signature =
        digestHex === undefined ? undefined : (broken.has(digestHex) ? bad : good).get(digestHex);
      if (signature !== undefined) return { status: 200, type: "application/octet-stream", body: signature };
      return { status: 404, type: "text/plain", body: "not found\n" };
    };
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? "/", "https://upstream.invalid");
      const reply = answer(req.method, url);
      log.push({ path: url.pathname, query: Object.fromEntries(url.searchParams), status: reply.status });
      res.writeHead(reply.status, {
        "content-type": reply.type,
        "content-length": Buffer.byteLength(reply.body),
      });
      res.end(reply.body);
    };
    const server = await startTlsServer("upstream-https", serving, handle, address);
    stops.push(() => server.stop());
    const httpsUrl = `https://${address}:${server.port}`;

    const certDir = join(dir, "certs");
    mkdirSync(certDir, { recursive: true });
    copyFileSync(source.caFile, join(certDir, "source-ca.crt"));
    copyFileSync(ca.certFile, join(certDir, "upstream-https-ca.crt"));

    const graphUrl = `${httpsUrl}${GRAPH_PATH}`;
    const signatureUrl = `${httpsUrl}${SIGNATURE_PATH}`;
    return {
      dir,
      source,
      httpsUrl,
      httpsCaFile: ca.certFile,
      graphUrl,
      signatureUrl,
      publicKeyFile: trusted.publicKeyFile,
      caFiles: [source.caFile, ca.certFile],
      certDir,
      env: {
        UPDATE_URL_OVERRIDE: graphUrl,
        OCP_SIGNATURE_URL: signatureUrl,
        OCP_SIGNATURE_VERIFICATION_PK: trusted.publicKeyFile,
      },
      release,
      catalog,
      images,
      imageSetConfig: (parts) => imageSetConfig({ release, catalog, images }, parts),
      requests: () => [...log],
      breakSignature: (version) => {
        const v = release.versions.find((r) => r.version === version);
        if (v === undefined) throw new Error(`no release ${version} in the upstream`);
        broken.add(hex(v.digest));
      },
      restoreSignatures: () => {
        broken.clear();
      },
      seedGraphImage: (workspaceDir) => {
        writeOciLayout(join(workspaceDir, "working-dir", "graph-preparation"), release.graphImage);
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function pushAdditionalImages(client: RegistryClient): Promise<UpstreamImages> {
  const host = client.registry;
  const toolbox = await buildImage({
    name: "toolbox 1.0",
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ],
  });
  await pushImage(client, "demo/toolbox", "1.0", toolbox);
  const pause = await buildImage({ name: "pause 3.10" });
  await pushImage(client, "demo/pause", "3.10", pause);
  const busybox = await buildImage({ name: "busybox stable" });
  await pushImage(client, "demo/busybox", "stable", busybox);
  return {
    multiArch: { reference: `${host}/demo/toolbox:1.0`, digest: toolbox.digest },
    digestPinned: { reference: `${host}/demo/pause@${pause.digest}`, digest: pause.digest },
    tagOnly: { reference: `${host}/demo/busybox:stable`, digest: busybox.digest },
    missing: { reference: `${host}/demo/missing:1.0` },
  };
}
