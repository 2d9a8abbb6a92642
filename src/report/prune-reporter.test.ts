/**
 * The prune reporter over a step folder and workspace laid out as the prune wrapper and the
 * real oc-mirror leave them (lines as oc-mirror 4.20 printed them: docs/oc-mirror-offline.md §8).
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pruneStepDir, runPruneReporter } from "./prune-reporter.ts";
import { PRUNE_RESULT_KEYS, readPruneResult } from "./prune-result.ts";

const INFO = "\u001b[1;94m [INFO] \u001b[0m  : ";
const ERROR = "\u001b[1;91m [ERROR] \u001b[0m : ";
const T = "2026/11/27 12:35:36 ";
const DEST = "127.0.0.1:45011/mirror";

let root = "";
let workspace = "";
let state = "";

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "prune-reporter-test-"));
  workspace = join(root, "ws");
  state = join(workspace, ".hubmirror");
  mkdirSync(state, { recursive: true });
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function report(step: "generate" | "delete", stepId: string, heartbeatTimeoutSeconds = 60) {
  const writes: { data: Record<string, string>; binaryData?: Record<string, string> }[] = [];
  const echoed: string[] = [];
  const code = await runPruneReporter({
    stateDir: state,
    workspace,
    step,
    stepId,
    heartbeatTimeoutSeconds,
    pollIntervalMs: 5,
    echo: (line) => echoed.push(line),
    writer: {
      write: (data, binaryData) => {
        writes.push({ data, ...(binaryData !== undefined && { binaryData }) });
        return Promise.resolve();
      },
    },
  });
  const last = writes.at(-1);
  return {
    code,
    echoed,
    read: readPruneResult({
      data: last?.data ?? {},
      ...(last?.binaryData && { binaryData: last.binaryData }),
    }),
  };
}

describe("runPruneReporter", () => {
  it("generate: oc-mirror's delete list, with its items", async () => {
    const dir = pruneStepDir(state, "g1");
    mkdirSync(dir, { recursive: true });
    mkdirSync(join(workspace, "working-dir", "delete"), { recursive: true });
    writeFileSync(
      join(workspace, "working-dir", "delete", "delete-images-g1.yaml"),
      [
        "apiVersion: mirror.openshift.io/v2alpha1",
        "items:",
        "- imageName: docker://127.0.0.1:35997/openshift-release-dev/ocp-release:4.19.1-x86_64",
        `  imageReference: docker://${DEST}/openshift/release-images:4.19.1-x86_64`,
        "  type: ocpRelease",
        "kind: DeleteImageList",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "out"),
      [
        `${T}${INFO}🔀 workflow mode: delete`,
        `${T}${INFO}📄 Generating delete file...`,
        `${T}${INFO}${workspace}/working-dir/delete file created`,
        `${T}${INFO}👋 Goodbye, thank you for using oc-mirror`,
        "",
      ].join("\n"),
    );
    writeFileSync(join(dir, "exit"), "0\n");
    const { code, read, echoed } = await report("generate", "g1");
    expect(code).toBe(0);
    expect(echoed[0]).toContain("workflow mode: delete");
    expect(read.problems).toEqual([]);
    expect(read.result).toMatchObject({
      step: "generate",
      exit: { code: 0, outcome: "success" },
      listed: 1,
    });
    expect(read.items).toEqual([
      {
        imageName: "docker://127.0.0.1:35997/openshift-release-dev/ocp-release:4.19.1-x86_64",
        imageReference: `docker://${DEST}/openshift/release-images:4.19.1-x86_64`,
        type: "ocpRelease",
      },
    ]);
  });

  it("generate: no list written is a problem, not an empty list", async () => {
    const dir = pruneStepDir(state, "g2");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "exit"), "0\n");
    const { read } = await report("generate", "g2");
    expect(read.items).toBeUndefined();
    expect(read.result?.listProblem).toBe("oc-mirror wrote no delete-images-g2.yaml");
  });

  it("delete: counts, and the failed images of the errors file oc-mirror wrote into the step's folder", async () => {
    const dir = pruneStepDir(state, "d1");
    mkdirSync(join(dir, "logs"), { recursive: true });
    writeFileSync(
      join(dir, "out"),
      [
        `${T}${INFO}📌 images to delete 2 `,
        `${T}${INFO}Success deleting 127.0.0.1:35997/demo/toolbox:1.0 ➡️ ${DEST}/demo/`,
        `${T}${ERROR}Failed to delete generic 127.0.0.1:35997/demo/pause@sha256:${"4".repeat(64)}`,
        `${T}${INFO}=== Results ===`,
        `${T}${INFO} ✗  1 / 2 additional images deleted: Some additional images failed to be deleted - please check the logs`,
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "logs", "mirroring_errors_.txt"),
      `error mirroring image 127.0.0.1:35997/demo/pause@sha256:${"4".repeat(64)} error: Unable to delete ${DEST}/demo/pause@sha256:${"4".repeat(64)}. Image may not exist or is not stored with a v2 Schema in a v2 registry\n`,
    );
    writeFileSync(join(dir, "exit"), "1\n");
    const { read } = await report("delete", "d1");
    expect(read.result).toMatchObject({
      step: "delete",
      exit: { code: 1, outcome: "failure" },
      images: { additional: { copied: 1, total: 2, failed: 1 } },
      failedImageCount: 1,
      failedImages: [{ image: `127.0.0.1:35997/demo/pause@sha256:${"4".repeat(64)}` }],
    });
    expect(read.result?.exit.description).toMatch(/^oc-mirror exited 1: /);
    expect(read.items).toBeUndefined();
  });

  it("a container killed (its heartbeat stopped, no exit code) is a crash", async () => {
    const dir = pruneStepDir(state, "d2");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "heartbeat"), "0\n");
    const old = new Date(Date.now() - 10_000);
    utimesSync(join(dir, "heartbeat"), old, old);
    const { read } = await report("delete", "d2", 1);
    expect(read.result?.exit).toMatchObject({ code: null, outcome: "crash" });
    expect(read.result?.exit.description).toMatch(/stopped without an exit code/);
  });

  it("writes the list gzip'd under its key, and the result as JSON", async () => {
    const dir = pruneStepDir(state, "g3");
    mkdirSync(dir, { recursive: true });
    mkdirSync(join(workspace, "working-dir", "delete"), { recursive: true });
    writeFileSync(
      join(workspace, "working-dir", "delete", "delete-images-g3.yaml"),
      "kind: DeleteImageList\napiVersion: mirror.openshift.io/v2alpha1\nitems: []\n",
    );
    writeFileSync(join(dir, "exit"), "0\n");
    const writes: { data: Record<string, string>; binaryData?: Record<string, string> }[] = [];
    await runPruneReporter({
      stateDir: state,
      workspace,
      step: "generate",
      stepId: "g3",
      heartbeatTimeoutSeconds: 60,
      pollIntervalMs: 5,
      echo: () => undefined,
      writer: {
        write: (data, binaryData) => {
          writes.push({ data, ...(binaryData !== undefined && { binaryData }) });
          return Promise.resolve();
        },
      },
    });
    expect(Object.keys(writes[0]?.data ?? {})).toEqual([PRUNE_RESULT_KEYS.result]);
    expect(Object.keys(writes[0]?.binaryData ?? {})).toEqual([PRUNE_RESULT_KEYS.deleteList]);
  });
});
