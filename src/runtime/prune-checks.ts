/**
 * The shell half of registry pruning (the `planPrune` query): the other MirrorJobs on the same
 * registry, read from the controller's cache (their result ConfigMaps hold their runs' image
 * lists), and what the registry holds for every reference the plan needs: one manifest HEAD
 * each, with bounded concurrency and one client per registry and credentials. No request
 * loop is unbounded: each reference is asked once (the client's own retries aside).
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { Answer, Query } from "../reconcile/protocol.ts";
import {
  registryNeighbours,
  toResolve,
  type NeighbourLike,
  type Resolution,
} from "../reconcile/prune-plan.ts";
import { RegistryClients } from "../registry/clients.ts";
import { parseReference } from "../registry/reference.ts";

type PlanPrune = Extract<Query, { kind: "planPrune" }>;

/** What the shell reads of the controller's cache. */
export interface CacheView {
  /** The MirrorJobs in the cache, or undefined before it has synced. */
  mirrorJobs(): Iterable<NeighbourLike> | undefined;
  configMap(namespace: string, name: string): V1ConfigMap | undefined;
}

/** HEADs in flight at once (as verification). */
const CONCURRENCY = 32;

/** Resolves references to their manifests' digests (absent: 404); errors are answers too. */
export async function resolveReferences(
  references: readonly string[],
  options: { readonly dockerConfig: string; readonly caBundle?: string; readonly tlsVerify: boolean },
): Promise<Map<string, Resolution>> {
  const out = new Map<string, Resolution>();
  if (references.length === 0) return out;
  const clients = new RegistryClients(options.dockerConfig, {
    tlsVerify: options.tlsVerify,
    timeoutMs: 15_000,
    connections: CONCURRENCY,
    ...(options.caBundle !== undefined && { caBundle: options.caBundle }),
  });
  try {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < references.length; i = next++) {
        const reference = references[i] ?? "";
        try {
          const ref = parseReference(reference);
          const info = await clients
            .clientFor(ref.registry, ref.repository)
            .headManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
          if (info === undefined) out.set(reference, { state: "absent" });
          else if (info.digest === "")
            out.set(reference, { state: "error", message: "the registry reported no Docker-Content-Digest" });
          else out.set(reference, { state: "present", digest: info.digest });
        } catch (err) {
          out.set(reference, { state: "error", message: err instanceof Error ? err.message : String(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, references.length) }, worker));
  } finally {
    await clients.close();
  }
  return out;
}

export async function planPrune(query: PlanPrune, cache: CacheView | undefined): Promise<Answer> {
  const mirrorJobs = cache?.mirrorJobs();
  const neighbours =
    mirrorJobs === undefined || cache === undefined
      ? { keep: [], busy: [], unknown: ["the operator's cache of MirrorJobs is not ready"] }
      : registryNeighbours(query.self, query.registry, mirrorJobs, (ns, name) => cache.configMap(ns, name));
  const references = toResolve(query.registry, query.candidates, [query.keep, ...neighbours.keep]);
  const resolutions = await resolveReferences(references, {
    dockerConfig: query.dockerConfig,
    tlsVerify: query.tlsVerify,
    ...(query.caBundle !== undefined && { caBundle: query.caBundle }),
  });
  return { kind: "planPrune", step: query.step, neighbours, resolutions };
}
