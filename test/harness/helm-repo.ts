/**
 * A Helm chart repository on 127.0.0.1 (HTTPS, its own CA): `index.yaml` and one chart
 * archive whose only template is a Pod running the given image, which is what oc-mirror's helm
 * collector finds (it renders the chart and reads `{.spec.containers[*].image}`; oc-mirror
 * internal/pkg/helm/local_stored_collector.go getImages). `index.yaml` can be answered late,
 * so that a run stays in helm collection for a while.
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { stringify } from "yaml";
import { tarGz } from "../../devkit/images.ts";
import { createCertificateAuthority, issueCertificate } from "../../devkit/pki.ts";
import { startTlsServer } from "../../devkit/tls-server.ts";

export interface HelmRepoOptions {
  /** The chart's name (also the repository's single entry); version 1.0.0. */
  readonly chart: string;
  /** The image the chart's Pod runs. */
  readonly image: string;
  /** Answer `index.yaml` after this many ms (default at once). */
  readonly indexDelayMs?: number;
}

export interface HelmRepo {
  /** The repository URL (ends without `/`). */
  readonly url: string;
  /** PEM of the CA that issued the server's certificate. */
  readonly caPem: string;
  /** Paths requested so far. */
  readonly requests: readonly string[];
  stop(): Promise<void>;
}

export async function startHelmRepo(dir: string, options: HelmRepoOptions): Promise<HelmRepo> {
  mkdirSync(dir, { recursive: true });
  const ca = createCertificateAuthority(dir, "helm-repo-ca");
  const serving = issueCertificate(ca, dir, "helm-repo", {
    commonName: "127.0.0.1",
    subjectAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    usage: "server",
  });
  const { chart, image } = options;
  const version = "1.0.0";
  const archive = await tarGz({
    [`${chart}/Chart.yaml`]: stringify({ apiVersion: "v2", name: chart, version, type: "application" }),
    [`${chart}/values.yaml`]: stringify({ image }),
    [`${chart}/templates/pod.yaml`]: [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      `  name: ${chart}`,
      "spec:",
      "  containers:",
      "    - name: main",
      "      image: {{ .Values.image }}",
      "",
    ].join("\n"),
  });
  const archivePath = `/charts/${chart}-${version}.tgz`;
  const requests: string[] = [];
  const pending = new Set<NodeJS.Timeout>();
  let base = "";
  const index = () =>
    stringify({
      apiVersion: "v1",
      entries: {
        [chart]: [
          {
            apiVersion: "v2",
            name: chart,
            version,
            type: "application",
            urls: [`${base}${archivePath}`],
            digest: createHash("sha256").update(archive).digest("hex"),
            created: "2026-01-01T00:00:00Z",
          },
        ],
      },
      generated: "2026-01-01T00:00:00Z",
    });
  const server = await startTlsServer("helm-repo", serving, (req, res) => {
    const path = new URL(req.url ?? "/", "https://127.0.0.1").pathname;
    requests.push(path);
    if (req.method !== "GET") {
      res.writeHead(405).end();
    } else if (path === "/charts/index.yaml") {
      const body = index();
      const send = () => {
        res.writeHead(200, { "content-type": "application/x-yaml" }).end(body);
      };
      if (options.indexDelayMs === undefined) {
        send();
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(timer);
        send();
      }, options.indexDelayMs);
      pending.add(timer);
    } else if (path === archivePath) {
      res.writeHead(200, { "content-type": "application/gzip" }).end(archive);
    } else {
      res.writeHead(404).end();
    }
  });
  base = `https://127.0.0.1:${String(server.port)}`;
  return {
    url: `${base}/charts`,
    caPem: ca.pem,
    requests,
    stop: async () => {
      for (const timer of pending) clearTimeout(timer);
      await server.stop();
    },
  };
}
