/**
 * Reads how the cluster takes up what a MirrorJob applied: the MachineConfigPools
 * (machineconfiguration.openshift.io/v1, cluster-scoped), and the state of the CatalogSources
 * and UpdateServices it applied. A cluster without the MachineConfigPool API (no Machine
 * Config Operator: plain Kubernetes) answers "no pools" instead of an error; objects that are
 * gone answer without a state.
 */
import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import type { Query } from "../reconcile/protocol.ts";
import type { PoolObservation, RolloutObservation } from "../reconcile/rollout.ts";
import { isStatus } from "./kube-api.ts";

interface Condition {
  readonly type?: string;
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: string;
}

interface PoolObject {
  readonly metadata?: { readonly name?: string };
  readonly status?: {
    readonly machineCount?: number;
    readonly updatedMachineCount?: number;
    readonly degradedMachineCount?: number;
    readonly conditions?: readonly Condition[];
  };
}

const MCP = {
  group: "machineconfiguration.openshift.io",
  version: "v1",
  plural: "machineconfigpools",
} as const;

function isTrue(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type && c.status === "True");
}

/** A pool's state from its status, as the MCO reports it. */
export function poolObservation(pool: PoolObject): PoolObservation {
  const conditions = pool.status?.conditions;
  const degraded =
    isTrue(conditions, "Degraded") ??
    isTrue(conditions, "NodeDegraded") ??
    isTrue(conditions, "RenderDegraded");
  const updated = conditions?.find((c) => c.type === "Updated");
  return {
    name: pool.metadata?.name ?? "",
    updating: isTrue(conditions, "Updating") !== undefined,
    updated: updated?.status === "True",
    degraded: degraded !== undefined,
    machineCount: pool.status?.machineCount ?? 0,
    updatedMachineCount: pool.status?.updatedMachineCount ?? 0,
    degradedMachineCount: pool.status?.degradedMachineCount ?? 0,
    ...(degraded?.message !== undefined && { message: degraded.message }),
    ...(updated?.lastTransitionTime !== undefined && { updatedSince: updated.lastTransitionTime }),
  };
}

export class RolloutReader {
  private readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  private async get(group: string, version: string, plural: string, namespace: string, name: string) {
    return (await this.custom
      .getNamespacedCustomObject({ group, version, plural, namespace, name })
      .catch((err: unknown) => {
        if (isStatus(err, 404)) return undefined;
        throw err;
      })) as
      { status?: { connectionState?: { lastObservedState?: string }; conditions?: Condition[] } } | undefined;
  }

  async read(query: Extract<Query, { kind: "readRollout" }>): Promise<RolloutObservation> {
    const pools = await this.custom
      .listClusterCustomObject(MCP)
      .then((list) => ((list as { items?: PoolObject[] }).items ?? []).map(poolObservation))
      .catch((err: unknown) => {
        if (isStatus(err, 404)) return undefined;
        throw err;
      });
    const catalogSources = [];
    for (const cs of query.catalogSources) {
      const live = await this.get(
        "operators.coreos.com",
        "v1alpha1",
        "catalogsources",
        cs.namespace,
        cs.name,
      );
      const state = live?.status?.connectionState?.lastObservedState;
      catalogSources.push({ ...cs, ...(state !== undefined && { state }) });
    }
    const updateServices = [];
    for (const us of query.updateServices) {
      const live = await this.get(
        "updateservice.operator.openshift.io",
        "v1",
        "updateservices",
        us.namespace,
        us.name,
      );
      const available = live?.status?.conditions?.find((c) => c.type === "Available");
      updateServices.push({
        ...us,
        available: available?.status === "True",
        ...(available?.status !== "True" && {
          reason:
            available?.message ??
            available?.reason ??
            (live === undefined ? "not found" : "no Available condition yet"),
        }),
      });
    }
    return { ...(pools !== undefined && { pools }), catalogSources, updateServices };
  }
}
