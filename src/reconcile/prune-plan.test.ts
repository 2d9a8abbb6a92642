import type { V1ConfigMap } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { MirrorJobStatus } from "../api/status.ts";
import { runNames } from "../job/names.ts";
import { encodeJsonGzip, RESULT_KEYS } from "../report/result.ts";
import {
  deletionCandidates,
  pendingPrune,
  planPrune,
  registryNeighbours,
  toResolve,
  underRegistry,
  type KeepSet,
  type PruneCandidate,
  type Resolution,
} from "./prune-plan.ts";

const REG = "mirror.example.com:5000/ocp";
const d = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;
const ref = (path: string) => `${REG}/${path}`;
const candidate = (path: string, type = "generic"): PruneCandidate => ({
  reference: ref(path),
  imageName: `quay.io/${path}`,
  type,
});
const present = (digest: string): Resolution => ({ state: "present", digest });

/**
 * The registry after raising a channel's minVersion from 4.19.1 to 4.19.2: the release
 * components `pod` are one manifest shared by every release, `cli` differs per release.
 */
const registry = new Map<string, Resolution>([
  [ref("openshift/release-images:4.19.1-x86_64"), present(d("1"))],
  [ref("openshift/release-images:4.19.2-x86_64"), present(d("2"))],
  [ref("openshift/release:4.19.1-x86_64-cli"), present(d("a"))],
  [ref("openshift/release:4.19.2-x86_64-cli"), present(d("b"))],
  [ref("openshift/release:4.19.1-x86_64-pod"), present(d("p"))],
  [ref("openshift/release:4.19.2-x86_64-pod"), present(d("p"))],
  [ref("demo/busybox:stable"), present(d("c"))],
  [ref("demo/toolbox:1.0"), present(d("t"))],
]);
const oldRelease = [
  candidate("openshift/release-images:4.19.1-x86_64", "ocpRelease"),
  candidate("openshift/release:4.19.1-x86_64-cli", "ocpReleaseContent"),
  candidate("openshift/release:4.19.1-x86_64-pod", "ocpReleaseContent"),
  candidate("openshift/release-images:4.19.2-x86_64", "ocpRelease"),
  candidate("demo/busybox:stable"),
];
const current: KeepSet = {
  runId: "run-b",
  references: [
    ref("openshift/release-images:4.19.2-x86_64"),
    ref("openshift/release:4.19.2-x86_64-cli"),
    ref("openshift/release:4.19.2-x86_64-pod"),
    ref("demo/busybox:stable"),
  ],
};

function plan(candidates: readonly PruneCandidate[], keep: readonly KeepSet[], resolutions = registry) {
  return planPrune({ registry: REG, fromRun: "run-a", toRun: "run-b", candidates, keep, resolutions });
}

describe("planPrune", () => {
  it("deletes exactly the old release's manifests, by digest, and keeps the component the current release shares", () => {
    const p = plan(oldRelease, [current]);
    expect(p.deletions.map((x) => `${x.repository}@${x.digest}`)).toEqual([
      `${REG}/openshift/release-images@${d("1")}`,
      `${REG}/openshift/release@${d("a")}`,
    ]);
    expect(p.deletions[0]).toMatchObject({
      references: [ref("openshift/release-images:4.19.1-x86_64")],
      imageName: "quay.io/openshift/release-images:4.19.1-x86_64",
      type: "ocpRelease",
    });
    // The 4.19.1 pod tag points at the manifest 4.19.2 uses: deleting it would delete both.
    expect(p.kept).toEqual([
      { reference: ref("demo/busybox:stable"), reason: "InCurrentSet" },
      { reference: ref("openshift/release-images:4.19.2-x86_64"), reason: "InCurrentSet" },
      { reference: ref("openshift/release:4.19.1-x86_64-pod"), reason: "InCurrentSet" },
    ]);
    expect(p.refused).toBeUndefined();
    expect(p.errors).toEqual([]);
    expect(p.hash).toMatch(/^[a-f0-9]{16}$/);
  });

  it("gives the same hash whatever the order of the list, and another for another deletion", () => {
    const a = plan(oldRelease, [current]);
    const b = plan([...oldRelease].reverse(), [current]);
    expect(b.hash).toBe(a.hash);
    const c = plan([...oldRelease, candidate("demo/toolbox:1.0")], [current]);
    expect(c.hash).not.toBe(a.hash);
  });

  it("keeps what another MirrorJob's current run references in the same registry, and says whose it is", () => {
    const other: KeepSet = {
      mirrorJob: "team-b/tools",
      runId: "run-x",
      references: [ref("demo/toolbox:1.0")],
    };
    const p = plan([...oldRelease, candidate("demo/toolbox:1.0")], [current, other]);
    expect(p.kept).toContainEqual({
      reference: ref("demo/toolbox:1.0"),
      reason: "SharedWithMirrorJob",
      mirrorJob: "team-b/tools",
    });
    expect(p.deletions.map((x) => x.repository)).not.toContain(`${REG}/demo/toolbox`);
  });

  it("keeps a manifest another MirrorJob references under another tag of the same repository", () => {
    const resolutions = new Map(registry).set(ref("demo/toolbox:latest"), present(d("t")));
    const other: KeepSet = { mirrorJob: "b/c", runId: "r", references: [ref("demo/toolbox:latest")] };
    const p = plan([candidate("demo/toolbox:1.0")], [current, other], resolutions);
    expect(p.deletions).toEqual([]);
    expect(p.kept).toEqual([
      { reference: ref("demo/toolbox:1.0"), reason: "SharedWithMirrorJob", mirrorJob: "b/c" },
    ]);
  });

  it("deletes one manifest once when several listed tags point at it", () => {
    const resolutions = new Map(registry).set(ref("openshift/release:4.19.0-x86_64-cli"), present(d("a")));
    const p = plan(
      [candidate("openshift/release:4.19.1-x86_64-cli"), candidate("openshift/release:4.19.0-x86_64-cli")],
      [current],
      resolutions,
    );
    expect(p.deletions).toHaveLength(1);
    expect(p.deletions[0]?.references).toEqual([
      ref("openshift/release:4.19.0-x86_64-cli"),
      ref("openshift/release:4.19.1-x86_64-cli"),
    ]);
  });

  it("ignores what lies outside the MirrorJob's registry path, counts what is gone, and never plans on an error", () => {
    const resolutions = new Map(registry)
      .set(ref("demo/gone:1"), { state: "absent" })
      .set(ref("demo/flaky:1"), { state: "error", message: "registry mirror.example.com:5000: timeout" });
    const p = plan(
      [
        { reference: "mirror.example.com:5000/other/demo/x:1", imageName: "x", type: "generic" },
        { reference: "evil.example.com/ocp/demo/x:1", imageName: "x", type: "generic" },
        candidate("demo/gone:1"),
        candidate("demo/flaky:1"),
      ],
      [current],
      resolutions,
    );
    expect(p.rejected.map((r) => r.reference)).toEqual([
      "mirror.example.com:5000/other/demo/x:1",
      "evil.example.com/ocp/demo/x:1",
    ]);
    expect(p.absent).toEqual([ref("demo/gone:1")]);
    expect(p.errors).toEqual([
      { reference: ref("demo/flaky:1"), message: "registry mirror.example.com:5000: timeout" },
    ]);
    expect(p.deletions).toEqual([]);
  });

  it("refuses a plan that would leave nothing of the MirrorJob (an empty image set)", () => {
    const p = plan(oldRelease, [{ runId: "run-b", references: [] }]);
    expect(p.refused).toMatch(
      /run run-b lists no image in mirror.example.com:5000\/ocp: .*everything this MirrorJob mirrored/,
    );
  });

  it("checks the plan again by digest: gone manifests are absent, newly shared ones are kept", () => {
    const first = plan(oldRelease, [current]);
    const again = deletionCandidates(first.deletions);
    expect(again.map((c) => c.reference)).toEqual([
      `${REG}/openshift/release-images@${d("1")}`,
      `${REG}/openshift/release@${d("a")}`,
    ]);
    const after = new Map<string, Resolution>([
      [`${REG}/openshift/release-images@${d("1")}`, { state: "absent" }],
      [`${REG}/openshift/release@${d("a")}`, present(d("a"))],
      [ref("openshift/release:4.19.9-x86_64-cli"), present(d("a"))],
    ]);
    const other: KeepSet = {
      mirrorJob: "x/y",
      runId: "r",
      references: [ref("openshift/release:4.19.9-x86_64-cli")],
    };
    const recheck = plan(again, [current, other], after);
    expect(recheck.deletions).toEqual([]);
    expect(recheck.absent).toEqual([`${REG}/openshift/release-images@${d("1")}`]);
    expect(recheck.kept).toEqual([
      { reference: `${REG}/openshift/release@${d("a")}`, reason: "SharedWithMirrorJob", mirrorJob: "x/y" },
    ]);
  });

  it("shows the plan: counts, a sample, the shared kept references first, a summary", () => {
    const other: KeepSet = {
      mirrorJob: "team-b/tools",
      runId: "run-x",
      references: [ref("demo/toolbox:1.0")],
    };
    const p = plan([...oldRelease, candidate("demo/toolbox:1.0")], [current, other]);
    const shown = pendingPrune(p);
    expect(shown).toMatchObject({
      hash: p.hash,
      fromRun: "run-a",
      toRun: "run-b",
      manifests: 2,
      tags: 2,
      keptInUse: 3,
      keptShared: 1,
      absent: 0,
      repositories: 2,
      sample: [ref("openshift/release-images:4.19.1-x86_64"), ref("openshift/release:4.19.1-x86_64-cli")],
    });
    expect(shown.kept[0]).toEqual({
      reference: ref("demo/toolbox:1.0"),
      reason: "SharedWithMirrorJob",
      mirrorJob: "team-b/tools",
    });
    expect(shown.summary).toBe(
      `delete 2 manifests (2 listed references) in 2 repositories of ${REG} that run run-a mirrored and run run-b no longer does; ` +
        "keep 3 references run run-b still uses; keep 1 references shared with MirrorJob team-b/tools",
    );
  });
});

describe("toResolve and underRegistry", () => {
  it("asks only for the candidates and what is kept in their repositories", () => {
    const other: KeepSet = {
      mirrorJob: "b/c",
      runId: "r",
      references: [ref("demo/toolbox:2.0"), ref("demo/unrelated:1"), "elsewhere.example.com/demo/toolbox:1"],
    };
    expect(toResolve(REG, [ref("demo/toolbox:1.0"), "evil.example.com/x:1"], [current, other])).toEqual([
      ref("demo/toolbox:1.0"),
      ref("demo/toolbox:2.0"),
    ]);
  });

  it("matches the registry path by whole components", () => {
    expect(underRegistry(ref("demo/x:1"), REG)).toBe(true);
    expect(underRegistry("mirror.example.com:5000/ocp2/demo/x:1", REG)).toBe(false);
    expect(underRegistry("not a reference", REG)).toBe(false);
  });
});

describe("registryNeighbours", () => {
  const resultCm = (destinations: string[]): V1ConfigMap => ({
    data: {
      [RESULT_KEYS.result]: JSON.stringify({
        version: 1,
        completedAt: "2026-01-01T00:00:00.000Z",
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
        destinations.map((destination) => ({ source: "quay.io/x:1", destination })),
      ),
    },
  });
  const mj = (namespace: string, name: string, url: string, status: MirrorJobStatus) => ({
    metadata: { namespace, name },
    spec: { registry: { url } },
    status,
  });
  const run = (id: string) => ({
    id,
    jobName: id,
    trigger: "Created" as const,
    generation: 1,
    startTime: "2026-01-01T00:00:00.000Z",
  });

  it("reads the current runs of the other MirrorJobs on the same registry host", () => {
    const cms = new Map<string, V1ConfigMap>([
      [`b/${runNames("tools", "r1").result}`, resultCm([ref("demo/toolbox:1.0")])],
      [`b/${runNames("tools", "r2").result}`, resultCm([ref("demo/toolbox:2.0")])],
      [`c/${runNames("other-host", "r3").result}`, resultCm(["other.example.com/demo/toolbox:1.0"])],
    ]);
    const found = registryNeighbours(
      { namespace: "a", name: "self" },
      REG,
      [
        mj("a", "self", REG, { lastSuccessfulRun: run("own") }),
        mj("b", "tools", "MIRROR.example.com:5000/elsewhere", {
          lastSuccessfulRun: run("r1"),
          appliedRun: "r2",
        }),
        mj("c", "other-host", "other.example.com", { lastSuccessfulRun: run("r3") }),
        mj("d", "busy", REG, { currentRun: run("r4") }),
        mj("e", "lost", REG, { lastSuccessfulRun: run("r5") }),
        { metadata: { namespace: "f", name: "broken" }, spec: "not an object" },
      ],
      (namespace, name) => cms.get(`${namespace}/${name}`),
    );
    expect(found.keep).toEqual([
      { mirrorJob: "b/tools", runId: "r1", references: [ref("demo/toolbox:1.0")] },
      { mirrorJob: "b/tools", runId: "r2", references: [ref("demo/toolbox:2.0")] },
    ]);
    expect(found.busy).toEqual(["d/busy"]);
    expect(found.unknown).toEqual(["e/lost (run r5)"]);
  });
});
