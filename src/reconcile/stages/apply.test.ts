import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ImageSetConfiguration } from "../../api/imageset.ts";
import type { MirrorJobStatus, Run } from "../../api/status.ts";
import { validateMirrorJob, type MirrorJob } from "../../api/validation.ts";
import { FINALIZER } from "../../apply/kinds.ts";
import type { ApplyOutcome, LiveState } from "../../apply/live.ts";
import type { LiveObject } from "../../apply/plan.ts";
import { runNames } from "../../job/names.ts";
import { encodeJsonGzip, RESULT_KEYS } from "../../report/result.ts";
import { decide } from "../decide.ts";
import { after, type Answers, type Decision, type Observed, type Query } from "../protocol.ts";
import type { RolloutObservation } from "../rollout.ts";
import { inputsHash } from "../triggers.ts";
import { MISSING_API_RECHECK_MS } from "./apply.ts";
import { testSettings } from "../../../devkit/memory-shell.ts";

const REGISTRY = "reg.example.com/mirror";
const now = new Date("2026-11-23T10:00:00Z");
const settings = testSettings(["hub"]);
const dockerConfig = (user: string) =>
  Buffer.from(
    JSON.stringify({ auths: { "reg.example.com": { auth: Buffer.from(`${user}:pw`).toString("base64") } } }),
  ).toString("base64");
const secret = (name: string, user: string): V1Secret => ({
  metadata: { name },
  data: { ".dockerconfigjson": dockerConfig(user) },
});

function mirrorJob(
  apply: Record<string, unknown> = {},
  status?: MirrorJobStatus,
  meta: Record<string, unknown> = {},
): MirrorJob {
  const result = validateMirrorJob({
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: { name: "mj", namespace: "hub", uid: "u", generation: 1, ...meta },
    spec: {
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] } } },
      registry: { url: REGISTRY, pushSecretRef: { name: "push" }, pullSecretRef: { name: "pull" } },
      apply,
    },
    ...(status && { status }),
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

function goodRun(mj: MirrorJob, id = "run1"): Run {
  return {
    id,
    jobName: `mj-${id}`,
    trigger: "Created",
    generation: 1,
    startTime: "2026-11-23T09:00:00Z",
    completionTime: "2026-11-23T09:30:00Z",
    inputsHash: inputsHash(mj.spec, mj.spec.imageSet.inline as ImageSetConfiguration),
    result: "Succeeded",
    verification: {
      reason: "AllImagesPresent",
      checked: 1,
      present: 1,
      missing: 0,
      mismatched: 0,
      errors: 0,
      completionTime: "2026-11-23T09:31:00Z",
    },
  };
}

function idms(entries: Record<string, string[]>) {
  return {
    file: "idms-oc-mirror.yaml",
    apiVersion: "config.openshift.io/v1",
    kind: "ImageDigestMirrorSet",
    name: "idms-generic-0",
    object: {
      apiVersion: "config.openshift.io/v1",
      kind: "ImageDigestMirrorSet",
      metadata: { name: "idms-generic-0" },
      spec: { imageDigestMirrors: Object.entries(entries).map(([source, mirrors]) => ({ source, mirrors })) },
    },
  };
}

function resultConfigMap(id: string, objects: unknown[]): V1ConfigMap {
  return {
    metadata: { name: runNames("mj", id).result },
    binaryData: {
      [RESULT_KEYS.clusterResources]: encodeJsonGzip(objects),
      [RESULT_KEYS.mapping]: encodeJsonGzip([]),
    },
    data: {
      [RESULT_KEYS.result]: JSON.stringify({
        version: 1,
        completedAt: now.toISOString(),
        dryRunExitCode: 0,
        exit: { code: 0, outcome: "success", failedCategories: [], description: "ok" },
        images: { additional: { copied: 1, failed: 0, total: 1 } },
        failedImages: [],
        failedImageCount: 0,
        plannedImageCount: 1,
      }),
    },
  };
}

/** A MirrorJob whose run `id` succeeded and was verified, with these generated objects. */
function verified(
  apply: Record<string, unknown>,
  objects: unknown[],
  extraStatus: MirrorJobStatus = {},
  id = "run1",
) {
  const plain = mirrorJob(apply);
  const run = goodRun(plain, id);
  const mj = mirrorJob(
    apply,
    { lastRun: run, lastSuccessfulRun: run, observedGeneration: 1, ...extraStatus },
    extraStatus.appliedRun !== undefined ? { finalizers: [FINALIZER] } : {},
  );
  return { mj, cm: resultConfigMap(id, objects) };
}

/** The shell's answers, named as the tests give them. */
interface Given {
  /** How the cluster takes changes up (default: no MachineConfigPools API, nothing else applied). */
  readonly rollout?: RolloutObservation;
  readonly applied?: LiveState;
  readonly applyOutcome?: ApplyOutcome;
  readonly deletedApplied?: { readonly deleted: number; readonly errors: readonly string[] };
}

function answersOf(given: Given): Answers {
  return {
    readRollout: { kind: "readRollout", seen: given.rollout ?? { catalogSources: [], updateServices: [] } },
    ...(given.applied !== undefined && { readApplied: { kind: "readApplied", live: given.applied } }),
    ...(given.applyOutcome !== undefined && { apply: { kind: "apply", outcome: given.applyOutcome } }),
    ...(given.deletedApplied !== undefined && {
      deleteApplied: { kind: "deleteApplied", ...given.deletedApplied },
    }),
  };
}

function observed(cm: V1ConfigMap | undefined, given: Given = {}): Observed {
  return {
    now,
    referenced: {
      secrets: new Map([
        ["push", secret("push", "pusher")],
        ["pull", secret("pull", "reader")],
      ]),
      configMaps: new Map(),
    },
    jobs: [],
    pods: [],
    resultConfigMaps: new Map(cm ? [[cm.metadata?.name ?? "", cm]] : []),
    fleet: [],
    answers: answersOf(given),
  };
}

const condition = (d: Decision, type: string) => d.status.conditions?.find((c) => c.type === type);
/** What a decision asks the shell to do: its effects, then its query. */
const kinds = (d: Decision) => [
  ...d.effects.map((e) => e.kind),
  ...(d.query !== undefined ? [d.query.kind] : []),
];
type ApplyQuery = Extract<Query, { kind: "apply" }>;
const applyQuery = (d: Decision): ApplyQuery | undefined => (d.query?.kind === "apply" ? d.query : undefined);
const noLive: LiveState = { objects: [], missing: [] };

function liveFrom(action: ApplyQuery | undefined): LiveObject[] {
  if (action?.kind !== "apply") throw new Error("expected an apply action");
  return action.plan.apply.map((d) => ({
    info: d.info,
    name: d.name,
    object: d.manifest,
  }));
}

function outcomeOf(action: ApplyQuery | undefined, extra: Partial<ApplyOutcome> = {}): ApplyOutcome {
  if (action?.kind !== "apply") throw new Error("expected an apply action");
  return {
    applied: [...action.plan.apply, ...action.plan.unchanged].map((d) => ({
      kind: d.info.kind,
      name: d.name,
      hash: d.hash,
    })),
    missing: [],
    errors: [],
    pullSecretWritten: action.pull !== undefined,
    ...extra,
  };
}

const first = idms({ "quay.io/a": [`${REGISTRY}/a`], "quay.io/b": [`${REGISTRY}/b`] });

describe("decide: apply", () => {
  it("reads what is applied, then applies with the finalizer and the pull secret entry, then is Ready", () => {
    const { mj, cm } = verified({}, [first]);
    const read = decide(mj, observed(cm), settings);
    expect(kinds(read)).toEqual(["readApplied"]);
    expect(read.status.phase).toBe("Applying");

    const apply = decide(mj, observed(cm, { applied: noLive }), settings);
    expect(kinds(apply)).toEqual(["addFinalizer", "apply"]);
    const action = applyQuery(apply);
    expect(action?.kind === "apply" && action.pull).toEqual({
      key: "reg.example.com",
      entry: { auth: Buffer.from("reader:pw").toString("base64") },
    });

    const done = decide(mj, observed(cm, { applied: noLive, applyOutcome: outcomeOf(action) }), settings);
    expect(condition(done, "Applied")).toMatchObject({ status: "True", reason: "Applied" });
    expect(condition(done, "Ready")?.status).toBe("True");
    expect(done.status.phase).toBe("Succeeded");
    expect(done.status.appliedRun).toBe("run1");
    expect(done.status.appliedResources?.map((r) => r.kind)).toEqual(["Secret", "ImageDigestMirrorSet"]);
    expect(JSON.stringify(done.status)).not.toContain(Buffer.from("reader:pw").toString("base64"));
    // A cluster without MachineConfigPools has nothing more to take up: rolled out at once.
    expect(done.events.map((e) => e.reason)).toEqual(["Applied", "RolledOut"]);
    expect(condition(done, "RolledOut")).toMatchObject({ status: "True", reason: "RolledOut" });
    expect(condition(done, "RolledOut")?.message).toMatch(/no MachineConfigPools/);

    // Applied for this run and generation: the next reconcile reads nothing.
    const again = decide(mirrorJob({}, done.status, { finalizers: [FINALIZER] }), observed(cm), settings);
    expect(kinds(again)).toEqual([]);
  });

  it("changes nothing cluster-wide for a namespace the operator does not allow", () => {
    const { mj, cm } = verified({}, [first]);
    const d = decide(mj, observed(cm), { ...settings, applyNamespaces: ["elsewhere"] });
    expect(kinds(d)).toEqual([]);
    expect(condition(d, "Applied")).toMatchObject({ status: "False", reason: "NamespaceNotAllowed" });
    expect(condition(d, "Applied")?.message).toMatch(
      /namespace hub may not change the cluster \(the operator allows: elsewhere\)/,
    );
    expect(condition(d, "Ready")).toMatchObject({ status: "False", reason: "NamespaceNotAllowed" });
    expect(d.events.map((e) => e.reason)).toEqual(["ApplyNotAllowed"]);
  });

  it("rejects a result with a mirror elsewhere as a whole", () => {
    const { mj, cm } = verified({}, [first, idms({ "quay.io/c": ["evil.example.com/c"] })]);
    const d = decide(mj, observed(cm), settings);
    expect(kinds(d)).toEqual([]);
    expect(condition(d, "Applied")).toMatchObject({ status: "False", reason: "InvalidResult" });
    expect(condition(d, "Applied")?.message).toMatch(
      /evil.example.com\/c is not under the MirrorJob's registry/,
    );
  });

  describe("a shrinking image set (disruptive)", () => {
    const shrunk = idms({ "quay.io/a": [`${REGISTRY}/a`] });
    /** The cluster holds the first run's IDMS; run2 generates the shrunk one. */
    function setup(apply: Record<string, unknown>) {
      const one = verified({}, [first]);
      const applyAction = applyQuery(decide(one.mj, observed(one.cm, { applied: noLive }), settings));
      const live: LiveState = { objects: liveFrom(applyAction), missing: [] };
      const two = verified(apply, [shrunk], { appliedRun: "run1" }, "run2");
      return { ...two, live };
    }

    it("waits for approval under RequireApproval, then applies the approved change", () => {
      const { mj, cm, live } = setup({ disruptive: "RequireApproval" });
      const d = decide(mj, observed(cm, { applied: live }), settings);
      expect(kinds(d)).toEqual([]);
      expect(condition(d, "Applied")).toMatchObject({ status: "False", reason: "AwaitingApproval" });
      expect(d.status.phase).toBe("AwaitingApproval");
      expect(d.status.pendingChange).toMatchObject({ disruptive: true });
      expect(d.status.pendingChange?.summary).toMatch(/removes the mirrors of quay.io\/b/);
      const hash = d.status.pendingChange?.hash ?? "";
      expect(condition(d, "Applied")?.message).toContain(hash);

      const approved = verified(
        { disruptive: "RequireApproval", approvedChange: hash },
        [shrunk],
        { appliedRun: "run1" },
        "run2",
      );
      const go = decide(approved.mj, observed(approved.cm, { applied: live }), settings);
      expect(kinds(go)).toEqual(["apply"]);
      // An approval of another change approves nothing.
      const wrong = verified(
        { approvedChange: "0123456789abcdef" },
        [shrunk],
        { appliedRun: "run1" },
        "run2",
      );
      expect(kinds(decide(wrong.mj, observed(wrong.cm, { applied: live }), settings))).toEqual([]);
    });

    it("never applies it under Deny, and applies it under Allow", () => {
      const denied = setup({ disruptive: "Deny" });
      const d = decide(denied.mj, observed(denied.cm, { applied: denied.live }), settings);
      expect(kinds(d)).toEqual([]);
      expect(condition(d, "Applied")).toMatchObject({ status: "False", reason: "DisruptiveChangeDenied" });
      const allowed = setup({ disruptive: "Allow" });
      expect(kinds(decide(allowed.mj, observed(allowed.cm, { applied: allowed.live }), settings))).toEqual([
        "apply",
      ]);
    });

    it("applies IDMS-only additions without approval", () => {
      const { live } = setup({});
      const grown = verified(
        {},
        [
          idms({
            ...{ "quay.io/a": [`${REGISTRY}/a`], "quay.io/b": [`${REGISTRY}/b`] },
            "quay.io/c": [`${REGISTRY}/c`],
          }),
        ],
        { appliedRun: "run1" },
        "run2",
      );
      const d = decide(grown.mj, observed(grown.cm, { applied: live }), settings);
      expect(kinds(d)).toEqual(["apply"]);
    });
  });

  it("says that a run changed nothing when the cluster already holds its objects, once", () => {
    const one = verified({}, [first]);
    const applyAction = applyQuery(decide(one.mj, observed(one.cm, { applied: noLive }), settings));
    const live: LiveState = { objects: liveFrom(applyAction), missing: [] };
    const two = verified({}, [first], { appliedRun: "run1" }, "run2");
    const d = decide(two.mj, observed(two.cm, { applied: live }), settings);
    const action = applyQuery(d);
    expect(action?.kind === "apply" && action.plan.changes).toEqual([]);
    expect(action?.kind === "apply" && action.plan.apply).toEqual([]);
    const outcome = outcomeOf(action, { pullSecretWritten: false });
    const done = decide(two.mj, observed(two.cm, { applied: live, applyOutcome: outcome }), settings);
    expect(condition(done, "Applied")).toMatchObject({
      status: "True",
      reason: "Applied",
      message: "run run2: no change: the cluster already holds run run2's 2 objects; nothing was written",
    });
    expect(done.status.appliedRun).toBe("run2");
    expect(done.events).toEqual([
      { type: "Normal", reason: "Applied", action: "Apply", note: condition(done, "Applied")?.message },
    ]);
    // Looked at again for a new generation (an apply setting changed): the same fact, no Event.
    const later = mirrorJob({ kinds: ["ImageDigestMirrorSet"] }, done.status, {
      finalizers: [FINALIZER],
      generation: 2,
    });
    const again = decide(later, observed(two.cm, { applied: live }), settings);
    const againAction = applyQuery(again);
    const repeated = decide(
      later,
      observed(two.cm, { applied: live, applyOutcome: outcomeOf(againAction, { pullSecretWritten: false }) }),
      settings,
    );
    expect(condition(repeated, "Applied")?.message).toMatch(/no change/);
    expect(repeated.events).toEqual([]);
  });

  it("shows the change but applies nothing in Manual mode; None drops the condition", () => {
    const { mj, cm } = verified({ mode: "Manual" }, [first]);
    const d = decide(mj, observed(cm, { applied: noLive }), settings);
    expect(kinds(d)).toEqual([]);
    expect(condition(d, "Applied")).toMatchObject({ status: "False", reason: "ManualMode" });
    expect(d.status.pendingChange?.summary).toMatch(/create ImageDigestMirrorSet/);
    expect(condition(d, "Ready")?.status).toBe("True");
    const none = verified({ mode: "None" }, [first]);
    const n = decide(none.mj, observed(none.cm), settings);
    expect(kinds(n)).toEqual([]);
    expect(condition(n, "Applied")).toBeUndefined();
  });

  it("names missing APIs and looks again only after minutes", () => {
    const { mj, cm } = verified({}, [first]);
    const apply = applyQuery(decide(mj, observed(cm, { applied: noLive }), settings));
    const outcome = outcomeOf(apply, {
      applied: [],
      missing: ["imagedigestmirrorsets.config.openshift.io", "secret openshift-config/pull-secret"],
    });
    const d = decide(mj, observed(cm, { applied: noLive, applyOutcome: outcome }), settings);
    expect(condition(d, "Applied")).toMatchObject({ status: "False", reason: "MissingAPIs" });
    expect(condition(d, "Applied")?.message).toMatch(
      /lacks imagedigestmirrorsets.config.openshift.io, secret openshift-config\/pull-secret/,
    );
    expect(d.next).toEqual(after(MISSING_API_RECHECK_MS));
  });

  it("keeps what a good run applied when a later run fails", () => {
    const { mj } = verified({}, [first], {
      appliedRun: "run1",
      appliedResources: [{ kind: "ImageDigestMirrorSet", name: "x", hash: "h" }],
      conditions: [
        {
          type: "Applied",
          status: "True",
          reason: "Applied",
          message: "",
          observedGeneration: 1,
          lastTransitionTime: now.toISOString(),
        },
      ],
    });
    const failedRun: Run = { ...goodRun(mj, "run2"), result: "Failed" };
    delete failedRun.verification;
    const later = mirrorJob({}, { ...mj.status, lastRun: failedRun }, { finalizers: [FINALIZER] });
    const d = decide(later, observed(undefined), settings);
    expect(kinds(d)).toEqual([]);
    expect(d.status.appliedResources).toEqual([{ kind: "ImageDigestMirrorSet", name: "x", hash: "h" }]);
    expect(condition(d, "Applied")?.status).toBe("True");
  });

  it("cleans up on deletion per deletionPolicy, then removes its finalizer", () => {
    const meta = { finalizers: [FINALIZER], deletionTimestamp: now.toISOString() };
    const mj = mirrorJob({ deletionPolicy: "Delete" }, {}, meta);
    expect(kinds(decide(mj, observed(undefined), settings))).toEqual(["deleteApplied"]);
    const d = decide(mj, observed(undefined, { deletedApplied: { deleted: 3, errors: [] } }), settings);
    expect(kinds(d)).toEqual(["removeFinalizer"]);
    expect(d.events[0]?.note).toMatch(/deleted 3 objects/);
    const failed = decide(
      mj,
      observed(undefined, { deletedApplied: { deleted: 0, errors: ["boom"] } }),
      settings,
    );
    expect(kinds(failed)).toEqual([]);
    expect(failed.next).toEqual({ kind: "backoff" });
    const orphan = mirrorJob({ deletionPolicy: "Orphan" }, {}, meta);
    expect(kinds(decide(orphan, observed(undefined), settings))).toEqual(["removeFinalizer"]);
    const notOurs = mirrorJob({}, {}, { deletionTimestamp: now.toISOString(), finalizers: ["other"] });
    expect(kinds(decide(notOurs, observed(undefined), settings))).toEqual([]);
  });
});
