import { describe, expect, it } from "vitest";
import { initialProgress, type Progress } from "../ocmirror/progress.ts";
import { composeResult, type RunOutcome } from "./compose.ts";

const COLLECTION = 'collect catalog "reg:5000/redhat/no-such-index:v4.19": get manifest: manifest unknown';

function outcome(
  extra: Partial<Omit<RunOutcome, "progress">> & { progress?: Partial<Progress> },
): RunOutcome {
  return {
    dryRunExit: 0,
    mirrorExit: 0,
    errors: [],
    plannedImageCount: 0,
    completedAt: new Date("2026-11-27T10:00:00Z"),
    ...extra,
    progress: { ...initialProgress(), ...extra.progress },
  };
}

describe("composeResult: collection failures (issue 13, point 1)", () => {
  it("a mirror pass that stopped at collection (exit 4, no Results) failed and copied nothing", () => {
    const r = composeResult(outcome({ mirrorExit: 4, progress: { collectionError: COLLECTION } }));
    expect(r.exit).toEqual({
      code: 4,
      outcome: "failure",
      failedCategories: ["operator"],
      description: `the mirror pass stopped at collection: oc-mirror could not collect the operator images (exit code 4) and copied nothing: ${COLLECTION}`,
    });
    expect(r.images).toEqual({});
  });

  it("a dry run that failed at collection failed, whatever its category bits", () => {
    const r = composeResult(
      outcome({ dryRunExit: 8, mirrorExit: null, progress: { collectionError: "parse destination" } }),
    );
    expect(r.exit).toMatchObject({ code: 8, outcome: "failure", failedCategories: ["additional"] });
    expect(r.exit.description).toBe(
      "the dry run failed: oc-mirror could not collect the additional images (exit code 8) and copied nothing: parse destination",
    );
  });

  it("a dry run that failed otherwise says nothing was copied", () => {
    const r = composeResult(outcome({ dryRunExit: 1, mirrorExit: null }));
    expect(r.exit.outcome).toBe("failure");
    expect(r.exit.description).toMatch(
      /^the dry run failed, so nothing was copied: oc-mirror failed \(exit code 1\)/,
    );
  });

  it("a mirror pass with Results is partial as its exit code says, even with an error line", () => {
    const r = composeResult(
      outcome({
        mirrorExit: 8,
        progress: {
          collectionError: "quoted",
          results: { additional: { copied: 1, failed: 1, total: 2 } },
        },
        errors: [{ image: "reg:5000/demo/missing:1.0", error: "manifest unknown" }],
      }),
    );
    expect(r.exit.outcome).toBe("partial");
    expect(r.failedImages).toEqual([{ image: "reg:5000/demo/missing:1.0", error: "manifest unknown" }]);
  });

  it("a release collection failure (exit 2) is a failure that names the collection", () => {
    const r = composeResult(
      outcome({
        mirrorExit: 2,
        progress: { collectionError: "[GenerateReleaseSignatures] invalid signature" },
      }),
    );
    expect(r.exit.outcome).toBe("failure");
    expect(r.exit.description).toMatch(
      /could not collect the release images \(exit code 2\) and copied nothing/,
    );
  });

  it("a mirror pass that copied none of its images (exit 8, Results 0 / N) failed", () => {
    const r = composeResult(
      outcome({
        mirrorExit: 8,
        progress: { results: { additional: { copied: 0, failed: 2, total: 2 } } },
        errors: [
          { image: "reg:5000/demo/a:1", error: "manifest unknown" },
          { image: "reg:5000/demo/b:1", error: "manifest unknown" },
        ],
      }),
    );
    expect(r.exit).toEqual({
      code: 8,
      outcome: "failure",
      failedCategories: ["additional"],
      description:
        "oc-mirror copied none of the 2 images (exit code 8: additional images failed to mirror); see the errors file for why each failed.",
    });
    expect(r.failedImageCount).toBe(2);
  });
});
