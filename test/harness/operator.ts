/**
 * Runs the operator in-process for e2e tests (the real manager: leader election,
 * informers, work queue, controller) with its log lines captured, plus helpers to create
 * the Secrets and MirrorJobs the tests need.
 */
import { Writable } from "node:stream";
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { inject } from "vitest";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../../src/api/status.ts";
import { runManager, type Manager, type ManagerConfig } from "../../src/cli/manager.ts";
import { TEST_POD_RUNNER_NODE_SELECTOR } from "../../devkit/pod-runner.ts";
import {
  createSourceInputs as createDevkitSourceInputs,
  dockerConfigJson,
  SOURCE_INPUTS,
  upstreamSource as devkitUpstreamSource,
  type SourceInputOptions as DevkitSourceInputOptions,
} from "../../devkit/source-inputs.ts";
import type { UpstreamInfo } from "../../devkit/upstream.ts";
import { imageSetConfig, type ImageSetConfiguration, type ImageSetParts } from "../../devkit/upstream-isc.ts";
import { waitFor } from "../../devkit/processes.ts";

export interface RunningOperator extends Manager {
  readonly logs: string[];
}

export async function startOperator(
  kc: KubeConfig,
  overrides: Partial<ManagerConfig> = {},
): Promise<RunningOperator> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString("utf8"));
      done();
    },
  });
  const identity = overrides.identity ?? `test-${Math.random().toString(36).slice(2, 8)}`;
  const manager = await runManager(
    {
      namespace: "default",
      identity,
      leaseName: "hub-mirror-operator-test",
      leaderElection: false,
      healthPort: 0,
      operatorImage: "example.invalid/hub-mirror-operator:test",
      defaultOcMirrorImage: "registry.redhat.io/openshift4/oc-mirror-plugin-rhel9:v4.20",
      defaultOcMirrorLine: "4.20",
      heartbeatTimeoutSeconds: 6,
      // Tests that drain nodes say how long changes due together wait for each other.
      drainBatchSeconds: 0,
      workers: 2,
      // Every test file's operator serves all namespaces and counts every run Job of the shared
      // control plane against its limits: limits that tests in parallel never reach unless a
      // test sets its own (the operator's defaults are 10 and 5). Runs into one target take
      // turns, as by default: real pushes of the same manifests into one repository race.
      maxRuns: 50,
      maxRunsPerRegistry: 50,
      maxRunsPerTarget: 1,
      // No namespace may change the cluster unless a test says so (the apply tests do).
      applyNamespaces: [],
      watchNamespaces: [],
      ...overrides,
    },
    kc,
    pino({ level: "debug", base: { identity } }, sink),
  );
  return Object.assign(manager, { logs });
}

/** A kubernetes.io/dockerconfigjson Secret for the test registry (or the given content). */
export async function createPushSecret(
  kc: KubeConfig,
  namespace: string,
  name = "push",
  content?: string,
): Promise<void> {
  const registry = inject("registry");
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace,
    body: {
      metadata: { name },
      type: "kubernetes.io/dockerconfigjson",
      stringData: {
        ".dockerconfigjson": content ?? dockerConfigJson(registry.host, registry.username, registry.password),
      },
    },
  });
}

export async function createRegistryCa(
  kc: KubeConfig,
  namespace: string,
  name = "registry-ca",
): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({
    namespace,
    body: { metadata: { name }, data: { "ca-bundle.crt": inject("registry").caPem } },
  });
}

/** The global setup's offline upstream (see devkit/upstream.ts). */
export function upstream(): UpstreamInfo {
  return inject("upstream");
}

/** An ImageSetConfiguration of the upstream's content (see devkit/upstream-isc.ts for the parts). */
export function upstreamImageSet(parts: ImageSetParts, up: UpstreamInfo = upstream()): ImageSetConfiguration {
  return imageSetConfig(up.content, parts);
}

export { dockerConfigJson, SOURCE_INPUTS };

export interface SourceInputOptions extends Omit<DevkitSourceInputOptions, "names"> {
  /** Another upstream than the global setup's (one a test started itself: see upstreamInfo). */
  readonly upstream?: UpstreamInfo;
}

/**
 * What a MirrorJob needs to mirror from the upstream (the global setup's, unless
 * `options.upstream`): see devkit/source-inputs.ts.
 */
export async function createSourceInputs(
  kc: KubeConfig,
  namespace: string,
  options: SourceInputOptions = {},
): Promise<void> {
  const { upstream: up = upstream(), ...rest } = options;
  await createDevkitSourceInputs(kc, namespace, up, rest);
}

/** `spec.source` for the upstream (with createSourceInputs' objects). */
export function upstreamSource(up: UpstreamInfo = upstream()): Record<string, unknown> {
  return devkitUpstreamSource(up);
}

export interface MirrorJobObject {
  metadata: { name: string; namespace: string; generation?: number; uid?: string };
  spec: Record<string, unknown>;
  status?: MirrorJobStatus;
}

export function mirrorJobs(kc: KubeConfig) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: GROUP, version: VERSION, plural: PLURAL };
  return {
    /**
     * Creates a MirrorJob. Unless the spec sets spec.mirror.nodeSelector, its pods get
     * TEST_POD_RUNNER_NODE_SELECTOR: on a cluster with a scheduler they stay Pending for the
     * test pod runner (without one, as on the local control plane, it changes nothing).
     */
    async create(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
      const mirror = (spec.mirror ?? {}) as Record<string, unknown>;
      const withSelector = {
        ...spec,
        mirror: { ...mirror, nodeSelector: mirror.nodeSelector ?? TEST_POD_RUNNER_NODE_SELECTOR },
      };
      await api.createNamespacedCustomObject({
        ...base,
        namespace,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "MirrorJob",
          metadata: { name },
          spec: withSelector,
        },
      });
    },
    async get(namespace: string, name: string): Promise<MirrorJobObject> {
      return (await api.getNamespacedCustomObject({ ...base, namespace, name })) as MirrorJobObject;
    },
    async delete(namespace: string, name: string): Promise<void> {
      await api.deleteNamespacedCustomObject({ ...base, namespace, name });
    },
    async patchSpec(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
      await api.patchNamespacedCustomObject(
        { ...base, namespace, name, body: { spec } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    },
    /** Waits until `check(status)` holds; returns the object. */
    async waitFor(
      namespace: string,
      name: string,
      what: string,
      check: (mj: MirrorJobObject) => boolean,
      timeoutMs = 60_000,
    ): Promise<MirrorJobObject> {
      return waitFor(
        `MirrorJob ${namespace}/${name}: ${what}`,
        async () => {
          const mj = await this.get(namespace, name);
          return check(mj) ? mj : undefined;
        },
        { timeoutMs, intervalMs: 150 },
      );
    },
  };
}

export function condition(mj: MirrorJobObject, type: string) {
  return mj.status?.conditions?.find((c) => c.type === type);
}
