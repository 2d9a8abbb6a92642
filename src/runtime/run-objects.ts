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
   * Creates each object, in order, unless it exists. An existing object is left as it is,
   * except a PersistentVolumeClaim's owner: a volume kept (Retain) after its MirrorJob was
   * deleted is adopted by the MirrorJob of the same name, and a change of its deletionPolicy
   * adds or removes the owner reference. Stops at the first object the API server refuses
   * (a 4xx other than 409 or 429) and answers with the refusal; other failures throw.
   */
  async ensure(objects: readonly KubernetesObject[]): Promise<EnsureOutcome> {
    for (const object of objects) {
      try {
        await this.objects.create(object, undefined, undefined, FIELD_MANAGER);
      } catch (err) {
        if (isStatus(err, 409)) {
          if (object.kind === "PersistentVolumeClaim") await this.settleOwner(object);
          continue;
        }
        const refusal = refusalOf(err, object);
        if (refusal === undefined) throw err;
        return { ok: false, refusal };
      }
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
   * as the API server holds it then (undefined if it is gone).
   */
  async sealRun(
    namespace: string,
    run: { readonly resultName: string; readonly roleName: string },
  ): Promise<V1ConfigMap | undefined> {
    const ignoreMissing = (err: unknown) => {
      if (!isStatus(err, 404)) throw err;
    };
    await this.rbac.deleteNamespacedRoleBinding({ namespace, name: run.roleName }).catch(ignoreMissing);
    await this.rbac.deleteNamespacedRole({ namespace, name: run.roleName }).catch(ignoreMissing);
    const result = await this.core
      .readNamespacedConfigMap({ namespace, name: run.resultName })
      .catch((err: unknown) => {
        if (isStatus(err, 404)) return undefined;
        throw err;
      });
    if (result === undefined || result.immutable === true) return result;
    return this.core.patchNamespacedConfigMap(
      {
        namespace,
        name: run.resultName,
        // Sealed over exactly the version read: a write in between fails and is retried.
        body: { metadata: { resourceVersion: result.metadata?.resourceVersion }, immutable: true },
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
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
