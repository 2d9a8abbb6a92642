/**
 * The thin imperative layer that carries out reconcile decisions against the API
 * server: create-if-absent (idempotent, so a restarted operator adopts what exists),
 * deleting a finished run's objects, replacing a MirrorJob's status, and Events.
 */
import { randomBytes } from "node:crypto";
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  V1MicroTime,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import type { MirrorJobStatus } from "../api/status.ts";
import { GROUP, PLURAL, VERSION, API_VERSION, KIND } from "../api/mirrorjob.ts";
import { LABELS, eventName } from "../job/names.ts";
import type { EnsureOutcome, EventSpec, Refusal } from "../reconcile/decide.ts";

export const FIELD_MANAGER = "hub-mirror-operator";
export const REPORTING_CONTROLLER = "hubmirror.dev/hub-mirror-operator";

export function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

/**
 * The API server's refusal of `object`, when `err` is one: a 4xx other than 409 (exists:
 * handled by the caller) and 429 (throttled: retried like any error).
 */
export function refusalOf(err: unknown, object: KubernetesObject): Refusal | undefined {
  if (!(err instanceof ApiException) || err.code < 400 || err.code >= 500 || err.code === 429)
    return undefined;
  const body = parseBody(err.body);
  const causes = body?.details?.causes ?? [];
  return {
    kind: object.kind ?? "",
    name: object.metadata?.name ?? "",
    code: err.code,
    message: typeof body?.message === "string" ? body.message : `HTTP ${String(err.code)}`,
    fields: causes.flatMap((c) => (typeof c.field === "string" ? [c.field] : [])),
  };
}

interface StatusBody {
  message?: unknown;
  details?: { causes?: { field?: unknown }[] };
}

/** The Status object in an ApiException's body (client-node hands it over parsed or as text). */
function parseBody(body: unknown): StatusBody | undefined {
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return undefined;
    }
  }
  return body !== null && typeof body === "object" ? body : undefined;
}

/** A conditional status write lost to a newer version of the object. */
export function isStaleWrite(err: unknown): boolean {
  return isStatus(err, 409) || isStatus(err, 422);
}

export interface MirrorJobKey {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export class ClusterActions {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly eventsApi: EventsV1Api;
  private readonly instance: string;

  constructor(kc: KubeConfig, instance: string) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.eventsApi = kc.makeApiClient(EventsV1Api);
    this.instance = instance;
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
  async deleteRun(namespace: string, id: string, jobName: string): Promise<void> {
    const labelSelector = `${LABELS.run}=${id}`;
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
   * Replaces the status as a whole (JSON patch `add /status`: removed fields go away too),
   * only if the object is still at `resourceVersion`: a decision made from a stale cache
   * must not overwrite a newer status. A stale write fails with 409/422 (see isStaleWrite).
   */
  async replaceStatus(
    mj: MirrorJobKey,
    status: MirrorJobStatus,
    resourceVersion: string | undefined,
  ): Promise<string | undefined> {
    const updated = (await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: mj.namespace,
        plural: PLURAL,
        name: mj.name,
        body: [
          ...(resourceVersion !== undefined
            ? [{ op: "test", path: "/metadata/resourceVersion", value: resourceVersion }]
            : []),
          { op: "add", path: "/status", value: status },
        ],
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    )) as KubernetesObject;
    return updated.metadata?.resourceVersion;
  }

  /**
   * Adds or removes one finalizer, only over the version the decision saw (a concurrent
   * change of the list fails with 409/422 and is retried). Returns the new resourceVersion
   * and list.
   */
  async setFinalizer(
    mj: MirrorJobKey & {
      readonly finalizers: readonly string[];
      readonly resourceVersion: string | undefined;
    },
    finalizer: string,
    present: boolean,
  ): Promise<{ resourceVersion: string | undefined; finalizers: string[] }> {
    const finalizers = present
      ? [...mj.finalizers.filter((f) => f !== finalizer), finalizer]
      : mj.finalizers.filter((f) => f !== finalizer);
    const updated = (await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: mj.namespace,
        plural: PLURAL,
        name: mj.name,
        body: [
          ...(mj.resourceVersion !== undefined
            ? [{ op: "test", path: "/metadata/resourceVersion", value: mj.resourceVersion }]
            : []),
          { op: "add", path: "/metadata/finalizers", value: finalizers },
        ],
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    )) as KubernetesObject;
    return { resourceVersion: updated.metadata?.resourceVersion, finalizers };
  }

  async event(mj: MirrorJobKey, event: EventSpec): Promise<void> {
    await this.eventsApi.createNamespacedEvent({
      namespace: mj.namespace,
      body: {
        // Named like the API server's own events (generateName with "." is refused for Events).
        metadata: { name: eventName(mj.name, randomBytes(8).toString("hex")) },
        eventTime: new V1MicroTime(),
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: this.instance.slice(0, 128),
        action: event.action,
        reason: event.reason,
        note: event.note.slice(0, 1024),
        type: event.type,
        regarding: {
          apiVersion: API_VERSION,
          kind: KIND,
          name: mj.name,
          namespace: mj.namespace,
          uid: mj.uid,
        },
      },
    });
  }
}
