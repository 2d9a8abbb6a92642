/**
 * metav1.Condition bookkeeping: `lastTransitionTime` changes only when `status` flips,
 * and every condition records the generation it was computed for.
 */
import type { Condition } from "../api/status.ts";

export interface ConditionInput {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
}

export function setCondition(
  conditions: readonly Condition[],
  input: ConditionInput,
  generation: number,
  now: Date,
): Condition[] {
  const existing = conditions.find((c) => c.type === input.type);
  const lastTransitionTime =
    existing !== undefined && existing.status === input.status
      ? existing.lastTransitionTime
      : now.toISOString();
  const next: Condition = {
    ...input,
    message: input.message.slice(0, 32768),
    observedGeneration: generation,
    lastTransitionTime,
  };
  return existing === undefined
    ? [...conditions, next]
    : conditions.map((c) => (c.type === input.type ? next : c));
}

export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
