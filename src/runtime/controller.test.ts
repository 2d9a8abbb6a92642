import type { KubernetesObject, V1Secret } from "@kubernetes/client-node";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { MirrorJobStatus } from "../api/status.ts";
import { MemoryShell } from "../../devkit/memory-shell.ts";
import type { ControllerCache, RawMirrorJob, Resource } from "./cache.ts";
import { BACKOFF_POLICY, MAX_QUERIES, MirrorJobController, STALE_WRITE_REQUEUE_MS } from "./controller.ts";
import type { InformerEventType } from "./informer.ts";
import { testSettings } from "../../devkit/memory-shell.ts";

const settings = testSettings([]);
const now = new Date("2026-11-27T12:00:00Z");

const secretAt = (resourceVersion: string): V1Secret => ({
  metadata: { name: "push", namespace: "ns", resourceVersion },
  type: "kubernetes.io/dockerconfigjson",
  data: {
    ".dockerconfigjson": Buffer.from(
      JSON.stringify({ auths: { "reg.example.com": { auth: Buffer.from("u:p").toString("base64") } } }),
    ).toString("base64"),
  },
});
const pushSecret = secretAt("1");

function mirrorJob(
  status?: MirrorJobStatus,
  spec: Record<string, unknown> = {},
  resourceVersion = "10",
): RawMirrorJob {
  return {
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: {
      name: "mj",
      namespace: "ns",
      uid: "uid-1",
      generation: 1,
      resourceVersion,
      creationTimestamp: new Date("2026-11-27T11:00:00Z"),
    },
    spec: {
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] } } },
      registry: { url: "reg.example.com/mirror", pushSecretRef: { name: "push" } },
      apply: { mode: "None" },
      ...spec,
    },
    ...(status !== undefined && { status }),
  };
}

interface Harness {
  readonly controller: MirrorJobController;
  readonly shell: MemoryShell;
  /** Delivers a watch event: into the cache, then to the controller's routing. */
  emit(resource: Resource, type: InformerEventType, obj: KubernetesObject): void;
  synced: boolean;
  readonly reconciled: string[];
}

function harness(): Harness {
  const shell = new MemoryShell();
  let listener: ((resource: Resource, type: InformerEventType, obj: KubernetesObject) => void) | undefined;
  let cache: ControllerCache | undefined;
  const h: Harness = {
    shell,
    synced: true,
    reconciled: [],
    emit(resource, type, obj) {
      cache?.apply(resource, type, obj);
      listener?.(resource, type, obj);
    },
    controller: new MirrorJobController({
      logger: pino({ level: "silent" }),
      settings,
      shell,
      now: () => now,
      watch: (c, l) => {
        cache = c;
        listener = l;
        return { synced: () => h.synced, stop: () => Promise.resolve() };
      },
      onReconciled: (result) => {
        h.reconciled.push(result);
      },
    }),
  };
  return h;
}

async function until(what: string, check: () => boolean, ms = 2_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("MirrorJobController.reconcile", () => {
  function loaded(status?: MirrorJobStatus, spec?: Record<string, unknown>): Harness {
    const h = harness();
    h.controller.cache.apply("secrets", "add", pushSecret);
    h.controller.cache.apply("mirrorJobs", "add", mirrorJob(status, spec));
    return h;
  }

  it("answers queries until the decision asks nothing, records Events before it writes the status", async () => {
    const h = loaded();
    const { requeue, status } = await h.controller.reconcile("ns/mj");
    expect(h.shell.calls).toEqual([
      "answer:checkRegistry",
      "answer:ensure",
      "event:RunStarted",
      "writeStatus",
    ]);
    expect(status?.currentRun?.trigger).toBe("Created");
    expect(requeue).toEqual({ kind: "after", ms: 30_000 });
  });

  it("requeues a stale status write shortly, and records its Events only once when the next reconcile finds the same facts", async () => {
    const h = loaded();
    h.shell.writes = ["stale"];
    const first = await h.controller.reconcile("ns/mj");
    expect(first.requeue).toEqual({ kind: "after", ms: STALE_WRITE_REQUEUE_MS });
    expect(h.shell.statuses).toHaveLength(0);
    // Someone else wrote meanwhile (a new version, status still empty): decide again.
    h.controller.cache.apply("mirrorJobs", "update", mirrorJob(undefined, {}, "11"));
    await h.controller.reconcile("ns/mj");
    expect(h.shell.events.map((e) => e.reason)).toEqual(["RunStarted"]);
    expect(h.shell.statuses).toHaveLength(1);
  });

  it("reports a stored spec that does not validate as InvalidSpec, asking the shell nothing", async () => {
    const h = harness();
    h.controller.cache.apply("mirrorJobs", "add", mirrorJob(undefined, { registry: { url: "https://x" } }));
    const { status, requeue } = await h.controller.reconcile("ns/mj");
    expect(h.shell.calls).toEqual(["writeStatus"]);
    expect(status?.phase).toBe("Failed");
    expect(status?.conditions?.find((c) => c.type === "Stalled")).toMatchObject({ reason: "InvalidSpec" });
    expect(requeue).toEqual({ kind: "none" });
  });

  it("fails loudly when decide keeps asking (the query bound)", async () => {
    const lastRun = {
      id: "r1",
      jobName: "mj-r1",
      trigger: "Created" as const,
      generation: 1,
      startTime: "2026-11-27T11:00:00Z",
      completionTime: "2026-11-27T11:10:00Z",
      result: "Succeeded" as const,
    };
    const h = loaded({ lastRun, lastSuccessfulRun: lastRun });
    // An answer for another run never satisfies the question: decide asks again, and again.
    h.shell.answers = () => ({
      kind: "verify",
      runId: "another",
      result: {
        target: "",
        checked: 0,
        present: 0,
        missing: 0,
        mismatched: 0,
        errors: 0,
        digestsCompared: 0,
        problems: [],
        releasePayloadMissing: false,
        catalogsMissing: [],
      },
      completionTime: "2026-11-27T12:00:00Z",
    });
    await expect(h.controller.reconcile("ns/mj")).rejects.toThrow(`more than ${String(MAX_QUERIES)} queries`);
    expect(h.shell.calls.filter((c) => c === "answer:verify")).toHaveLength(MAX_QUERIES);
    expect(h.shell.calls).not.toContain("writeStatus");
  });

  it("backs off a failing preflight and says in the status when it tries next", async () => {
    const h = loaded();
    h.shell.answers = () => ({
      kind: "checkRegistry",
      result: { ok: false, reason: "RegistryAuthFailed", message: "rejected" },
    });
    const { status, requeue } = await h.controller.reconcile("ns/mj");
    expect(requeue).toEqual({ kind: "backoff", ms: BACKOFF_POLICY.baseDelayMs });
    expect(status?.nextRetryTime).toBe(new Date(now.getTime() + BACKOFF_POLICY.baseDelayMs).toISOString());
    // The watch brings the written status back as a new version.
    h.controller.cache.apply("mirrorJobs", "update", mirrorJob(status, {}, "11"));
    const again = await h.controller.reconcile("ns/mj");
    expect(again.requeue).toEqual({ kind: "backoff", ms: 2 * BACKOFF_POLICY.baseDelayMs });
  });
});

describe("MirrorJobController workers", () => {
  it("start only once the caches have synced", async () => {
    const h = harness();
    h.synced = false;
    h.controller.start();
    h.emit("secrets", "add", pushSecret);
    h.emit("mirrorJobs", "add", mirrorJob());
    await new Promise((r) => setTimeout(r, 250));
    expect(h.reconciled).toEqual([]);
    h.synced = true;
    await until("a reconcile", () => h.reconciled.length > 0);
    await h.controller.stop();
  });

  it("do not reconcile again for the operator's own status write, but do for anyone else's change", async () => {
    const h = harness();
    h.controller.start();
    h.emit("secrets", "add", pushSecret);
    // A MirrorJob whose preflight keeps failing: its next try would be 10 s away.
    h.shell.answers = () => ({
      kind: "checkRegistry",
      result: { ok: false, reason: "RegistryUnreachable", message: "down" },
    });
    h.emit("mirrorJobs", "add", mirrorJob());
    await until("the first reconcile", () => h.shell.statuses.length === 1);
    const written = h.shell.statuses[0];
    // The watch brings the write back: no new reconcile.
    h.emit("mirrorJobs", "update", mirrorJob(written, {}, "11"));
    await new Promise((r) => setTimeout(r, 200));
    expect(h.reconciled).toEqual(["requeue"]);
    // A change of the referenced Secret is a reason (the index finds its MirrorJob).
    h.emit("secrets", "update", secretAt("2"));
    await until("a second reconcile", () => h.reconciled.length === 2);
    await h.controller.stop();
  });
});
