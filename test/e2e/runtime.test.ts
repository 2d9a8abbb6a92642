/**
 * The controller runtime against the real control plane: the resilient informer (including
 * recovery from refused lists and from broken connections), Lease leader election between two
 * candidates, the health server, and how Events about a MirrorJob are recorded.
 */
import { once } from "node:events";
import { createServer, connect, type Server, type Socket } from "node:net";
import {
  CoordinationV1Api,
  CoreV1Api,
  EventsV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { adminKubeConfig, restrictedKubeConfig, useNamespace, waitFor } from "../harness/kube.ts";
import { startHealthServer } from "../../src/runtime/health.ts";
import { startInformer, type InformerEventType, type InformerHandle } from "../../src/runtime/informer.ts";
import { startLeaderElection, type LeaderElector } from "../../src/runtime/leader-election.ts";
import { MirrorJobWriter } from "../../src/runtime/mirrorjob-writer.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const coordination = kc.makeApiClient(CoordinationV1Api);
const logger = pino({ level: process.env.HUBMIRROR_TEST_LOG_LEVEL ?? "silent" });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Stops what a test started, even when it fails. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Seen {
  type: InformerEventType;
  name: string;
  value: string | undefined;
}

function configMapInformer(namespace: string, config: KubeConfig = kc) {
  const client = config.makeApiClient(CoreV1Api);
  const events: Seen[] = [];
  const informer: InformerHandle<V1ConfigMap> = startInformer<V1ConfigMap>({
    kc: config,
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    list: () => client.listNamespacedConfigMap({ namespace, labelSelector: "runtime-test=yes" }),
    labelSelector: "runtime-test=yes",
    onEvent: (type, obj) => {
      events.push({ type, name: obj.metadata?.name ?? "", value: obj.data?.value });
    },
    logger,
    initialBackoffMs: 200,
    maxBackoffMs: 1000,
  });
  cleanups.push(() => informer.stop());
  return { informer, events };
}

function configMap(name: string, value: string): V1ConfigMap {
  return { metadata: { name, labels: { "runtime-test": "yes" } }, data: { value } };
}

/** Grants `user` the verbs on `resources` in the namespace; returns the binding's name. */
async function grant(
  namespace: string,
  user: string,
  apiGroup: string,
  resources: string[],
  verbs: string[],
): Promise<string> {
  const name = `${user}-${resources.join("-")}`;
  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name }, rules: [{ apiGroups: [apiGroup], resources, verbs }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
    },
  });
  return name;
}

/**
 * A TCP relay to the API server that the test can cut: while down it drops every open
 * connection and every new one, as a network partition or an API server restart would.
 */
async function startRelay(target: URL): Promise<{ kc: KubeConfig; setDown(down: boolean): void }> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("relay has no port");

  const relayed = new KubeConfig();
  relayed.loadFromOptions({
    clusters: kc.clusters.map((cluster) => ({ ...cluster, server: `https://127.0.0.1:${address.port}` })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
  return {
    kc: relayed,
    setDown(value) {
      down = value;
      if (down) for (const socket of sockets) socket.destroy();
    },
  };
}

describe("resilient informer", () => {
  const ns = useNamespace();

  it("lists after sync and sees add, update and delete of ConfigMaps", async () => {
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("before", "0") });
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: "unlabelled" }, data: { value: "x" } },
    });
    const { informer, events } = configMapInformer(ns.name);

    await waitFor("the informer to sync", () => informer.hasSynced() || undefined, { timeoutMs: 10_000 });
    expect(informer.list().map((cm) => cm.metadata?.name)).toEqual(["before"]);
    expect(informer.get(ns.name, "before")?.data?.value).toBe("0");
    expect(informer.get(ns.name, "unlabelled")).toBeUndefined();
    expect(events).toEqual([{ type: "add", name: "before", value: "0" }]);

    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("cm", "1") });
    await waitFor(
      "the add event",
      () => events.find((e) => e.type === "add" && e.name === "cm" && e.value === "1"),
      { timeoutMs: 10_000 },
    );
    expect(informer.get(ns.name, "cm")?.data?.value).toBe("1");

    await core.replaceNamespacedConfigMap({ namespace: ns.name, name: "cm", body: configMap("cm", "2") });
    await waitFor(
      "the update event",
      () => events.find((e) => e.type === "update" && e.name === "cm" && e.value === "2"),
      { timeoutMs: 10_000 },
    );
    expect(informer.get(ns.name, "cm")?.data?.value).toBe("2");

    await core.deleteNamespacedConfigMap({ namespace: ns.name, name: "cm" });
    await waitFor("the delete event", () => events.find((e) => e.type === "delete" && e.name === "cm"), {
      timeoutMs: 10_000,
    });
    expect(informer.get(ns.name, "cm")).toBeUndefined();
    expect(informer.list().map((cm) => cm.metadata?.name)).toEqual(["before"]);

    // After stop() no events arrive.
    await informer.stop();
    const count = events.length;
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("after-stop", "3") });
    await sleep(1000);
    expect(events.length).toBe(count);
  });

  it("keeps retrying a refused list and syncs once RBAC allows it", async () => {
    const user = `informer-${ns.name}`;
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("present", "1") });
    const { informer, events } = configMapInformer(ns.name, restrictedKubeConfig(user));

    // The library's informer stops at the first 403; this one keeps trying.
    await sleep(1500);
    expect(informer.hasSynced()).toBe(false);

    await grant(ns.name, user, "", ["configmaps"], ["list", "watch"]);
    await waitFor("the informer to sync after the grant", () => informer.hasSynced() || undefined, {
      timeoutMs: 15_000,
    });
    expect(informer.list().map((cm) => cm.metadata?.name)).toEqual(["present"]);
    expect(events).toEqual([{ type: "add", name: "present", value: "1" }]);

    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("later", "2") });
    await waitFor("the add event after recovery", () => events.find((e) => e.name === "later"), {
      timeoutMs: 10_000,
    });
  });

  it("recovers when its connection to the API server breaks, and catches up on missed changes", async () => {
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("kept", "1") });
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("doomed", "1") });
    const relay = await startRelay(new URL(kc.getCurrentCluster()?.server ?? ""));
    const { informer, events } = configMapInformer(ns.name, relay.kc);
    await waitFor("the informer to sync", () => informer.hasSynced() || undefined, { timeoutMs: 10_000 });
    expect(informer.list()).toHaveLength(2);

    relay.setDown(true);
    // Changes while the informer cannot see the API server.
    await core.replaceNamespacedConfigMap({ namespace: ns.name, name: "kept", body: configMap("kept", "2") });
    await core.deleteNamespacedConfigMap({ namespace: ns.name, name: "doomed" });
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("new", "1") });
    await sleep(1500); // long enough for failed restarts
    expect(events.filter((e) => e.type !== "add")).toEqual([]);

    relay.setDown(false);
    await waitFor(
      "the informer to catch up",
      () =>
        informer.get(ns.name, "kept")?.data?.value === "2" &&
        informer.get(ns.name, "doomed") === undefined &&
        informer.get(ns.name, "new") !== undefined
          ? true
          : undefined,
      { timeoutMs: 15_000 },
    );
    expect(events).toContainEqual({ type: "update", name: "kept", value: "2" });
    expect(events).toContainEqual({ type: "delete", name: "doomed", value: "1" });
    expect(events).toContainEqual({ type: "add", name: "new", value: "1" });

    // And it keeps watching.
    await core.createNamespacedConfigMap({ namespace: ns.name, body: configMap("fresh", "1") });
    await waitFor("a live event after recovery", () => events.find((e) => e.name === "fresh"), {
      timeoutMs: 10_000,
    });
  });
});

interface Candidate {
  identity: string;
  elector: LeaderElector;
  /** Local times of onStartedLeading / onStoppedLeading calls. */
  started: number[];
  stopped: number[];
  signals: AbortSignal[];
  newLeaders: string[];
}

function candidate(
  config: KubeConfig,
  namespace: string,
  identity: string,
  timing: { leaseDurationSeconds: number; renewDeadlineSeconds: number; retryPeriodSeconds: number },
): Candidate {
  const c: Omit<Candidate, "elector"> = { identity, started: [], stopped: [], signals: [], newLeaders: [] };
  const elector = startLeaderElection({
    kc: config,
    namespace,
    name: "hub-mirror-operator",
    identity,
    ...timing,
    onStartedLeading: (signal) => {
      c.started.push(Date.now());
      c.signals.push(signal);
    },
    onStoppedLeading: () => {
      c.stopped.push(Date.now());
    },
    onNewLeader: (leader) => {
      c.newLeaders.push(leader);
    },
    logger: logger.child({ candidate: identity }),
  });
  cleanups.push(() => elector.release());
  return { ...c, elector };
}

async function leaseHolder(namespace: string): Promise<string | undefined> {
  const lease = await coordination.readNamespacedLease({ namespace, name: "hub-mirror-operator" });
  return lease.spec?.holderIdentity;
}

describe("leader election", () => {
  const ns = useNamespace();

  it("lets exactly one of two candidates lead, and hands over at once on release", async () => {
    // A long lease: a hand-over well within it proves release() cleared the holder.
    const timing = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 0.5 };
    const a = candidate(kc, ns.name, "a", timing);
    const b = candidate(kc, ns.name, "b", timing);

    const leader = await waitFor(
      "one candidate to lead",
      () => (a.elector.isLeader() ? a : b.elector.isLeader() ? b : undefined),
      { timeoutMs: 10_000 },
    );
    const standby = leader === a ? b : a;
    expect(await leaseHolder(ns.name)).toBe(leader.identity);
    expect(leader.started).toHaveLength(1);
    await waitFor("the standby to observe the leader", () => standby.elector.leader(), { timeoutMs: 5000 });
    expect(standby.elector.leader()).toBe(leader.identity);
    expect(standby.newLeaders).toEqual([leader.identity]);

    // Over several renewals, the leader stays and the standby never leads.
    for (let i = 0; i < 30; i++) {
      expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
      expect(leader.elector.isLeader()).toBe(true);
      await sleep(100);
    }
    expect(standby.started).toEqual([]);

    const releasedAt = Date.now();
    await leader.elector.release();
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.stopped).toHaveLength(1);
    expect(leader.signals[0]?.aborted).toBe(true);
    await waitFor("the standby to take over", () => standby.elector.isLeader() || undefined, {
      timeoutMs: 5000,
    });
    const firstStart = standby.started[0] ?? Number.NaN;
    expect(firstStart).toBeGreaterThanOrEqual(releasedAt);
    expect(leader.elector.isLeader()).toBe(false);

    const lease = await coordination.readNamespacedLease({ namespace: ns.name, name: "hub-mirror-operator" });
    expect(lease.spec?.holderIdentity).toBe(standby.identity);
    // Created by the first leader (0); the release keeps the count; the take-over adds one.
    expect(lease.spec?.leaseTransitions).toBe(1);
  });

  it("makes a leader that cannot renew step down before the standby takes over", async () => {
    const timing = { leaseDurationSeconds: 4, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 };
    const userA = `candidate-a-${ns.name}`;
    const binding = await grant(
      ns.name,
      userA,
      "coordination.k8s.io",
      ["leases"],
      ["get", "create", "update"],
    );
    const a = candidate(restrictedKubeConfig(userA), ns.name, "a", timing);
    await waitFor("a to lead", () => a.elector.isLeader() || undefined, { timeoutMs: 10_000 });
    const b = candidate(kc, ns.name, "b", timing);
    await waitFor("b to observe a as leader", () => (b.elector.leader() === "a" ? true : undefined), {
      timeoutMs: 5000,
    });

    // From now on a's renewals are forbidden.
    await rbac.deleteNamespacedRoleBinding({ namespace: ns.name, name: binding });
    await waitFor("a to step down", () => (a.stopped.length > 0 ? true : undefined), { timeoutMs: 10_000 });
    expect(a.elector.isLeader()).toBe(false);
    expect(a.signals[0]?.aborted).toBe(true);

    await waitFor("b to take over the expired lease", () => b.elector.isLeader() || undefined, {
      timeoutMs: 15_000,
    });
    // Never two leaders: a had stopped before b started.
    expect(b.started[0]).toBeGreaterThanOrEqual(a.stopped[0] ?? Number.POSITIVE_INFINITY);
    expect(await leaseHolder(ns.name)).toBe("b");
    expect(a.elector.isLeader()).toBe(false);
  });
});

describe("health server", () => {
  it("answers /healthz, /readyz as the readiness callback says, and extra routes", async () => {
    let ready: boolean | string = "informers not synced";
    const server = await startHealthServer({
      port: 0,
      host: "127.0.0.1",
      ready: () => ready,
      routes: {
        "/metrics": (_req, res) => {
          res.writeHead(200, { "content-type": "text/plain" }).end("up 1\n");
        },
      },
    });
    cleanups.push(() => server.close());
    expect(server.port).toBeGreaterThan(0);
    const get = async (path: string, method = "GET") => {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
        method,
        signal: AbortSignal.timeout(5000),
      });
      return { status: res.status, body: await res.text() };
    };

    expect(await get("/healthz")).toEqual({ status: 200, body: "ok\n" });
    expect(await get("/readyz")).toEqual({ status: 503, body: "not ready: informers not synced\n" });
    ready = false;
    expect(await get("/readyz")).toEqual({ status: 503, body: "not ready\n" });
    ready = true;
    expect(await get("/readyz?verbose")).toEqual({ status: 200, body: "ok\n" });
    expect(await get("/metrics")).toEqual({ status: 200, body: "up 1\n" });
    expect((await get("/nothing")).status).toBe(404);
    expect((await get("/readyz", "POST")).status).toBe(405);
    expect((await get("/healthz", "HEAD")).status).toBe(200);

    await server.close();
    await expect(get("/healthz")).rejects.toThrow();
  });
});

describe("MirrorJob Events", () => {
  const ns = useNamespace();

  it("records a fact stated `once` one time, however often it is stated; other Events each time", async () => {
    const writer = new MirrorJobWriter(kc, "runtime-test");
    const mj = { namespace: ns.name, name: "mj", uid: "00000000-0000-0000-0000-000000000001" };
    const started = {
      type: "Normal",
      reason: "RunStarted",
      action: "Mirror",
      note: "run r1 started",
    } as const;
    // A second operator process repeating the decision states the same fact again.
    await writer.event(mj, { ...started, once: "run-r1-started" });
    await writer.event(mj, { ...started, once: "run-r1-started" });
    await writer.event(mj, { ...started, once: "run-r2-started" });
    await writer.event(mj, { ...started, reason: "ImageSetReview" });
    await writer.event(mj, { ...started, reason: "ImageSetReview" });
    const events = (await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns.name })).items;
    expect(events.map((e) => `${e.metadata?.name ?? ""} ${e.reason ?? ""}`).sort()).toEqual([
      expect.stringMatching(/^mj\.[0-9a-f]{16} ImageSetReview$/),
      expect.stringMatching(/^mj\.[0-9a-f]{16} ImageSetReview$/),
      "mj.run-r1-started RunStarted",
      "mj.run-r2-started RunStarted",
    ]);
  });
});
