/**
 * Scrapes a Prometheus text-format endpoint over HTTP and parses it, so e2e tests read the
 * operator's /metrics the way Prometheus does.
 */
import { request } from "undici";

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Scrape {
  readonly text: string;
  readonly contentType: string;
  readonly samples: readonly PromSample[];
  /** `# TYPE` of each family. */
  readonly types: ReadonlyMap<string, string>;
  /** `# HELP` of each family. */
  readonly help: ReadonlyMap<string, string>;
  /** Samples of `name` whose labels include `labels`. */
  find(name: string, labels?: Record<string, string>): PromSample[];
  /** The one sample of `name` with `labels`; throws if there is not exactly one. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c));
}

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

export function parsePrometheusText(text: string, contentType = ""): Scrape {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      (meta[1] === "TYPE" ? types : help).set(meta[2] ?? "", meta[3] ?? "");
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1] ?? ""] = unescape(l[2] ?? "");
    samples.push({ name: m[1] ?? "", labels, value: parseValue(m[3] ?? "") });
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    text,
    contentType,
    samples,
    types,
    help,
    find,
    value(name, labels = {}) {
      const found = find(name, labels);
      if (found.length !== 1) {
        throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
      }
      return found[0]?.value ?? NaN;
    },
  };
}

/** GET http://127.0.0.1:<port>/metrics, parsed. */
export async function scrapeMetrics(port: number): Promise<Scrape> {
  const res = await request(`http://127.0.0.1:${port}/metrics`, {
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${text}`);
  return parsePrometheusText(text, String(res.headers["content-type"] ?? ""));
}
