/**
 * The demo's report of the sample's run: what oc-mirror said, every image of the run's mapping
 * as the target holds it (its digest compared with the source's), and the objects the operator
 * applied, read back from the API server.
 */
import { execFileSync } from "node:child_process";
import {
  CoreV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { KINDS, PULL_SECRET } from "../../src/apply/kinds.ts";
import { destinationEntries } from "../../src/ocmirror/mapping.ts";
import { stripAnsi } from "../../src/ocmirror/progress.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { parseReference } from "../../src/registry/reference.ts";
import { readResultConfigMap } from "../../src/report/result.ts";
import { kubectlBinary } from "../../devkit/binaries.ts";
import { errorText, safeJson } from "../../devkit/kube-errors.ts";
import type { TestRegistry } from "../../devkit/registry.ts";
import { registryPath } from "../../devkit/stack.ts";
import type { OfflineUpstream } from "../../devkit/upstream.ts";
import { NAMESPACE, say } from "./common.ts";
import { INPUTS } from "./demo-sample.ts";
import type { MirrorJobLike } from "./demo-status.ts";

/** `repo:sha256-<64 hex>` as `repo:sha256-<12 hex>...` (only for display; comparisons use the whole). */
const shortTag = (path: string) => path.replace(/:sha256-([0-9a-f]{12})[0-9a-f]{52}$/, ":sha256-$1...");

const shortDigest = (digest: string | undefined) =>
  digest === undefined ? "(missing)" : digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, "$1");

function registryClient(registry: { host: string; username: string; password: string; caPem: string }) {
  return new RegistryClient({
    registry: registry.host,
    credentials: { username: registry.username, password: registry.password },
    caBundle: registry.caPem,
    timeoutMs: 10_000,
    retries: 1,
  });
}

/**
 * Every image of the run's mapping (oc-mirror's dry run, kept in the run's result ConfigMap) as
 * the target registry holds it, its digest compared with the source's. True if every image is
 * there and every comparable digest is the source's.
 */
export async function showMirrored(
  kc: KubeConfig,
  mj: MirrorJobLike,
  up: OfflineUpstream,
  target: TestRegistry,
): Promise<boolean> {
  const jobName = mj.status?.lastRun?.jobName;
  if (jobName === undefined) {
    say("no finished run to show");
    return false;
  }
  let cm;
  try {
    cm = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace: NAMESPACE, name: `${jobName}-result` });
  } catch (err) {
    say(`cannot read the run's result ConfigMap ${NAMESPACE}/${jobName}-result: ${errorText(err)}`);
    return false;
  }
  const result = readResultConfigMap(cm);
  const entries = destinationEntries(result.mapping, `${target.host}/mirror`).sort((a, b) =>
    a.destination.localeCompare(b.destination),
  );
  if (entries.length === 0) {
    say(`the run's mapping names no image in ${target.host}/mirror ${result.problems.join("; ")}`);
    return false;
  }
  const [src, dst] = [registryClient(up.source), registryClient(target)];
  const rows: [string, string, string][] = [];
  let ok = true;
  let compared = 0;
  try {
    for (const entry of entries) {
      const ref = parseReference(entry.destination);
      const found = await dst.headManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
      const digest = found?.digest;
      let note: string;
      let want: string | undefined;
      if (entry.sourceDigest !== undefined) {
        want = entry.sourceDigest;
        note = "source by digest";
      } else if (entry.source.startsWith(`${up.source.host}/`)) {
        const s = parseReference(entry.source);
        want = (await src.headManifest(s.repository, s.digest ?? s.tag ?? "latest"))?.digest;
        note = "source by tag";
      } else if (entry.source.endsWith("/graph-preparation")) {
        want = up.release.graphImage.digest;
        note = "the upstream's graph data image";
      } else {
        note = `rebuilt by oc-mirror (the catalog filtered to the sample's packages)`;
      }
      if (digest === undefined) {
        ok = false;
        rows.push([shortTag(registryPath(entry.destination, target.host)), "MISSING", note]);
        continue;
      }
      let verdict = note;
      if (want !== undefined) {
        compared++;
        if (want === digest) verdict = `= ${note}`;
        else {
          ok = false;
          verdict = `DIFFERS from the ${note}: ${want}`;
        }
      }
      rows.push([shortTag(registryPath(entry.destination, target.host)), shortDigest(digest), verdict]);
    }
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
  const width = Math.max(...rows.map((r) => r[0].length));
  say(
    `the target registry ${target.host} holds (every image of the run's mapping, digests read from both registries):`,
  );
  for (const [path, digest, verdict] of rows)
    say(`  ${path.padEnd(width)}  ${digest.padEnd(19)}  ${verdict}`);
  say(
    `  ${rows.filter((r) => r[1] !== "MISSING").length} of ${rows.length} images present; ` +
      `${compared} compared with the source: ${ok ? "all the source's digests" : "NOT all the source's digests"}`,
  );
  const counted = Object.values(mj.status?.lastRun?.images ?? {}).reduce((n, c) => n + (c?.total ?? 0), 0);
  if (counted > rows.length) {
    say(
      `  (oc-mirror counted ${counted} copies: ${counted - rows.length} of them into its own cache, ` +
        "the catalog it rebuilds from there)",
    );
  }
  return ok;
}

/** The message of an oc-mirror log line (`2026/11/27 10:03:34  [INFO]   : <message>`). */
const ocMirrorMessage = (line: string) =>
  stripAnsi(line)
    .replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\s+\[\w+\]\s+:\s?/, "")
    .trimEnd();

/**
 * What oc-mirror itself said in the mirror pass of the run (the reporter echoes oc-mirror's
 * output: `kubectl logs -c reporter`; the pod runner keeps each container's output in a file):
 * its version, the number of images, its Results and the files it generated.
 */
export function showOcMirrorOutput(log: { where: string; text: string } | undefined, jobName: string): void {
  if (log === undefined) {
    say(`(no reporter log of Job ${jobName})`);
    return;
  }
  const all = log.text.split("\n").map(ocMirrorMessage);
  // The wrapper runs oc-mirror twice (a dry run, then the mirror pass): the last greeting starts the mirror pass.
  const start = all.findLastIndex((m) => m.startsWith("👋 Hello"));
  const pass = all.slice(Math.max(start, 0));
  const copies = pass.filter((m) => m.startsWith("Success copying ")).length;
  const firstCopy = pass.findIndex((m) => m.startsWith("Success copying "));
  const kept = pass.flatMap((m, i) => {
    if (/environment version|images to copy|^=== Results ===|^[✓✗] |^mirror time/.test(m.trimStart()))
      return [m];
    if (i === firstCopy) return [`(${copies} lines "Success copying <source> ➡️ <target or its cache>")`];
    if (/^📄 Generating .* file\.\.\.$|^📄 Generating Signature Configmap/.test(m)) return [m];
    return [];
  });
  say(`oc-mirror's own output, mirror pass (kubectl logs -c reporter; here ${log.where}):`);
  for (const m of kept) say(`  ${m}`);
}

type Obj = KubernetesObject & {
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
};

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
const asRecord = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
const asString = (v: unknown): string => (typeof v === "string" ? v : "");

/** What an applied object says, in a line (and sub-lines for mirror sets). */
function objectSummary(obj: Obj): string[] {
  const spec = asRecord(obj.spec);
  const mirrors = (list: unknown) =>
    asArray(list).map((m) => {
      const r = asRecord(m);
      return `${asString(r.source)} -> ${asArray(r.mirrors).map(asString).join(", ")}`;
    });
  switch (obj.kind) {
    case "ImageDigestMirrorSet":
      return mirrors(spec.imageDigestMirrors);
    case "ImageTagMirrorSet":
      return mirrors(spec.imageTagMirrors);
    case "CatalogSource":
      return [`image ${asString(spec.image)} (${asString(spec.sourceType) || "?"})`];
    case "ClusterCatalog":
      return [`image ${asString(asRecord(asRecord(asRecord(spec.source).image)).ref)}`];
    case "UpdateService":
      return [`releases ${asString(spec.releases)}`, `graphDataImage ${asString(spec.graphDataImage)}`];
    case "ConfigMap": {
      const keys = [...Object.keys(obj.binaryData ?? {}), ...Object.keys(obj.data ?? {})];
      const short = keys.map((k) => k.replace(/^(sha256-[0-9a-f]{12})[0-9a-f]{52}/, "$1..."));
      return [`${keys.length} release signatures: ${short.join(", ")}`];
    }
    default:
      return [];
  }
}

/**
 * The objects the operator applied (status.appliedResources), read back from the API server,
 * and the pull secret's entry for the target (never its credentials). True if the generated
 * kinds are all there and the pull secret has the sample's entry.
 */
export async function showApplied(kc: KubeConfig, mj: MirrorJobLike, target: TestRegistry): Promise<boolean> {
  const applied = mj.status?.appliedResources ?? [];
  const api = KubernetesObjectApi.makeApiClient(kc);
  const apiVersionOf = (kind: string) => KINDS.find((k) => k.kind === kind)?.apiVersion ?? "v1";
  const rows: { kind: string; namespace: string; name: string; lines: string[] }[] = [];
  let ok = mj.status?.conditions?.some((c) => c.type === "Applied" && c.status === "True") === true;
  for (const r of applied) {
    if (r.kind === "Secret") continue; // the pull secret, below
    let lines: string[];
    try {
      const obj = await api.read<Obj>({
        apiVersion: apiVersionOf(r.kind),
        kind: r.kind,
        metadata: { name: r.name, ...(r.namespace !== undefined && { namespace: r.namespace }) },
      });
      lines = objectSummary(obj);
    } catch (err) {
      ok = false;
      lines = [`NOT FOUND: ${errorText(err)}`];
    }
    rows.push({ kind: r.kind, namespace: r.namespace ?? "", name: r.name, lines });
  }
  const generated = [
    "ImageDigestMirrorSet",
    "ImageTagMirrorSet",
    "CatalogSource",
    "ClusterCatalog",
    "UpdateService",
    "ConfigMap",
  ];
  const missingKinds = generated.filter((k) => !rows.some((r) => r.kind === k));
  if (missingKinds.length > 0) ok = false;

  // The pull secret: which registries it has entries for, and whether the target's is the
  // sample's pull Secret's (compared here, never printed).
  const core = kc.makeApiClient(CoreV1Api);
  const auths = async (namespace: string, name: string): Promise<Record<string, unknown>> => {
    const secret = await core.readNamespacedSecret({ namespace, name });
    const text = Buffer.from(secret.data?.[".dockerconfigjson"] ?? "", "base64").toString("utf8");
    return asRecord(asRecord(safeJson(text)).auths);
  };
  let pullSecretLine: string;
  try {
    const [cluster, sample] = await Promise.all([
      auths(PULL_SECRET.namespace, PULL_SECRET.name),
      auths(NAMESPACE, INPUTS.pull),
    ]);
    const entry = cluster[target.host];
    const same = entry !== undefined && JSON.stringify(entry) === JSON.stringify(sample[target.host]);
    if (!same) ok = false;
    const others = Object.keys(cluster).filter((host) => host !== target.host);
    pullSecretLine =
      `auths ${target.host}: ` +
      (entry === undefined
        ? "MISSING"
        : same
          ? `the credentials of Secret ${NAMESPACE}/${INPUTS.pull} (not shown)`
          : `NOT the credentials of Secret ${NAMESPACE}/${INPUTS.pull}`) +
      (others.length > 0 ? `; also ${others.join(", ")}` : "");
  } catch (err) {
    ok = false;
    pullSecretLine = `cannot read: ${errorText(err)}`;
  }
  rows.push({
    kind: "Secret",
    namespace: PULL_SECRET.namespace,
    name: PULL_SECRET.name,
    lines: [pullSecretLine],
  });

  const condition = mj.status?.conditions?.find((c) => c.type === "Applied");
  say(
    `the objects oc-mirror generated, applied by the operator (status.appliedResources, read back from the API server)` +
      // The message's first part (the list of changes that follows is the table below).
      (condition !== undefined
        ? `; Applied=${condition.status}: ${condition.message.replace(/ \(.*$/s, "")}`
        : "") +
      ":",
  );
  const kindWidth = Math.max(4, ...rows.map((r) => r.kind.length));
  const nsWidth = Math.max(9, ...rows.map((r) => r.namespace.length));
  const nameWidth = Math.max(4, ...rows.map((r) => r.name.length));
  say(`  ${"KIND".padEnd(kindWidth)}  ${"NAMESPACE".padEnd(nsWidth)}  ${"NAME".padEnd(nameWidth)}  CONTENT`);
  for (const row of rows) {
    const [first = "", ...rest] = row.lines;
    say(
      `  ${row.kind.padEnd(kindWidth)}  ${row.namespace.padEnd(nsWidth)}  ${row.name.padEnd(nameWidth)}  ${first}`,
    );
    for (const line of rest) say(`  ${"".padEnd(kindWidth + nsWidth + nameWidth + 4)}  ${line}`);
  }
  if (missingKinds.length > 0) say(`  NOT APPLIED: ${missingKinds.join(", ")}`);
  return ok;
}

export function kubectlGet(kubeconfig: string): string {
  try {
    return execFileSync(kubectlBinary(), ["--kubeconfig", kubeconfig, "get", "mirrorjobs", "-A"], {
      encoding: "utf8",
      timeout: 30_000,
    });
  } catch (err) {
    return `(kubectl get mirrorjobs failed: ${errorText(err)})\n`;
  }
}
