/**
 * Each stage of decide on its own: when it passes on, when it decides, and what it leaves
 * on the draft for the stages after it. (decide.test.ts and apply.test.ts follow whole
 * decisions through the stages.)
 */
import type { V1ConfigMap, V1Job, V1Pod, V1Secret } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { MirrorJobStatus, Run } from "../../api/status.ts";
import { validateMirrorJob, type MirrorJob } from "../../api/validation.ts";
import { FINALIZER } from "../../apply/kinds.ts";
import { runNames } from "../../job/names.ts";
import { RESULT_KEYS } from "../../report/result.ts";
import { Draft } from "../draft.ts";
import { after, AWAIT_CHANGE, BACKOFF, combineNext, type Answers, type Next } from "../protocol.ts";
import { cleanup } from "./cleanup.ts";
import { followRun, RUN_POLL_MS } from "./follow-run.ts";
import { resolveInputs } from "./resolve-inputs.ts";
import { schedule } from "./schedule.ts";
import { QUEUED_RECHECK_MS, startRun } from "./start-run.ts";
import { validateSpec } from "./validate-spec.ts";
import { REVERIFY_MS, verify } from "./verify.ts";
import { testSettings } from "../../../devkit/memory-shell.ts";

const settings = testSettings([]);
const now = new Date("2026-11-27T12:00:00Z");

const pushSecret: V1Secret = {
  metadata: { name: "push" },
  data: {
    ".dockerconfigjson": Buffer.from(
      JSON.stringify({ auths: { "reg.example.com": { auth: Buffer.from("u:p").toString("base64") } } }),
    ).toString("base64"),
  },
};

function mirrorJob(
  spec: Record<string, unknown> = {},
  status?: MirrorJobStatus,
  meta: Record<string, unknown> = {},
): MirrorJob {
  const parsed = validateMirrorJob({
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: {
      name: "mj",
      namespace: "ns",
      uid: "u",
      generation: 1,
      creationTimestamp: "2026-11-27T11:00:00Z",
      ...meta,
    },
    spec: {
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] } } },
      registry: { url: "reg.example.com/mirror", pushSecretRef: { name: "push" } },
      apply: { mode: "None" },
      ...spec,
    },
    ...(status !== undefined && { status }),
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value;
}

function draft(
  mj: MirrorJob,
  world: {
    jobs?: V1Job[];
    pods?: V1Pod[];
    configMaps?: V1ConfigMap[];
    answers?: Answers;
    secrets?: V1Secret[];
  } = {},
): Draft {
  return new Draft(
    mj,
    {
      now,
      referenced: {
        secrets: new Map((world.secrets ?? [pushSecret]).map((s) => [s.metadata?.name ?? "", s])),
        configMaps: new Map(),
      },
      jobs: world.jobs ?? [],
      pods: world.pods ?? [],
      resultConfigMaps: new Map((world.configMaps ?? []).map((c) => [c.metadata?.name ?? "", c])),
      fleet: [],
      answers: world.answers ?? {},
    },
    settings,
  );
}

/** A draft with the inputs resolved, as the stages after resolve-inputs see it. */
function resolved(mj: MirrorJob, answers: Answers = {}): Draft {
  const d = draft(mj, { answers });
  expect(resolveInputs(d)).toBeUndefined();
  return d;
}

const run: Run = {
  id: "r1",
  jobName: "mj-r1",
  trigger: "Created",
  generation: 1,
  startTime: "2026-11-27T11:00:00Z",
};

function job(finished?: "Complete" | "Failed"): V1Job {
  return {
    metadata: { name: "mj-r1", labels: { "hubmirror.dev/run": "r1" }, creationTimestamp: now },
    status: finished
      ? { conditions: [{ type: finished, status: "True", lastTransitionTime: now }] }
      : { active: 1 },
  };
}

describe("combineNext", () => {
  const cases: [Next, Next, Next][] = [
    [BACKOFF, after(1_000), BACKOFF],
    [after(5_000), BACKOFF, BACKOFF],
    [after(5_000), after(1_000), after(1_000)],
    [AWAIT_CHANGE, after(7), after(7)],
    [AWAIT_CHANGE, AWAIT_CHANGE, AWAIT_CHANGE],
    [BACKOFF, AWAIT_CHANGE, BACKOFF],
  ];
  it.each(cases)("%j and %j give %j", (a, b, want) => {
    expect(combineNext(a, b)).toEqual(want);
  });
});

describe("stage cleanup", () => {
  const deleting = { finalizers: [FINALIZER], deletionTimestamp: now.toISOString() };
  it("passes on unless the MirrorJob is being deleted", () => {
    expect(cleanup(draft(mirrorJob()))).toBeUndefined();
  });
  it("asks to delete what was applied, then removes the finalizer, leaving the status as stored", () => {
    const mj = mirrorJob({ apply: { mode: "Auto" } }, { phase: "Succeeded" }, deleting);
    expect(cleanup(draft(mj))?.query).toEqual({ kind: "deleteApplied" });
    const done = cleanup(
      draft(mj, { answers: { deleteApplied: { kind: "deleteApplied", deleted: 2, errors: [] } } }),
    );
    expect(done?.effects).toEqual([{ kind: "removeFinalizer" }]);
    expect(done?.status).toEqual({ phase: "Succeeded" });
  });
  it("backs off when the deletion failed", () => {
    const mj = mirrorJob({ apply: { mode: "Auto" } }, {}, deleting);
    const d = cleanup(
      draft(mj, { answers: { deleteApplied: { kind: "deleteApplied", deleted: 0, errors: ["boom"] } } }),
    );
    expect(d?.next).toEqual(BACKOFF);
    expect(d?.events.map((e) => e.reason)).toEqual(["CleanupFailed"]);
  });
});

describe("stage follow run", () => {
  it("passes on without a run", () => {
    expect(followRun(draft(mirrorJob()))).toBeUndefined();
  });
  it("shows a running Job's progress and looks again in 30 s", () => {
    const progress: V1ConfigMap = {
      metadata: { name: runNames("mj", "r1").result },
      data: {
        [RESULT_KEYS.progress]: JSON.stringify({
          stage: "mirroring",
          copied: 1,
          failed: 0,
          total: 3,
          updateTime: now.toISOString(),
        }),
      },
    };
    const d = followRun(draft(mirrorJob({}, { currentRun: run }), { jobs: [job()], configMaps: [progress] }));
    expect(d?.next).toEqual(after(RUN_POLL_MS));
    expect(d?.status.currentRun?.progress).toMatchObject({ copied: 1, total: 3 });
  });
  it("adopts a running Job the status does not know", () => {
    const d = followRun(draft(mirrorJob(), { jobs: [job()] }));
    expect(d?.status.currentRun).toMatchObject({ id: "r1", jobName: "mj-r1", startTime: now.toISOString() });
  });
  it("seals an ended run first, then finishes it and passes on", () => {
    const mj = mirrorJob({}, { currentRun: run });
    expect(followRun(draft(mj, { jobs: [job("Failed")] }))?.query?.kind).toBe("sealRun");
    const d = draft(mj, {
      jobs: [job("Failed")],
      answers: { sealRun: { kind: "sealRun", runId: "r1", result: undefined } },
    });
    expect(followRun(d)).toBeUndefined();
    expect(d.status.currentRun).toBeUndefined();
    expect(d.status.lastRun?.result).toBe("Crashed");
    expect(d.condition("Mirrored")).toMatchObject({ status: "False", reason: "RunCrashed" });
  });
  it("says which container of the run's pods was OOMKilled, from the pods it observes", () => {
    const pod: V1Pod = {
      metadata: {
        name: "mj-r1-x",
        ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: "mj-r1", uid: "j", controller: true }],
      },
      spec: { containers: [{ name: "oc-mirror", resources: { limits: { memory: "96Mi" } } }] },
      status: {
        containerStatuses: [
          {
            name: "oc-mirror",
            image: "i",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 137, reason: "OOMKilled" } },
          },
        ],
      },
    };
    const d = draft(mirrorJob({}, { currentRun: run }), {
      jobs: [job("Failed")],
      pods: [pod],
      answers: { sealRun: { kind: "sealRun", runId: "r1", result: undefined } },
    });
    expect(followRun(d)).toBeUndefined();
    expect(d.status.lastRun?.result).toBe("Crashed");
    expect(d.condition("Mirrored")?.message).toBe(
      "run r1 crashed: container oc-mirror of pod mj-r1-x was OOMKilled: it exceeded its memory limit of 96Mi. " +
        "Raise spec.mirror.resources.limits.memory, then change spec.runRequest to run again",
    );
    expect(d.decision({ kind: "awaitChange" }).events.map((e) => e.reason)).toEqual(["RunCrashed"]);
  });
});

describe("stage validate spec", () => {
  it("stops an invalid schedule until the spec changes", () => {
    const d = validateSpec(draft(mirrorJob({ schedule: "often" })));
    expect(d?.next).toEqual(AWAIT_CHANGE);
    expect(d?.status.phase).toBe("Failed");
  });
  it("passes a valid spec on", () => {
    expect(validateSpec(draft(mirrorJob()))).toBeUndefined();
  });
});

describe("stage resolve inputs", () => {
  it("backs off a missing Secret", () => {
    expect(resolveInputs(draft(mirrorJob(), { secrets: [] }))?.next).toEqual(BACKOFF);
  });
  it("refuses what the line cannot run", () => {
    const mj = mirrorJob({
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1", targetTag: "x" }] } } },
    });
    const d = resolveInputs(draft(mj));
    expect(d?.status.conditions?.find((c) => c.type === "Stalled")?.message).toMatch(
      /targetTag needs oc-mirror 5/,
    );
  });
  it("leaves the resolved inputs on the draft", () => {
    const d = draft(mirrorJob());
    expect(resolveInputs(d)).toBeUndefined();
    expect(d.inputs?.pushCredentials).toEqual({ username: "u", password: "p" });
  });
});

describe("stage verify", () => {
  const done: Run = { ...run, completionTime: now.toISOString(), result: "Succeeded" };
  it("asks to verify a run once, then records what it found and passes on", () => {
    const mj = mirrorJob({}, { lastRun: done, lastSuccessfulRun: done });
    expect(verify(resolved(mj))?.query?.kind).toBe("verify");
    const result = {
      target: "reg.example.com/mirror",
      checked: 1,
      present: 1,
      missing: 0,
      mismatched: 0,
      errors: 0,
      digestsCompared: 0,
      problems: [],
      releasePayloadMissing: false,
      catalogsMissing: [],
    };
    const d = resolved(mj, {
      verify: { kind: "verify", runId: "r1", result, completionTime: now.toISOString() },
    });
    expect(verify(d)).toBeUndefined();
    expect(d.status.lastRun?.verification).toMatchObject({ reason: "AllImagesPresent", checked: 1 });
    expect(d.status.lastSuccessfulRun?.verification?.reason).toBe("AllImagesPresent");
  });
  it("verifies again, every minute, while the registry could not answer", () => {
    const checked = (reason: "RegistryUnreachable" | "ImagesMissing", agoMs: number): Run => ({
      ...done,
      verification: {
        reason,
        checked: 1,
        present: 0,
        missing: reason === "ImagesMissing" ? 1 : 0,
        mismatched: 0,
        errors: reason === "RegistryUnreachable" ? 1 : 0,
        completionTime: new Date(now.getTime() - agoMs).toISOString(),
      },
    });
    const unreachable = (agoMs: number) => checked("RegistryUnreachable", agoMs);
    // 10 s after: waits, visibly, and asks to be looked at again when the minute is up.
    const waiting = resolved(mirrorJob({}, { lastRun: unreachable(10_000) }));
    expect(verify(waiting)).toBeUndefined();
    expect(waiting.applyPhase).toBe("Verifying");
    expect(waiting.applyNext).toEqual(after(REVERIFY_MS - 10_000));
    // Its answer is recorded, and the wait starts over (phase Verifying from the start, never Failed).
    const answered = resolved(mirrorJob({}, { lastRun: done }), {
      verify: {
        kind: "verify",
        runId: "r1",
        result: {
          target: "reg.example.com/mirror",
          checked: 1,
          present: 0,
          missing: 0,
          mismatched: 0,
          errors: 1,
          digestsCompared: 0,
          problems: [],
          releasePayloadMissing: false,
          catalogsMissing: [],
          firstError: { destination: "reg.example.com/mirror/a:1", kind: "server", message: "HTTP 503" },
        },
        // A registry that does not answer at all takes the client's attempts and timeouts.
        completionTime: new Date(now.getTime() + 120_000).toISOString(),
      },
    });
    expect(verify(answered)).toBeUndefined();
    expect(answered.status.lastRun?.verification?.reason).toBe("RegistryUnreachable");
    expect(answered.applyPhase).toBe("Verifying");
    // The minute counts from the end of the verification, not from the reconcile that asked.
    expect(answered.status.lastRun?.verification?.completionTime).toBe(
      new Date(now.getTime() + 120_000).toISOString(),
    );
    expect(answered.applyNext).toEqual(after(120_000 + REVERIFY_MS));
    // A minute after: verifies again.
    const again = verify(resolved(mirrorJob({}, { lastRun: unreachable(REVERIFY_MS) })));
    expect(again?.query).toMatchObject({ kind: "verify", runId: "r1" });
    expect(again?.status.phase).toBe("Verifying");
    // Any other outcome is final: missing images need a new run, not another look.
    const final = resolved(mirrorJob({}, { lastRun: checked("ImagesMissing", REVERIFY_MS) }));
    expect(verify(final)).toBeUndefined();
    expect(final.applyPhase).toBeUndefined();
    expect(final.applyNext).toEqual(AWAIT_CHANGE);
  });
  it("passes on when verification is off", () => {
    const d = resolved(mirrorJob({ verify: { enabled: false } }, { lastRun: done }));
    expect(verify(d)).toBeUndefined();
  });
});

describe("stage schedule", () => {
  it("leaves a due run to the start-run stage", () => {
    const d = resolved(mirrorJob());
    expect(schedule(d)).toBeUndefined();
    expect(d.due?.trigger.kind).toBe("Created");
  });
  it("decides Ready and when to look again when nothing is due", () => {
    const mj = mirrorJob({ schedule: "0 * * * *", verify: { enabled: false } });
    const first = resolved(mj);
    schedule(first);
    const last: Run = {
      ...run,
      result: "Succeeded",
      completionTime: now.toISOString(),
      inputsHash: first.due?.inputsHash ?? "",
      startTime: now.toISOString(),
    };
    const d = schedule(
      resolved(mirrorJob({ schedule: "0 * * * *", verify: { enabled: false } }, { lastRun: last })),
    );
    expect(d?.status.phase).toBe("Succeeded");
    expect(d?.next).toEqual(after(60 * 60_000));
  });
});

describe("stage start run", () => {
  const granted: Answers = { runSlot: { kind: "runSlot", slot: { granted: true } } };
  /** A due run's draft, with a run slot granted unless `answers` says otherwise. */
  function due(answers: Answers = {}, slot: Answers = granted): Draft {
    const d = resolved(mirrorJob(), { ...slot, ...answers });
    schedule(d);
    return d;
  }
  it("checks the registry, then asks to create the run's objects, then starts it", () => {
    expect(startRun(due()).query?.kind).toBe("checkRegistry");
    const ok: Answers = { checkRegistry: { kind: "checkRegistry", result: { ok: true } } };
    const ensure = startRun(due(ok)).query;
    expect(ensure?.kind).toBe("ensure");
    const runId = ensure?.kind === "ensure" ? ensure.runId : "";
    const started = startRun(due({ ...ok, ensure: { kind: "ensure", runId, outcome: { ok: true } } }));
    expect(started.status.currentRun?.id).toBe(runId);
    expect(started.next).toEqual(after(RUN_POLL_MS));
    expect(started.events.map((e) => e.reason)).toEqual(["RunStarted"]);
  });
  it("asks for a run slot first, for its target, waiting since now", () => {
    expect(startRun(due({}, {})).query).toEqual({
      kind: "runSlot",
      target: "reg.example.com/mirror",
      since: now.toISOString(),
    });
  });
  const full: Answers = {
    runSlot: {
      kind: "runSlot",
      slot: { granted: false, limit: "registry", max: 5, inProgress: 5, ahead: 3 },
    },
  };
  it("waits without a slot: phase Queued, status.queued, Reconciling RunQueued, one Event, no registry check", () => {
    const d = startRun(due(full));
    expect(d.query).toBeUndefined();
    expect(d.next).toEqual(after(QUEUED_RECHECK_MS));
    expect(d.status.phase).toBe("Queued");
    expect(d.status.queued).toEqual({ trigger: "Created", since: now.toISOString() });
    const reconciling = d.status.conditions?.find((c) => c.type === "Reconciling");
    expect(reconciling).toMatchObject({ status: "True", reason: "RunQueued" });
    expect(reconciling?.message).toContain("at most 5 runs at once to reg.example.com");
    expect(d.events.map((e) => [e.reason, e.note])).toEqual([
      ["RunQueued", `${reconciling?.message ?? ""}: 5 in progress, 3 waiting ahead of this one`],
    ]);
  });
  it("says when it waits for another run into the same repositories", () => {
    const d = startRun(
      due({
        runSlot: {
          kind: "runSlot",
          slot: { granted: false, limit: "target", max: 1, inProgress: 1, ahead: 0 },
        },
      }),
    );
    expect(d.status.phase).toBe("Queued");
    expect(d.status.conditions?.find((c) => c.type === "Reconciling")?.message).toBe(
      "a run is due (Created) and waits for a run slot: at most 1 run at once into reg.example.com/mirror " +
        "(HUBMIRROR_MAX_RUNS_PER_TARGET: runs that push into the same repositories take turns); the runs due first start first",
    );
  });
  it("keeps its place while it waits: the stored since, the same message, no second Event", () => {
    const first = startRun(due(full));
    const stored = mirrorJob(
      {},
      { ...first.status, queued: { trigger: "Created", since: "2026-11-27T11:30:00Z" } },
    );
    const d = resolved(stored, { ...full });
    schedule(d);
    const again = startRun(d);
    expect(again.status.queued?.since).toBe("2026-11-27T11:30:00Z");
    expect(again.events).toEqual([]);
    expect(again.status.conditions).toEqual(first.status.conditions);
    // And asks for its slot with the time it has waited since.
    const asking = resolved(stored, {});
    schedule(asking);
    expect(startRun(asking).query).toMatchObject({ kind: "runSlot", since: "2026-11-27T11:30:00Z" });
  });
  it("a run that got its slot no longer waits", () => {
    const stored = mirrorJob({}, { queued: { trigger: "Created", since: "2026-11-27T11:30:00Z" } });
    const d = resolved(stored, {
      runSlot: { kind: "runSlot", slot: { granted: true } },
      checkRegistry: { kind: "checkRegistry", result: { ok: true } },
    });
    schedule(d);
    const ensure = startRun(d).query;
    expect(ensure?.kind).toBe("ensure");
    expect(d.status.queued).toBeUndefined();
  });
  it("a waiting run that is no longer due (suspended) no longer waits", () => {
    const d = resolved(
      mirrorJob({ suspend: true }, { queued: { trigger: "Created", since: "2026-11-27T11:30:00Z" } }),
    );
    const decided = schedule(d);
    expect(decided?.status.queued).toBeUndefined();
    expect(decided?.status.phase).toBe("Suspended");
  });
  it("backs off a registry that refuses the credentials", () => {
    const d = startRun(
      due({
        checkRegistry: {
          kind: "checkRegistry",
          result: { ok: false, reason: "RegistryAuthFailed", message: "no" },
        },
      }),
    );
    expect(d.next).toEqual(BACKOFF);
    expect(d.status.phase).toBe("Preflight");
  });
});
