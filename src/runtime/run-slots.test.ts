import type { KubernetesObject, V1Job, V1Secret } from "@kubernetes/client-node";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { MirrorJobStatus } from "../api/status.ts";
import type { Answer } from "../reconcile/protocol.ts";
import { MemoryShell } from "../../devkit/memory-shell.ts";
import { ControllerCache, type RawMirrorJob, type Resource } from "./cache.ts";
import { MirrorJobController } from "./controller.ts";
import type { InformerEventType } from "./informer.ts";
import type { MirrorJobKey } from "./mirrorjob-writer.ts";
import { RunSlots } from "./run-slots.ts";
import type { ShellQuery } from "./shell.ts";
import { testSettings } from "../../devkit/memory-shell.ts";

const settings = testSettings([]);
const now = new Date("2026-11-27T12:00:00Z");

const pushSecret: V1Secret = {
  metadata: { name: "push", namespace: "ns", resourceVersion: "1" },
  type: "kubernetes.io/dockerconfigjson",
  data: {
    ".dockerconfigjson": Buffer.from(
      JSON.stringify({
        auths: Object.fromEntries(
          ["a.example.com", "b.example.com"].map((h) => [h, { auth: Buffer.from("u:p").toString("base64") }]),
        ),
      }),
    ).toString("base64"),
  },
};

function mirrorJob(
  name: string,
  registry = "a.example.com",
  status?: MirrorJobStatus,
  rv = "10",
): RawMirrorJob {
  return {
    apiVersion: "hubmirror.dev/v1alpha1",
    kind: "MirrorJob",
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      generation: 1,
      resourceVersion: rv,
      creationTimestamp: new Date("2026-11-27T11:00:00Z"),
    },
    spec: {
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] } } },
      registry: { url: `${registry}/mirror`, pushSecretRef: { name: "push" } },
      apply: { mode: "None" },
    },
    ...(status !== undefined && { status }),
  };
}

function job(owner: string, finished = false): V1Job {
  return {
    metadata: {
      name: `${owner}-run`,
      namespace: "ns",
      resourceVersion: finished ? "2" : "1",
      labels: { "app.kubernetes.io/managed-by": "hub-mirror-operator", "hubmirror.dev/run": "r" },
      ownerReferences: [
        {
          apiVersion: "hubmirror.dev/v1alpha1",
          kind: "MirrorJob",
          name: owner,
          uid: `uid-${owner}`,
          controller: true,
        },
      ],
    },
    status: finished ? { conditions: [{ type: "Complete", status: "True" }] } : { active: 1 },
  };
}

const queued = (since: string): MirrorJobStatus => ({ queued: { trigger: "Created", since } });

describe("RunSlots", () => {
  function slots(maxRuns: number, maxRunsPerRegistry: number, maxRunsPerTarget = maxRunsPerRegistry) {
    const cache = new ControllerCache();
    let clock = 0;
    const s = new RunSlots({ maxRuns, maxRunsPerRegistry, maxRunsPerTarget }, cache, () => clock);
    return {
      cache,
      s,
      tick: (ms: number) => {
        clock += ms;
      },
    };
  }

  it("counts unfinished run Jobs and runs being started, in all and per registry", () => {
    const { cache, s } = slots(3, 2);
    cache.apply("mirrorJobs", "add", mirrorJob("one"));
    cache.apply("jobs", "add", job("one"));
    cache.apply("mirrorJobs", "add", mirrorJob("done"));
    cache.apply("jobs", "add", job("done", true));
    expect(s.acquire("ns/two", "a.example.com", "t").slot).toEqual({ granted: true });
    // Registry a has two runs now (one Job, one being started): the third waits for it ...
    expect(s.acquire("ns/three", "a.example.com", "t").slot).toEqual({
      granted: false,
      limit: "registry",
      max: 2,
      inProgress: 2,
      ahead: 0,
    });
    // ... but another registry has room, until the global limit.
    expect(s.acquire("ns/four", "b.example.com", "t").slot).toEqual({ granted: true });
    expect(s.acquire("ns/five", "b.example.com", "t").slot).toMatchObject({
      granted: false,
      limit: "global",
    });
    expect(s.counts()).toEqual({ inProgress: 3, waiting: 0 });
  });

  it("lets runs into one target take turns, while other paths of its registry have room", () => {
    const { cache, s } = slots(10, 5, 1);
    // Into A.Example.com/mirror: the same repositories as a.example.com/mirror (see targetOf).
    cache.apply("mirrorJobs", "add", mirrorJob("one", "A.Example.com"));
    cache.apply("jobs", "add", job("one"));
    expect(s.acquire("ns/two", "a.example.com/mirror", "t").slot).toEqual({
      granted: false,
      limit: "target",
      max: 1,
      inProgress: 1,
      ahead: 0,
    });
    expect(s.acquire("ns/three", "a.example.com/team", "t").slot).toEqual({ granted: true });
    expect(s.acquire("ns/four", "a.example.com/mirror/team", "t").slot).toEqual({ granted: true });
    // The run into the target ends: the next one goes.
    cache.apply("jobs", "update", job("one", true));
    expect(s.acquire("ns/two", "a.example.com/mirror", "t").slot).toEqual({ granted: true });
  });

  it("gives a slot back, and lets a run being started count by its Job once the cache has it", () => {
    const { cache, s, tick } = slots(1, 1);
    expect(s.acquire("ns/one", "a.example.com", "t").slot.granted).toBe(true);
    s.release("ns/one");
    expect(s.acquire("ns/two", "a.example.com", "t").slot.granted).toBe(true);
    cache.apply("mirrorJobs", "add", mirrorJob("two"));
    cache.apply("jobs", "add", job("two"));
    s.jobSeen("ns/two");
    expect(s.acquire("ns/one", "a.example.com", "t").slot.granted).toBe(false);
    // A slot whose Job never shows counts no longer than a minute.
    cache.apply("jobs", "delete", job("two"));
    expect(s.acquire("ns/three", "a.example.com", "t").slot.granted).toBe(true);
    tick(60_001);
    expect(s.acquire("ns/four", "a.example.com", "t").slot.granted).toBe(true);
  });

  it("gives free slots to the runs due first, per registry, and names them to wake", () => {
    const { cache, s } = slots(10, 1);
    cache.apply("mirrorJobs", "add", mirrorJob("older", "a.example.com", queued("2026-11-27T10:00:00Z")));
    cache.apply("mirrorJobs", "add", mirrorJob("oldest", "a.example.com", queued("2026-11-27T09:00:00Z")));
    cache.apply("mirrorJobs", "add", mirrorJob("other", "b.example.com", queued("2026-11-27T10:30:00Z")));
    // A newcomer to a waits behind both; the oldest is to be woken (the slot is its).
    const newcomer = s.acquire("ns/new", "a.example.com", "2026-11-27T11:00:00Z");
    expect(newcomer.slot).toEqual({ granted: false, limit: "registry", max: 1, inProgress: 0, ahead: 2 });
    expect(newcomer.wake.sort()).toEqual(["ns/oldest", "ns/other"]);
    expect(s.admissible().sort()).toEqual(["ns/oldest", "ns/other"]);
    // The older one asking is told it is second.
    expect(s.acquire("ns/older", "a.example.com", "2026-11-27T10:00:00Z").slot).toMatchObject({ ahead: 1 });
    expect(s.acquire("ns/oldest", "a.example.com", "2026-11-27T09:00:00Z").slot.granted).toBe(true);
    // Its slot is taken: a is full, b still has room.
    expect(s.admissible()).toEqual(["ns/other"]);
  });
});

/** A shell whose registry check takes a while: workers interleave while they await it. */
class SlowShell extends MemoryShell {
  override async answer(mj: MirrorJobKey, query: ShellQuery): Promise<Answer> {
    await new Promise((r) => setTimeout(r, 20));
    return super.answer(mj, query);
  }
}

describe("MirrorJobController with run limits", () => {
  function harness(maxRuns: number) {
    const shell = new SlowShell();
    let listener: ((r: Resource, t: InformerEventType, o: KubernetesObject) => void) | undefined;
    let cache: ControllerCache | undefined;
    const controller = new MirrorJobController({
      logger: pino({ level: "silent" }),
      settings,
      shell,
      now: () => now,
      workers: 4,
      runLimits: { maxRuns, maxRunsPerRegistry: maxRuns, maxRunsPerTarget: maxRuns },
      watch: (c, l) => {
        cache = c;
        listener = l;
        return { synced: () => true, stop: () => Promise.resolve() };
      },
    });
    const emit = (resource: Resource, type: InformerEventType, obj: KubernetesObject) => {
      cache?.apply(resource, type, obj);
      listener?.(resource, type, obj);
    };
    return { controller, shell, emit };
  }

  async function until(what: string, check: () => boolean): Promise<void> {
    for (const deadline = Date.now() + 3_000; Date.now() < deadline;) {
      if (check()) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("four workers racing for the last slot start one run; the others queue and start as runs end, oldest first", async () => {
    const { controller, shell, emit } = harness(1);
    controller.start();
    emit("secrets", "add", pushSecret);
    for (const name of ["a", "b", "c", "d"]) emit("mirrorJobs", "add", mirrorJob(name));
    await until("four decisions", () => shell.statuses.length === 4);
    const started = shell.statuses.filter((s) => s.phase === "Mirroring");
    expect(started).toHaveLength(1);
    expect(shell.statuses.filter((s) => s.phase === "Queued")).toHaveLength(3);
    expect(shell.calls.filter((c) => c === "answer:ensure")).toHaveLength(1);
    expect(shell.events.filter((e) => e.reason === "RunQueued")).toHaveLength(3);

    // The statuses come back through the watch: a runs; b, c and d wait, b due first.
    const running = started[0];
    expect(running?.currentRun?.jobName.startsWith("a-")).toBe(true);
    emit("mirrorJobs", "update", mirrorJob("a", "a.example.com", running, "11"));
    for (const [i, name] of ["b", "c", "d"].entries())
      emit(
        "mirrorJobs",
        "update",
        mirrorJob(name, "a.example.com", queued(`2026-11-27T11:0${String(i)}:00Z`), "11"),
      );
    // a's Job appears, then ends (its run is sealed without a result): its slot goes to b, and only to b.
    shell.answers = (query) => {
      if (query.kind === "sealRun") return { kind: "sealRun", runId: query.runId, result: undefined };
      if (query.kind === "checkRegistry") return { kind: "checkRegistry", result: { ok: true } };
      if (query.kind === "ensure") return { kind: "ensure", runId: query.runId, outcome: { ok: true } };
      throw new Error(`no answer for ${query.kind}`);
    };
    emit("jobs", "add", job("a"));
    const ensures = () => shell.calls.filter((c) => c === "answer:ensure").length;
    emit("jobs", "update", job("a", true));
    await until("the next run", () => ensures() === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(ensures()).toBe(2);
    const next = shell.statuses.filter((s) => s.phase === "Mirroring").at(-1);
    expect(next?.currentRun?.jobName.startsWith("b-")).toBe(true);
    await controller.stop();
  });
});
