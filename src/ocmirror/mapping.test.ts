import { describe, expect, it } from "vitest";
import { destinationEntries, parseMapping } from "./mapping.ts";

const HEX = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A mirror-to-mirror dry run (cli/dryrun.go), including a catalog's two lines.
const MAPPING = [
  `docker://quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:${HEX}=docker://reg:5000/mirror/openshift/release:4.19.7-x86_64-cli`,
  "docker://quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64=docker://reg:5000/mirror/openshift/release-images:4.19.7-x86_64",
  "docker://registry.redhat.io/ubi9/ubi:latest=docker://reg:5000/mirror/ubi9/ubi:latest",
  `docker://quay.io/prometheus/busybox@sha256:${HEX}=docker://reg:5000/mirror/prometheus/busybox:sha256-${HEX}`,
  "docker://registry.redhat.io/redhat/redhat-operator-index:v4.19=docker://localhost:55000/redhat/redhat-operator-index:v4.19",
  "docker://localhost:55000/redhat/redhat-operator-index:3f1c0b4c3d2e1f0a9b8c7d6e5f4a3b2c=docker://reg:5000/mirror/redhat/redhat-operator-index:v4.19",
  "",
].join("\n");

describe("parseMapping", () => {
  it("reads each line without transports and notes digest-pinned sources", () => {
    const { entries, errors } = parseMapping(MAPPING);
    expect(errors).toEqual([]);
    expect(entries).toHaveLength(6);
    expect(entries[0]).toEqual({
      source: `quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:${HEX}`,
      destination: "reg:5000/mirror/openshift/release:4.19.7-x86_64-cli",
      sourceDigest: `sha256:${HEX}`,
    });
    expect(entries[2]).toEqual({
      source: "registry.redhat.io/ubi9/ubi:latest",
      destination: "reg:5000/mirror/ubi9/ubi:latest",
    });
  });

  it("reads oci:// and file:// transports", () => {
    const { entries, errors } = parseMapping(
      "oci:///home/user/catalog=docker://reg/mirror/catalog:latest\nfile://a/b=docker://reg/a/b:1",
    );
    expect(errors).toEqual([]);
    expect(entries.map((e) => e.source)).toEqual(["/home/user/catalog", "a/b"]);
  });

  it("reports malformed lines with their line numbers and keeps the rest", () => {
    const { entries, errors } = parseMapping(
      [
        "docker://quay.io/a/b:1=docker://reg/a/b:1",
        "no equals sign",
        "docker://a/b:1=docker://c/d:1=docker://e/f:1",
        "quay.io/a/b:1=docker://reg/a/b:1",
        "docker://quay.io/a/b:1=",
        "docker://quay.io/a b:1=docker://reg/x:1",
        "x".repeat(5000),
      ].join("\n"),
    );
    expect(entries).toHaveLength(1);
    expect(errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(errors[2]?.message).toContain("no transport");
    expect(errors[3]?.message).toContain("empty destination");
  });
});

describe("destinationEntries", () => {
  const { entries } = parseMapping(MAPPING);

  it("keeps what lands under the registry URL, dropping the cache copies", () => {
    const kept = destinationEntries(entries, "reg:5000/mirror");
    expect(kept).toHaveLength(5);
    expect(kept.some((e) => e.destination.startsWith("localhost:55000"))).toBe(false);
    expect(destinationEntries(entries, "reg:5000")).toHaveLength(5);
    expect(destinationEntries(entries, "REG:5000/mirror/")).toHaveLength(5);
  });

  it("matches whole path components and the port", () => {
    expect(destinationEntries(entries, "reg:5000/mirr")).toEqual([]);
    expect(destinationEntries(entries, "reg/mirror")).toEqual([]);
    expect(destinationEntries(entries, "reg:5000/mirror/openshift")).toHaveLength(2);
    expect(destinationEntries(entries, "localhost:55000")).toHaveLength(1);
  });
});
