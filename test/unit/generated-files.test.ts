/**
 * The generated files are checked in as `npm run generate` writes them: config/crd/ and the
 * chart's crds/ from src/api, config/rbac/ from the chart's templates (rendered by the pinned
 * Helm, which devkit/binaries.ts finds; so this lives outside src/).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { helmBinary } from "../../devkit/binaries.ts";
import { generatedFiles } from "../../src/cli/generate-crd.ts";
import { RBAC_DIR } from "../../src/cli/generate-rbac.ts";

describe("generated files", () => {
  // config/crd/ and the chart's crds/ from src/api; config/rbac/ from the chart's templates.
  const files = generatedFiles(helmBinary());

  it.each([...files.keys()])("%s is checked in as generated (run `npm run generate`)", (file) => {
    expect(readFileSync(file, "utf8")).toBe(files.get(file));
  });

  it("config/rbac/ holds nothing else", () => {
    const checkedIn = readdirSync(RBAC_DIR).map((f) => join(RBAC_DIR, f));
    expect(checkedIn.sort()).toEqual([...files.keys()].filter((f) => f.startsWith(RBAC_DIR)).sort());
  });
});
