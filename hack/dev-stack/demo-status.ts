/** The demo's status printout: one line per change of a MirrorJob's status, and the end of its run. */
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { setTimeout as sleep } from "node:timers/promises";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import type { MirrorJobStatus } from "../../src/api/status.ts";
import { say, START_TIME } from "./common.ts";

export interface MirrorJobLike {
  metadata?: { name?: string; namespace?: string; generation?: number };
  spec?: { registry?: { url?: string }; mirror?: { line?: unknown } };
  status?: MirrorJobStatus;
}

/** One compact line for a MirrorJob's status: phase, Ready/Mirrored/Verified(/Applied), progress. */
export function statusLine(mj: MirrorJobLike): string {
  const status = mj.status;
  if (status === undefined) return "(no status yet)";
  const condition = (type: string) => {
    const c = status.conditions?.find((x) => x.type === type);
    return c === undefined ? `${type}=-` : `${type}=${c.status}(${c.reason})`;
  };
  const parts = [status.phase ?? "-", condition("Ready"), condition("Mirrored"), condition("Verified")];
  // Applied only where apply.mode asks for it (the sample's is Auto).
  if (status.conditions?.some((c) => c.type === "Applied") === true) parts.push(condition("Applied"));
  const progress = status.currentRun?.progress;
  if (progress !== undefined) {
    parts.push(
      `copied ${progress.copied}/${progress.total}` +
        (progress.failed > 0 ? `, ${progress.failed} failed` : "") +
        (progress.stage !== undefined ? ` (${progress.stage})` : ""),
    );
  } else if (status.lastRun?.images !== undefined) {
    const counts = Object.values(status.lastRun.images).filter((c) => c !== undefined);
    const copied = counts.reduce((n, c) => n + c.copied, 0);
    const total = counts.reduce((n, c) => n + c.total, 0);
    parts.push(`last run ${status.lastRun.result ?? "?"}: copied ${copied}/${total}`);
  }
  return parts.join("  ");
}

export type Outcome = "Succeeded" | "Failed" | "AwaitingApproval";

/**
 * The end of the sample's run, if it has ended: Ready, failed (Stalled or phase Failed), or
 * waiting for the approval of a disruptive change.
 */
export function outcome(mj: MirrorJobLike): Outcome | undefined {
  const status = mj.status;
  if (status?.observedGeneration !== mj.metadata?.generation) return undefined;
  const has = (type: string, value: string) =>
    status?.conditions?.some((c) => c.type === type && c.status === value) === true;
  if (has("Ready", "True")) return "Succeeded";
  if (has("Stalled", "True") || (status?.phase === "Failed" && status.currentRun === undefined))
    return "Failed";
  if (status?.phase === "AwaitingApproval" && status.currentRun === undefined) return "AwaitingApproval";
  return undefined;
}

/** Watches every MirrorJob and prints a line whenever one's status line changes. */
export function watchMirrorJobs(kc: KubeConfig, onChange: (mj: MirrorJobLike) => void): () => void {
  const printed = new Map<string, string>();
  const state = { stopped: false };
  let controller: AbortController | undefined;
  const path = `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const loop = async () => {
    while (!state.stopped) {
      await new Promise<void>((done) => {
        new Watch(kc)
          .watch(
            path,
            {},
            (_phase: string, obj: unknown) => {
              const mj = obj as MirrorJobLike;
              const key = `${mj.metadata?.namespace ?? ""}/${mj.metadata?.name ?? ""}`;
              const line = statusLine(mj);
              if (printed.get(key) !== line) {
                printed.set(key, line);
                const seconds = ((Date.now() - START_TIME) / 1000).toFixed(1).padStart(6);
                say(`${seconds}s  ${key}  ${line}`);
              }
              onChange(mj);
            },
            () => {
              done();
            },
          )
          .then(
            (c) => {
              controller = c;
            },
            () => {
              done();
            },
          );
      });
      await sleep(1_000);
    }
  };
  void loop();
  return () => {
    state.stopped = true;
    controller?.abort();
  };
}
