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

/**
 * The conditions a decision writes, measured against the ones stored before it: a condition
 * whose status did not move keeps its stored `lastTransitionTime` (also when the decision
 * removed it and set it again on the way), and conditions keep their stored order (new ones
 * follow). So a decision that changes nothing writes nothing.
 */
export function settleConditions(stored: readonly Condition[], next: readonly Condition[]): Condition[] {
  const before = new Map(stored.map((c, i) => [c.type, { condition: c, index: i }]));
  const settled = next.map((c) => {
    const previous = before.get(c.type)?.condition;
    return previous !== undefined && previous.status === c.status
      ? { ...c, lastTransitionTime: previous.lastTransitionTime }
      : c;
  });
  const position = (c: Condition) => before.get(c.type)?.index ?? stored.length;
  return settled
    .map((c, i) => ({ c, i }))
    .sort((a, b) => position(a.c) - position(b.c) || a.i - b.i)
    .map(({ c }) => c);
}
