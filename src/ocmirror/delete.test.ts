import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  deleteImageListYaml,
  deleteImageSetConfiguration,
  deleteListFileName,
  parseDeleteImageList,
  withoutDockerTransport,
} from "./delete.ts";

describe("deleteImageSetConfiguration", () => {
  it("names what an image set mirrors under delete, without what delete does not know", () => {
    const isc = [
      "apiVersion: mirror.openshift.io/v2alpha1",
      "kind: ImageSetConfiguration",
      "mirror:",
      "  platform:",
      "    graph: true",
      "    channels: [{name: stable-4.19, minVersion: 4.19.1, maxVersion: 4.19.3}]",
      "  operators: [{catalog: 'registry.example.com/redhat/index:v4.19', packages: [{name: demo}]}]",
      "  additionalImages: [{name: 'registry.example.com/demo/busybox:stable'}]",
      "  blockedImages: [{name: 'registry.example.com/demo/bad'}]",
    ].join("\n");
    expect(parse(deleteImageSetConfiguration(isc))).toEqual({
      apiVersion: "mirror.openshift.io/v2alpha1",
      kind: "DeleteImageSetConfiguration",
      delete: {
        platform: {
          graph: true,
          channels: [{ name: "stable-4.19", minVersion: "4.19.1", maxVersion: "4.19.3" }],
        },
        operators: [{ catalog: "registry.example.com/redhat/index:v4.19", packages: [{ name: "demo" }] }],
        additionalImages: [{ name: "registry.example.com/demo/busybox:stable" }],
      },
    });
  });

  it("refuses a configuration without a mirror section", () => {
    expect(() => deleteImageSetConfiguration("kind: ImageSetConfiguration\n")).toThrow(/no mirror section/);
  });
});

describe("DeleteImageList", () => {
  // As oc-mirror 4.20 wrote it (docs/oc-mirror-offline.md §8), cut to two items.
  const written = [
    "apiVersion: mirror.openshift.io/v2alpha1",
    "items:",
    "- imageName: 127.0.0.1:35997/demo/busybox:stable",
    "  imageReference: docker://127.0.0.1:45011/mirror/demo/busybox:stable",
    "  type: generic",
    "- imageName: docker://127.0.0.1:35997/openshift-release-dev/ocp-release:4.19.1-x86_64",
    "  imageReference: docker://127.0.0.1:45011/mirror/openshift/release-images:4.19.1-x86_64",
    "  type: ocpRelease",
    "kind: DeleteImageList",
  ].join("\n");

  it("reads what oc-mirror writes and writes what it reads", () => {
    const read = parseDeleteImageList(written);
    expect(read).toEqual({
      items: [
        {
          imageName: "127.0.0.1:35997/demo/busybox:stable",
          imageReference: "docker://127.0.0.1:45011/mirror/demo/busybox:stable",
          type: "generic",
        },
        {
          imageName: "docker://127.0.0.1:35997/openshift-release-dev/ocp-release:4.19.1-x86_64",
          imageReference: "docker://127.0.0.1:45011/mirror/openshift/release-images:4.19.1-x86_64",
          type: "ocpRelease",
        },
      ],
    });
    if (!("items" in read)) throw new Error("not read");
    expect(parseDeleteImageList(deleteImageListYaml(read.items))).toEqual(read);
    expect(parseDeleteImageList("kind: DeleteImageList\napiVersion: v\nitems: null\n")).toEqual({
      items: [],
    });
  });

  it("refuses what is not a DeleteImageList, naming the field", () => {
    expect(parseDeleteImageList("kind: Something\nitems: []")).toEqual({
      error: expect.stringMatching(/^kind: /) as unknown,
    });
    expect(parseDeleteImageList("kind: DeleteImageList\napiVersion: v\nitems: [{imageName: x}]")).toEqual({
      error: expect.stringMatching(/^items\.0\.imageReference: /) as unknown,
    });
    expect(parseDeleteImageList("{ not yaml")).toEqual({
      error: expect.stringMatching(/^not YAML/) as unknown,
    });
  });

  it("is named after the delete id, and references lose their transport", () => {
    expect(deleteListFileName("abc")).toBe("delete-images-abc.yaml");
    expect(withoutDockerTransport("docker://r.example.com/a:1")).toBe("r.example.com/a:1");
  });
});
