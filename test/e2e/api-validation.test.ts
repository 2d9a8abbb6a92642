/**
 * The MirrorJob API rejects bad input at the API server with a message naming the
 * field, and the zod schemas (the CRD's source) decide exactly as the API server does:
 * every case of testdata/mirrorjob-corpus.yaml goes through both.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ApiException, CustomObjectsApi } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import { validateMirrorJob } from "../../src/api/validation.ts";
import { adminKubeConfig, statusMessage, useNamespace } from "../harness/kube.ts";
import { mergePatch } from "../harness/merge-patch.ts";

interface Corpus {
  base: Record<string, unknown>;
  valid: { name: string; patch: unknown }[];
  invalid: { name: string; field: string; patch: unknown }[];
}

const corpus = parse(
  readFileSync(join(import.meta.dirname, "testdata/mirrorjob-corpus.yaml"), "utf8"),
) as Corpus;
const objects = adminKubeConfig().makeApiClient(CustomObjectsApi);

function build(patch: unknown, namespace: string): Record<string, unknown> {
  const object = mergePatch(corpus.base, patch) as Record<string, unknown>;
  return { ...object, metadata: { name: "corpus", namespace } };
}

async function create(body: Record<string, unknown>, namespace: string): Promise<unknown> {
  return objects.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body,
    fieldValidation: "Strict", // what kubectl sends
  });
}

describe("MirrorJob validation corpus", () => {
  const ns = useNamespace();

  it("has at least 30 invalid and several valid cases", () => {
    expect(corpus.invalid.length).toBeGreaterThanOrEqual(30);
    expect(corpus.valid.length).toBeGreaterThanOrEqual(5);
  });

  it.each(corpus.invalid)("rejects: $name ($field)", async ({ field, patch }) => {
    const body = build(patch, ns.name);

    const zod = validateMirrorJob(body);
    expect(zod.ok, "zod accepted it").toBe(false);
    if (!zod.ok) expect(zod.errors.map((e) => e.field)).toContain(field);

    const err = await create(body, ns.name).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, "the API server accepted it").toBeInstanceOf(ApiException);
    expect([400, 422]).toContain((err as ApiException<unknown>).code);
    expect(statusMessage(err)).toContain(field);
  });

  it.each(corpus.valid)("accepts: $name", async ({ patch }) => {
    const body = build(patch, ns.name);

    const zod = validateMirrorJob(body);
    expect(zod.ok ? [] : zod.errors).toEqual([]);

    const created = (await create(body, ns.name)) as { spec: unknown };
    // The API server's defaults (from the CRD) and zod's are the same.
    if (zod.ok) expect(created.spec).toEqual(zod.value.spec);
  });
});
