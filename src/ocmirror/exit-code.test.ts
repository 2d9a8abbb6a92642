import { describe, expect, it } from "vitest";
import { decodeExitCode } from "./exit-code.ts";

describe("decodeExitCode", () => {
  it("reads 0 as success", () => {
    expect(decodeExitCode(0)).toMatchObject({ code: 0, outcome: "success", failedCategories: [] });
  });

  it("reads operator/additional/helm bits alone as a partial run", () => {
    expect(decodeExitCode(4)).toMatchObject({ outcome: "partial", failedCategories: ["operator"] });
    expect(decodeExitCode(8)).toMatchObject({ outcome: "partial", failedCategories: ["additional"] });
    expect(decodeExitCode(16)).toMatchObject({ outcome: "partial", failedCategories: ["helm"] });
    const twelve = decodeExitCode(12);
    expect(twelve).toMatchObject({ outcome: "partial", failedCategories: ["operator", "additional"] });
    expect(twelve.description).toContain("operator and additional");
    expect(twelve.description).toContain("cluster resources were written");
    expect(decodeExitCode(28).failedCategories).toEqual(["operator", "additional", "helm"]);
  });

  it("reads the generic bit as a failure without a category", () => {
    const d = decodeExitCode(1);
    expect(d).toMatchObject({ outcome: "failure", failedCategories: [] });
    expect(d.description).toContain("generic error");
  });

  it("reads the release bit as a failure, and says a panic looks the same", () => {
    const d = decodeExitCode(2);
    expect(d).toMatchObject({ outcome: "failure", failedCategories: ["release"] });
    expect(d.description).toContain("panic");
    // Exit 2 is as often a release that could not be collected (update graph, payload,
    // signature) as one that failed to copy (issue 13, point 10).
    expect(d.description).toMatch(
      /release images could not be collected or copied \(the update graph, a release payload or its signature\)/,
    );
    expect(d.description).not.toMatch(/cancels the remaining copies/);
    // A release failure cancels the batch, so the other categories are left uncopied too.
    expect(decodeExitCode(14)).toMatchObject({
      outcome: "failure",
      failedCategories: ["release", "operator", "additional"],
    });
    expect(decodeExitCode(5)).toMatchObject({ outcome: "failure", failedCategories: ["operator"] });
  });

  it("reads fatal logs, signals and unknown codes as crashes", () => {
    expect(decodeExitCode(255)).toMatchObject({ outcome: "crash", failedCategories: [] });
    expect(decodeExitCode(255).description).toContain("fatal");
    expect(decodeExitCode(143).description).toContain("SIGTERM");
    expect(decodeExitCode(137).description).toContain("SIGKILL");
    expect(decodeExitCode(137).description).toContain("memory");
    expect(decodeExitCode(64)).toMatchObject({ outcome: "crash" });
    expect(decodeExitCode(64).description).toContain("not one of its result codes");
    expect(decodeExitCode(-1)).toMatchObject({ outcome: "crash" });
  });

  it("reads a missing code or a signal as a crash", () => {
    expect(decodeExitCode(null)).toMatchObject({ code: null, outcome: "crash" });
    const killed = decodeExitCode(null, "SIGKILL");
    expect(killed).toMatchObject({ outcome: "crash" });
    expect(killed.description).toContain("SIGKILL");
    // A signal wins over whatever code came with it.
    expect(decodeExitCode(0, "SIGTERM").outcome).toBe("crash");
  });
});
