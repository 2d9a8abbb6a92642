import { describe, expect, it } from "vitest";
import {
  initialProgress,
  parseGoDuration,
  parseLine,
  progressOf,
  reduceProgress,
  sanitizeMessage,
  STAGE_COLLECTING,
  STAGE_FINISHED,
  STAGE_GENERATING,
  STAGE_MIRRORING,
} from "./progress.ts";

const INFO = "\u001b[1;34m [INFO] \u001b[0m  : ";
const ERROR = "\u001b[1;31m [ERROR] \u001b[0m : ";
const T = "2025/03/19 08:20:23 ";

// A mirror-to-mirror run with one failure, as batch/concurrent_chan_worker.go prints it.
const LOG = [
  `${T}${INFO}\u{1F500} workflow mode: mirrorToMirror `,
  `${T}${INFO}\u{1F575}  going to discover the necessary images...`,
  `${T}${INFO}\u{1F50D} collecting release images...`,
  `${T}${INFO}\u{1F680} Start copying the images...`,
  `${T}${INFO}\u{1F4CC} images to copy 4 `,
  `${T}${INFO}Success copying quay.io/openshift-release-dev/ocp-release:4.19.7-x86_64 \u27A1\uFE0F reg:5000/mirror/openshift/`,
  `${T}${INFO}Success copying docker://registry.redhat.io/redhat/redhat-operator-index:v4.19 \u27A1\uFE0F cache`,
  `${T}${ERROR}Failed to copy generic registry.redhat.io/ubi9/ubi:latest`,
  `${T}${INFO}Success copying docker://registry.redhat.io/redhat/redhat-operator-index:v4.19 \u27A1\uFE0F reg:5000/mirror/redhat/`,
  `${T}${INFO}=== Results ===`,
  `${T}${INFO}\u001b[1;92m \u2713 \u001b[0m 1 / 1 release images mirrored successfully`,
  `${T}${INFO}\u001b[1;92m \u2713 \u001b[0m 2 / 2 operator images mirrored successfully`,
  `${T}${INFO}\u001b[1;91m \u2717 \u001b[0m 0 / 1 additional images mirrored: Some additional images failed to be mirrored - please check the logs`,
  `${T}${ERROR}[Worker] error mirroring image registry.redhat.io/ubi9/ubi:latest error: manifest unknown`,
  `${T}${INFO}mirror time     : 1m2.5s`,
  `${T}${INFO}\u{1F44B} Goodbye, thank you for using oc-mirror`,
  `${T}${ERROR}[Executor] [Worker] some errors occurred during the mirroring.`,
  "\t Please review /ws/working-dir/logs/mirroring_errors_20250319_082023.txt for a list of mirroring errors.",
];

describe("parseLine", () => {
  it("reads oc-mirror's log format with coloured levels", () => {
    expect(parseLine(LOG[0] ?? "")).toEqual({
      kind: "workflow",
      mode: "mirrorToMirror",
      level: "INFO",
      time: "2025/03/19 08:20:23",
      message: "\u{1F500} workflow mode: mirrorToMirror",
    });
    expect(parseLine(LOG[4] ?? "")).toMatchObject({ kind: "total", total: 4 });
    expect(parseLine(LOG[6] ?? "")).toMatchObject({
      kind: "copied",
      image: "docker://registry.redhat.io/redhat/redhat-operator-index:v4.19",
      destination: "cache",
    });
    expect(parseLine(LOG[7] ?? "")).toMatchObject({
      kind: "failed",
      level: "ERROR",
      imageType: "generic",
      category: "additional",
      image: "registry.redhat.io/ubi9/ubi:latest",
    });
    expect(parseLine(LOG[12] ?? "")).toMatchObject({
      kind: "result",
      category: "additional",
      copied: 0,
      total: 1,
    });
    expect(parseLine(LOG[14] ?? "")).toMatchObject({ kind: "mirrorTime", duration: "1m2.5s", seconds: 62.5 });
  });

  it("reads lines without colours (as some log collectors strip them) and continuation lines", () => {
    expect(parseLine("2025/03/19 08:20:23  [INFO]   : 📌 images to copy 12 ")).toMatchObject({
      kind: "total",
      total: 12,
    });
    expect(parseLine(LOG[17] ?? "")).toEqual({
      kind: "message",
      message:
        "Please review /ws/working-dir/logs/mirroring_errors_20250319_082023.txt for a list of mirroring errors.",
    });
    expect(parseLine("   ")).toBeUndefined();
    expect(parseLine("2025/03/19 08:20:23  [INFO]   : Failed to copy generic x")).toMatchObject({
      kind: "message",
    });
  });

  it("reads the dry-run mapping line", () => {
    expect(
      parseLine(
        `${T}${INFO}\u{1F4C4} list of all images for mirroring in : /ws/working-dir/dry-run/mapping.txt`,
      ),
    ).toMatchObject({ kind: "dryRunMapping", path: "/ws/working-dir/dry-run/mapping.txt" });
  });
});

describe("reduceProgress", () => {
  it("counts a whole run", () => {
    const p = progressOf(LOG);
    expect(p).toEqual({
      stage: STAGE_FINISHED,
      total: 4,
      copied: 3,
      failed: 1,
      mirrorTime: "1m2.5s",
      lastMessage:
        "Please review /ws/working-dir/logs/mirroring_errors_20250319_082023.txt for a list of mirroring errors.",
      results: {
        release: { copied: 1, total: 1, failed: 0 },
        operator: { copied: 2, total: 2, failed: 0 },
        additional: { copied: 0, total: 1, failed: 1 },
      },
    });
  });

  it("moves through the stages and never mutates its input", () => {
    const events = LOG.map(parseLine);
    let state = initialProgress();
    const stages: (string | undefined)[] = [];
    for (const event of events) {
      if (event === undefined) continue;
      const frozen = Object.freeze({ ...state, results: Object.freeze({ ...state.results }) });
      state = reduceProgress(frozen, event);
      if (stages.at(-1) !== state.stage) stages.push(state.stage);
    }
    expect(stages).toEqual([STAGE_COLLECTING, STAGE_MIRRORING, STAGE_GENERATING, STAGE_FINISHED]);
  });
});

describe("totals and collection failures (issue 13, points 1 and 9)", () => {
  const DEBUG = "\u001b[1;96m [DEBUG] \u001b[0m : ";

  it("takes the total only from the batch's 'images to copy N', not from the collectors' debug counts", () => {
    const collecting = [
      `${T}${DEBUG}[CollectAll] total release images to copy 10 `,
      `${T}${DEBUG}[OperatorImageCollector] images to copy (before duplicates) 6 `,
      `${T}${DEBUG}[CollectAll] total operator images to copy 7 `,
      `${T}${DEBUG}[CollectAll] total additional images to copy 3 `,
    ];
    for (const line of collecting) expect(parseLine(line)).toMatchObject({ kind: "message" });
    expect(progressOf(collecting).total).toBe(0);
    expect(progressOf([...collecting, `${T}${INFO}\u{1F4CC} images to copy 20 `]).total).toBe(20);
    expect(progressOf([`${T}${INFO}\u{1F4CC} images to delete 2`]).total).toBe(2);
  });

  it("reads oc-mirror's collection error, at ERROR level only", () => {
    const line = `${T}${ERROR}[Executor] collection error: collect catalog "reg:5000/redhat/no-such-index:v4.19": get manifest: manifest unknown`;
    expect(parseLine(line)).toMatchObject({
      kind: "collectionError",
      error: 'collect catalog "reg:5000/redhat/no-such-index:v4.19": get manifest: manifest unknown',
    });
    expect(progressOf([line]).collectionError).toBe(
      'collect catalog "reg:5000/redhat/no-such-index:v4.19": get manifest: manifest unknown',
    );
    expect(parseLine(`${T}${INFO}[Executor] collection error: quoted in an info line`)).toMatchObject({
      kind: "message",
    });
    // A failed copy is not a collection failure.
    expect(progressOf(LOG).collectionError).toBeUndefined();
  });

  it("keeps credentials out of the collection error", () => {
    const line = `${T}${ERROR}[Executor] collection error: get https://user:s3cret@reg:5000/v2/: unauthorized`;
    expect(progressOf([line]).collectionError).not.toContain("s3cret");
  });
});

describe("sanitizeMessage", () => {
  it("removes credentials", () => {
    expect(sanitizeMessage("pinging docker://admin:s3cret@reg:5000/v2/ failed")).toBe(
      "pinging docker://***@reg:5000/v2/ failed",
    );
    expect(sanitizeMessage("Get https://user:pa%40ss@quay.io/v2/: EOF")).toBe(
      "Get https://***@quay.io/v2/: EOF",
    );
    expect(sanitizeMessage("using admin:hunter2@reg.example.com")).toBe("using ***@reg.example.com");
    expect(sanitizeMessage("Authorization: Bearer eyJhbGciOi.abc.def")).toBe("Authorization: ***");
    expect(sanitizeMessage('header "Authorization":"Basic dXNlcjpwYXNz"')).toBe(
      'header "Authorization":"***"',
    );
    expect(sanitizeMessage('{"auths":{"reg:5000":{"auth":"dXNlcjpwYXNz","email":"a@b"}}}')).toBe(
      '{"auths":{"reg:5000":{"auth":"***","email":"a@b"}}}',
    );
    expect(sanitizeMessage("login with password=hunter2 and token: abc123")).toBe(
      "login with password=*** and token: ***",
    );
    expect(sanitizeMessage("--dest-creds admin:pw failed")).toBe("--dest-creds *** failed");
  });

  it("leaves image references alone", () => {
    const ref = `quay.io/ns/img:1.0@sha256:${"a".repeat(64)}`;
    expect(sanitizeMessage(`Success copying ${ref} \u27A1\uFE0F reg:5000/ns/`)).toContain(ref);
    expect(sanitizeMessage(`copy img:1.0@sha256:${"b".repeat(64)}`)).toContain("img:1.0@sha256:");
  });

  it("strips ANSI and control characters and caps the length", () => {
    expect(sanitizeMessage("\u001b[1;92m ✓ \u001b[0m ok\u0007\r")).toBe("✓  ok");
    const long = sanitizeMessage("x".repeat(5000));
    expect(long).toHaveLength(1024);
    expect(long.endsWith("…")).toBe(true);
    // A secret cut by the cap is redacted before the cut.
    expect(sanitizeMessage(`${"y".repeat(1015)} password=abcdefghijkl`)).not.toContain("abcdef");
    // No half surrogate pair at the cut.
    expect(sanitizeMessage(`${"z".repeat(1022)}\u{1F680}\u{1F680}`)).toBe(`${"z".repeat(1022)}…`);
  });

  it("applies to parsed lines", () => {
    const e = parseLine(
      `${T}${ERROR}[Executor] checking registry "reg:5000" access: Get https://bob:pw@reg:5000/v2/`,
    );
    expect(e?.message).toBe('[Executor] checking registry "reg:5000" access: Get https://***@reg:5000/v2/');
  });
});

describe("parseGoDuration", () => {
  it("reads Go durations", () => {
    expect(parseGoDuration("1h2m3.5s")).toBe(3723.5);
    expect(parseGoDuration("850ms")).toBeCloseTo(0.85);
    expect(parseGoDuration("12.5µs")).toBeCloseTo(12.5e-6);
    expect(parseGoDuration("0s")).toBe(0);
    expect(parseGoDuration("soon")).toBeUndefined();
  });
});
