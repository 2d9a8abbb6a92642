import { describe, expect, it } from "vitest";
import { latestErrorsFile, parseErrorsFile } from "./errors-file.ts";

// Lines as batch/common.go formatErrorMsg writes them.
const FILE = [
  "error mirroring image docker://registry.redhat.io/rhacm2/acm-grafana-rhel9@sha256:6f2a0b1c7e35c4f2b4b7c3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6 (Operator bundles: [advanced-cluster-management.v2.13.2 advanced-cluster-management.v2.13.3] - Operators: [advanced-cluster-management]) error: copying image 1/4 from manifest list: reading blob sha256:aa: fetching blob: received unexpected HTTP status: 502 Bad Gateway",
  "error mirroring image registry.redhat.io/ubi9/ubi:latest error: initializing source docker://registry.redhat.io/ubi9/ubi:latest: reading manifest latest in registry.redhat.io/ubi9/ubi: manifest unknown",
  "error mirroring image docker://registry.redhat.io/rhacm2/acm-operator-bundle@sha256:1111111111111111111111111111111111111111111111111111111111111111 error: skipping operator bundle docker://registry.redhat.io/rhacm2/acm-operator-bundle@sha256:1111111111111111111111111111111111111111111111111111111111111111 because one of its related images failed to mirror",
  "error: skipping operator bundle registry.redhat.io/rhacm2/acm-operator-bundle@sha256:2222222222222222222222222222222222222222222222222222222222222222 because one of its related images failed to mirror",
  "error mirroring image quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64 error: writing blob: uploading layer chunked: unauthorized: authentication required hint: destination registry returned unauthorized while uploading a blob.",
  "",
].join("\n");

describe("parseErrorsFile", () => {
  const errors = parseErrorsFile(FILE);

  it("reads an operator image with its bundles and operators, without transport", () => {
    expect(errors[0]).toEqual({
      image:
        "registry.redhat.io/rhacm2/acm-grafana-rhel9@sha256:6f2a0b1c7e35c4f2b4b7c3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6",
      error:
        "copying image 1/4 from manifest list: reading blob sha256:aa: fetching blob: received unexpected HTTP status: 502 Bad Gateway",
      bundles: ["advanced-cluster-management.v2.13.2", "advanced-cluster-management.v2.13.3"],
      operators: ["advanced-cluster-management"],
    });
  });

  it("reads a plain image error", () => {
    expect(errors[1]).toEqual({
      image: "registry.redhat.io/ubi9/ubi:latest",
      error:
        "initializing source docker://registry.redhat.io/ubi9/ubi:latest: reading manifest latest in registry.redhat.io/ubi9/ubi: manifest unknown",
    });
    expect(errors[4]?.image).toBe("quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64");
  });

  it("reads skipped bundles in both forms", () => {
    expect(errors[2]?.image).toBe(
      "registry.redhat.io/rhacm2/acm-operator-bundle@sha256:1111111111111111111111111111111111111111111111111111111111111111",
    );
    expect(errors[2]?.error).toMatch(
      /^skipping operator bundle docker:\/\/.* because one of its related images/,
    );
    expect(errors[3]).toEqual({
      image:
        "registry.redhat.io/rhacm2/acm-operator-bundle@sha256:2222222222222222222222222222222222222222222222222222222222222222",
      error:
        "skipping operator bundle registry.redhat.io/rhacm2/acm-operator-bundle@sha256:2222222222222222222222222222222222222222222222222222222222222222 because one of its related images failed to mirror",
    });
  });

  it("keeps lines it does not understand, and skips blank ones", () => {
    expect(errors).toHaveLength(5);
    expect(parseErrorsFile("something odd happened\r\n\r\n")).toEqual([
      { image: "", error: "something odd happened" },
    ]);
  });

  it("reads empty context lists", () => {
    const [e] = parseErrorsFile(
      "error mirroring image docker://quay.io/a/b@sha256:00 (Operator bundles: [] - Operators: [op]) error: boom",
    );
    expect(e).toEqual({ image: "quay.io/a/b@sha256:00", error: "boom", bundles: [], operators: ["op"] });
  });
});

describe("latestErrorsFile", () => {
  it("picks the newest errors file and ignores other files", () => {
    expect(
      latestErrorsFile([
        "oc-mirror-20250319_082023.log",
        "mirroring_errors_20250319_082023.txt",
        "mirroring_errors_20250320_010203.txt",
        "mirroring_errors_20250319_235959.txt",
        "mirroring_errors_latest.txt",
      ]),
    ).toBe("mirroring_errors_20250320_010203.txt");
    expect(latestErrorsFile(["/ws/working-dir/logs/mirroring_errors_20250101_000000.txt"])).toBe(
      "/ws/working-dir/logs/mirroring_errors_20250101_000000.txt",
    );
    expect(latestErrorsFile(["registry-20250319_082023.log"])).toBeUndefined();
    expect(latestErrorsFile([])).toBeUndefined();
  });
});
