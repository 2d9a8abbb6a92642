/**
 * Cross-field rules with one definition for both validators: the CEL expression the
 * API server runs (emitted into the CRD as `x-kubernetes-validations`) and the
 * TypeScript check zod runs. The corpus test proves each pair agrees.
 */
import type { z } from "zod";

export interface Rule<V> {
  /** CEL over `self` (the value the rule is attached to). */
  readonly cel: string;
  /** What the user reads; the API server prefixes it with the field path. */
  readonly message: string;
  /** Field (relative, e.g. `.url`) the API server and zod report; default: the rule's own field. */
  readonly field?: string;
  /** The same rule in TypeScript: true when valid. */
  readonly check: (value: V) => boolean;
}

interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

/** Attaches rules to a schema: CEL for the CRD, a refinement for zod. */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  const validations: CelValidation[] = rules.map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.field !== undefined && { fieldPath: r.field }),
  }));
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (!r.check(value)) {
        ctx.addIssue({ code: "custom", message: r.message, path: fieldPath(r.field) });
      }
    }
  });
  const existing = (schema.meta()?.["x-kubernetes-validations"] as CelValidation[] | undefined) ?? [];
  return refined.meta({ ...schema.meta(), "x-kubernetes-validations": [...existing, ...validations] });
}

/** `.a.b[0]` -> ["a", "b", 0] */
function fieldPath(field: string | undefined): (string | number)[] {
  if (field === undefined) return [];
  return [...field.matchAll(/\.([A-Za-z_][\w]*)|\[(\d+)\]/g)].map((m) =>
    m[1] !== undefined ? m[1] : Number(m[2]),
  );
}

/** A CEL rule that a string matches (or with `negate`, does not match) a pattern valid in RE2. */
export function matches(pattern: string, message: string, negate = false): Rule<string> {
  const re = new RegExp(pattern);
  return {
    cel: `${negate ? "!" : ""}self.matches(${JSON.stringify(pattern)})`,
    message,
    check: (s) => re.test(s) !== negate,
  };
}

/**
 * A string format as an OpenAPI `pattern` (no CEL cost, so fit for strings inside lists).
 * The API server reports it as "should match '<pattern>'"; zod reports `message`.
 */
export function pattern(schema: z.ZodString, regex: string, message: string): z.ZodString {
  return schema.regex(new RegExp(regex), { message });
}

/** A list whose items are unique by `key` (`x-kubernetes-list-type: map`; `key` must be required). */
export function uniqueBy<T extends z.ZodArray>(schema: T, key: string, message: string): T {
  const meta = schema.meta();
  const refined = schema.superRefine((items, ctx) => {
    const seen = new Set<unknown>();
    (items as Record<string, unknown>[]).forEach((item, i) => {
      if (seen.has(item[key])) ctx.addIssue({ code: "custom", message, path: [i] });
      seen.add(item[key]);
    });
  });
  return refined.meta({ ...meta, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key] });
}

/** A list of unique scalars (`x-kubernetes-list-type: set`). */
export function uniqueSet<T extends z.ZodArray>(schema: T, message: string): T {
  const meta = schema.meta();
  const refined = schema.superRefine((items, ctx) => {
    (items as unknown[]).forEach((item, i) => {
      if ((items as unknown[]).indexOf(item) !== i) ctx.addIssue({ code: "custom", message, path: [i] });
    });
  });
  return refined.meta({ ...meta, "x-kubernetes-list-type": "set" });
}

/** A map (record) with at most `max` entries. */
export function maxProperties<T extends z.ZodRecord>(schema: T, max: number): T {
  const meta = schema.meta();
  const refined = schema.superRefine((value, ctx) => {
    if (Object.keys(value).length > max) {
      ctx.addIssue({ code: "custom", message: `must have at most ${max} entries` });
    }
  });
  return refined.meta({ ...meta, maxProperties: max });
}
