import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mergeAuth } from "./merge-auth.ts";

let dir: string;
let stderr: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "merge-auth-"));
  stderr = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stdout, "write").mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe("merge-auth", () => {
  it("writes the merged authfile, later files winning, readable by the pod's other users", () => {
    const source = file(
      "source",
      '{"auths":{"registry.redhat.io":{"auth":"cmg="},"reg:8443":{"auth":"b2xk"}}}',
    );
    const push = file("push", '{"auths":{"reg:8443":{"auth":"bmV3"}}}');
    const out = join(dir, "auth.json");
    expect(mergeAuth([`--out=${out}`, source, push])).toBe(0);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual({
      auths: { "registry.redhat.io": { auth: "cmg=" }, "reg:8443": { auth: "bmV3" } },
    });
    expect(statSync(out).mode & 0o777).toBe(0o444);
  });

  it("fails naming the file and never the content, and writes nothing", () => {
    const bad = file("push", '{"auths":{"reg":"s3cret"}}');
    const out = join(dir, "auth.json");
    expect(mergeAuth(["--out", out, bad])).toBe(1);
    expect(stderr.join("")).toMatch(/push: the entry for reg is not an object/);
    expect(stderr.join("")).not.toContain("s3cret");
    expect(() => statSync(out)).toThrow();
    expect(mergeAuth(["--out", out, join(dir, "missing")])).toBe(1);
  });

  it("needs --out and at least one file", () => {
    expect(mergeAuth([file("a", '{"auths":{}}')])).toBe(2);
    expect(mergeAuth([`--out=${join(dir, "x")}`])).toBe(2);
    expect(mergeAuth(["--bogus"])).toBe(2);
  });
});
