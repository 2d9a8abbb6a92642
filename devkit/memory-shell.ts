/**
 * An in-memory Shell (src/runtime/shell.ts) for the controller's unit tests and benchmarks:
 * it answers queries from a table (a registry that accepts, objects that are created), writes
 * statuses into a list and records every call in order. Nothing leaves the process.
 */
import type { V1Job } from "@kubernetes/client-node";
import type { MirrorJobStatus } from "../src/api/status.ts";
import type { Answer, DecideSettings, EventSpec, Query } from "../src/reconcile/protocol.ts";
import type { MirrorJobKey, MirrorJobVersion } from "../src/runtime/mirrorjob-writer.ts";
import type { Shell } from "../src/runtime/shell.ts";

/** A shell that answers from a table and records every call, in order. */
export class MemoryShell implements Shell {
  readonly calls: string[] = [];
  readonly statuses: MirrorJobStatus[] = [];
  readonly events: EventSpec[] = [];
  /** What writeStatus answers, in turn (then "written"). */
  writes: ("written" | "stale")[] = [];
  answers: (query: Query) => Answer = (query) => {
    switch (query.kind) {
      case "checkRegistry":
        return { kind: "checkRegistry", result: { ok: true } };
      case "ensure":
        return { kind: "ensure", runId: query.runId, outcome: { ok: true } };
      default:
        throw new Error(`no answer for ${query.kind}`);
    }
  };

  answer(_mj: MirrorJobKey, query: Query): Promise<Answer> {
    this.calls.push(`answer:${query.kind}`);
    return Promise.resolve(this.answers(query));
  }
  effect(_mj: MirrorJobVersion, effect: { kind: string }): Promise<void> {
    this.calls.push(`effect:${effect.kind}`);
    return Promise.resolve();
  }
  readJob(): Promise<V1Job | undefined> {
    this.calls.push("readJob");
    return Promise.resolve(undefined);
  }
  writeStatus(_mj: MirrorJobKey, status: MirrorJobStatus): Promise<"written" | "stale"> {
    this.calls.push("writeStatus");
    const outcome = this.writes.shift() ?? "written";
    if (outcome === "written") this.statuses.push(status);
    return Promise.resolve(outcome);
  }
  recordEvent(_mj: MirrorJobKey, event: EventSpec): Promise<void> {
    this.calls.push(`event:${event.reason}`);
    this.events.push(event);
    return Promise.resolve();
  }
}

/** Decide's settings for unit tests: fixed images, no drain batch window, these apply namespaces. */
export function testSettings(applyNamespaces: readonly string[]): DecideSettings {
  return {
    defaultOcMirrorImage: "r.example.com/oc-mirror:1",
    defaultOcMirrorLine: "4.20",
    operatorImage: "r.example.com/op:1",
    heartbeatTimeoutSeconds: 60,
    drainBatchWindowMs: 0,
    applyNamespaces: [...applyNamespaces],
  };
}
