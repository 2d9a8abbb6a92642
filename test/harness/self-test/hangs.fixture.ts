import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { inject, it } from "vitest";

it("hangs until the runner is killed", async () => {
  writeFileSync(process.env.HUBMIRROR_SELF_TEST_MARKER ?? "/dev/null", inject("harnessDir"));
  await sleep(110_000);
});
