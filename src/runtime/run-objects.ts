/**
 * The objects of a run on the cluster: created if absent (idempotent, so a restarted
 * operator adopts what exists), sealed when the run ends, deleted when history expires it.
 */
import {
  BatchV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { LABELS } from "../job/names.ts";
import type { EnsureOutcome } from "../reconcile/protocol.ts";
import { FIELD_MANAGER, isStatus, refusalOf } from "./kube-api.ts";

export class RunObjects {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;
  private readonly rbac: RbacAuthorizationV1Api;

  constructor(kc: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  }

  /**
   * Creates each object unless it exists, in the stages of ensureStages: the objects of a
   * stage at once, each stage after the one before it. An existing object is left as it is,
   * except a PersistentVolumeClaim's owner: a volume kept (Retain) after its MirrorJob was
   * deleted is adopted by the MirrorJob of the same name, and a change of its deletionPolicy
   * adds or removes the owner reference. When the API server refuses an object (a 4xx other
   * than 409 or 429), no later stage is started and the answer is the refusal of the first
   * refused object in order; other failures throw.
   */
  async ensure(objects: readonly KubernetesObject[]): Promise<EnsureOutcome> {
    for (const stage of ensureStages(objects)) {
      const outcome = await this.ensureAll(stage);
      if (!outcome.ok) return outcome;
    }
    return { ok: true };
  }

  private async ensureAll(objects: readonly KubernetesObject[]): Promise<EnsureOutcome> {
    const outcomes = await Promise.allSettled(objects.map((object) => this.ensureOne(object)));
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") throw outcome.reason;
      if (!outcome.value.ok) return outcome.value;
    }
    return { ok: true };
  }

  private async ensureOne(object: KubernetesObject): Promise<EnsureOutcome> {
    try {
      await this.objects.create(object, undefined, undefined, FIELD_MANAGER);
    } catch (err) {
      if (isStatus(err, 409)) {
        if (object.kind === "PersistentVolumeClaim") await this.settleOwner(object);
        return { ok: true };
      }
      const refusal = refusalOf(err, object);
      if (refusal === undefined) throw err;
      return { ok: false, refusal };
    }
    return { ok: true };
  }

  /** Makes an existing object's owner references what `desired` says (none, or the MirrorJob). */
  private async settleOwner(desired: KubernetesObject): Promise<void> {
    const live = await this.objects.read({
      apiVersion: desired.apiVersion ?? "v1",
      kind: desired.kind ?? "",
      metadata: { name: desired.metadata?.name ?? "", namespace: desired.metadata?.namespace ?? "" },
    });
    const want = desired.metadata?.ownerReferences ?? [];
    const have = live.metadata?.ownerReferences ?? [];
    const same = (a: typeof want, b: typeof have) =>
      a.length === b.length && a.every((r, i) => r.uid === b[i]?.uid && r.name === b[i].name);
    if (same(want, have)) return;
    await this.objects.patch(
      {
        apiVersion: desired.apiVersion ?? "v1",
        kind: desired.kind ?? "",
        metadata: {
          name: desired.metadata?.name ?? "",
          namespace: desired.metadata?.namespace ?? "",
          resourceVersion: live.metadata?.resourceVersion ?? "",
          ownerReferences: want,
        },
      },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      PatchStrategy.MergePatch,
    );
  }

  /**
   * Seals a run that has ended: deletes its RoleBinding and Role (its pod's identity may
   * write nothing any more), then makes its result ConfigMap immutable. Returns the result
   * as the API server holds it then (undefined if it is gone): the patch that seals it answers
   * with the sealed object, so nothing can change between what is read and what is sealed.
   */
  async sealRun(
    namespace: string,
    run: { readonly resultName: string; readonly roleName: string },
  ): Promise<V1ConfigMap | undefined> {
    const ignoreMissing = (err: unknown) => {
      if (!isStatus(err, 404)) throw err;
    };
    await Promise.all([
      this.rbac.deleteNamespacedRoleBinding({ namespace, name: run.roleName }).catch(ignoreMissing),
      this.rbac.deleteNamespacedRole({ namespace, name: run.roleName }).catch(ignoreMissing),
    ]);
    // An immutable ConfigMap takes `immutable: true` again (nothing changes), so one request
    // seals it or reads it sealed.
    return this.core
      .patchNamespacedConfigMap(
        { namespace, name: run.resultName, body: { immutable: true }, fieldManager: FIELD_MANAGER },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      )
      .catch((err: unknown) => {
        if (isStatus(err, 404)) return undefined;
        throw err;
      });
  }

  /**
   * Deletes a finished run: its Job (pods with it) and the run's ConfigMaps and RBAC. The
   * operator writes no Secrets (the pod merges its authfile itself), so it deletes none either.
   */
  async deleteRun(namespace: string, runId: string, jobName: string): Promise<void> {
    const labelSelector = `${LABELS.run}=${runId}`;
    const ignoreMissing = (err: unknown) => {
      if (!isStatus(err, 404)) throw err;
    };
    await this.batch
      .deleteNamespacedJob({ namespace, name: jobName, propagationPolicy: "Background" })
      .catch(ignoreMissing);
    await this.core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector });
    await this.rbac.deleteCollectionNamespacedRoleBinding({ namespace, labelSelector });
    await this.rbac.deleteCollectionNamespacedRole({ namespace, labelSelector });
  }

  /**
   * Deletes every object of a registry prune (label `hubmirror.dev/prune`): its Jobs (listed,
   * then deleted one by one with their pods: the operator may not delete Jobs by collection),
   * ConfigMaps and RBAC.
   */
  async deletePrune(namespace: string, pruneId: string): Promise<void> {
    const labelSelector = `${LABELS.prune}=${pruneId}`;
    const ignoreMissing = (err: unknown) => {
      if (!isStatus(err, 404)) throw err;
    };
    const jobs = await this.batch.listNamespacedJob({ namespace, labelSelector });
    for (const job of jobs.items)
      await this.batch
        .deleteNamespacedJob({ namespace, name: job.metadata?.name ?? "", propagationPolicy: "Background" })
        .catch(ignoreMissing);
    await this.core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector });
    await this.rbac.deleteCollectionNamespacedRoleBinding({ namespace, labelSelector });
    await this.rbac.deleteCollectionNamespacedRole({ namespace, labelSelector });
  }
}

/**
 * The order in which RunObjects.ensure creates a run's objects: consecutive objects together,
 * except that a RoleBinding starts a stage of its own after everything before it (the API
 * server resolves the Role's rules when a binding is created, and the operator has no `bind`
 * verb, so a binding to a Role not yet created is refused), and the last object (the Job,
 * whose pod runs as the ServiceAccount and mounts the rest) comes alone, after all of them.
 */
export function ensureStages(objects: readonly KubernetesObject[]): KubernetesObject[][] {
  const stages: KubernetesObject[][] = [];
  let current: KubernetesObject[] = [];
  objects.forEach((object, i) => {
    const alone = object.kind === "RoleBinding" || i === objects.length - 1;
    if (alone && current.length > 0) {
      stages.push(current);
      current = [];
    }
    current.push(object);
    if (alone) {
      stages.push(current);
      current = [];
    }
  });
  if (current.length > 0) stages.push(current);
  return stages;
}
