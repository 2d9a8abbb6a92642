/**
 * One measured run of bench/verify.ts, in a child process of its own so that its peak
 * RSS is its own. Reads a JSON job file (path in argv[2], mode 0600: it holds the
 * registry password) and prints one JSON line on stdout.
 *
 * - `verifier`: the operator's code path: RegistryClient + verifyImages over all refs,
 *   including client creation, ping and token requests.
 * - `raw`: the ceiling from a separate Node process: tokens fetched before the clock
 *   starts, then a bare undici Pool sends the same HEAD requests with the same headers
 *   at the same concurrency through undici's handler API (no body streams, nothing
 *   parsed), and checks only the status: the least a Node client can do per check.
 */
import { readFileSync } from "node:fs";
import { Agent, Pool, request } from "undici";
import { RegistryClient } from "../src/registry/client.ts";
import { MANIFEST_ACCEPT } from "../src/registry/media-types.ts";
import { verifyImages, type ExpectedImage } from "../src/registry/verify.ts";

export interface WorkerJob {
  readonly mode: "verifier" | "raw";
  readonly host: string;
  readonly caPem: string;
  readonly username: string;
  readonly password: string;
  readonly refsFile: string;
  readonly concurrency: number;
  /** Client tuning (connections default to the concurrency). */
  readonly connections?: number;
  readonly pipelining?: number;
  readonly allowH2?: boolean;
  /** Raw mode: send every request to the first reference (as `ab` does with its one URL). */
  readonly singleUrl?: boolean;
  /** Token service of a token-auth registry (raw mode fetches tokens itself). */
  readonly token?: { readonly realm: string; readonly service: string };
}

export interface WorkerResult {
  readonly mode: WorkerJob["mode"];
  readonly images: number;
  readonly elapsedMs: number;
  readonly perSecond: number;
  /** RSS after loading the reference list, before measuring (bytes). */
  readonly rssBefore: number;
  /** Peak RSS of the whole process (bytes). */
  readonly maxRss: number;
  /** CPU time of this process during the measurement (ms). */
  readonly cpuMs: number;
  /** Heap in use after the measurement and a full GC (bytes; needs --expose-gc, else NaN). */
  readonly heapAfterGc: number;
  /** Heap in use before the measurement, after a full GC (bytes; NaN without --expose-gc). */
  readonly heapBeforeGc: number;
  readonly ok: boolean;
  readonly summary: string;
}

async function verifier(job: WorkerJob, images: readonly ExpectedImage[]): Promise<[boolean, string]> {
  const client = new RegistryClient({
    registry: job.host,
    credentials: { username: job.username, password: job.password },
    caBundle: job.caPem,
    connections: job.connections ?? job.concurrency,
    pipelining: job.pipelining ?? 1,
    allowH2: job.allowH2 ?? false,
    proxy: {},
  });
  try {
    const r = await verifyImages(images, client, { concurrency: job.concurrency });
    const ok = r.present === images.length;
    return [ok, `present ${r.present}, missing ${r.missing}, mismatched ${r.mismatched}, errors ${r.errors}`];
  } finally {
    await client.close();
  }
}

async function tokens(job: WorkerJob, repositories: readonly string[]): Promise<Map<string, string>> {
  const basic = `Basic ${Buffer.from(`${job.username}:${job.password}`).toString("base64")}`;
  const headers = new Map<string, string>();
  if (job.token === undefined) {
    for (const repo of repositories) headers.set(repo, basic);
    return headers;
  }
  const agent = new Agent({ connect: { ca: job.caPem } });
  try {
    for (const repo of repositories) {
      const url = new URL(job.token.realm);
      url.searchParams.set("service", job.token.service);
      url.searchParams.set("scope", `repository:${repo}:pull`);
      const res = await request(url, { dispatcher: agent, headers: { authorization: basic } });
      const body = (await res.body.json()) as { token?: string };
      if (res.statusCode !== 200 || body.token === undefined)
        throw new Error(`token for ${repo}: ${res.statusCode}`);
      headers.set(repo, `Bearer ${body.token}`);
    }
  } finally {
    await agent.close();
  }
  return headers;
}

/** repository and reference of `host/repo:tag` (the bench only writes tag references). */
function split(destination: string, host: string): [string, string] {
  const rest = destination.slice(host.length + 1);
  const colon = rest.lastIndexOf(":");
  return [rest.slice(0, colon), rest.slice(colon + 1)];
}

async function raw(
  job: WorkerJob,
  images: readonly ExpectedImage[],
  auth: ReadonlyMap<string, string>,
): Promise<[boolean, string]> {
  const pool = new Pool(`https://${job.host}`, {
    connections: job.connections ?? job.concurrency,
    pipelining: job.pipelining ?? 1,
    allowH2: job.allowH2 ?? false,
    connect: { ca: job.caPem },
  });
  let next = 0;
  let ok = 0;
  let other = 0;
  try {
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        for (let i = next++; i < images.length; i = next++) {
          const [repo, ref] = split(images[job.singleUrl === true ? 0 : i]?.destination ?? "", job.host);
          const status = await new Promise<number>((resolve, reject) => {
            let code = 0;
            pool.dispatch(
              {
                method: "HEAD",
                path: `/v2/${repo}/manifests/${ref}`,
                headers: { accept: MANIFEST_ACCEPT, authorization: auth.get(repo) ?? "" },
                reset: false,
              },
              {
                onRequestStart: () => undefined,
                onResponseStart: (_c, statusCode) => {
                  code = statusCode;
                },
                onResponseData: () => undefined,
                onResponseEnd: () => {
                  resolve(code);
                },
                onResponseError: (_c, err) => {
                  reject(err);
                },
              },
            );
          });
          if (status === 200) ok++;
          else other++;
        }
      }),
    );
  } finally {
    await pool.close();
  }
  return [other === 0, `200: ${ok}, other: ${other}`];
}

const job = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as WorkerJob;
const images = JSON.parse(readFileSync(job.refsFile, "utf8")) as ExpectedImage[];
const auth =
  job.mode === "raw"
    ? await tokens(job, [...new Set(images.map((i) => split(i.destination, job.host)[0]))])
    : undefined;
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heapBeforeGc = gc !== undefined ? process.memoryUsage().heapUsed : NaN;
const rssBefore = process.memoryUsage().rss;
const cpuBefore = process.cpuUsage();
const started = performance.now();
const [ok, summary] = auth === undefined ? await verifier(job, images) : await raw(job, images, auth);
const elapsedMs = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
gc?.();
const heapAfterGc = gc !== undefined ? process.memoryUsage().heapUsed : NaN;
const result: WorkerResult = {
  mode: job.mode,
  images: images.length,
  elapsedMs,
  perSecond: images.length / (elapsedMs / 1000),
  rssBefore,
  maxRss: process.resourceUsage().maxRSS * 1024,
  cpuMs: (cpu.user + cpu.system) / 1000,
  heapAfterGc,
  heapBeforeGc,
  ok,
  summary,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
