import { describe, expect, it } from "vitest";
import type { Condition } from "../api/status.ts";
import { removeCondition, setCondition, settleConditions } from "./conditions.ts";

const t0 = new Date("2026-11-27T10:00:00Z");
const t1 = new Date("2026-11-27T10:05:00Z");

function condition(type: string, status: "True" | "False", at: Date, message = ""): Condition {
  return { type, status, reason: "R", message, observedGeneration: 1, lastTransitionTime: at.toISOString() };
}

describe("settleConditions", () => {
  it("keeps the stored transition time of a condition removed and set again with the same status", () => {
    const stored = [condition("Ready", "False", t0), condition("Stalled", "True", t0)];
    const removed = removeCondition(stored, "Stalled");
    const again = setCondition(removed, { type: "Stalled", status: "True", reason: "R", message: "" }, 1, t1);
    expect(again.map((c) => c.type)).toEqual(["Ready", "Stalled"]);
    expect(settleConditions(stored, again)).toEqual(stored);
  });

  it("moves the transition time only when the status moves, and keeps the stored order", () => {
    const stored = [condition("Stalled", "True", t0), condition("Ready", "False", t0)];
    const next = [condition("Ready", "True", t1, "done"), condition("Stalled", "True", t1, "changed")];
    expect(settleConditions(stored, next)).toEqual([
      condition("Stalled", "True", t0, "changed"),
      condition("Ready", "True", t1, "done"),
    ]);
  });

  it("puts new conditions after the stored ones and drops removed ones", () => {
    const stored = [condition("A", "True", t0), condition("B", "True", t0)];
    const next = [condition("C", "True", t1), condition("A", "True", t1)];
    expect(settleConditions(stored, next).map((c) => [c.type, c.lastTransitionTime])).toEqual([
      ["A", t0.toISOString()],
      ["C", t1.toISOString()],
    ]);
  });
});
