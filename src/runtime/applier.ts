/**
 * The imperative half of apply (the pure half is src/apply/ and reconcile/stages/apply.ts): reads what a MirrorJob applied earlier, server-side
 * applies a plan (force, one field manager), prunes, merges the pull secret with
 * optimistic concurrency, and deletes everything a MirrorJob applied (its finalizer).
 * Kinds whose API the cluster does not serve (kind, vanilla Kubernetes) and missing
 * namespaces are reported by name, never thrown.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
} from "@kubernetes/client-node";
import { ownerSelector, type DesiredObject, type Owner } from "../apply/desired.ts";
import { KINDS, PULL_SECRET, type KindInfo } from "../apply/kinds.ts";
import type { AppliedRecord, ApplyOutcome, LiveState } from "../apply/live.ts";
import type { LiveObject, Plan } from "../apply/plan.ts";
import { mergePullSecret, PULL_SECRET_KEY, type PullEntry } from "../apply/pull-secret.ts";
import { apiMessage, FIELD_MANAGER, isStatus } from "./kube-api.ts";

/**
 * Conflicts on the pull secret (another writer changed it meanwhile) are retried for this long,
 * and at most this often. Ten attempts were not enough against a writer in a tight loop on a
 * loaded machine (test/e2e/faults.test.ts lost ten races in a row in 3.3 s).
 */
const PULL_SECRET_RETRY = { ms: 30_000, attempts: 100 };

/**
 * The pause before the next attempt after a conflict on the pull secret: random up to
 * 25 ms * 2^attempt (at most 1 s). Without it, a writer that updates the secret in a tight
 * loop won every race five times in a row and the merge failed (test/e2e/faults.test.ts).
 */
export function conflictPauseMs(attempt: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(1_000, 25 * 2 ** attempt));
}

/** The kind's API is not served: no CRD (404 on discovery or list, or unknown kind). */
function isMissingApi(err: unknown): boolean {
  if (err instanceof ApiException)
    return err.code === 404 && !/namespaces? .* not found/.test(apiMessage(err));
  return err instanceof Error && err.message.startsWith("Unrecognized API version and kind");
}

function missingNamespace(err: unknown): string | undefined {
  if (!isStatus(err, 404)) return undefined;
  return /namespaces "([^"]+)" not found/.exec(apiMessage(err))?.[1];
}

export interface ApplierOptions {
  /**
   * Called between reading and writing the pull secret: lets a test put a concurrent
   * writer exactly there, to show that its change survives.
   */
  readonly afterPullSecretRead?: () => Promise<void>;
}

export class Applier {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly options: ApplierOptions;

  constructor(kc: KubeConfig, options: ApplierOptions = {}) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.options = options;
  }

  /** Everything of these kinds that carries the owner's labels. */
  async readLive(owner: Owner, kinds: readonly KindInfo[]): Promise<LiveState> {
    const objects: LiveObject[] = [];
    const missing: string[] = [];
    for (const info of kinds) {
      try {
        const list = await this.objects.list(
          info.apiVersion,
          info.kind,
          info.namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          ownerSelector(owner),
          500,
        );
        for (const item of list.items) {
          objects.push({
            info,
            name: item.metadata?.name ?? "",
            ...(info.namespace !== undefined && { namespace: info.namespace }),
            object: item as unknown as Record<string, unknown>,
          });
        }
      } catch (err) {
        if (!isMissingApi(err)) throw err;
        missing.push(info.requires);
      }
    }
    return { objects, missing };
  }

  private async serverSideApply(desired: DesiredObject): Promise<void> {
    await this.objects.patch(
      desired.manifest,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
  }

  /**
   * Carries out a plan: the pull secret first (nodes can authenticate before any mirror
   * points at the registry), then creates and updates, then prunes (old objects go only
   * after their replacements exist). Continues past errors and reports each.
   */
  async apply(plan: Plan, pull: PullEntry | undefined): Promise<ApplyOutcome> {
    const applied: AppliedRecord[] = [];
    const missing = new Set<string>();
    const errors: string[] = [];
    let pullSecretWritten = false;
    if (pull !== undefined) {
      try {
        pullSecretWritten = await this.mergePullSecret(pull);
      } catch (err) {
        if (err instanceof PullSecretMissing) missing.add(err.message);
        else errors.push(`pull secret ${PULL_SECRET.namespace}/${PULL_SECRET.name}: ${apiMessage(err)}`);
      }
    }
    for (const desired of [...plan.apply, ...plan.unchanged]) {
      const record = {
        kind: desired.info.kind,
        name: desired.name,
        ...(desired.namespace !== undefined && { namespace: desired.namespace }),
        hash: desired.hash,
      };
      if (plan.unchanged.includes(desired)) {
        applied.push(record);
        continue;
      }
      try {
        await this.serverSideApply(desired);
        applied.push(record);
      } catch (err) {
        const namespace = missingNamespace(err);
        if (namespace !== undefined) missing.add(`namespace ${namespace}`);
        else if (isMissingApi(err)) missing.add(desired.info.requires);
        else errors.push(`${desired.info.kind} ${desired.name}: ${apiMessage(err)}`);
      }
    }
    if (errors.length === 0 && missing.size === 0) {
      for (const live of plan.prune) {
        try {
          await this.delete(live.info, live.name);
        } catch (err) {
          errors.push(`deleting ${live.info.kind} ${live.name}: ${apiMessage(err)}`);
        }
      }
    }
    return { applied, missing: [...missing], errors, pullSecretWritten };
  }

  private async delete(info: KindInfo, name: string): Promise<void> {
    try {
      await this.objects.delete({
        apiVersion: info.apiVersion,
        kind: info.kind,
        metadata: { name, ...(info.namespace !== undefined && { namespace: info.namespace }) },
      });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  /**
   * Read, merge, write with the read's resourceVersion; on a conflict (someone wrote in
   * between) read again and merge again, so their change is kept. True if written.
   */
  async mergePullSecret(pull: PullEntry): Promise<boolean> {
    const deadline = performance.now() + PULL_SECRET_RETRY.ms;
    for (let attempt = 1; ; attempt++) {
      const secret = await this.core
        .readNamespacedSecret({ namespace: PULL_SECRET.namespace, name: PULL_SECRET.name })
        .catch((err: unknown) => {
          if (isStatus(err, 404)) {
            throw new PullSecretMissing(`secret ${PULL_SECRET.namespace}/${PULL_SECRET.name}`);
          }
          throw err;
        });
      const raw = secret.data?.[PULL_SECRET_KEY];
      const merge = mergePullSecret(
        raw !== undefined ? Buffer.from(raw, "base64").toString("utf8") : undefined,
        pull,
      );
      if (!merge.ok) throw new Error(merge.message);
      if (!merge.changed) return false;
      await this.options.afterPullSecretRead?.();
      try {
        await this.core.replaceNamespacedSecret({
          namespace: PULL_SECRET.namespace,
          name: PULL_SECRET.name,
          fieldManager: FIELD_MANAGER,
          // The read object with one key changed: its resourceVersion makes the write conditional.
          body: Object.assign(secret, {
            data: { ...secret.data, [PULL_SECRET_KEY]: Buffer.from(merge.text).toString("base64") },
          }),
        });
        return true;
      } catch (err) {
        if (!isStatus(err, 409) || attempt >= PULL_SECRET_RETRY.attempts || performance.now() >= deadline)
          throw err;
        await sleep(conflictPauseMs(attempt));
      }
    }
  }

  /** Deletes everything the owner applied (all kinds), for `deletionPolicy: Delete`. */
  async deleteAll(owner: Owner): Promise<{ deleted: number; errors: string[] }> {
    const live = await this.readLive(owner, KINDS);
    const errors: string[] = [];
    for (const object of live.objects) {
      try {
        await this.delete(object.info, object.name);
      } catch (err) {
        errors.push(`deleting ${object.info.kind} ${object.name}: ${apiMessage(err)}`);
      }
    }
    return { deleted: live.objects.length - errors.length, errors };
  }
}

class PullSecretMissing extends Error {
  override readonly name = "PullSecretMissing";
}
