import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    teardownTimeout: 60_000,
    // CI reads the JSON report for its summary line (and to refuse skipped tests).
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: ".tmp/vitest-results.json" },
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "test/unit/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          // One control plane serves every file; files run in parallel, each test in its own namespace.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
