/** Stage "validate spec": what the API server cannot check of the spec (schedule, time zone, image set). */
import { semanticErrors } from "../../api/semantic.ts";
import type { Draft } from "../draft.ts";
import type { Decision } from "../protocol.ts";
import { invalidSpec } from "./failures.ts";

export function validateSpec(d: Draft): Decision | undefined {
  const errors = semanticErrors(d.mj.spec);
  return errors.length > 0 ? invalidSpec(d, errors) : undefined;
}
