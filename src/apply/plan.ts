/**
 * What applying a run would change, and whether the change drains nodes. The Machine
 * Config Operator applies a new or extended ImageDigestMirrorSet without draining nodes;
 * a new or extended ImageTagMirrorSet, and removing or changing any existing mirror entry
 * (of either kind, including deleting the whole object), drains every node. Everything
 * else a run applies (catalogs, signatures, the update service) is non-disruptive.
 * The plan's hash names exactly this change, so an approval (`spec.apply.approvedChange`)
 * approves this change and no other.
 */
import { contentHash } from "../util/hash.ts";
import type { DesiredObject } from "./desired.ts";
import type { KindInfo } from "./kinds.ts";

/** An object a MirrorJob applied earlier, as it is on the cluster now. */
export interface LiveObject {
  readonly info: KindInfo;
  readonly name: string;
  readonly namespace?: string;
  readonly object: Readonly<Record<string, unknown>>;
}

export interface Change {
  readonly op: "create" | "update" | "delete";
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly disruptive: boolean;
  readonly detail: string;
  /** Content hash of what is applied ("" for a delete). */
  readonly hash: string;
}

export interface Plan {
  /** Objects to create or update (server-side apply). */
  readonly apply: DesiredObject[];
  /** Objects to delete (applied earlier, no longer generated). */
  readonly prune: LiveObject[];
  /** Objects already as desired. */
  readonly unchanged: DesiredObject[];
  readonly changes: Change[];
  readonly disruptive: boolean;
  /** Names this change; empty when nothing changes. */
  readonly hash: string;
  readonly summary: string;
}

const MAX_SUMMARY = 4096;

/** True if every field of `want` is in `have` with the same value (the server may add defaults). */
export function contains(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  }
  if (want !== null && typeof want === "object") {
    if (have === null || typeof have !== "object" || Array.isArray(have)) return false;
    const h = have as Record<string, unknown>;
    return Object.entries(want).every(([k, v]) => v === undefined || contains(h[k], v));
  }
  return have === want;
}

interface Entry {
  readonly mirrors: readonly string[];
  readonly policy?: string;
}

const MIRROR_FIELDS: Readonly<Record<string, string>> = {
  ImageDigestMirrorSet: "imageDigestMirrors",
  ImageTagMirrorSet: "imageTagMirrors",
};

function entries(kind: string, content: Readonly<Record<string, unknown>> | undefined): Map<string, Entry> {
  const field = MIRROR_FIELDS[kind] ?? "";
  const spec = content?.spec as Record<string, unknown> | undefined;
  const list = (spec?.[field] ?? []) as {
    source?: unknown;
    mirrors?: unknown;
    mirrorSourcePolicy?: unknown;
  }[];
  const map = new Map<string, Entry>();
  for (const e of Array.isArray(list) ? list : []) {
    if (typeof e.source !== "string") continue;
    map.set(e.source, {
      mirrors: Array.isArray(e.mirrors) ? e.mirrors.filter((m): m is string => typeof m === "string") : [],
      ...(typeof e.mirrorSourcePolicy === "string" && { policy: e.mirrorSourcePolicy }),
    });
  }
  return map;
}

function listed(sources: readonly string[]): string {
  const shown = sources.slice(0, 3).join(", ");
  return sources.length > 3 ? `${shown} and ${sources.length - 3} more` : shown;
}

/** Classifies a change of an IDMS/ITMS entry by entry. */
function mirrorSetChange(
  kind: string,
  live: Readonly<Record<string, unknown>> | undefined,
  desired: Readonly<Record<string, unknown>> | undefined,
): { disruptive: boolean; detail: string } {
  const before = entries(kind, live);
  const after = entries(kind, desired);
  const added: string[] = [];
  const extended: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [source, entry] of after) {
    const old = before.get(source);
    if (old === undefined) added.push(source);
    else if (old.policy !== entry.policy || old.mirrors.some((m, i) => entry.mirrors[i] !== m))
      changed.push(source);
    else if (entry.mirrors.length > old.mirrors.length) extended.push(source);
  }
  for (const source of before.keys()) if (!after.has(source)) removed.push(source);
  const tagMirrors = kind === "ImageTagMirrorSet";
  const disruptive =
    removed.length > 0 || changed.length > 0 || (tagMirrors && added.length + extended.length > 0);
  const parts = [
    added.length > 0 ? `adds mirrors for ${listed(added)}` : "",
    extended.length > 0 ? `adds further mirrors for ${listed(extended)}` : "",
    changed.length > 0 ? `changes the mirrors of ${listed(changed)}` : "",
    removed.length > 0 ? `removes the mirrors of ${listed(removed)}` : "",
  ].filter((p) => p !== "");
  return { disruptive, detail: parts.length > 0 ? parts.join("; ") : "no mirror entries change" };
}

/**
 * What changes in a ConfigMap's keys (`data` and `binaryData`): for the release-signature
 * ConfigMap, which release signatures (`sha256-<digest>-<n>`) a run adds or removes, e.g.
 * when a channel range shrinks.
 */
function configMapChange(
  live: Readonly<Record<string, unknown>> | undefined,
  desired: Readonly<Record<string, unknown>>,
): string {
  const values = (content: Readonly<Record<string, unknown>> | undefined): Map<string, unknown> => {
    const map = new Map<string, unknown>();
    for (const field of ["data", "binaryData"] as const) {
      const entries = content?.[field];
      if (entries === null || typeof entries !== "object") continue;
      for (const [key, value] of Object.entries(entries)) map.set(`${field}/${key}`, value);
    }
    return map;
  };
  const before = values(live);
  const after = values(desired);
  const name = (key: string) => key.slice(key.indexOf("/") + 1);
  const added = [...after.keys()].filter((k) => !before.has(k)).map(name);
  const removed = [...before.keys()].filter((k) => !after.has(k)).map(name);
  const changed = [...after.keys()].filter((k) => before.has(k) && before.get(k) !== after.get(k)).map(name);
  const parts = [
    added.length > 0 ? `adds ${listed(added)}` : "",
    changed.length > 0 ? `changes ${listed(changed)}` : "",
    removed.length > 0 ? `removes ${listed(removed)}` : "",
  ].filter((p) => p !== "");
  return parts.length > 0 ? parts.join("; ") : "content changes";
}

function describe(change: Change): string {
  const where = change.namespace !== undefined ? `${change.namespace}/${change.name}` : change.name;
  return `${change.op} ${change.kind} ${where}: ${change.detail}${change.disruptive ? " (drains nodes)" : ""}`;
}

/**
 * Whether the live content is what is desired. The server may add defaults to a spec, so a
 * spec only has to contain the desired fields; a ConfigMap's `data` and `binaryData` get no
 * defaults, so their keys must be exactly the desired ones (a signature a run no longer
 * generates must go).
 */
function holds(
  kind: string,
  live: Readonly<Record<string, unknown>>,
  desired: Readonly<Record<string, unknown>>,
): boolean {
  if (!contains(live, desired)) return false;
  if (kind !== "ConfigMap") return true;
  const keys = (value: unknown) =>
    value !== null && typeof value === "object" ? Object.keys(value).sort().join("\0") : "";
  return keys(live.data) === keys(desired.data) && keys(live.binaryData) === keys(desired.binaryData);
}

function contentOf(object: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { spec, data, binaryData } = object;
  return { spec, data, binaryData };
}

/**
 * Compares what a run generates with what the MirrorJob applied earlier. With `prune`,
 * objects applied earlier and no longer generated are deleted.
 */
export function planChanges(
  desired: readonly DesiredObject[],
  live: readonly LiveObject[],
  options: { readonly prune: boolean },
): Plan {
  const key = (kind: string, namespace: string | undefined, name: string) =>
    `${kind}/${namespace ?? ""}/${name}`;
  const liveByKey = new Map(live.map((l) => [key(l.info.kind, l.namespace, l.name), l]));
  const apply: DesiredObject[] = [];
  const unchanged: DesiredObject[] = [];
  const changes: Change[] = [];
  for (const d of desired) {
    const current = liveByKey.get(key(d.info.kind, d.namespace, d.name));
    if (current !== undefined && holds(d.info.kind, contentOf(current.object), d.content)) {
      unchanged.push(d);
      continue;
    }
    apply.push(d);
    const isMirrorSet = MIRROR_FIELDS[d.info.kind] !== undefined;
    const mirrorChange = isMirrorSet
      ? mirrorSetChange(d.info.kind, current && contentOf(current.object), d.content)
      : undefined;
    const otherChange =
      current === undefined
        ? "new"
        : d.info.kind === "ConfigMap"
          ? configMapChange(contentOf(current.object), d.content)
          : "content changes";
    changes.push({
      op: current === undefined ? "create" : "update",
      kind: d.info.kind,
      name: d.name,
      ...(d.namespace !== undefined && { namespace: d.namespace }),
      disruptive: mirrorChange?.disruptive ?? false,
      detail: mirrorChange?.detail ?? otherChange,
      hash: d.hash,
    });
  }
  const wanted = new Set(desired.map((d) => key(d.info.kind, d.namespace, d.name)));
  const prune = options.prune ? live.filter((l) => !wanted.has(key(l.info.kind, l.namespace, l.name))) : [];
  for (const l of prune) {
    const mirrorChange =
      MIRROR_FIELDS[l.info.kind] !== undefined
        ? mirrorSetChange(l.info.kind, contentOf(l.object), undefined)
        : undefined;
    changes.push({
      op: "delete",
      kind: l.info.kind,
      name: l.name,
      ...(l.namespace !== undefined && { namespace: l.namespace }),
      disruptive: mirrorChange?.disruptive ?? false,
      detail: mirrorChange?.detail ?? "no longer generated",
      hash: "",
    });
  }
  const disruptive = changes.some((c) => c.disruptive);
  const hash =
    changes.length === 0
      ? ""
      : contentHash(
          changes
            .map((c) => [c.op, c.kind, c.namespace ?? "", c.name, c.hash])
            .sort((a, b) => (a.join() < b.join() ? -1 : 1)),
        );
  const ordered = [...changes.filter((c) => c.disruptive), ...changes.filter((c) => !c.disruptive)];
  const summary = ordered.map(describe).join("; ");
  return {
    apply,
    prune,
    unchanged,
    changes,
    disruptive,
    hash,
    summary: summary.length > MAX_SUMMARY ? `${summary.slice(0, MAX_SUMMARY - 3)}...` : summary,
  };
}
