/**
 * The pod runner for a test file: started once before its tests, serving the namespace of
 * the test that is running, with per-MirrorJob behaviours that are reset after each test.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll } from "vitest";
import { LABELS } from "../../src/job/names.ts";
import { adminKubeConfig, type TestNamespace } from "./kube.ts";
import { startPodRunner, type PodBehaviour, type PodRunner } from "../../devkit/pod-runner.ts";

export interface TestPodRunner {
  /** What the runner does for pods of a MirrorJob, by the MirrorJob's name (default: success). */
  readonly behaviours: Map<string, PodBehaviour>;
  /** The running runner (inside tests). */
  runner(): PodRunner;
  /** Its folder (volumes, logs). */
  root(): string;
}

export function usePodRunner(ns: TestNamespace): TestPodRunner {
  const behaviours = new Map<string, PodBehaviour>();
  let runner: PodRunner | undefined;
  let root = "";
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "hubmirror-pods-"));
    runner = startPodRunner({
      kc: adminKubeConfig(),
      root,
      namespaces: () => {
        try {
          return [ns.name];
        } catch {
          return []; // between tests
        }
      },
      behaviour: (pod: V1Pod) => behaviours.get(pod.metadata?.labels?.[LABELS.mirrorJob] ?? "") ?? {},
    });
  });
  afterAll(async () => {
    await runner?.stop();
    // HUBMIRROR_KEEP_HARNESS=1 keeps the pods' volumes and logs (each container's output).
    if (process.env.HUBMIRROR_KEEP_HARNESS === "1") console.log(`pod runner folder kept: ${root}`);
    else rmSync(root, { recursive: true, force: true });
  });
  afterEach(() => {
    behaviours.clear();
  });
  return {
    behaviours,
    runner: () => {
      if (runner === undefined) throw new Error("usePodRunner: not started");
      return runner;
    },
    root: () => root,
  };
}
