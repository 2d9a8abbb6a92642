import { describe, expect, it } from "vitest";
import { ensureStages } from "./run-objects.ts";

describe("ensureStages", () => {
  const of = (...kinds: string[]) => kinds.map((kind, i) => ({ kind, metadata: { name: `o${String(i)}` } }));
  const kinds = (stages: ReturnType<typeof ensureStages>) => stages.map((s) => s.map((o) => o.kind));

  it("creates a run's objects together, its RoleBinding after its Role, its Job last", () => {
    const objects = of(
      "ServiceAccount",
      "PersistentVolumeClaim",
      "Secret",
      "ConfigMap",
      "Role",
      "RoleBinding",
      "Job",
    );
    expect(kinds(ensureStages(objects))).toEqual([
      ["ServiceAccount", "PersistentVolumeClaim", "Secret", "ConfigMap", "Role"],
      ["RoleBinding"],
      ["Job"],
    ]);
  });

  it("keeps every object once and in order", () => {
    expect(ensureStages([])).toEqual([]);
    expect(kinds(ensureStages(of("Job")))).toEqual([["Job"]]);
    expect(kinds(ensureStages(of("RoleBinding", "Secret", "Job")))).toEqual([
      ["RoleBinding"],
      ["Secret"],
      ["Job"],
    ]);
    const objects = of("Secret", "RoleBinding", "Role", "ConfigMap", "Job");
    expect(ensureStages(objects).flat()).toEqual(objects);
  });
});
