import { describe, expect, it } from "vitest";
import { latestLogFile, runTimestamp, workingDirOf, workspacePaths } from "./workspace.ts";

describe("workspace layout", () => {
  it("appends working-dir unless the workspace already ends with it", () => {
    expect(workingDirOf("file:///var/ws")).toBe("/var/ws/working-dir");
    expect(workingDirOf("/var/ws/")).toBe("/var/ws/working-dir");
    expect(workingDirOf("file:///var/ws/working-dir")).toBe("/var/ws/working-dir");
  });

  it("names every path a reader needs", () => {
    expect(workspacePaths("file:///ws")).toEqual({
      workingDir: "/ws/working-dir",
      logs: "/ws/working-dir/logs",
      clusterResources: "/ws/working-dir/cluster-resources",
      dryRun: "/ws/working-dir/dry-run",
      mapping: "/ws/working-dir/dry-run/mapping.txt",
      signatures: "/ws/working-dir/signatures",
      graphPreparation: "/ws/working-dir/graph-preparation",
    });
  });

  it("formats oc-mirror's run timestamp", () => {
    expect(runTimestamp(new Date(2025, 2, 9, 8, 5, 3))).toBe("20250309_080503");
  });

  it("finds the newest log, counting the pre-4.20 name as oldest", () => {
    expect(
      latestLogFile(["oc-mirror.log", "oc-mirror-20250319_082023.log", "registry-20250320_000000.log"]),
    ).toBe("oc-mirror-20250319_082023.log");
    expect(latestLogFile(["oc-mirror.log"])).toBe("oc-mirror.log");
  });
});
