/**
 * Registry pruning, the pure half: what left the image set between two runs, and what of it
 * may be deleted. Pure: the shell resolves the references (manifest HEADs) and reads the other
 * MirrorJobs from its cache; the reconcile core decides with this module.
 *
 * The candidates come from `oc-mirror delete --generate` over the earlier run's image set (a
 * DeleteImageList: every reference that set put into the registry). A candidate is deleted only
 * as its manifest, by digest, per repository: deleting by tag would delete the digest behind it
 * (distribution removes a manifest with every tag of the repository that points at it), and
 * releases share components (`openshift/release:4.19.1-x86_64-pod` and `:4.19.2-x86_64-pod` are one
 * manifest). So a candidate is kept when any reference a MirrorJob still needs in that repository
 * resolves to the same digest:
 * - `InCurrentSet`: this MirrorJob's run that is kept (the applied run) references it;
 * - `SharedWithMirrorJob`: another MirrorJob's current run (its last successful and its applied
 *   run) references it in the same registry.
 * Candidates outside the MirrorJob's registry path are rejected (the list comes from the Job's
 * pod and is untrusted); candidates already gone are counted as absent; a candidate the registry
 * could not answer for stops the plan (nothing is deleted on a guess).
 *
 * A plan whose kept set of this MirrorJob is empty is refused: it would delete everything the
 * MirrorJob mirrored (an image set emptied by mistake).
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { z } from "zod";
import type { MirrorJobStatus } from "../api/status.ts";
import { runNames } from "../job/names.ts";
import { parseReference } from "../registry/reference.ts";
import { readResultConfigMap } from "../report/result.ts";
import { contentHash } from "../util/hash.ts";
import type { KeepSet, RegistryNeighbours, Resolution } from "./protocol.ts";
import { expectedImages } from "./runs.ts";

export type { KeepSet, RegistryNeighbours, Resolution };

export interface PruneCandidate {
  /** `host/repository:tag` or `host/repository@digest` (no transport). */
  readonly reference: string;
  /** oc-mirror's `imageName` (the source), kept for the delete list oc-mirror checks. */
  readonly imageName: string;
  /** oc-mirror's image type (`ocpRelease`, `generic`, ...). */
  readonly type: string;
}

export interface Deletion {
  /** `host/repository` */
  readonly repository: string;
  readonly digest: string;
  /** The listed references that point at it (sorted). */
  readonly references: readonly string[];
  readonly imageName: string;
  readonly type: string;
}

export interface KeptReference {
  readonly reference: string;
  readonly reason: "InCurrentSet" | "SharedWithMirrorJob";
  readonly mirrorJob?: string;
}

export interface PrunePlan {
  readonly registry: string;
  readonly fromRun: string;
  readonly toRun: string;
  readonly deletions: readonly Deletion[];
  readonly kept: readonly KeptReference[];
  readonly absent: readonly string[];
  readonly rejected: readonly { readonly reference: string; readonly why: string }[];
  /** References the registry could not answer for: the plan must not be carried out. */
  readonly errors: readonly { readonly reference: string; readonly message: string }[];
  /** Why the plan is refused (an empty kept set), if it is. */
  readonly refused?: string;
  /** Hash of what the plan deletes: approve it with spec.prune.approvedPlan. */
  readonly hash: string;
}

export interface PlanInput {
  /** spec.registry.url: `host[:port][/path]` */
  readonly registry: string;
  readonly fromRun: string;
  readonly toRun: string;
  readonly candidates: readonly PruneCandidate[];
  /** This MirrorJob's kept run first (no mirrorJob), then the other MirrorJobs'. */
  readonly keep: readonly KeepSet[];
  /** Every reference of candidates and keep sets in the candidates' repositories (see toResolve). */
  readonly resolutions: ReadonlyMap<string, Resolution>;
}

/** `host/repository` of a reference, or undefined when it does not parse. */
export function repositoryOf(reference: string): string | undefined {
  try {
    const ref = parseReference(reference);
    return `${ref.registry}/${ref.repository}`;
  } catch {
    return undefined;
  }
}

/** Whether a reference lies under the MirrorJob's registry URL (`host[:port][/path]`). */
export function underRegistry(reference: string, registry: string): boolean {
  const repository = repositoryOf(reference);
  return repository !== undefined && repository.startsWith(`${registry.replace(/\/+$/, "")}/`);
}

/** The references a plan needs resolved: the candidates, and what is kept in their repositories. */
export function toResolve(
  registry: string,
  candidates: readonly string[],
  keep: readonly KeepSet[],
): string[] {
  const valid = candidates.filter((c) => underRegistry(c, registry));
  const repositories = new Set(valid.map((c) => repositoryOf(c)));
  const out = new Set(valid);
  for (const set of keep)
    for (const reference of set.references) if (repositories.has(repositoryOf(reference))) out.add(reference);
  return [...out].sort();
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function planPrune(input: PlanInput): PrunePlan {
  const { registry, resolutions } = input;
  // Digests each MirrorJob keeps, per repository: `host/repo@digest` -> the first keeper.
  const keptBy = new Map<string, string>();
  for (const set of input.keep) {
    for (const reference of set.references) {
      const resolution = resolutions.get(reference);
      const repository = repositoryOf(reference);
      if (resolution?.state !== "present" || repository === undefined) continue;
      const key = `${repository}@${resolution.digest}`;
      if (!keptBy.has(key)) keptBy.set(key, set.mirrorJob ?? "InCurrentSet");
    }
  }
  const deletions = new Map<string, { d: Omit<Deletion, "references">; references: Set<string> }>();
  const kept: KeptReference[] = [];
  const absent: string[] = [];
  const rejected: { reference: string; why: string }[] = [];
  const errors: { reference: string; message: string }[] = [];
  for (const candidate of input.candidates) {
    const { reference } = candidate;
    if (!underRegistry(reference, registry)) {
      rejected.push({ reference, why: `not under the MirrorJob's registry ${registry}` });
      continue;
    }
    const resolution = resolutions.get(reference);
    const repository = repositoryOf(reference) ?? "";
    if (resolution === undefined) {
      errors.push({ reference, message: "not resolved" });
      continue;
    }
    if (resolution.state === "error") {
      errors.push({ reference, message: resolution.message });
      continue;
    }
    if (resolution.state === "absent") {
      absent.push(reference);
      continue;
    }
    const key = `${repository}@${resolution.digest}`;
    const keeper = keptBy.get(key);
    if (keeper !== undefined) {
      kept.push(
        keeper === "InCurrentSet"
          ? { reference, reason: "InCurrentSet" }
          : { reference, reason: "SharedWithMirrorJob", mirrorJob: keeper },
      );
      continue;
    }
    let entry = deletions.get(key);
    if (entry === undefined) {
      entry = {
        d: { repository, digest: resolution.digest, imageName: candidate.imageName, type: candidate.type },
        references: new Set(),
      };
      deletions.set(key, entry);
    }
    entry.references.add(reference);
  }
  const planned = [...deletions.values()]
    .map(({ d, references }) => ({ ...d, references: [...references].sort(byText) }))
    .sort((a, b) => byText(`${a.repository}@${a.digest}`, `${b.repository}@${b.digest}`));
  const self = input.keep.find((k) => k.mirrorJob === undefined);
  const ownInRegistry = (self?.references ?? []).filter((r) => underRegistry(r, registry));
  const refused =
    ownInRegistry.length === 0
      ? `run ${input.toRun} lists no image in ${registry}: pruning to it would delete everything this MirrorJob mirrored (run ${input.fromRun}'s images)`
      : undefined;
  return {
    registry,
    fromRun: input.fromRun,
    toRun: input.toRun,
    deletions: planned,
    kept: kept.sort((a, b) => byText(a.reference, b.reference)),
    absent: absent.sort(byText),
    rejected,
    errors,
    ...(refused !== undefined && { refused }),
    hash: contentHash(
      {
        registry,
        fromRun: input.fromRun,
        toRun: input.toRun,
        deletions: planned.map((d) => `${d.repository}@${d.digest}`),
      },
      16,
    ),
  };
}

/** `host/repository@digest` of a deletion: what the delete list names, and what is checked again. */
export function digestReference(d: Pick<Deletion, "repository" | "digest">): string {
  return `${d.repository}@${d.digest}`;
}

/** The candidates of a re-check before (and after) each delete attempt: the plan's manifests by digest. */
export function deletionCandidates(deletions: readonly Deletion[]): PruneCandidate[] {
  return deletions.map((d) => ({ reference: digestReference(d), imageName: d.imageName, type: d.type }));
}

type PendingPrune = NonNullable<MirrorJobStatus["pendingPrune"]>;

/** The counts status shows for a plan. */
export function planCounts(
  plan: Pick<PrunePlan, "deletions" | "kept" | "absent">,
): Pick<PendingPrune, "manifests" | "tags" | "keptInUse" | "keptShared" | "absent"> {
  return {
    manifests: plan.deletions.length,
    tags: plan.deletions.reduce((n, d) => n + d.references.length, 0),
    keptInUse: plan.kept.filter((k) => k.reason === "InCurrentSet").length,
    keptShared: plan.kept.filter((k) => k.reason === "SharedWithMirrorJob").length,
    absent: plan.absent.length,
  };
}

/** Up to 10 kept references, the shared ones first (they are the surprising ones). */
export function keptSample(kept: readonly KeptReference[]): KeptReference[] {
  return [
    ...kept.filter((k) => k.reason === "SharedWithMirrorJob"),
    ...kept.filter((k) => k.reason === "InCurrentSet"),
  ].slice(0, 10);
}

/** What a plan deletes and keeps, in words. */
export function describePlan(plan: PrunePlan): string {
  const c = planCounts(plan);
  const repositories = new Set(plan.deletions.map((d) => d.repository)).size;
  const shared = [...new Set(plan.kept.flatMap((k) => (k.mirrorJob !== undefined ? [k.mirrorJob] : [])))];
  const parts = [
    `delete ${String(c.manifests)} manifests (${String(c.tags)} listed references) in ${String(repositories)} repositories of ${plan.registry}` +
      ` that run ${plan.fromRun} mirrored and run ${plan.toRun} no longer does`,
    `keep ${String(c.keptInUse)} references run ${plan.toRun} still uses`,
    ...(c.keptShared > 0
      ? [`keep ${String(c.keptShared)} references shared with MirrorJob ${shared.join(", ")}`]
      : []),
    ...(c.absent > 0 ? [`${String(c.absent)} listed references are already gone`] : []),
    ...(plan.rejected.length > 0
      ? [`${String(plan.rejected.length)} listed references lie outside ${plan.registry} and are ignored`]
      : []),
  ];
  return parts.join("; ").slice(0, 4096);
}

/** status.pendingPrune for a plan. */
export function pendingPrune(plan: PrunePlan): PendingPrune {
  return {
    hash: plan.hash,
    fromRun: plan.fromRun,
    toRun: plan.toRun,
    ...planCounts(plan),
    repositories: new Set(plan.deletions.map((d) => d.repository)).size,
    sample: plan.deletions.flatMap((d) => d.references).slice(0, 10),
    kept: keptSample(plan.kept),
    summary: describePlan(plan),
  };
}

/** The plan as kept in its ConfigMap (written by the operator, read back on every attempt). */
export const storedPlanSchema = z.object({
  version: z.literal(1),
  registry: z.string().max(255),
  fromRun: z.string().max(63),
  toRun: z.string().max(63),
  hash: z.string().max(64),
  deletions: z
    .array(
      z.object({
        repository: z.string().max(1024),
        digest: z.string().max(160),
        references: z.array(z.string().max(1024)).max(10_000),
        imageName: z.string().max(1024),
        type: z.string().max(64),
      }),
    )
    .max(50_000),
  kept: z
    .array(
      z.object({
        reference: z.string().max(1024),
        reason: z.enum(["InCurrentSet", "SharedWithMirrorJob"]),
        mirrorJob: z.string().max(317).optional(),
      }),
    )
    .max(50_000),
  absent: z.array(z.string().max(1024)).max(50_000),
});
export type StoredPlan = z.output<typeof storedPlanSchema>;

export function storedPlan(plan: PrunePlan): StoredPlan {
  return {
    version: 1,
    registry: plan.registry,
    fromRun: plan.fromRun,
    toRun: plan.toRun,
    hash: plan.hash,
    deletions: plan.deletions.map((d) => ({ ...d, references: [...d.references] })),
    kept: plan.kept.map((k) => ({ ...k })),
    absent: [...plan.absent],
  };
}

/** The parts of a cached MirrorJob that registryNeighbours reads (as held: nothing is trusted). */
export interface NeighbourLike {
  readonly metadata?: { readonly namespace?: string; readonly name?: string };
  readonly spec?: unknown;
  readonly status?: MirrorJobStatus;
}

/** `host[:port]` of a registry URL, lower-cased. */
export function registryHost(url: string): string {
  return (url.split("/")[0] ?? url).toLowerCase();
}

function registryUrlOf(spec: unknown): string | undefined {
  if (spec === null || typeof spec !== "object") return undefined;
  const registry = (spec as { registry?: unknown }).registry;
  if (registry === null || typeof registry !== "object") return undefined;
  const url = (registry as { url?: unknown }).url;
  return typeof url === "string" ? url : undefined;
}

/**
 * The other MirrorJobs that mirror into the same registry host, and the references their
 * current runs need: the last successful run's and the applied run's image lists (the
 * dry-run mappings in their result ConfigMaps).
 */
export function registryNeighbours(
  self: { readonly namespace: string; readonly name: string },
  registry: string,
  mirrorJobs: Iterable<NeighbourLike>,
  configMap: (namespace: string, name: string) => V1ConfigMap | undefined,
): RegistryNeighbours {
  const host = registryHost(registry);
  const keep: KeepSet[] = [];
  const busy: string[] = [];
  const unknown: string[] = [];
  for (const mj of mirrorJobs) {
    const namespace = mj.metadata?.namespace ?? "";
    const name = mj.metadata?.name ?? "";
    if (namespace === self.namespace && name === self.name) continue;
    const url = registryUrlOf(mj.spec);
    if (url === undefined || registryHost(url) !== host) continue;
    const id = `${namespace}/${name}`;
    const status = mj.status;
    if (status?.currentRun !== undefined) busy.push(id);
    const runs = new Set(
      [status?.lastSuccessfulRun?.id, status?.appliedRun].filter((r): r is string => r !== undefined),
    );
    for (const runId of runs) {
      const cm = configMap(namespace, runNames(name, runId).result);
      const read = readResultConfigMap(cm);
      if (cm === undefined || read.result === undefined) {
        unknown.push(`${id} (run ${runId})`);
        continue;
      }
      keep.push({ mirrorJob: id, runId, references: expectedImages(read).map((i) => i.destination) });
    }
  }
  return { keep, busy: busy.sort(byText), unknown: unknown.sort(byText) };
}
