/**
 * The operator's architecture, checked on its import graph (read with the TypeScript
 * compiler's own pre-processor, type-only imports included: a cycle of types is still a
 * cycle of concepts):
 * - no import cycle in src/;
 * - src/apply/ and src/reconcile/ are pure: no I/O module, no Kubernetes API client;
 * - nothing in src/, hack/ or devkit/ imports the tests (eslint's no-restricted-imports also
 *   checks this as you type; here it holds for the graph).
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../devkit/binaries.ts";

function sourceFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
    .map((e) => relative(repoRoot, join(e.parentPath, e.name)));
}

/** Every import specifier of a file (values and types, static and dynamic). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(repoRoot, file), "utf8"), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** The repository files a file imports (relative specifiers only). */
function localImports(file: string): string[] {
  return importsOf(file)
    .filter((s) => s.startsWith("."))
    .map((s) => relative(repoRoot, resolve(repoRoot, dirname(file), s)));
}

/** The cycles of a graph (one per strongly connected component with more than one file, or a self-import). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("architecture", () => {
  const src = sourceFiles("src");
  const graph = new Map(src.map((f) => [f, localImports(f)]));

  it("finds the imports it checks", () => {
    expect(src.length).toBeGreaterThan(50);
    expect(graph.get("src/reconcile/decide.ts")).toContain("src/reconcile/draft.ts");
  });

  it("has no import cycle in src/ (type-only imports included)", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("finds a cycle where there is one", () => {
    const looped = new Map(graph);
    looped.set("src/reconcile/protocol.ts", [
      ...(graph.get("src/reconcile/protocol.ts") ?? []),
      "src/runtime/controller.ts",
    ]);
    expect(cycles(looped).flat()).toContain("src/reconcile/protocol.ts");
  });

  it("keeps src/apply/ and src/reconcile/ free of I/O", () => {
    const io = /^(node:(fs|child_process|net|http|https|dns|tls|dgram)|undici|@kubernetes\/client-node$)/;
    const offenders = src
      .filter((f) => f.startsWith("src/apply/") || f.startsWith("src/reconcile/"))
      .flatMap((f) => {
        const text = readFileSync(join(repoRoot, f), "utf8");
        // Types of client-node objects are data; its values (API clients) are I/O.
        const valueImports = [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gms)].map(
          (m) => m[1] ?? "",
        );
        return valueImports.filter((s) => io.test(s)).map((s) => `${f} imports ${s}`);
      });
    expect(offenders).toEqual([]);
    // ...and nothing from the shell either.
    const shell = src
      .filter((f) => f.startsWith("src/apply/") || f.startsWith("src/reconcile/"))
      .flatMap((f) =>
        (graph.get(f) ?? []).filter((i) => i.startsWith("src/runtime/")).map((i) => `${f} imports ${i}`),
      );
    expect(shell).toEqual([]);
  });

  it("has nothing in src/, hack/ or devkit/ import the tests", () => {
    const files = [...src, ...sourceFiles("hack"), ...sourceFiles("devkit")];
    const offenders = files.flatMap((f) =>
      localImports(f)
        .filter((i) => i.startsWith("test/") || (f.startsWith("src/") && i.startsWith("devkit/")))
        .map((i) => `${f} imports ${i}`),
    );
    expect(offenders).toEqual([]);
  });
});
