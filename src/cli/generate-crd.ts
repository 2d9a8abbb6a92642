/**
 * `npm run generate`: the CRD from the zod schemas into config/crd/ and the chart's crds/,
 * and config/rbac/ from the chart (see generate-rbac.ts). A unit test (test/unit/generated-files.test.ts)
 * fails when a checked-in file differs from what this writes.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CRD_FILE, renderCrdYaml } from "../api/crd.ts";
import { CHART_DIR, RBAC_DIR, cachedHelm, renderRbacFiles } from "./generate-rbac.ts";

/** Where the CRD is checked in: for `kubectl apply` and for Helm (crds/ is not templated). */
export const CRD_FILES = [CRD_FILE, join(CHART_DIR, "crds", "hubmirror.dev_mirrorjobs.yaml")];

/** Every generated file (path -> content). */
export function generatedFiles(helm: string): Map<string, string> {
  const crd = renderCrdYaml();
  return new Map([...CRD_FILES.map((f) => [f, crd] as const), ...renderRbacFiles(helm)]);
}

if (import.meta.main) {
  const files = generatedFiles(cachedHelm());
  // Files a removed template left behind in config/rbac/.
  for (const name of readdirSync(RBAC_DIR, { withFileTypes: true })) {
    const path = join(RBAC_DIR, name.name);
    if (name.isFile() && !files.has(path)) rmSync(path);
  }
  for (const [path, content] of files) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    console.log(`wrote ${path}`);
  }
}
