/**
 * Static checks of the Dockerfile (no container engine runs in CI): pinned Node 24 base
 * images, a multi-stage build whose final stage holds production dependencies only, a
 * numeric non-root USER, and an entrypoint that the TypeScript build really produces.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join, posix } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../devkit/binaries.ts";

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined. */
function instructions(text: string): Instruction[] {
  const logical = text
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return logical.map((line) => {
    const match = /^(\S+)\s*(.*)$/.exec(line);
    return { keyword: (match?.[1] ?? "").toUpperCase(), args: (match?.[2] ?? "").replace(/\s+/g, " ") };
  });
}

/** Stages with their base image, global ARG defaults substituted. */
function stages(all: readonly Instruction[]): Stage[] {
  const globals = new Map<string, string>();
  const result: Stage[] = [];
  for (const i of all) {
    if (i.keyword === "FROM") {
      const [image = "", as, name] = i.args.split(" ");
      const resolved = image.replace(/\$\{?(\w+)\}?/g, (_, v: string) => globals.get(v) ?? "");
      result.push({ image: resolved, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else if (result.length === 0 && i.keyword === "ARG") {
      const [key = "", value = ""] = i.args.split("=");
      globals.set(key, value);
    } else {
      result.at(-1)?.instructions.push(i);
    }
  }
  return result;
}

const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
const all = instructions(dockerfile);
const built = stages(all);
const final = built.at(-1);
const runs = (stage: Stage | undefined) =>
  (stage?.instructions ?? []).filter((i) => i.keyword === "RUN").map((i) => i.args);
const last = (stage: Stage | undefined, keyword: string) =>
  stage?.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  bin: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Where tsconfig.build.json puts the JavaScript of a source file. */
function compiledPath(source: string): string {
  const read = (f: string) =>
    JSON.parse(readFileSync(join(repoRoot, f), "utf8")) as {
      extends?: string;
      compilerOptions?: { outDir?: string; rootDir?: string };
    };
  const build = read("tsconfig.build.json");
  const base = build.extends !== undefined ? read(build.extends) : {};
  const options = { ...base.compilerOptions, ...build.compilerOptions };
  const relative = posix.relative(options.rootDir ?? ".", source);
  return posix.join(options.outDir ?? ".", relative.replace(/\.ts$/, ".js"));
}

describe("Dockerfile", () => {
  it("builds in stages from pinned Node 24 images", () => {
    expect(built.length).toBeGreaterThanOrEqual(2);
    const nodeMajor = /(\d+)/.exec(pkg.devDependencies.node ?? "")?.[1];
    for (const stage of built) {
      expect(stage.image).not.toMatch(/:latest\b/);
      // An exact version tag (major.minor.patch) or a digest.
      expect(stage.image).toMatch(/(:\d+\.\d+\.\d+[\w.-]*)(@sha256:[a-f0-9]{64})?$|@sha256:[a-f0-9]{64}$/);
      expect(stage.image).toMatch(new RegExp(`node:${nodeMajor ?? "?"}\\.`));
    }
  });

  it("compiles in a build stage: npm ci, then npm run build", () => {
    const build = built.find((s) => s.name === "build");
    const commands = runs(build).join(" && ");
    expect(commands).toMatch(/npm ci\b.*npm run build/);
  });

  it("ships production dependencies only, and the compiled code from the build stage", () => {
    const commands = runs(final).join(" && ");
    expect(commands).toMatch(/npm ci\b[^&]*--omit=dev/);
    expect(commands).not.toMatch(/npm (run|install)\b/);
    const copies = (final?.instructions ?? []).filter((i) => i.keyword === "COPY");
    expect(copies.filter((c) => c.args.startsWith("--from=build"))).toHaveLength(1);
    // Nothing but the manifest and lockfile from the build context.
    expect(copies.filter((c) => !c.args.startsWith("--from="))).toEqual([
      { keyword: "COPY", args: "package.json package-lock.json ./" },
    ]);
  });

  it("runs as a numeric non-root user", () => {
    const user = last(final, "USER");
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user?.split(":")[0])).toBeGreaterThan(0);
  });

  it("starts the CLI that the TypeScript build produces, for `manager` and `report`", () => {
    const entrypoint = JSON.parse(last(final, "ENTRYPOINT") ?? "null") as unknown;
    const main = compiledPath("src/cli/main.ts");
    expect(main).toBe("dist/src/cli/main.js");
    expect(entrypoint).toEqual(["node", main]);
    expect(pkg.bin["hub-mirror-operator"]).toBe(main);
    const workdir = last(final, "WORKDIR") ?? "/";
    const copied = (final?.instructions ?? []).find((i) => i.args.startsWith("--from=build"))?.args ?? "";
    const [, from = "", to = ""] = copied.split(" ");
    expect(posix.join(workdir, to)).toBe(posix.join(workdir, posix.dirname(posix.dirname(main))) + "/");
    expect(from).toBe(
      posix.join(
        last(
          built.find((s) => s.name === "build"),
          "WORKDIR",
        ) ?? "/",
        "dist/src/",
      ),
    );
  });

  it("sends only what the build needs to the build context", () => {
    const ignore = readFileSync(join(repoRoot, ".dockerignore"), "utf8");
    expect(ignore).toMatch(/^\*$/m);
    const sources = built
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from="))
      .flatMap((i) => i.args.split(" ").slice(0, -1));
    for (const source of sources) {
      expect(existsSync(join(repoRoot, source)), source).toBe(true);
      expect(ignore, source).toContain(`!${source}`);
    }
  });
});

describe("the image's build output", () => {
  mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
  const out = mkdtempSync(join(repoRoot, ".tmp", "image-build-"));
  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
  });

  it("has the entrypoint, and it runs", { timeout: 120_000 }, () => {
    // What `npm run build` runs, into a scratch folder (inside the repository, so that
    // node_modules and package.json's "type": "module" apply as they do in the image);
    // without its type check, which `npm run typecheck` does.
    const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", out, "--noCheck"], {
      cwd: repoRoot,
    });
    const main = join(out, compiledPath("src/cli/main.ts").replace(/^dist\//, ""));
    expect(existsSync(main)).toBe(true);
    const usage = execFileSync(process.execPath, [main, "help"], { encoding: "utf8" });
    expect(usage).toMatch(/manager .*\n\s+report /);
  });
});
