/**
 * The prune stage through whole decisions (decide), over a small world the test keeps: the
 * MirrorJob's ConfigMaps and prune Jobs as the cluster would hold them, and a registry that
 * answers the `planPrune` query. Each reconcile asks decide, answers its queries until it asks
 * none (as the controller does), then carries the objects it created and the status it wrote
 * into the next reconcile.
 */
import type { V1ConfigMap, V1Job } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { MirrorJobStatus, Run } from "../../api/status.ts";
import { validateMirrorJob, type MirrorJob } from "../../api/validation.ts";
import { runNames } from "../../job/names.ts";
import { parseDeleteImageList } from "../../ocmirror/delete.ts";
import { PRUNE_RESULT_KEYS } from "../../report/prune-result.ts";
import { encodeJsonGzip, RESULT_KEYS } from "../../report/result.ts";
import { decide } from "../decide.ts";
import {
  after,
  BACKOFF,
  withAnswer,
  type Answer,
  type Decision,
  type Observed,
  type Query,
  type RegistryNeighbours,
  type Resolution,
} from "../protocol.ts";
import { inputsHash } from "../triggers.ts";
import { MAX_PRUNE_ATTEMPTS, NEIGHBOUR_WAIT_MS, PRUNE_POLL_MS } from "./prune.ts";
import { testSettings } from "../../../devkit/memory-shell.ts";

const REG = "reg.example.com/mirror";
const SRC = "quay.example.com";
const now = new Date("2026-11-27T12:00:00Z");
const settings = testSettings(["hub"]);
const push = {
  metadata: { name: "push" },
  data: {
    ".dockerconfigjson": Buffer.from(
      JSON.stringify({ auths: { "reg.example.com": { auth: Buffer.from("u:p").toString("base64") } } }),
    ).toString("base64"),
  },
};
const dg = (c: string) => `sha256:${c.repeat(64)}`;

function mirrorJob(spec: Record<string, unknown>, status: MirrorJobStatus): MirrorJob {
  const parsed = validateMirrorJob({
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: { name: "mj", namespace: "hub", uid: "uid-1", generation: 1 },
    spec: {
      imageSet: { inline: { mirror: { additionalImages: [{ name: `${SRC}/demo/busybox:stable` }] } } },
      registry: { url: REG, pushSecretRef: { name: "push" } },
      apply: { mode: "None" },
      ...spec,
    },
    status,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value;
}

/** What the test MirrorJob's runs mirrored (so that no run is due for a changed spec). */
const HASH = (() => {
  const mj = mirrorJob({}, {});
  if (mj.spec.imageSet.inline === undefined) throw new Error("no image set");
  return inputsHash(mj.spec, mj.spec.imageSet.inline);
})();

function run(id: string): Run {
  return {
    id,
    inputsHash: HASH,
    jobName: `mj-${id}`,
    trigger: "SpecChanged",
    generation: 1,
    startTime: "2026-11-27T10:00:00Z",
    completionTime: "2026-11-27T10:10:00Z",
    result: "Succeeded",
    verification: {
      reason: "AllImagesPresent",
      checked: 1,
      present: 1,
      missing: 0,
      mismatched: 0,
      errors: 0,
      completionTime: "2026-11-27T10:11:00Z",
    },
  };
}

/** A run's result ConfigMap (its dry-run mapping) and its input ConfigMap (its image set). */
function runConfigMaps(id: string, destinations: readonly string[], imageSet: string): V1ConfigMap[] {
  const names = runNames("mj", id);
  return [
    {
      metadata: { name: names.result },
      data: {
        [RESULT_KEYS.result]: JSON.stringify({
          version: 1,
          completedAt: now.toISOString(),
          dryRunExitCode: 0,
          exit: { code: 0, outcome: "success", failedCategories: [], description: "ok" },
          images: {},
          failedImages: [],
          failedImageCount: 0,
          plannedImageCount: destinations.length,
        }),
      },
      binaryData: {
        [RESULT_KEYS.mapping]: encodeJsonGzip(
          destinations.map((destination) => ({ source: "s/x:1", destination })),
        ),
      },
    },
    { metadata: { name: names.input }, data: { "imageset-config.yaml": imageSet } },
  ];
}

const OLD_ISC = `apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  platform:\n    channels: [{name: stable-4.19, minVersion: 4.19.1, maxVersion: 4.19.2}]\n    graph: true\n`;
const NEW_ISC = OLD_ISC.replace("minVersion: 4.19.1", "minVersion: 4.19.2");
const CURRENT = [
  `${REG}/openshift/release-images:4.19.2-x86_64`,
  `${REG}/openshift/release:4.19.2-x86_64-pod`,
  `${REG}/openshift/graph-image:latest`,
];
/** What `oc-mirror delete --generate` lists for the old image set (4.20 lists a shared component once). */
const LISTED = [
  [`docker://${REG}/openshift/release-images:4.19.1-x86_64`, "ocpRelease"],
  [`docker://${REG}/openshift/release-images:4.19.2-x86_64`, "ocpRelease"],
  [`docker://${REG}/openshift/release:4.19.1-x86_64-pod`, "ocpReleaseContent"],
  [`docker://${REG}/openshift/release:4.19.1-x86_64-cli`, "ocpReleaseContent"],
  [`docker://${REG}/openshift/graph-image:latest`, "cincinnatiGraph"],
] as const;

/** The test's cluster and registry. */
class World {
  configMaps = new Map<string, V1ConfigMap>();
  pruneJobs = new Map<string, V1Job>();
  /** Manifests per `host/repo`: tag or digest -> digest. */
  registry = new Map<string, string>([
    [`${REG}/openshift/release-images:4.19.1-x86_64`, dg("1")],
    [`${REG}/openshift/release-images:4.19.2-x86_64`, dg("2")],
    [`${REG}/openshift/release:4.19.1-x86_64-pod`, dg("p")],
    [`${REG}/openshift/release:4.19.2-x86_64-pod`, dg("p")],
    [`${REG}/openshift/release:4.19.1-x86_64-cli`, dg("a")],
    [`${REG}/openshift/graph-image:latest`, dg("g")],
  ]);
  neighbours: RegistryNeighbours = { keep: [], busy: [], unknown: [] };
  queries: Query[] = [];
  /** Outcome of the next prune Jobs to finish, by step: how the Job ends and what it writes. */
  status: MirrorJobStatus;
  spec: Record<string, unknown>;
  decision?: Decision;

  constructor(spec: Record<string, unknown>, status: MirrorJobStatus) {
    this.spec = spec;
    this.status = status;
    for (const cm of [
      ...runConfigMaps("runA", [...CURRENT, `${REG}/openshift/release-images:4.19.1-x86_64`], OLD_ISC),
      ...runConfigMaps("runB", CURRENT, NEW_ISC),
    ])
      this.configMaps.set(cm.metadata?.name ?? "", cm);
  }

  resolve(reference: string): Resolution {
    const at = reference.indexOf("@");
    if (at >= 0) {
      const repo = reference.slice(0, at);
      const digest = reference.slice(at + 1);
      const held = [...this.registry.entries()].some(([r, d]) => d === digest && r.startsWith(`${repo}:`));
      return held ? { state: "present", digest } : { state: "absent" };
    }
    const digest = this.registry.get(reference);
    return digest !== undefined ? { state: "present", digest } : { state: "absent" };
  }

  /** Deletes a manifest the way distribution does: every tag of the repository pointing at it. */
  deleteManifest(repository: string, digest: string): void {
    for (const [r, d] of [...this.registry.entries()])
      if (d === digest && r.startsWith(`${repository}:`)) this.registry.delete(r);
  }

  answer(query: Query): Answer {
    this.queries.push(query);
    switch (query.kind) {
      case "planPrune":
        return {
          kind: "planPrune",
          step: query.step,
          neighbours: this.neighbours,
          resolutions: new Map(
            query.candidates.concat(query.keep.references).map((r) => [r, this.resolve(r)]),
          ),
        };
      case "ensurePrune":
        for (const o of query.objects) {
          const name = o.metadata?.name ?? "";
          if (o.kind === "ConfigMap") {
            if (!this.configMaps.has(name)) this.configMaps.set(name, o);
          }
          if (o.kind === "Job" && !this.pruneJobs.has(name)) {
            const job = structuredClone(o) as V1Job;
            job.status = { active: 1 };
            this.pruneJobs.set(name, job);
          }
        }
        return { kind: "ensurePrune", step: query.step, outcome: { ok: true } };
      case "sealPrune":
        return { kind: "sealPrune", step: query.step, result: this.configMaps.get(query.resultName) };
      // The apply stage's: nothing applied yet, and applying fails (so the run is not applied).
      case "readApplied":
        return { kind: "readApplied", live: { objects: [], missing: [] } };
      case "apply":
        return {
          kind: "apply",
          outcome: { applied: [], missing: [], errors: ["the API server is down"], pullSecretWritten: false },
        };
      default:
        throw new Error(`unexpected query ${query.kind}`);
    }
  }

  reconcile(): Decision {
    const mj = mirrorJob(this.spec, this.status);
    let observed: Observed = {
      now,
      referenced: { secrets: new Map([["push", push]]), configMaps: new Map() },
      jobs: [],
      fleet: [],
      pods: [],
      pruneJobs: [...this.pruneJobs.values()],
      resultConfigMaps: new Map(this.configMaps),
      answers: {},
    };
    let decision = decide(mj, observed, settings);
    for (let i = 0; decision.query !== undefined; i++) {
      if (i === 10) throw new Error("too many queries");
      observed = withAnswer(observed, this.answer(decision.query));
      decision = decide(mj, observed, settings);
    }
    this.status = decision.status;
    this.decision = decision;
    return decision;
  }

  /** The running prune Job ends: oc-mirror's step did `work` and the reporter wrote `result`. */
  finishJob(outcome: "success" | "failure" | "crash", work: () => void = () => undefined): V1Job {
    const job = [...this.pruneJobs.values()].find((j) => j.status?.active === 1);
    if (job === undefined) throw new Error("no prune Job runs");
    const step = job.metadata?.annotations?.["hubmirror.dev/prune-step"];
    const resultName = `${job.metadata?.name ?? ""}-result`;
    if (outcome !== "crash") work();
    const input = this.configMaps.get(`${job.metadata?.name ?? ""}-input`);
    const result: V1ConfigMap = {
      metadata: { name: resultName },
      data: {
        [PRUNE_RESULT_KEYS.result]: JSON.stringify({
          version: 1,
          step,
          completedAt: now.toISOString(),
          exit: {
            code: outcome === "success" ? 0 : outcome === "failure" ? 1 : null,
            outcome,
            description: outcome === "success" ? "oc-mirror exited 0" : `oc-mirror ${outcome}`,
          },
          images: {},
          failedImages: [],
          failedImageCount: 0,
          ...(step === "generate" && { listed: LISTED.length }),
        }),
      },
      ...(step === "generate" &&
        outcome === "success" && {
          binaryData: {
            [PRUNE_RESULT_KEYS.deleteList]: encodeJsonGzip(
              LISTED.map(([imageReference, type]) => ({ imageName: `${SRC}/x`, imageReference, type })),
            ),
          },
        }),
    };
    expect(input).toBeDefined();
    this.configMaps.set(resultName, result);
    const done = outcome === "success" ? "Complete" : "Failed";
    job.status = { conditions: [{ type: done, status: "True", lastTransitionTime: now }] };
    return job;
  }

  /** Runs the delete Job's list against the registry (oc-mirror delete --delete-yaml-file). */
  deleteListed(job: V1Job, limit = Infinity): void {
    const input =
      this.configMaps.get(`${job.metadata?.name ?? ""}-input`)?.data?.["delete-images.yaml"] ?? "";
    const list = parseDeleteImageList(input);
    if ("error" in list) throw new Error(list.error);
    for (const item of list.items.slice(0, limit)) {
      const ref = item.imageReference.replace(/^docker:\/\//, "");
      const at = ref.indexOf("@");
      this.deleteManifest(ref.slice(0, at), ref.slice(at + 1));
    }
  }

  runningStep(): string | undefined {
    return [...this.pruneJobs.values()].find((j) => j.status?.active === 1)?.metadata?.annotations?.[
      "hubmirror.dev/prune-step"
    ];
  }
}

const condition = (d: Decision | undefined, type: string) =>
  d?.status.conditions?.find((c) => c.type === type);
const events = (d: Decision | undefined) => d?.events.map((e) => e.reason) ?? [];
const applied = (baseline = "runA"): MirrorJobStatus => ({
  lastRun: run("runB"),
  lastSuccessfulRun: run("runB"),
  prune: { baselineRun: baseline },
});

/** Runs the world until a plan is made (the generate Job done; with Auto, the delete Job started). */
function toPlan(w: World): Decision {
  const first = w.reconcile();
  expect(w.runningStep()).toBe("generate");
  expect(first.status.phase).toBe("Pruning");
  expect(first.next).toEqual(after(PRUNE_POLL_MS));
  w.finishJob("success");
  const planned = w.reconcile();
  if (planned.status.prune?.current?.phase !== "Deleting") return planned;
  // Approved: the registry is checked again, and the delete Job starts, in the next reconcile.
  expect(planned.next).toEqual(after(1_000));
  return w.reconcile();
}

describe("prune stage", () => {
  it("is off by default: no condition, no query, no Job", () => {
    const w = new World({}, applied());
    const d = w.reconcile();
    expect(condition(d, "Pruned")).toBeUndefined();
    expect(w.queries).toEqual([]);
    expect(d.status.prune).toBeUndefined();
  });

  it("records the first verified run as the baseline", () => {
    const w = new World(
      { prune: { enabled: true } },
      { lastRun: run("runA"), lastSuccessfulRun: run("runA") },
    );
    const d = w.reconcile();
    expect(d.status.prune).toEqual({ baselineRun: "runA" });
    expect(condition(d, "Pruned")).toMatchObject({ status: "True", reason: "BaselineRecorded" });
    expect(w.queries).toEqual([]);
  });

  it("lists the baseline's image set with oc-mirror, plans by digest and waits for approval of the shown hash", () => {
    const w = new World({ prune: { enabled: true } }, applied());
    const first = w.reconcile();
    expect(events(first)).toEqual(["PruneStarted"]);
    const generate = w.queries.find((q) => q.kind === "ensurePrune");
    const input: V1ConfigMap | undefined = generate?.kind === "ensurePrune" ? generate.objects[0] : undefined;
    expect(parse(input?.data?.["delete-imageset-config.yaml"] ?? "")).toEqual({
      apiVersion: "mirror.openshift.io/v2alpha1",
      kind: "DeleteImageSetConfiguration",
      delete: (parse(OLD_ISC) as { mirror: unknown }).mirror,
    });
    w.finishJob("success");
    const d = w.reconcile();
    expect(w.queries.map((q) => q.kind)).toEqual(["ensurePrune", "sealPrune", "planPrune", "ensurePrune"]);
    expect(d.status.pendingPrune).toMatchObject({
      fromRun: "runA",
      toRun: "runB",
      manifests: 2,
      keptInUse: 3,
      keptShared: 0,
      sample: [`${REG}/openshift/release-images:4.19.1-x86_64`, `${REG}/openshift/release:4.19.1-x86_64-cli`],
    });
    const hash = d.status.pendingPrune?.hash ?? "";
    expect(condition(d, "Pruned")).toMatchObject({ status: "False", reason: "AwaitingPruneApproval" });
    expect(condition(d, "Pruned")?.message).toContain(`set spec.prune.approvedPlan to ${hash}`);
    expect(events(d)).toEqual(["PrunePlanned", "PruneApprovalRequired"]);
    expect(d.status.prune?.current).toMatchObject({ phase: "Planned", hash });
    // Waiting: nothing else to do until the spec changes.
    expect(d.next).toEqual({ kind: "awaitChange" });
    const queried = w.queries.length;
    expect(w.reconcile().status.pendingPrune?.hash).toBe(hash);
    expect(w.queries).toHaveLength(queried);

    // A wrong hash deletes nothing and says so.
    w.spec = { prune: { enabled: true, approvedPlan: "deadbeefdeadbeef" } };
    const wrong = w.reconcile();
    expect(wrong.status.pendingPrune?.hash).toBe(hash);
    expect(condition(wrong, "Pruned")?.message).toContain(
      "spec.prune.approvedPlan deadbeefdeadbeef is not this plan's hash",
    );
    expect(w.runningStep()).toBeUndefined();

    // The right one: checked again, then deleted by digest.
    w.spec = { prune: { enabled: true, approvedPlan: hash } };
    const go = w.reconcile();
    expect(w.queries.at(-2)).toMatchObject({
      kind: "planPrune",
      step: expect.stringMatching(/^check:/) as unknown,
    });
    expect(go.status.pendingPrune).toBeUndefined();
    expect(w.runningStep()).toBe("delete");
    expect(events(go)).toEqual(["PruneDeleting"]);
    const job = w.finishJob("success", () => {
      w.deleteListed([...w.pruneJobs.values()].find((j) => j.status?.active === 1) ?? {});
    });
    expect(job.metadata?.annotations?.["hubmirror.dev/prune-step"]).toBe("delete");
    const done = w.reconcile();
    expect(condition(done, "Pruned")).toMatchObject({ status: "True", reason: "PruneSucceeded" });
    expect(done.status.prune?.baselineRun).toBe("runB");
    expect(done.status.prune?.current).toBeUndefined();
    expect(done.status.prune?.last).toMatchObject({ result: "Succeeded", deleted: 2, manifests: 2, hash });
    expect(events(done)).toEqual(["Pruned"]);
    // Exactly the old release's manifests are gone; the shared pod and the current release stay.
    expect([...w.registry.keys()].sort()).toEqual([
      `${REG}/openshift/graph-image:latest`,
      `${REG}/openshift/release-images:4.19.2-x86_64`,
      `${REG}/openshift/release:4.19.1-x86_64-pod`,
      `${REG}/openshift/release:4.19.2-x86_64-pod`,
    ]);
  });

  it("never deletes by tag: the delete list names manifests by digest", () => {
    const w = new World({ prune: { enabled: true, approval: "Auto" } }, applied());
    toPlan(w);
    const job = [...w.pruneJobs.values()].find((j) => j.status?.active === 1);
    const list = parseDeleteImageList(
      w.configMaps.get(`${job?.metadata?.name ?? ""}-input`)?.data?.["delete-images.yaml"] ?? "",
    );
    expect("items" in list && list.items.map((i) => i.imageReference)).toEqual([
      `docker://${REG}/openshift/release-images@${dg("1")}`,
      `docker://${REG}/openshift/release@${dg("a")}`,
    ]);
  });

  it("keeps what another MirrorJob on the registry needs, and says whose it is", () => {
    const w = new World({ prune: { enabled: true, approval: "Auto" } }, applied());
    w.neighbours = {
      keep: [
        {
          mirrorJob: "team-b/old-clusters",
          runId: "r9",
          references: [`${REG}/openshift/release-images:4.19.1-x86_64`],
        },
      ],
      busy: [],
      unknown: [],
    };
    toPlan(w);
    w.finishJob("success", () => {
      w.deleteListed([...w.pruneJobs.values()].find((j) => j.status?.active === 1) ?? {});
    });
    const done = w.reconcile();
    expect(w.registry.has(`${REG}/openshift/release-images:4.19.1-x86_64`)).toBe(true);
    expect(w.registry.has(`${REG}/openshift/release:4.19.1-x86_64-cli`)).toBe(false);
    expect(done.status.prune?.last).toMatchObject({ deleted: 1, manifests: 1, keptShared: 1 });
    expect(done.status.prune?.last?.kept[0]).toEqual({
      reference: `${REG}/openshift/release-images:4.19.1-x86_64`,
      reason: "SharedWithMirrorJob",
      mirrorJob: "team-b/old-clusters",
    });
    expect(condition(done, "Pruned")?.message).toContain("shared with MirrorJob team-b/old-clusters");
  });

  it("with Deny shows the plan and never deletes", () => {
    const w = new World({ prune: { enabled: true, approval: "Deny" } }, applied());
    const d = toPlan(w);
    expect(condition(d, "Pruned")).toMatchObject({ status: "False", reason: "PruneDenied" });
    expect(d.status.pendingPrune?.manifests).toBe(2);
    expect(w.reconcile().status.pendingPrune?.manifests).toBe(2);
    expect(w.runningStep()).toBeUndefined();
    expect(w.registry.size).toBe(6);
  });

  it("retries an interrupted delete with what is left, and converges", () => {
    const w = new World({ prune: { enabled: true, approval: "Auto" } }, applied());
    toPlan(w);
    // The pod is killed after the first deletion.
    w.finishJob("crash", () => undefined);
    w.deleteManifest(`${REG}/openshift/release-images`, dg("1"));
    const failed = w.reconcile();
    expect(events(failed)).toEqual(["PruneAttemptFailed"]);
    expect(failed.next).toEqual(BACKOFF);
    expect(condition(failed, "Pruned")).toMatchObject({ status: "False", reason: "PruneRetrying" });
    expect(failed.status.prune?.current).toMatchObject({ phase: "Deleting", failedAttempts: 1, attempt: 2 });
    const retry = w.reconcile();
    expect(events(retry)).toEqual(["PruneDeleting"]);
    const job = [...w.pruneJobs.values()].find((j) => j.status?.active === 1);
    const list = parseDeleteImageList(
      w.configMaps.get(`${job?.metadata?.name ?? ""}-input`)?.data?.["delete-images.yaml"] ?? "",
    );
    // Only what is still there.
    expect("items" in list && list.items.map((i) => i.imageReference)).toEqual([
      `docker://${REG}/openshift/release@${dg("a")}`,
    ]);
    w.finishJob("success", () => {
      if (job !== undefined) w.deleteListed(job);
    });
    const done = w.reconcile();
    expect(done.status.prune?.last).toMatchObject({ result: "Succeeded", deleted: 2, failedAttempts: 1 });
  });

  it("gives up after repeated failures, and says so", () => {
    const w = new World({ prune: { enabled: true, approval: "Auto" } }, applied());
    toPlan(w);
    let last: Decision | undefined;
    for (let i = 0; i < MAX_PRUNE_ATTEMPTS; i++) {
      w.finishJob("failure");
      last = w.reconcile();
      if (i < MAX_PRUNE_ATTEMPTS - 1) {
        expect(w.runningStep()).toBeUndefined();
        w.reconcile();
        expect(w.runningStep()).toBe("delete");
      }
    }
    expect(condition(last, "Pruned")).toMatchObject({ status: "False", reason: "PruneFailed" });
    expect(events(last)).toEqual(["PruneAttemptFailed", "PruneFailed"]);
    expect(last?.status.prune?.last).toMatchObject({ result: "Failed", failedAttempts: MAX_PRUNE_ATTEMPTS });
    expect(last?.status.prune?.baselineRun).toBe("runA");
    w.reconcile();
    expect(w.runningStep()).toBeUndefined();
  });

  it("refuses to prune to a run that lists nothing (everything would go)", () => {
    const w = new World({ prune: { enabled: true, approval: "Auto" } }, applied());
    for (const cm of runConfigMaps("runB", [], NEW_ISC)) w.configMaps.set(cm.metadata?.name ?? "", cm);
    const d = w.reconcile();
    expect(condition(d, "Pruned")).toMatchObject({ status: "False", reason: "PruneRefused" });
    expect(condition(d, "Pruned")?.message).toMatch(
      /run runB lists no image in .*: a prune to it would delete everything/,
    );
    expect(events(d)).toEqual(["PruneRefused"]);
    expect(w.queries).toEqual([]);
    // Said once.
    expect(events(w.reconcile())).toEqual([]);
  });

  it("waits until the run's mirror sets are applied (apply.mode Auto)", () => {
    const w = new World(
      { prune: { enabled: true }, apply: { mode: "Auto" } },
      { ...applied(), appliedRun: "runA" },
    );
    const d = w.reconcile();
    expect(condition(d, "Pruned")).toMatchObject({ status: "False", reason: "WaitingForApply" });
    expect(condition(d, "Pruned")?.message).toContain("may still pull run runA's images");
    expect(w.queries.some((q) => q.kind === "ensurePrune")).toBe(false);
  });

  it("waits while a MirrorJob on the same registry is mirroring", () => {
    const w = new World({ prune: { enabled: true } }, applied());
    w.neighbours = { keep: [], busy: ["team-b/tools"], unknown: [] };
    w.reconcile();
    w.finishJob("success");
    const d = w.reconcile();
    expect(condition(d, "Pruned")).toMatchObject({ status: "False", reason: "WaitingForMirrorJobs" });
    expect(d.next).toEqual(after(NEIGHBOUR_WAIT_MS));
    expect(d.status.pendingPrune).toBeUndefined();
  });

  it("starts no run while a prune Job uses the workspace and cache", () => {
    const w = new World({ prune: { enabled: true }, runRequest: "now" }, applied());
    w.reconcile();
    expect(w.runningStep()).toBe("generate");
    const d = w.reconcile();
    expect(d.status.phase).toBe("Pruning");
    expect(d.status.currentRun).toBeUndefined();
    expect(condition(d, "Reconciling")).toMatchObject({ status: "True", reason: "Pruning" });
  });

  it("stops a prune when it is turned off", () => {
    const w = new World({ prune: { enabled: true } }, applied());
    w.reconcile();
    w.spec = { prune: { enabled: false } };
    const d = w.reconcile();
    expect(d.effects).toContainEqual({ kind: "deletePrune", pruneId: expect.any(String) as unknown });
    expect(events(d)).toEqual(["PruneCancelled"]);
    expect(condition(d, "Pruned")).toBeUndefined();
  });
});
