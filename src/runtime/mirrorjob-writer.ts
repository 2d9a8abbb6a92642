/**
 * Writes to a MirrorJob itself: its status (whole, over exactly the version decided from),
 * its finalizer, and Events about it.
 */
import { randomBytes } from "node:crypto";
import {
  CustomObjectsApi,
  EventsV1Api,
  type EventsV1Event,
  PatchStrategy,
  V1MicroTime,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from "../api/mirrorjob.ts";
import type { MirrorJobStatus } from "../api/status.ts";
import { eventName } from "../job/names.ts";
import type { EventSpec } from "../reconcile/protocol.ts";
import { FIELD_MANAGER, isStatus, REPORTING_CONTROLLER } from "./kube-api.ts";

export interface MirrorJobKey {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** The MirrorJob as a reconcile last saw it: what its conditional writes must be based on. */
export interface MirrorJobVersion extends MirrorJobKey {
  resourceVersion: string | undefined;
  finalizers: readonly string[];
}

const TEST_VERSION = (resourceVersion: string | undefined) =>
  resourceVersion !== undefined
    ? [{ op: "test", path: "/metadata/resourceVersion", value: resourceVersion }]
    : [];

export class MirrorJobWriter {
  private readonly custom: CustomObjectsApi;
  private readonly eventsApi: EventsV1Api;
  private readonly instance: string;

  constructor(kc: KubeConfig, instance: string) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.eventsApi = kc.makeApiClient(EventsV1Api);
    this.instance = instance;
  }

  private patch(
    mj: MirrorJobKey,
    body: object[],
    subresource: "status" | undefined,
  ): Promise<KubernetesObject> {
    const params = {
      group: GROUP,
      version: VERSION,
      namespace: mj.namespace,
      plural: PLURAL,
      name: mj.name,
      body,
      fieldManager: FIELD_MANAGER,
    };
    const json = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
    return (
      subresource === "status"
        ? this.custom.patchNamespacedCustomObjectStatus(params, json)
        : this.custom.patchNamespacedCustomObject(params, json)
    ) as Promise<KubernetesObject>;
  }

  /**
   * Replaces the status as a whole (JSON patch `add /status`: removed fields go away too),
   * only if the object is still at `resourceVersion`: a decision made from a stale cache must
   * not overwrite a newer status. A stale write fails with 409/422 (see isStaleWrite).
   */
  async replaceStatus(
    mj: MirrorJobKey,
    status: MirrorJobStatus,
    resourceVersion: string | undefined,
  ): Promise<void> {
    await this.patch(
      mj,
      [...TEST_VERSION(resourceVersion), { op: "add", path: "/status", value: status }],
      "status",
    );
  }

  /**
   * Adds or removes one finalizer over the version the decision saw (a concurrent change of
   * the list fails with 409/422 and is retried), and updates `mj` to the written version.
   */
  async setFinalizer(mj: MirrorJobVersion, finalizer: string, present: boolean): Promise<void> {
    const finalizers = present
      ? [...mj.finalizers.filter((f) => f !== finalizer), finalizer]
      : mj.finalizers.filter((f) => f !== finalizer);
    const updated = await this.patch(
      mj,
      [...TEST_VERSION(mj.resourceVersion), { op: "add", path: "/metadata/finalizers", value: finalizers }],
      undefined,
    );
    mj.resourceVersion = updated.metadata?.resourceVersion;
    mj.finalizers = finalizers;
  }

  /** Records an Event; one that states a fact `once` already recorded is not recorded again. */
  async event(mj: MirrorJobKey, event: EventSpec): Promise<void> {
    await this.eventsApi
      .createNamespacedEvent({
        namespace: mj.namespace,
        body: this.eventBody(mj, event),
      })
      .catch((err: unknown) => {
        if (event.once === undefined || !isStatus(err, 409)) throw err;
      });
  }

  private eventBody(mj: MirrorJobKey, event: EventSpec): EventsV1Event {
    return {
      // Named like the API server's own events (generateName with "." is refused for Events).
      metadata: { name: eventName(mj.name, event.once ?? randomBytes(8).toString("hex")) },
      eventTime: new V1MicroTime(),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.instance.slice(0, 128),
      action: event.action,
      reason: event.reason,
      note: event.note,
      type: event.type,
      regarding: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: mj.name,
        namespace: mj.namespace,
        uid: mj.uid,
      },
    };
  }
}
