// A nested test run used by test/e2e/harness-cleanup.test.ts: the real global setup,
// and test files that fail or hang on purpose.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: [process.env.HUBMIRROR_SELF_TEST ?? "none"],
    globalSetup: ["../global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
