/**
 * The way back from an object a run creates to the MirrorJob field it was built from, for
 * telling the user which field to correct when the API server refuses the object (for
 * example a cache size of "0", or resource requests above their limits). Kept beside the
 * builders because it mirrors what they write where.
 */
import { mirrorJobNames } from "./names.ts";

/** The refused object and the fields the API server named (`details.causes[].field`). */
export interface RefusedObject {
  readonly kind: string;
  readonly name: string;
  readonly fields: readonly string[];
}

/** Job spec paths (as the API server names them) and the MirrorJob fields they come from. */
const JOB_FIELDS: readonly [RegExp, string][] = [
  [/^spec\.template\.spec\.containers\[0\]\.resources/, "spec.mirror.resources"],
  [/^spec\.template\.spec\.containers\[0\]\.image/, "spec.mirror.image"],
  [/^spec\.template\.spec\.containers\[0\]\.env/, "spec.proxy"],
  [/^spec\.template\.spec\.nodeSelector/, "spec.mirror.nodeSelector"],
  [/^spec\.template\.spec\.tolerations/, "spec.mirror.tolerations"],
  [/^spec\.template\.spec\.volumes\[\d+\]\.persistentVolumeClaim/, "spec.storage"],
  [/^spec\.activeDeadlineSeconds/, "spec.mirror.activeDeadlineSeconds"],
  [/^spec\.backoffLimit/, "spec.mirror.backoffLimit"],
];

function volumeField(which: "cache" | "workspace", fields: readonly string[]): string {
  const base = `spec.storage.${which}`;
  if (fields.some((f) => f.includes("storageClassName"))) return `${base}.storageClassName`;
  if (fields.some((f) => f.includes("resources"))) return `${base}.size`;
  return base;
}

/** The MirrorJob field behind a refused object, or undefined when it is none of the user's. */
export function specFieldOfRefusal(refused: RefusedObject, mirrorJobName: string): string | undefined {
  const volumes = mirrorJobNames(mirrorJobName);
  if (refused.kind === "PersistentVolumeClaim") {
    if (refused.name === volumes.cache) return volumeField("cache", refused.fields);
    if (refused.name === volumes.workspace) return volumeField("workspace", refused.fields);
    return undefined;
  }
  // The run's input ConfigMap holds the ImageSetConfiguration (e.g. refused above 1 MiB).
  if (refused.kind === "ConfigMap" && refused.name.endsWith("-input")) return "spec.imageSet";
  if (refused.kind === "Job") {
    for (const field of refused.fields) {
      const match = JOB_FIELDS.find(([path]) => path.test(field));
      if (match !== undefined) return match[1];
    }
    return "spec.mirror";
  }
  return undefined;
}
