import { describe, expect, it } from "vitest";
import { conflictPauseMs } from "./applier.ts";

describe("conflictPauseMs", () => {
  it("pauses a random time up to 25 ms * 2^attempt, at most 1 s", () => {
    expect(conflictPauseMs(1, () => 0)).toBe(0);
    expect(conflictPauseMs(1, () => 1)).toBe(50);
    expect(conflictPauseMs(3, () => 0.5)).toBe(100);
    expect(conflictPauseMs(9, () => 1)).toBe(1_000);
    expect(conflictPauseMs(30, () => 1)).toBe(1_000);
  });
});
