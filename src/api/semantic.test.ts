import { describe, expect, it } from "vitest";
import type { ImageSetConfiguration } from "./imageset.ts";
import { mirrorJobSpecSchema } from "./mirrorjob.ts";
import { imageSetWarnings, parseImageSetConfiguration, semanticErrors } from "./semantic.ts";

function spec(
  extra: Record<string, unknown> = {},
  mirror: Record<string, unknown> = { additionalImages: [{ name: "quay.io/a/b:1" }] },
) {
  return mirrorJobSpecSchema.parse({
    imageSet: { inline: { mirror } },
    registry: { url: "reg.example.com/m", pushSecretRef: { name: "push" } },
    ...extra,
  });
}

function isc(mirror: ImageSetConfiguration["mirror"]): ImageSetConfiguration {
  return { mirror };
}

describe("semanticErrors", () => {
  it("accepts a valid spec", () => {
    expect(semanticErrors(spec({ schedule: "0 3 * * 0", timeZone: "Europe/Berlin" }))).toEqual([]);
  });

  it("reports a schedule that is not cron", () => {
    expect(semanticErrors(spec({ schedule: "every sunday" }))).toEqual([
      { field: "spec.schedule", message: expect.stringMatching(/not a cron schedule/) as unknown },
    ]);
  });

  it("reports an unknown time zone", () => {
    expect(semanticErrors(spec({ schedule: "@daily", timeZone: "Europe/Atlantis" }))[0]?.field).toBe(
      "spec.timeZone",
    );
  });

  it("reports a blocked-image expression that does not compile", () => {
    const errors = semanticErrors(
      spec(
        {},
        {
          additionalImages: [{ name: "quay.io/a/b:1" }],
          blockedImages: [{ name: ".*ok" }, { name: "(unclosed" }],
        },
      ),
    );
    expect(errors).toEqual([
      {
        field: "spec.imageSet.inline.mirror.blockedImages[1].name",
        message: expect.stringMatching(/not a valid regular expression/) as unknown,
      },
    ]);
  });
});

describe("semanticErrors: files inside the oc-mirror container (issue 13, point 8)", () => {
  const at = "spec.imageSet.inline";

  it("refuses targetCatalogSourceTemplate, which names a file the Job never mounts", () => {
    const errors = semanticErrors(
      spec(
        {},
        {
          operators: [
            { catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.19" },
            {
              catalog: "registry.redhat.io/redhat/certified-operator-index:v4.19",
              targetCatalogSourceTemplate: "/templates/cs.yaml",
            },
          ],
        },
      ),
    );
    expect(errors).toEqual([
      {
        field: `${at}.mirror.operators[1].targetCatalogSourceTemplate`,
        message: expect.stringMatching(
          /names a file inside the oc-mirror container.*leave it out/,
        ) as unknown,
      },
    ]);
  });

  it("refuses local helm charts and chart paths", () => {
    const errors = semanticErrors(
      spec(
        {},
        {
          helm: {
            local: [{ name: "mine", path: "/charts/mine-1.0.0.tgz" }],
            repositories: [
              {
                name: "repo",
                url: "https://charts.example.com",
                charts: [
                  { name: "a", version: "1.0.0" },
                  { name: "b", path: "/charts/b.tgz" },
                ],
              },
            ],
          },
        },
      ),
    );
    expect(errors.map((e) => e.field)).toEqual([
      `${at}.mirror.helm.local[0]`,
      `${at}.mirror.helm.repositories[0].charts[1].path`,
    ]);
    expect(errors[0]?.message).toMatch(/mirror the chart from a repository/);
  });

  it("accepts charts from a repository without a path", () => {
    expect(
      semanticErrors(
        spec(
          {},
          {
            helm: {
              repositories: [
                {
                  name: "repo",
                  url: "https://charts.example.com",
                  charts: [{ name: "a", version: "1.0.0" }],
                },
              ],
            },
          },
        ),
      ),
    ).toEqual([]);
  });
});

describe("parseImageSetConfiguration (from a ConfigMap)", () => {
  const source = "configmap/isc[imageset-config.yaml]";

  it("parses a valid configuration", () => {
    const result = parseImageSetConfiguration(
      "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n    - name: quay.io/a/b:1\n",
      source,
    );
    expect(result).toEqual({
      ok: true,
      value: expect.objectContaining({
        mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] },
      }) as unknown,
    });
  });

  it("names the line of a YAML error", () => {
    const result = parseImageSetConfiguration(
      "mirror:\n  additionalImages:\n    - name: [unclosed\n",
      source,
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors[0]).toMatchObject({
      field: source,
      message: expect.stringMatching(/not valid YAML \(line \d\)/) as unknown,
    });
  });

  it("rejects duplicate keys", () => {
    expect(parseImageSetConfiguration("mirror: {}\nmirror: {}\n", source).ok).toBe(false);
  });

  it("names the field of a schema error, prefixed by the source", () => {
    const result = parseImageSetConfiguration("mirror:\n  additionalImages:\n    - name: ubi9/ubi\n", source);
    expect(!result.ok && result.errors.map((e) => e.field)).toEqual([
      `${source}.mirror.additionalImages[0].name`,
    ]);
  });

  it("rejects unknown fields as oc-mirror does", () => {
    const result = parseImageSetConfiguration("mirror:\n  operator: []\n", source);
    expect(!result.ok && result.errors).toEqual([
      { field: `${source}.mirror.operator`, message: "unknown field" },
    ]);
  });

  it("reports semantic errors too", () => {
    const result = parseImageSetConfiguration("mirror:\n  blockedImages:\n    - name: '*bad'\n", source);
    expect(!result.ok && result.errors[0]?.field).toBe(`${source}.mirror.blockedImages[0].name`);
  });
});

describe("imageSetWarnings (review checklist)", () => {
  it("warns about channels without pinned versions", () => {
    const warnings = imageSetWarnings(
      isc({ platform: { graph: true, channels: [{ name: "stable-4.19", minVersion: "4.19.2" }] } }),
    );
    expect(warnings).toEqual([expect.stringMatching(/stable-4.19 has no pinned maxVersion/)]);
    expect(
      imageSetWarnings(isc({ platform: { graph: true, channels: [{ name: "stable-4.19" }] } }))[0],
    ).toMatch(/no pinned minVersion/);
  });

  it("does not warn about a pinned range or a full channel", () => {
    expect(
      imageSetWarnings(
        isc({
          platform: {
            graph: true,
            channels: [
              { name: "stable-4.19", minVersion: "4.19.2", maxVersion: "4.19.7" },
              { name: "stable-4.18", full: true },
            ],
          },
        }),
      ),
    ).toEqual([]);
  });

  it("warns about release mirroring without the update graph", () => {
    const warnings = imageSetWarnings(
      isc({ platform: { channels: [{ name: "stable-4.19", minVersion: "4.19.2", maxVersion: "4.19.7" }] } }),
    );
    expect(warnings).toEqual([expect.stringMatching(/without platform.graph: true/)]);
    expect(
      imageSetWarnings(
        isc({ platform: { release: "quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64" } }),
      ),
    ).toHaveLength(1);
  });

  it("has nothing to say about additional images only", () => {
    expect(imageSetWarnings(isc({ additionalImages: [{ name: "quay.io/a/b:1" }] }))).toEqual([]);
  });
});
