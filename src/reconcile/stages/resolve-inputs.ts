/**
 * Stage "resolve inputs": preflight without the network. The referenced Secrets and
 * ConfigMaps exist and parse; the image set is one the MirrorJob's oc-mirror line can run,
 * with what it needs besides (the update graph image). The resolved inputs are left on the
 * draft for the stages after this one.
 */
import type { ImageSetConfiguration } from "../../api/imageset.ts";
import type { FieldError } from "../../api/validation.ts";
import type { MirrorJobSpec } from "../../api/mirrorjob.ts";
import { needsGraphImage } from "../../job/builders.ts";
import { lineErrors } from "../../ocmirror/lines.ts";
import type { Draft } from "../draft.ts";
import { resolveInputs as resolve } from "../preflight.ts";
import type { Decision } from "../protocol.ts";
import { invalidSpec, preflightFailed } from "./failures.ts";

/** `graph: true` with the user's update graph needs the graph image from somewhere (see needsGraphImage). */
function graphImageErrors(spec: MirrorJobSpec, imageSet: ImageSetConfiguration): FieldError[] {
  if (!needsGraphImage(spec, imageSet) || spec.source.release?.graphImage !== undefined) return [];
  return [
    {
      field: "spec.source.release.graphImage",
      message:
        "platform.graph: true with source.release.updateGraphURL needs the update graph image: oc-mirror builds it only from Red Hat's service. " +
        "Name one you have (e.g. <registry.url>/openshift/graph-image:latest from an earlier run), or set platform.graph to false",
    },
  ];
}

export function resolveInputs(d: Draft): Decision | undefined {
  const spec = d.mj.spec;
  const resolved = resolve(spec, d.observed.referenced);
  if (!resolved.ok) return preflightFailed(d, resolved.failure.reason, resolved.failure.message);
  const imageSetAt =
    spec.imageSet.configMapRef !== undefined
      ? `configmap/${spec.imageSet.configMapRef.name}[${spec.imageSet.configMapRef.key}]`
      : "spec.imageSet.inline";
  const runnable = [
    ...lineErrors(resolved.inputs.imageSet, d.line, imageSetAt),
    ...graphImageErrors(spec, resolved.inputs.imageSet),
  ];
  if (runnable.length > 0) return invalidSpec(d, runnable);
  d.remove("Stalled");
  d.inputs = resolved.inputs;
  return undefined;
}
