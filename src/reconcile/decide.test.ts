import type { V1ConfigMap, V1Job, V1Secret } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { validateMirrorJob, type MirrorJob } from "../api/validation.ts";
import type { MirrorJobStatus, Run } from "../api/status.ts";
import { runNames } from "../job/names.ts";
import { RESULT_KEYS, encodeJsonGzip } from "../report/result.ts";
import type { VerifyResult } from "../registry/verify.ts";
import { decide } from "./decide.ts";
import type {
  Answers,
  Decision,
  EnsureOutcome,
  Observed,
  Query,
  RegistryCheck,
  RunSlot,
} from "./protocol.ts";
import { testSettings } from "../../devkit/memory-shell.ts";

const settings = testSettings(["ns"]);
const now = new Date("2026-11-23T10:00:00Z");
const verified = {
  reason: "AllImagesPresent",
  checked: 1,
  present: 1,
  missing: 0,
  mismatched: 0,
  errors: 0,
  completionTime: "2026-11-23T09:59:00Z",
};

function verifyResult(missing: string[] = []): VerifyResult {
  return {
    target: "reg.example.com/mirror",
    checked: 1 + missing.length,
    present: 1,
    missing: missing.length,
    mismatched: 0,
    errors: 0,
    digestsCompared: 0,
    problems: missing.map((destination) => ({
      destination,
      problem: "missing" as const,
      kind: "image" as const,
    })),
    releasePayloadMissing: false,
    catalogsMissing: [],
  };
}

function mirrorJob(spec: Record<string, unknown> = {}, status?: MirrorJobStatus, generation = 1): MirrorJob {
  const result = validateMirrorJob({
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: {
      name: "mj",
      namespace: "ns",
      uid: "uid-1",
      generation,
      creationTimestamp: "2026-11-23T09:00:00Z",
    },
    spec: {
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] } } },
      registry: { url: "reg.example.com/mirror", pushSecretRef: { name: "push" } },
      // The run lifecycle without the apply stage (apply.test.ts covers it).
      apply: { mode: "None" },
      ...spec,
    },
    ...(status && { status }),
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

const pushSecret: V1Secret = {
  metadata: { name: "push" },
  type: "kubernetes.io/dockerconfigjson",
  data: {
    ".dockerconfigjson": Buffer.from(
      JSON.stringify({ auths: { "reg.example.com": { auth: Buffer.from("u:p").toString("base64") } } }),
    ).toString("base64"),
  },
};

/** The shell's answers, named as the tests give them. */
interface Given {
  /** The run slot (default: granted). */
  readonly slot?: RunSlot;
  readonly registryCheck?: RegistryCheck;
  readonly verification?: { readonly runId: string; readonly result: VerifyResult };
  readonly sealed?: { readonly runId: string; readonly result: V1ConfigMap | undefined };
  readonly ensured?: { readonly runId: string; readonly outcome: EnsureOutcome };
}

function answersOf(given: Given): Answers {
  return {
    runSlot: { kind: "runSlot", slot: given.slot ?? { granted: true } },
    ...(given.registryCheck !== undefined && {
      checkRegistry: { kind: "checkRegistry", result: given.registryCheck },
    }),
    ...(given.verification !== undefined && {
      verify: { kind: "verify", completionTime: now.toISOString(), ...given.verification },
    }),
    ...(given.sealed !== undefined && { sealRun: { kind: "sealRun", ...given.sealed } }),
    ...(given.ensured !== undefined && { ensure: { kind: "ensure", ...given.ensured } }),
  };
}

function observed(extra: Partial<Omit<Observed, "answers">> & Given = {}): Observed {
  const { registryCheck, verification, sealed, ensured, slot, ...rest } = extra;
  return {
    now,
    referenced: { secrets: new Map([["push", pushSecret]]), configMaps: new Map() },
    jobs: [],
    fleet: [],
    pods: [],
    resultConfigMaps: new Map(),
    ...rest,
    answers: answersOf({
      ...(slot !== undefined && { slot }),
      ...(registryCheck !== undefined && { registryCheck }),
      ...(verification !== undefined && { verification }),
      ...(sealed !== undefined && { sealed }),
      ...(ensured !== undefined && { ensured }),
    }),
  };
}

/** What a decision asks the shell to do: its effects, then its query. */
function asked(d: Decision): unknown[] {
  return [...d.effects, ...(d.query !== undefined ? [d.query] : [])];
}

function askedKinds(d: Decision): string[] {
  return [...d.effects.map((e) => e.kind), ...(d.query !== undefined ? [d.query.kind] : [])];
}

function conditionOf(d: Decision, type: string) {
  return d.status.conditions?.find((c) => c.type === type);
}

type EnsureAction = Extract<Query, { kind: "ensure" }>;

/**
 * Decides like the shell when a run is due: once to learn about the registry check, once
 * with its answer (which asks to create the run's objects), once with the creation's
 * outcome. Returns the last decision and the objects it asked to create.
 */
function decideStarting(
  mj: MirrorJob,
  extra: Partial<Observed> = {},
  outcome: EnsureOutcome = { ok: true },
): Decision & { ensure: EnsureAction } {
  const first = decide(mj, observed(extra), settings);
  expect(askedKinds(first)).toEqual(["checkRegistry"]);
  const second = decide(mj, observed({ ...extra, registryCheck: { ok: true } }), settings);
  const ensure = second.query?.kind === "ensure" ? second.query : undefined;
  if (ensure === undefined) throw new Error("no ensure action");
  const last = decide(
    mj,
    observed({ ...extra, registryCheck: { ok: true }, ensured: { runId: ensure.runId, outcome } }),
    settings,
  );
  expect(askedKinds(last)).not.toContain("ensure");
  return { ...last, ensure };
}

function job(name: string, id: string, finished?: "Complete" | "Failed"): V1Job {
  return {
    metadata: {
      name,
      labels: { "hubmirror.dev/run": id },
      annotations: { "hubmirror.dev/trigger": "Created" },
      creationTimestamp: now,
    },
    status: finished
      ? { conditions: [{ type: finished, status: "True", lastTransitionTime: now }] }
      : { active: 1 },
  };
}

describe("decide: starting runs", () => {
  it("checks the registry, then starts a first run with all its objects", () => {
    const d = decideStarting(mirrorJob());
    expect(d.ensure.objects.map((o) => o.kind)).toEqual([
      "ServiceAccount",
      "PersistentVolumeClaim",
      "PersistentVolumeClaim",
      "ConfigMap",
      "ConfigMap",
      "Role",
      "RoleBinding",
      "Job",
    ]);
    expect(d.status.currentRun).toMatchObject({ trigger: "Created", generation: 1 });
    expect(d.status.phase).toBe("Mirroring");
    expect(conditionOf(d, "Reconciling")?.status).toBe("True");
    expect(conditionOf(d, "PreflightPassed")?.status).toBe("True");
    expect(d.events.map((e) => e.reason)).toEqual(["RunStarted"]);
    // Named after the run: a restarted operator that repeats this decision does not say it twice.
    expect(d.events[0]?.once).toBe(`run-${d.status.currentRun?.id ?? ""}-started`);
  });

  it("shows the review checklist's warnings without blocking the run", () => {
    const d = decideStarting(
      mirrorJob({ imageSet: { inline: { mirror: { platform: { channels: [{ name: "stable-4.19" }] } } } } }),
    );
    expect(d.status.currentRun).toBeDefined();
    expect(conditionOf(d, "PreflightPassed")).toMatchObject({
      status: "True",
      reason: "PreflightSucceededWithWarnings",
    });
    expect(conditionOf(d, "PreflightPassed")?.message).toMatch(
      /no pinned minVersion.*without platform.graph: true/,
    );
    expect(d.events.map((e) => e.reason)).toEqual(["ImageSetReview", "ImageSetReview", "RunStarted"]);
  });

  it("names the same run again when decided twice (idempotent after a restart)", () => {
    const a = decideStarting(mirrorJob());
    const b = decideStarting(mirrorJob());
    expect(a.status.currentRun?.jobName).toBe(b.status.currentRun?.jobName);
  });

  it("reports an object the API server refused: the field, one Event, backoff, and no run", () => {
    const refusal = {
      kind: "PersistentVolumeClaim",
      name: "mj-cache",
      code: 422,
      message:
        'PersistentVolumeClaim "mj-cache" is invalid: spec.resources[storage]: must be greater than zero',
      fields: ["spec.resources[storage]"],
    };
    const d = decideStarting(mirrorJob({ storage: { cache: { size: "0" } } }), {}, { ok: false, refusal });
    expect(d.next).toEqual({ kind: "backoff" });
    expect(d.status.currentRun).toBeUndefined();
    expect(d.status.phase).toBe("Failed");
    expect(conditionOf(d, "Stalled")).toMatchObject({ status: "True", reason: "ObjectRejected" });
    expect(conditionOf(d, "Stalled")?.message).toBe(
      'the API server refused PersistentVolumeClaim mj-cache (from spec.storage.cache.size): PersistentVolumeClaim "mj-cache" is invalid: spec.resources[storage]: must be greater than zero; correct spec.storage.cache.size',
    );
    expect(conditionOf(d, "Ready")).toMatchObject({ status: "False", reason: "ObjectRejected" });
    expect(d.events).toMatchObject([{ type: "Warning", reason: "ObjectRejected" }]);
    // What was created of the run is removed again.
    expect(asked(d)).toEqual([
      { kind: "deleteRun", runId: d.ensure.runId, jobName: expect.any(String) as string },
    ]);
    // The same refusal on the next try: no second Event.
    const again = decideStarting(
      mirrorJob({ storage: { cache: { size: "0" } } }, d.status),
      {},
      { ok: false, refusal },
    );
    expect(again.events).toEqual([]);
    expect(again.status.conditions).toEqual(d.status.conditions);
  });

  it("starts no run while suspended", () => {
    const d = decide(mirrorJob({ suspend: true }), observed(), settings);
    expect(asked(d)).toEqual([]);
    expect(d.status.phase).toBe("Suspended");
  });

  it("starts a run for a new runRequest and echoes it", () => {
    const done = decideStarting(mirrorJob());
    const finished: MirrorJobStatus = {
      ...done.status,
      lastRun: { ...(done.status.currentRun as Run), result: "Succeeded", verification: verified },
    };
    delete finished.currentRun;
    expect(asked(decide(mirrorJob({}, finished), observed(), settings))).toEqual([]);
    const d = decideStarting(mirrorJob({ runRequest: "now" }, finished, 2));
    expect(d.status.currentRun?.trigger).toBe("RunRequest");
    expect(d.status.lastHandledRunRequest).toBe("now");
  });

  it("starts a scheduled run when its time has passed, and says when the next one is", () => {
    const base = decideStarting(mirrorJob({ schedule: "0 * * * *" }));
    const status: MirrorJobStatus = {
      ...base.status,
      lastRun: {
        ...(base.status.currentRun as Run),
        startTime: "2026-11-23T08:30:00Z",
        result: "Succeeded",
        verification: verified,
      },
    };
    delete status.currentRun;
    const d = decideStarting(mirrorJob({ schedule: "0 * * * *" }, status));
    expect(d.status.currentRun?.trigger).toBe("Schedule");
    const idle = decide(
      mirrorJob(
        { schedule: "0 * * * *" },
        { ...status, lastRun: { ...(status.lastRun as Run), startTime: "2026-11-23T09:59:00Z" } },
      ),
      observed(),
      settings,
    );
    expect(idle.status.nextScheduledRun).toBe("2026-11-23T10:00:00.000Z");
  });
});

describe("decide: preflight", () => {
  it("names a missing Secret and retries with backoff", () => {
    const d = decide(
      mirrorJob(),
      observed({ referenced: { secrets: new Map(), configMaps: new Map() } }),
      settings,
    );
    expect(d.next).toEqual({ kind: "backoff" });
    expect(asked(d)).toEqual([]);
    expect(conditionOf(d, "PreflightPassed")).toMatchObject({
      status: "False",
      reason: "SecretNotFound",
      message: "Secret push (spec.registry.pushSecretRef) not found",
    });
    expect(conditionOf(d, "Stalled")?.status).toBe("True");
    expect(d.events.map((e) => e.reason)).toEqual(["PreflightFailed"]);
  });

  it("does not repeat the Event while the failure is unchanged", () => {
    const first = decide(
      mirrorJob(),
      observed({ referenced: { secrets: new Map(), configMaps: new Map() } }),
      settings,
    );
    const again = decide(
      mirrorJob({}, first.status),
      observed({ referenced: { secrets: new Map(), configMaps: new Map() } }),
      settings,
    );
    expect(again.events).toEqual([]);
  });

  it("reports a registry that refuses the credentials", () => {
    const d = decide(
      mirrorJob(),
      observed({ registryCheck: { ok: false, reason: "RegistryAuthFailed", message: "rejected" } }),
      settings,
    );
    expect(conditionOf(d, "PreflightPassed")).toMatchObject({
      status: "False",
      reason: "RegistryAuthFailed",
    });
    expect(asked(d)).toEqual([]);
  });

  it("reports an invalid schedule as a stalled spec", () => {
    const d = decide(mirrorJob({ schedule: "every day" }), observed(), settings);
    expect(conditionOf(d, "Stalled")).toMatchObject({ status: "True", reason: "InvalidSpec" });
    expect(asked(d)).toEqual([]);
  });
});

describe("decide: following and finishing runs", () => {
  const started = decideStarting(mirrorJob());
  const current = started.status.currentRun as Run;
  const names = runNames("mj", current.id);

  function resultConfigMap(result: Record<string, unknown>, progress?: Record<string, unknown>): V1ConfigMap {
    return {
      metadata: { name: names.result },
      binaryData: {
        [RESULT_KEYS.mapping]: encodeJsonGzip([
          { source: "quay.io/a/b:1", destination: "reg.example.com/mirror/a/b:1" },
        ]),
      },
      data: {
        ...(progress && { [RESULT_KEYS.progress]: JSON.stringify(progress) }),
        [RESULT_KEYS.result]: JSON.stringify({
          version: 1,
          completedAt: now.toISOString(),
          dryRunExitCode: 0,
          images: { additional: { copied: 1, failed: 0, total: 1 } },
          failedImages: [],
          failedImageCount: 0,
          plannedImageCount: 1,
          ...result,
        }),
      },
    };
  }

  it("copies progress into status while the Job runs", () => {
    const cm: V1ConfigMap = {
      metadata: { name: names.result },
      data: {
        progress: JSON.stringify({
          stage: "mirroring",
          copied: 2,
          failed: 0,
          total: 5,
          updateTime: now.toISOString(),
        }),
      },
    };
    const d = decide(
      mirrorJob({}, started.status),
      observed({ jobs: [job(current.jobName, current.id)], resultConfigMaps: new Map([[names.result, cm]]) }),
      settings,
    );
    expect(d.status.currentRun?.progress).toMatchObject({ copied: 2, total: 5, stage: "mirroring" });
    expect(asked(d)).toEqual([]);
  });

  const success = { exit: { code: 0, outcome: "success", failedCategories: [], description: "ok" } };
  const finishedJob = () => [job(current.jobName, current.id, "Complete")];
  /** The shell's answer to `sealRun`: the result as the API server holds it once sealed. */
  const sealedWith = (cm: V1ConfigMap | undefined): Pick<Given, "sealed"> => ({
    sealed: { runId: current.id, result: cm },
  });

  it("seals a run that ended before reading its result, and reads the sealed one", () => {
    const cache = {
      jobs: finishedJob(),
      resultConfigMaps: new Map([[names.result, resultConfigMap(success)]]),
    };
    const ended = observed(cache);
    const first = decide(mirrorJob({}, started.status), ended, settings);
    expect(asked(first)).toEqual([
      { kind: "sealRun", runId: current.id, resultName: names.result, roleName: names.role },
    ]);
    expect(first.status.currentRun).toBeDefined();
    // The cache's copy said success; the sealed one (what the API server holds) decides.
    const failure = resultConfigMap({
      exit: { code: 1, outcome: "failure", failedCategories: [], description: "generic error" },
    });
    const second = decide(
      mirrorJob({}, started.status),
      observed({ ...cache, ...sealedWith(failure) }),
      settings,
    );
    expect(second.status.lastRun?.result).toBe("Failed");
    expect(askedKinds(second)).not.toContain("sealRun");
  });

  it("records a success, then verifies its images before it is Ready", () => {
    const cm = resultConfigMap(success);
    const first = decide(
      mirrorJob({}, started.status),
      observed({ jobs: finishedJob(), resultConfigMaps: new Map([[names.result, cm]]), ...sealedWith(cm) }),
      settings,
    );
    expect(first.status.currentRun).toBeUndefined();
    expect(first.status.lastRun).toMatchObject({
      result: "Succeeded",
      exitCode: 0,
      images: { additional: { copied: 1, total: 1 } },
    });
    expect(first.status.lastSuccessfulRun?.id).toBe(current.id);
    expect(conditionOf(first, "Mirrored")).toMatchObject({ status: "True", reason: "RunSucceeded" });
    expect(asked(first)).toMatchObject([
      {
        kind: "verify",
        runId: current.id,
        images: [{ destination: "reg.example.com/mirror/a/b:1", kind: "image" }],
        tlsVerify: true,
      },
    ]);
    expect(first.status.phase).toBe("Verifying");
    expect(conditionOf(first, "Ready")?.status).toBe("False");

    const second = decide(
      mirrorJob({}, started.status),
      observed({
        jobs: finishedJob(),
        resultConfigMaps: new Map([[names.result, cm]]),
        ...sealedWith(cm),
        verification: { runId: current.id, result: verifyResult() },
      }),
      settings,
    );
    expect(asked(second)).toEqual([]);
    expect(conditionOf(second, "Verified")).toMatchObject({ status: "True", reason: "AllImagesPresent" });
    expect(conditionOf(second, "Ready")?.status).toBe("True");
    expect(second.status.phase).toBe("Succeeded");
    expect(second.status.lastRun?.verification).toMatchObject({
      reason: "AllImagesPresent",
      checked: 1,
      present: 1,
    });
    expect(second.status.lastSuccessfulRun?.verification?.reason).toBe("AllImagesPresent");
    expect(second.events.map((e) => e.reason)).toEqual(["RunSucceeded", "Verified"]);

    // Verified once: the next pass does not check again.
    expect(asked(decide(mirrorJob({}, second.status), observed({ jobs: finishedJob() }), settings))).toEqual(
      [],
    );
  });

  it("verifies a catalog where the generated CatalogSource says it was pushed, not where the dry run planned it (issue 13, point 2)", () => {
    const hex32 = "0123456789abcdef0123456789abcdef";
    const pushed = `reg.example.com/mirror/redhat/redhat-operator-index:sha256-${"f".repeat(64)}`;
    const bundle = `sha256:${"b".repeat(64)}`;
    const base = resultConfigMap(success);
    const cm: V1ConfigMap = {
      metadata: base.metadata,
      data: base.data,
      binaryData: {
        // As oc-mirror's dry run maps a catalog pinned by digest: the rebuild's tag, which is
        // not the tag the mirror pass pushes (the digest of the rebuilt catalog).
        [RESULT_KEYS.mapping]: encodeJsonGzip([
          {
            source: `docker://localhost:55000/redhat/redhat-operator-index:${hex32}`,
            destination: `reg.example.com/mirror/redhat/redhat-operator-index:sha256-${hex32}`,
          },
          {
            source: `docker://registry.redhat.io/demo/bundle@${bundle}`,
            destination: `reg.example.com/mirror/demo/bundle:sha256-${"b".repeat(64)}`,
            sourceDigest: bundle,
          },
        ]),
        [RESULT_KEYS.clusterResources]: encodeJsonGzip([
          {
            file: "cs-redhat-operator-index-sha256-fffff.yaml",
            apiVersion: "operators.coreos.com/v1alpha1",
            kind: "CatalogSource",
            name: "cs-redhat-operator-index-sha256-fffff",
            namespace: "openshift-marketplace",
            object: { kind: "CatalogSource", spec: { image: pushed, sourceType: "grpc" } },
          },
          {
            file: "cc-redhat-operator-index-sha256-fffff.yaml",
            apiVersion: "olm.operatorframework.io/v1",
            kind: "ClusterCatalog",
            name: "cc-redhat-operator-index-sha256-fffff",
            object: { kind: "ClusterCatalog", spec: { source: { type: "Image", image: { ref: pushed } } } },
          },
        ]),
      },
    };
    const d = decide(
      mirrorJob({}, started.status),
      observed({ jobs: finishedJob(), resultConfigMaps: new Map([[names.result, cm]]), ...sealedWith(cm) }),
      settings,
    );
    const verify = d.query?.kind === "verify" ? d.query : undefined;
    expect(verify).toMatchObject({
      images: [
        // Once, without a source digest: its content was made by the run.
        { destination: pushed, kind: "catalog" },
        {
          destination: `reg.example.com/mirror/demo/bundle:sha256-${"b".repeat(64)}`,
          expectedDigest: bundle,
          kind: "image",
        },
      ],
    });
    expect(verify?.kind === "verify" && verify.images).toHaveLength(2);
  });

  it("is not Ready when the registry misses images of the run", () => {
    const cm = resultConfigMap(success);
    const d = decide(
      mirrorJob({}, started.status),
      observed({
        jobs: finishedJob(),
        resultConfigMaps: new Map([[names.result, cm]]),
        ...sealedWith(cm),
        verification: { runId: current.id, result: verifyResult(["reg.example.com/mirror/a/b:1"]) },
      }),
      settings,
    );
    expect(conditionOf(d, "Verified")).toMatchObject({ status: "False", reason: "ImagesMissing" });
    expect(conditionOf(d, "Verified")?.message).toMatch(/reg.example.com\/mirror\/a\/b:1/);
    expect(conditionOf(d, "Ready")).toMatchObject({ status: "False", reason: "ImagesMissing" });
    expect(d.status.phase).toBe("Failed");
    expect(d.events.map((e) => e.reason)).toEqual(["RunSucceeded", "VerificationFailed"]);
  });

  it("skips verification when spec.verify.enabled is false", () => {
    const cm = resultConfigMap(success);
    const d = decide(
      mirrorJob({ verify: { enabled: false } }, started.status),
      observed({ jobs: finishedJob(), resultConfigMaps: new Map([[names.result, cm]]), ...sealedWith(cm) }),
      settings,
    );
    expect(asked(d)).toEqual([]);
    expect(conditionOf(d, "Verified")).toBeUndefined();
    expect(conditionOf(d, "Ready")?.status).toBe("True");
  });

  it("records a partial failure with the failed images", () => {
    const cm = resultConfigMap({
      exit: {
        code: 12,
        outcome: "partial",
        failedCategories: ["operator", "additional"],
        description: "operator and additional images failed",
      },
      failedImages: [{ image: "quay.io/a/b:1", error: "manifest unknown" }],
      failedImageCount: 1,
    });
    const d = decide(
      mirrorJob({}, started.status),
      observed({
        jobs: [job(current.jobName, current.id, "Failed")],
        resultConfigMaps: new Map([[names.result, cm]]),
        ...sealedWith(cm),
      }),
      settings,
    );
    expect(d.status.lastRun).toMatchObject({
      result: "PartiallyFailed",
      exitCode: 12,
      failedCategories: ["operator", "additional"],
    });
    expect(conditionOf(d, "Mirrored")).toMatchObject({ status: "False", reason: "RunPartiallyFailed" });
    expect(conditionOf(d, "Mirrored")?.message).toMatch(/quay.io\/a\/b:1: manifest unknown.*spec.runRequest/);
    expect(d.status.lastSuccessfulRun).toBeUndefined();
  });

  it("records a crash when no result was reported", () => {
    const d = decide(
      mirrorJob({}, started.status),
      observed({ jobs: [job(current.jobName, current.id, "Failed")], ...sealedWith(undefined) }),
      settings,
    );
    expect(d.status.lastRun?.result).toBe("Crashed");
    expect(conditionOf(d, "Mirrored")?.reason).toBe("RunCrashed");
    expect(d.events[0]).toMatchObject({ type: "Warning", reason: "RunCrashed" });
  });

  it("rejects a malformed result instead of trusting it", () => {
    const cm: V1ConfigMap = {
      metadata: { name: names.result },
      data: { result: JSON.stringify({ version: 1, exit: "pwned" }) },
    };
    const d = decide(
      mirrorJob({}, started.status),
      observed({
        jobs: [job(current.jobName, current.id, "Complete")],
        resultConfigMaps: new Map([[names.result, cm]]),
        ...sealedWith(cm),
      }),
      settings,
    );
    expect(d.status.lastRun?.result).toBe("Crashed");
    expect(d.status.lastRun?.message).toMatch(/result is invalid/);
  });

  it("adopts a running Job the status does not know", () => {
    const d = decide(mirrorJob(), observed({ jobs: [job("mj-running", "abc")] }), settings);
    expect(asked(d)).toEqual([]);
    expect(d.status.currentRun).toMatchObject({ id: "abc", jobName: "mj-running" });
  });

  it("deletes finished runs beyond the history limits", () => {
    const old = [1, 2, 3, 4].map((i) => {
      const j = job(`mj-old${i}`, `old${i}`, "Complete");
      if (j.metadata) j.metadata.creationTimestamp = new Date(now.getTime() - i * 60_000);
      return j;
    });
    const cm = resultConfigMap({
      exit: { code: 0, outcome: "success", failedCategories: [], description: "ok" },
    });
    const d = decide(
      mirrorJob({ historyLimit: { successful: 2 } }, started.status),
      observed({
        jobs: [...old, job(current.jobName, current.id, "Complete")],
        resultConfigMaps: new Map([[names.result, cm]]),
        ...sealedWith(cm),
      }),
      settings,
    );
    expect(d.effects.flatMap((e) => (e.kind === "deleteRun" ? [e.jobName] : []))).toEqual([
      "mj-old2",
      "mj-old3",
      "mj-old4",
    ]);
  });
});
