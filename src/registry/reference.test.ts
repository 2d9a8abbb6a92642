import { describe, expect, it } from "vitest";
import { formatReference, parseReference } from "./reference.ts";

const digest = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  it.each([
    ["quay.io/ns/img:1.0", { registry: "quay.io", repository: "ns/img", tag: "1.0" }],
    ["reg.example.com:8443/a/b/c", { registry: "reg.example.com:8443", repository: "a/b/c" }],
    [`localhost:5000/img@${digest}`, { registry: "localhost:5000", repository: "img", digest }],
    [
      `docker://127.0.0.1:5000/ns/img:v1@${digest}`,
      { registry: "127.0.0.1:5000", repository: "ns/img", tag: "v1", digest },
    ],
  ])("parses %s", (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it.each([
    ["ubuntu:22.04", /registry host/],
    ["library/ubuntu:22.04", /must start with a registry host/],
    ["quay.io/Upper/img:1", /invalid repository path/],
    ["quay.io/ns/img:bad tag", /invalid tag/],
    ["quay.io/ns/img@sha256:short", /invalid digest/],
    ["quay.io/", /invalid repository path/],
  ])("rejects %s", (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
  });

  it("formats what it parses", () => {
    const text = `reg:5000/ns/img:v1@${digest}`;
    expect(formatReference(parseReference(text))).toBe(text);
  });
});
