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
} from "@kubernetes/client-node";
import type { MirrorJobStatus } from "../api/status.ts";
import { GROUP, PLURAL, VERSION, API_VERSION, KIND } from "../api/mirrorjob.ts";
import { LABELS } from "../job/names.ts";
import type { EventSpec } from "../reconcile/decide.ts";

export const FIELD_MANAGER = "hub-mirror-operator";
export const REPORTING_CONTROLLER = "hubmirror.dev/hub-mirror-operator";

export function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
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

  /** Creates each object unless it exists (then it is left as it is). */
  async ensure(objects: readonly KubernetesObject[]): Promise<void> {
    for (const object of objects) {
      try {
        await this.objects.create(object, undefined, undefined, FIELD_MANAGER);
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
    }
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
  ): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
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
    );
  }

  /**
   * Adds or removes one finalizer, only over the version the decision saw (a concurrent
   * change of the list fails with 409/422 and is retried). Returns the new resourceVersion.
   */
  async setFinalizer(
    mj: MirrorJobKey & {
      readonly finalizers: readonly string[];
      readonly resourceVersion: string | undefined;
    },
    finalizer: string,
    present: boolean,
  ): Promise<string | undefined> {
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
    return updated.metadata?.resourceVersion;
  }

  async event(mj: MirrorJobKey, event: EventSpec): Promise<void> {
    await this.eventsApi.createNamespacedEvent({
      namespace: mj.namespace,
      body: {
        // Named like the API server's own events (generateName with "." is refused for Events).
        metadata: { name: `${mj.name}.${randomBytes(8).toString("hex")}` },
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
