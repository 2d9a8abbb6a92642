/**
 * The controller's view of the cluster: the objects its watches deliver, held once (no copies
 * on read) and indexed the ways a reconcile and the event routing look them up, so neither
 * scans: a MirrorJob's Jobs and ConfigMaps by owner, a pod's Job by owner, and the MirrorJobs
 * that reference a Secret or ConfigMap by reference (computed once per MirrorJob event, not
 * once per Secret event). The watches themselves are a table (WATCHES) fed into the cache by
 * the resilient informers of informer.ts.
 */
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Job,
  type V1Pod,
  type V1Secret,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, KIND, PLURAL, VERSION } from "../api/mirrorjob.ts";
import type { MirrorJobStatus } from "../api/status.ts";
import { validateMirrorJob } from "../api/validation.ts";
import { LABELS, MANAGER, ownerName } from "../job/names.ts";
import { referencedNames } from "../reconcile/preflight.ts";
import { startScopedInformer, type InformerEventType, type InformerHandle } from "./informer.ts";

export interface RawMirrorJob extends KubernetesObject {
  spec?: unknown;
  status?: MirrorJobStatus;
}

function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

/** Objects by namespace/name, with one secondary index (object -> index keys). */
export class Store<T extends KubernetesObject> {
  private readonly objects = new Map<string, T>();
  private readonly index = new Map<string, Set<string>>();
  private readonly indexKeys = new Map<string, readonly string[]>();
  private readonly keysFor: (obj: T) => readonly string[];

  constructor(keysFor: (obj: T) => readonly string[] = () => []) {
    this.keysFor = keysFor;
  }

  get size(): number {
    return this.objects.size;
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  /** Every object, as held (no copy; do not keep the iterator across writes). */
  values(): IterableIterator<T> {
    return this.objects.values();
  }

  /** The objects an index key names. */
  byIndex(key: string): T[] {
    const keys = this.index.get(key);
    if (keys === undefined) return [];
    const found: T[] = [];
    for (const k of keys) {
      const obj = this.objects.get(k);
      if (obj !== undefined) found.push(obj);
    }
    return found;
  }

  upsert(obj: T): void {
    const key = keyOf(obj);
    this.unindex(key);
    this.objects.set(key, obj);
    const keys = this.keysFor(obj);
    if (keys.length === 0) return;
    this.indexKeys.set(key, keys);
    for (const k of keys) {
      let set = this.index.get(k);
      if (set === undefined) this.index.set(k, (set = new Set()));
      set.add(key);
    }
  }

  remove(obj: KubernetesObject): void {
    const key = keyOf(obj);
    this.unindex(key);
    this.objects.delete(key);
  }

  private unindex(key: string): void {
    for (const k of this.indexKeys.get(key) ?? []) {
      const set = this.index.get(k);
      set?.delete(key);
      if (set?.size === 0) this.index.delete(k);
    }
    this.indexKeys.delete(key);
  }
}

/** Index key of the MirrorJob that owns an object (its controller owner reference). */
export function mirrorJobIndexKey(namespace: string, mirrorJob: string): string {
  return `${namespace}/${mirrorJob}`;
}

/** Index key of the Job that owns a pod (the pods Store's index). */
export function jobIndexKey(namespace: string, job: string): string {
  return mirrorJobIndexKey(namespace, job);
}

export function secretRefKey(namespace: string, name: string): string {
  return `secret:${namespace}/${name}`;
}

export function configMapRefKey(namespace: string, name: string): string {
  return `configmap:${namespace}/${name}`;
}

const ownedBy =
  (kind: string) =>
  (obj: KubernetesObject): readonly string[] => {
    const owner = ownerName(obj, kind);
    return owner === undefined ? [] : [mirrorJobIndexKey(obj.metadata?.namespace ?? "", owner)];
  };

/** Index key of the MirrorJobs whose change waits to be applied or rolls out. */
export const ACTIVE_ROLLOUT_KEY = "rollout:active";

/**
 * A MirrorJob's index keys: the Secrets and ConfigMaps it references (none while its spec
 * does not parse), and whether its change waits or rolls out (for the one-rollout-at-a-time rule).
 */
function references(mj: RawMirrorJob): readonly string[] {
  const state = mj.status?.rollout?.state;
  const active = state === "Waiting" || state === "RollingOut" ? [ACTIVE_ROLLOUT_KEY] : [];
  const parsed = validateMirrorJob(mj);
  if (!parsed.ok) return active;
  const namespace = mj.metadata?.namespace ?? "";
  const names = referencedNames(parsed.value.spec);
  return [
    ...names.secrets.map((n) => secretRefKey(namespace, n)),
    ...names.configMaps.map((n) => configMapRefKey(namespace, n)),
    ...active,
  ];
}

export type Resource = "mirrorJobs" | "jobs" | "pods" | "configMaps" | "secrets";

export class ControllerCache {
  readonly mirrorJobs = new Store<RawMirrorJob>(references);
  /** Run Jobs, indexed by their MirrorJob. */
  readonly jobs = new Store<V1Job>(ownedBy(KIND));
  /** Run pods, indexed by their Job (`namespace/job`). */
  readonly pods = new Store<V1Pod>(ownedBy("Job"));
  /** ConfigMaps; a run's, indexed by their MirrorJob. */
  readonly configMaps = new Store<V1ConfigMap>(ownedBy(KIND));
  readonly secrets = new Store<V1Secret>();

  apply(resource: Resource, type: InformerEventType, obj: KubernetesObject): void {
    const store = this[resource] as Store<KubernetesObject>;
    if (type === "delete") store.remove(obj);
    else store.upsert(obj);
  }
}

/** A watched resource: where it is listed and watched, and with which label selector. */
interface WatchSpec {
  readonly resource: Resource;
  /** API path prefix, e.g. `/api/v1`. */
  readonly prefix: string;
  readonly plural: string;
  readonly labelSelector?: string;
  readonly list: (
    apis: Apis,
    namespace: string | undefined,
  ) => Promise<KubernetesListObject<KubernetesObject>>;
}

interface Apis {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
}

const OWNED = `${LABELS.managedBy}=${MANAGER}`;

/**
 * What the controller watches. Jobs and pods only of the operator's own runs (label
 * selector); ConfigMaps and Secrets all, in the served namespaces, since MirrorJobs reference
 * the user's.
 */
export const WATCHES: readonly WatchSpec[] = [
  {
    resource: "mirrorJobs",
    prefix: `/apis/${GROUP}/${VERSION}`,
    plural: PLURAL,
    list: async ({ custom }, namespace) =>
      (namespace === undefined
        ? await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
        : await custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace,
            plural: PLURAL,
          })) as KubernetesListObject<KubernetesObject>,
  },
  {
    resource: "jobs",
    prefix: "/apis/batch/v1",
    plural: "jobs",
    labelSelector: OWNED,
    list: ({ batch }, namespace) =>
      namespace === undefined
        ? batch.listJobForAllNamespaces({ labelSelector: OWNED })
        : batch.listNamespacedJob({ namespace, labelSelector: OWNED }),
  },
  {
    resource: "pods",
    prefix: "/api/v1",
    plural: "pods",
    labelSelector: OWNED,
    list: ({ core }, namespace) =>
      namespace === undefined
        ? core.listPodForAllNamespaces({ labelSelector: OWNED })
        : core.listNamespacedPod({ namespace, labelSelector: OWNED }),
  },
  {
    resource: "configMaps",
    prefix: "/api/v1",
    plural: "configmaps",
    list: ({ core }, namespace) =>
      namespace === undefined
        ? core.listConfigMapForAllNamespaces()
        : core.listNamespacedConfigMap({ namespace }),
  },
  {
    resource: "secrets",
    prefix: "/api/v1",
    plural: "secrets",
    list: ({ core }, namespace) =>
      namespace === undefined ? core.listSecretForAllNamespaces() : core.listNamespacedSecret({ namespace }),
  },
];

export type CacheListener = (resource: Resource, type: InformerEventType, obj: KubernetesObject) => void;

export interface Watches {
  /** True once every watch has delivered its first full list. */
  synced(): boolean;
  stop(): Promise<void>;
}

/**
 * Starts the WATCHES over all namespaces (`namespaces` empty) or one informer per namespace:
 * each event updates the cache, then goes to `listener`.
 */
export function startWatches(
  kc: KubeConfig,
  logger: Logger,
  namespaces: readonly string[],
  cache: ControllerCache,
  listener: CacheListener,
): Watches {
  const apis: Apis = {
    custom: kc.makeApiClient(CustomObjectsApi),
    core: kc.makeApiClient(CoreV1Api),
    batch: kc.makeApiClient(BatchV1Api),
  };
  const handles: InformerHandle<KubernetesObject>[] = WATCHES.map((watch) =>
    startScopedInformer<KubernetesObject>(namespaces, (namespace) => ({
      kc,
      logger,
      path:
        namespace === undefined
          ? `${watch.prefix}/${watch.plural}`
          : `${watch.prefix}/namespaces/${namespace}/${watch.plural}`,
      ...(watch.labelSelector !== undefined && { labelSelector: watch.labelSelector }),
      list: () => watch.list(apis, namespace),
      onEvent: (type, obj) => {
        cache.apply(watch.resource, type, obj);
        listener(watch.resource, type, obj);
      },
    })),
  );
  return {
    synced: () => handles.every((h) => h.hasSynced()),
    stop: async () => {
      await Promise.all(handles.map((h) => h.stop()));
    },
  };
}
