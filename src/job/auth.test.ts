import { describe, expect, it } from "vitest";
import { AuthFileError, mergeAuthFiles, readDockerConfigAuths } from "./auth.ts";

describe("readDockerConfigAuths", () => {
  it("reads the auths of a dockerconfigjson, as text or bytes", () => {
    const text = '{"auths":{"quay.io":{"auth":"dTpw"}},"credsStore":"x"}';
    expect(readDockerConfigAuths(text)).toEqual({ "quay.io": { auth: "dTpw" } });
    expect(readDockerConfigAuths(Buffer.from(text))).toEqual({ "quay.io": { auth: "dTpw" } });
  });

  it("refuses what oc-mirror could not use, without quoting the content", () => {
    const cases: [string, RegExp][] = [
      ['{"auths": {"r": {"password": "s3cret"}', /is not valid JSON/],
      ['{"r": {"auth": "s3cret"}}', /has no "auths" object/],
      ['{"auths": ["s3cret"]}', /has no "auths" object/],
      ['{"auths": {"r": "s3cret"}}', /the entry for r is not an object/],
      ["null", /has no "auths" object/],
    ];
    for (const [content, message] of cases) {
      let caught: unknown;
      try {
        readDockerConfigAuths(content);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(AuthFileError);
      expect((caught as Error).message).toMatch(message);
      expect((caught as Error).message).not.toContain("s3cret");
    }
  });
});

describe("mergeAuthFiles", () => {
  it("merges in order: a later file's entry replaces an earlier one's for the same key", () => {
    const source = {
      "registry.redhat.io": { auth: "cmg6MQ==" },
      "reg.example.com": { auth: "b2xkOm9sZA==" },
    };
    const push = { "reg.example.com": { auth: "bmV3Om5ldw==" } };
    expect(JSON.parse(mergeAuthFiles([source, push]))).toEqual({
      auths: { "registry.redhat.io": { auth: "cmg6MQ==" }, "reg.example.com": { auth: "bmV3Om5ldw==" } },
    });
    expect(JSON.parse(mergeAuthFiles([]))).toEqual({ auths: {} });
  });
});
