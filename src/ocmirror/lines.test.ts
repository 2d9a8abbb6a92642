import { describe, expect, it } from "vitest";
import type { ImageSetConfiguration } from "../api/imageset.ts";
import { adaptImageSet, lineErrors } from "./lines.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const AT = "spec.imageSet.inline";

function isc(mirror: ImageSetConfiguration["mirror"]): ImageSetConfiguration {
  return { mirror };
}

describe("lineErrors", () => {
  it("names the fields oc-mirror 4.20 refuses (it decodes the configuration strictly)", () => {
    const config = isc({
      platform: { channels: [{ name: "stable-4.19" }], platforms: [{ os: "linux", architecture: "amd64" }] },
      operators: [
        {
          catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.19",
          platforms: [{ architecture: "amd64" }],
        },
      ],
      additionalImages: [
        { name: "quay.io/a/b:1" },
        { name: `127.0.0.1:5000/demo/pause@${DIGEST}`, targetTag: "3.10", targetRepo: "demo/pause" },
      ],
    } as ImageSetConfiguration["mirror"]);
    const errors = lineErrors(config, "4.20", AT);
    expect(errors.map((e) => e.field)).toEqual([
      `${AT}.mirror.platform.platforms`,
      `${AT}.mirror.operators[0].platforms`,
      `${AT}.mirror.additionalImages[1].targetRepo`,
      `${AT}.mirror.additionalImages[1].targetTag`,
    ]);
    expect(errors[3]?.message).toBe(
      "targetTag needs oc-mirror 5; this MirrorJob's Jobs run oc-mirror 4.20 (spec.mirror.line), which refuses it",
    );
  });

  it("has nothing against the same configuration for oc-mirror 5", () => {
    const config = isc({
      additionalImages: [{ name: `127.0.0.1:5000/demo/pause@${DIGEST}`, targetTag: "3.10" }],
    });
    expect(lineErrors(config, "5", AT)).toEqual([]);
  });
});

describe("adaptImageSet", () => {
  it("gives oc-mirror 5 a targetTag for a digest-only image of a registry with a port, the tag 4.20 would use", () => {
    const config = isc({
      additionalImages: [
        { name: `127.0.0.1:5000/demo/pause@${DIGEST}` },
        { name: "127.0.0.1:5000/demo/busybox:stable" },
        { name: `quay.io/demo/pause@${DIGEST}` },
        { name: `127.0.0.1:5000/demo/kept@${DIGEST}`, targetTag: "mine" },
      ],
    });
    const adapted = adaptImageSet(config, "5");
    expect(adapted.imageSet.mirror.additionalImages).toEqual([
      { name: `127.0.0.1:5000/demo/pause@${DIGEST}`, targetTag: `sha256-${"ab".repeat(32)}` },
      { name: "127.0.0.1:5000/demo/busybox:stable" },
      { name: `quay.io/demo/pause@${DIGEST}` },
      { name: `127.0.0.1:5000/demo/kept@${DIGEST}`, targetTag: "mine" },
    ]);
    expect(adapted.notes).toEqual([
      `added targetTag sha256-${"ab".repeat(32)} to 127.0.0.1:5000/demo/pause@${DIGEST}: oc-mirror 5 cannot mirror a digest-only image from a registry with a port without one`,
    ]);
    // The user's configuration is not changed.
    expect(config.mirror.additionalImages?.[0]).toEqual({ name: `127.0.0.1:5000/demo/pause@${DIGEST}` });
  });

  it("leaves the configuration alone for oc-mirror 4.20 (which mirrors such images and refuses targetTag)", () => {
    const config = isc({ additionalImages: [{ name: `127.0.0.1:5000/demo/pause@${DIGEST}` }] });
    expect(adaptImageSet(config, "4.20")).toEqual({ imageSet: config, notes: [] });
  });
});
