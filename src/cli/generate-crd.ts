/** Writes the generated CRD into config/crd/ (`npm run generate`). */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { CRD_FILE, renderCrdYaml } from "../api/crd.ts";

mkdirSync(dirname(CRD_FILE), { recursive: true });
writeFileSync(CRD_FILE, renderCrdYaml());
console.log(`wrote ${CRD_FILE}`);
