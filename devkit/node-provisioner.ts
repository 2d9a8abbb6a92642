/**
 * Persistent volumes for the real node (node.ts): a small external provisioner, the way
 * kind's local-path-provisioner works, running in the test process. It creates the default
 * StorageClass `hubmirror-hostpath` (provisioner `hubmirror.dev/hostpath`, reclaim policy
 * Delete, binding Immediate); for every claim that the PV controller hands to it (annotation
 * `volume.kubernetes.io/storage-provisioner`), it makes a folder under the node's volumes
 * folder (mode 0777: the pods run as arbitrary non-root users, and a hostPath volume gets no
 * fsGroup ownership change) and a hostPath PersistentVolume pre-bound to the claim; the real
 * PV binder (kube-controller-manager) then binds them. When such a volume is Released, it
 * removes the folder and the PersistentVolume. The folders live in the node's folder, which
 * the node's mount namespace shares with the host.
 *
 * hostPath in a PersistentVolume is allowed under the `restricted` Pod Security profile (the
 * profile checks the pod's own volumes, and a claim is allowed there).
 */
import { mkdirSync, rmSync, chmodSync } from "node:fs";
import { join } from "node:path";
import {
  CoreV1Api,
  StorageV1Api,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
} from "@kubernetes/client-node";

export const STORAGE_CLASS = "hubmirror-hostpath";
export const PROVISIONER = "hubmirror.dev/hostpath";

export interface Provisioner {
  /** Volumes provisioned so far, as PersistentVolume names. */
  readonly provisioned: readonly string[];
  stop(): Promise<void>;
}

function isConflict(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === 409;
}

export async function startProvisioner(kc: KubeConfig, volumesDir: string): Promise<Provisioner> {
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  mkdirSync(volumesDir, { recursive: true });
  await storage
    .createStorageClass({
      body: {
        metadata: {
          name: STORAGE_CLASS,
          annotations: { "storageclass.kubernetes.io/is-default-class": "true" },
        },
        provisioner: PROVISIONER,
        reclaimPolicy: "Delete",
        volumeBindingMode: "Immediate",
      },
    })
    .catch((err: unknown) => {
      if (!isConflict(err)) throw err;
    });

  const provisioned: string[] = [];
  const inFlight = new Set<string>();
  const errors: string[] = [];

  const provision = async (pvc: V1PersistentVolumeClaim) => {
    const uid = pvc.metadata?.uid;
    const name = pvc.metadata?.name;
    const namespace = pvc.metadata?.namespace;
    const annotations = pvc.metadata?.annotations ?? {};
    if (uid === undefined || name === undefined || namespace === undefined) return;
    if (pvc.status?.phase !== "Pending" || pvc.spec?.volumeName) return;
    if (annotations["volume.kubernetes.io/storage-provisioner"] !== PROVISIONER) return;
    const pvName = `pvc-${uid}`;
    if (inFlight.has(pvName) || provisioned.includes(pvName)) return;
    inFlight.add(pvName);
    try {
      const path = join(volumesDir, pvName);
      mkdirSync(path, { recursive: true });
      chmodSync(path, 0o777);
      const volume: V1PersistentVolume = {
        metadata: { name: pvName, annotations: { "pv.kubernetes.io/provisioned-by": PROVISIONER } },
        spec: {
          capacity: { storage: pvc.spec?.resources?.requests?.storage ?? "1Gi" },
          accessModes: pvc.spec?.accessModes ?? ["ReadWriteOnce"],
          persistentVolumeReclaimPolicy: "Delete",
          storageClassName: pvc.spec?.storageClassName ?? STORAGE_CLASS,
          volumeMode: pvc.spec?.volumeMode ?? "Filesystem",
          hostPath: { path, type: "Directory" },
          claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace, name, uid },
        },
      };
      await core.createPersistentVolume({ body: volume }).catch((err: unknown) => {
        if (!isConflict(err)) throw err;
      });
      provisioned.push(pvName);
    } catch (err) {
      errors.push(`${namespace}/${name}: ${String(err)}`);
    } finally {
      inFlight.delete(pvName);
    }
  };

  const reclaim = async (pv: V1PersistentVolume) => {
    const name = pv.metadata?.name;
    if (name === undefined || pv.metadata?.annotations?.["pv.kubernetes.io/provisioned-by"] !== PROVISIONER)
      return;
    if (pv.status?.phase !== "Released" || pv.spec?.persistentVolumeReclaimPolicy !== "Delete") return;
    const path = pv.spec.hostPath?.path;
    if (path !== undefined && path.startsWith(`${volumesDir}/`))
      rmSync(path, { recursive: true, force: true });
    await core.deletePersistentVolume({ name }).catch(() => undefined);
  };

  const informers: Informer<KubernetesObject>[] = [];
  const claims = makeInformer<V1PersistentVolumeClaim>(kc, "/api/v1/persistentvolumeclaims", () =>
    core.listPersistentVolumeClaimForAllNamespaces(),
  );
  for (const event of ["add", "update"] as const) {
    claims.on(event, (pvc) => {
      void provision(pvc);
    });
  }
  const volumes = makeInformer<V1PersistentVolume>(kc, "/api/v1/persistentvolumes", () =>
    core.listPersistentVolume(),
  );
  for (const event of ["add", "update"] as const) {
    volumes.on(event, (pv) => {
      void reclaim(pv);
    });
  }
  informers.push(claims, volumes);
  let stopped = false;
  let restarts = 0;
  for (const informer of informers) {
    // An informer stops on an error (the API server restarting): start it again, a bounded
    // number of times.
    informer.on("error", () => {
      if (stopped || restarts >= 50) return;
      restarts++;
      setTimeout(() => {
        if (!stopped) void informer.start().catch(() => undefined);
      }, 1_000);
    });
    await informer.start();
  }

  return {
    provisioned,
    async stop() {
      stopped = true;
      for (const informer of informers) await informer.stop();
      if (errors.length > 0) throw new Error(`provisioner errors: ${errors.join("; ")}`);
    },
  };
}
