import { expect, it } from "vitest";

it("fails on purpose", () => {
  expect("harness").toBe("torn down anyway");
});
