import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CRD_FILES } from "../cli/generate-crd.ts";
import { CRD_FILE, mirrorJobCrd, renderCrdYaml, toStructural } from "./crd.ts";
import { validateMirrorJob } from "./validation.ts";

type Schema = Record<string, unknown>;

/** Every property below spec and status, with its path. */
function properties(schema: Schema, path: string): [string, Schema][] {
  const own = Object.entries((schema.properties ?? {}) as Record<string, Schema>).flatMap(([name, s]) => [
    [`${path}.${name}`, s] as [string, Schema],
    ...properties(s, `${path}.${name}`),
  ]);
  const items = schema.items as Schema | undefined;
  const values = schema.additionalProperties as Schema | undefined;
  return [
    ...own,
    ...(items ? properties(items, `${path}[]`) : []),
    ...(values ? properties(values, `${path}.*`) : []),
  ];
}

const versions = (
  mirrorJobCrd().spec as {
    versions: { schema: { openAPIV3Schema: { properties: Record<string, Schema> } } }[];
  }
).versions;
const top = versions[0]?.schema.openAPIV3Schema.properties ?? {};

describe("MirrorJob CRD", () => {
  it("is checked in as generated (run `npm run generate` after changing src/api)", () => {
    expect(CRD_FILES).toContain(CRD_FILE);
    for (const file of CRD_FILES) expect(readFileSync(file, "utf8"), file).toBe(renderCrdYaml());
  });

  it("describes every field of spec and status", () => {
    const missing = [...properties(top.spec ?? {}, "spec"), ...properties(top.status ?? {}, "status")]
      .filter(([, s]) => typeof s.description !== "string" || s.description === "")
      .map(([path]) => path);
    expect(missing).toEqual([]);
  });

  it("refuses constructs a structural schema cannot hold", () => {
    expect(() => toStructural({ anyOf: [{ type: "string" }, { type: "object" }] }, "spec.x")).toThrow(
      /spec.x: "anyOf"/,
    );
    expect(() => toStructural({ $ref: "#/defs/x" }, "spec.y")).toThrow(/spec.y: "\$ref"/);
    expect(() => toStructural({ description: "no type" }, "spec.z")).toThrow(/needs a type/);
  });

  it("drops additionalProperties: false beside properties", () => {
    expect(
      toStructural({ type: "object", properties: { a: { type: "string" } }, additionalProperties: false }),
    ).toEqual({
      type: "object",
      properties: { a: { type: "string" } },
    });
  });
});

describe("samples", () => {
  const dir = "config/samples";
  const samples = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) =>
      readFileSync(`${dir}/${f}`, "utf8")
        .split(/^---$/m)
        .map((doc) => [f, parse(doc) as { kind?: string }] as const),
    )
    .filter(([, doc]) => doc.kind === "MirrorJob");

  it("include the three documented examples", () => {
    expect(samples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(samples)("%s passes the zod validation", (_file, doc) => {
    const result = validateMirrorJob(doc);
    expect(result.ok ? [] : result.errors).toEqual([]);
  });
});
