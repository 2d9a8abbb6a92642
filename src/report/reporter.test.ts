/**
 * The reporter over a state folder and workspace laid out as the wrapper and the real
 * oc-mirror leave them (lines as oc-mirror 4.20 and 5.x print them: see
 * docs/oc-mirror-offline.md §6), with a writer that records what it is given.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runReporter } from "./reporter.ts";
import { RESULT_KEYS, type ReportedProgress, type RunResult } from "./result.ts";

const INFO = "\u001b[1;94m [INFO] \u001b[0m  : ";
const DEBUG = "\u001b[1;96m [DEBUG] \u001b[0m : ";
const ERROR = "\u001b[1;91m [ERROR] \u001b[0m : ";
const T = "2026/11/27 10:53:43 ";
const SRC = "127.0.0.1:44137";
const DEST = "127.0.0.1:41201/mirror";

let root = "";
let state = "";
let workspace = "";

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "reporter-test-"));
  workspace = join(root, "ws");
  state = join(workspace, ".hubmirror");
  mkdirSync(join(workspace, "working-dir", "logs"), { recursive: true });
  mkdirSync(state, { recursive: true });
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

interface Run {
  readonly result: RunResult;
  readonly progressWrites: ReportedProgress[];
  readonly echoed: string[];
}

/** Starts the reporter; `progressWrites` fills while it runs. */
function startReport(options: { echoLevel?: "all" | "error" } = {}): {
  readonly progressWrites: ReportedProgress[];
  readonly done: Promise<Run>;
} {
  const progressWrites: ReportedProgress[] = [];
  let result: RunResult | undefined;
  const echoed: string[] = [];
  const done = runReporter({
    stateDir: state,
    workspace,
    registry: DEST,
    heartbeatTimeoutSeconds: 60,
    progressIntervalMs: 0,
    pollIntervalMs: 5,
    ...(options.echoLevel !== undefined && { echoLevel: options.echoLevel }),
    echo: (line) => echoed.push(line),
    writer: {
      write: (data) => {
        const progress = data[RESULT_KEYS.progress];
        if (progress !== undefined) progressWrites.push(JSON.parse(progress) as ReportedProgress);
        const r = data[RESULT_KEYS.result];
        if (r !== undefined) result = JSON.parse(r) as RunResult;
        return Promise.resolve();
      },
    },
  }).then((code) => {
    expect(code).toBe(0);
    if (result === undefined) throw new Error("no result written");
    return { result, progressWrites, echoed };
  });
  return { progressWrites, done };
}

function report(options: { echoLevel?: "all" | "error" } = {}): Promise<Run> {
  return startReport(options).done;
}

function pass(name: "dry-run" | "mirror", lines: readonly string[], exit: number): void {
  writeFileSync(join(state, `${name}.out`), `${lines.join("\n")}\n`);
  writeFileSync(join(state, `${name}.exit`), `${String(exit)}\n`);
}

const HELLO = [
  `${T}${INFO}\u{1F44B} Hello, welcome to oc-mirror`,
  `${T}${INFO}\u{1F500} workflow mode: mirrorToMirror `,
];

describe("a dry run that failed at collection", () => {
  it("is a failure that says why oc-mirror could not collect the images (the dry run's reason is kept)", async () => {
    pass(
      "dry-run",
      [
        ...HELLO,
        `${T}${INFO}\u{1F50D} collecting operator images...`,
        `${T}${ERROR}[Executor] collection error: collect catalog "${SRC}/redhat/no-such-index:v4.19": get manifest: manifest unknown`,
      ],
      4,
    );
    const { result } = await report();
    expect(result.dryRunExitCode).toBe(4);
    expect(result.exit).toMatchObject({ code: 4, outcome: "failure", failedCategories: ["operator"] });
    expect(result.exit.description).toBe(
      `the dry run failed: oc-mirror could not collect the operator images (exit code 4) and copied nothing: collect catalog "${SRC}/redhat/no-such-index:v4.19": get manifest: manifest unknown`,
    );
    expect(result.images).toEqual({});
  });
});

describe("progress totals", () => {
  it("are oc-mirror's 'images to copy' of the mirror pass only: neither a collector's debug count nor the dry run's", async () => {
    const collectAll = [
      `${T}${INFO}\u{1F50D} collecting release images...`,
      `${T}${DEBUG}[CollectAll] total release images to copy 10 `,
      `${T}${DEBUG}[OperatorImageCollector] images to copy (before duplicates) 6 `,
      `${T}${DEBUG}[CollectAll] total operator images to copy 7 `,
      `${T}${DEBUG}[CollectAll] total additional images to copy 3 `,
    ];
    pass("dry-run", [...HELLO, ...collectAll], 0);
    writeFileSync(join(state, "mapping.txt"), "");
    // The mirror pass is still collecting while the reporter reports progress, then copies.
    writeFileSync(join(state, "mirror.out"), `${[...HELLO, ...collectAll].join("\n")}\n`);
    const reporting = startReport();
    // Until the reporter has reported the mirror pass's progress while it collects (at most 10 s).
    for (let i = 0; i < 1000 && !reporting.progressWrites.some((p) => p.stage === "mirroring"); i++) {
      await sleep(10);
    }
    pass(
      "mirror",
      [
        ...HELLO,
        ...collectAll,
        `${T}${INFO}\u{1F4CC} images to copy 20 `,
        `${T}${INFO}Success copying ${SRC}/demo/busybox:stable \u27A1\uFE0F ${DEST}/demo/`,
        `${T}${INFO}=== Results ===`,
        `${T}${INFO}\u001b[1;92m \u2713 \u001b[0m 10 / 10 release images mirrored successfully`,
        `${T}${INFO}\u001b[1;92m \u2713 \u001b[0m 7 / 7 operator images mirrored successfully`,
        `${T}${INFO}\u001b[1;92m \u2713 \u001b[0m 3 / 3 additional images mirrored successfully`,
        `${T}${INFO}mirror time     : 3.404859489s`,
      ],
      0,
    );
    const { result, progressWrites } = await reporting.done;
    expect(result.exit.outcome).toBe("success");
    // While collecting: no total yet; at the end: oc-mirror's own.
    expect(progressWrites.find((p) => p.stage === "mirroring")?.total).toBe(0);
    expect(new Set(progressWrites.map((p) => p.total))).toEqual(new Set([0, 20]));
    expect(progressWrites.at(-1)?.total).toBe(20);
  });

  it("start from zero in the mirror pass", async () => {
    pass("dry-run", [...HELLO, `${T}${INFO}\u{1F4CC} images to copy 5 `], 0);
    writeFileSync(join(state, "mapping.txt"), "");
    pass("mirror", [...HELLO, `${T}${ERROR}[Executor] collection error: boom`], 4);
    const { result, progressWrites } = await report();
    expect(progressWrites.at(-1)?.total).toBe(0);
    expect(result.exit.outcome).toBe("failure");
  });
});

describe("the errors file", () => {
  const errorsFile = (name: string, image: string) => {
    writeFileSync(
      join(workspace, "working-dir", "logs", name),
      `error mirroring image docker://${image} error: manifest unknown\n`,
    );
  };

  it("is this run's only: one older than the mirror pass (an earlier run's, which 5.x keeps) is not read", async () => {
    errorsFile("mirroring_errors_20261127_100000.txt", `${SRC}/demo/missing:1.0`);
    const earlier = new Date(Date.now() - 3600_000);
    utimesSync(
      join(workspace, "working-dir", "logs", "mirroring_errors_20261127_100000.txt"),
      earlier,
      earlier,
    );
    pass("dry-run", HELLO, 0);
    writeFileSync(join(state, "mapping.txt"), "");
    writeFileSync(join(state, "mirror.started"), `${String(Math.floor(Date.now() / 1000))}\n`);
    pass(
      "mirror",
      [
        ...HELLO,
        `${T}${INFO}\u{1F4CC} images to copy 1 `,
        `${T}${INFO}=== Results ===`,
        `${T}${INFO}\u001b[1;92m \u2713 \u001b[0m 1 / 1 additional images mirrored successfully`,
      ],
      0,
    );
    const { result } = await report();
    expect(result.failedImages).toEqual([]);
    expect(result.failedImageCount).toBe(0);
  });

  it("of the mirror pass is read", async () => {
    pass("dry-run", HELLO, 0);
    writeFileSync(join(state, "mapping.txt"), "");
    writeFileSync(join(state, "mirror.started"), `${String(Math.floor(Date.now() / 1000))}\n`);
    errorsFile("mirroring_errors_20261127_110000.txt", `${SRC}/demo/missing:1.0`);
    pass(
      "mirror",
      [
        ...HELLO,
        `${T}${INFO}\u{1F4CC} images to copy 2 `,
        `${T}${ERROR}Failed to copy generic ${SRC}/demo/missing:1.0`,
        `${T}${INFO}=== Results ===`,
        `${T}${INFO}\u001b[1;91m \u2717 \u001b[0m 1 / 2 additional images mirrored: Some additional images failed to be mirrored - please check the logs`,
      ],
      8,
    );
    const { result } = await report();
    expect(result.exit.outcome).toBe("partial");
    expect(result.failedImages).toEqual([{ image: `${SRC}/demo/missing:1.0`, error: "manifest unknown" }]);
  });
});

describe("echo level error", () => {
  it("echoes only oc-mirror's error lines, and still reads the info lines for the result", async () => {
    pass("dry-run", HELLO, 0);
    writeFileSync(join(state, "mapping.txt"), "");
    pass(
      "mirror",
      [
        ...HELLO,
        `${T}${INFO}\u{1F4CC} images to copy 2 `,
        `${T}${ERROR}Failed to copy generic ${SRC}/demo/missing:1.0`,
        `${T}${INFO}=== Results ===`,
        `${T}${INFO}\u001b[1;91m \u2717 \u001b[0m 1 / 2 additional images mirrored: Some additional images failed to be mirrored - please check the logs`,
      ],
      8,
    );
    const { result, echoed } = await report({ echoLevel: "error" });
    expect(result.images).toEqual({ additional: { copied: 1, failed: 1, total: 2 } });
    const ocMirrorLines = echoed.filter((l) => !l.startsWith("reporter:"));
    expect(ocMirrorLines).toEqual([`${T}${ERROR}Failed to copy generic ${SRC}/demo/missing:1.0`]);
  });
});
