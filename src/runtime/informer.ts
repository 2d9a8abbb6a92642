/**
 * A resilient informer: list + watch one resource into an in-memory cache and report changes.
 *
 * Why it exists: `@kubernetes/client-node` 2.x's informer (`makeInformer`, i.e. `ListWatch`)
 * re-watches after a clean close, a client-side inactivity timeout or a 410 Gone (relist), but on
 * any other failure — the API server unreachable, a 5xx, a 403 while RBAC is still being set
 * up, a failed list — it emits `error` and stops for good. An operator must outlive such blips,
 * so this wrapper restarts it with bounded exponential backoff and jitter, and says when the
 * cache holds a complete first list (`hasSynced()`), which reconcilers and `/readyz` wait for.
 *
 * Behaviour of the library this builds on (checked in client-node 2.0.1, `dist/cache.js`):
 * - `start()` emits `connect`, lists only when it has no resourceVersion yet (a restart
 *   resumes the watch from the last seen resourceVersion; a 410 clears it and relists,
 *   emitting `delete` for objects that vanished meanwhile), then watches.
 * - `error` is emitted exactly when it has stopped: no watch is open and nothing is scheduled.
 * - `stop()` only sets a flag and aborts the current watch request; a list or a reconnect delay
 *   in progress still goes on to open a new watch. The `Watch` below therefore refuses to open
 *   watches once stopped, and aborts any that connect afterwards.
 * - Exceptions thrown by event callbacks are swallowed by the watch's line parser (and would
 *   skip the resourceVersion update), so handler errors are caught and logged here.
 * - The cache mixes two shapes: objects from the list are whatever `list` returned (for the
 *   generated clients, deserialized models: timestamps are `Date`s, a few fields renamed such as
 *   NetworkPolicy's `_from`; list items carry no `kind`/`apiVersion`), objects from watch events
 *   are the raw JSON (timestamps are strings). Read timestamps with `new Date(value)`, which
 *   accepts both, and do not rely on `kind`.
 * - `Watch` aborts a watch after 30 s without data (`requestTimeoutMs`, an inactivity
 *   timeout), and asks the API server for no timeout of its own: every quiet watch was
 *   re-opened about every 30 s. The watches here ask the API server for a timeout
 *   (`timeoutSeconds`, 5 to 10 minutes, spread so that watches do not all re-open together, as
 *   client-go does) and for bookmarks (which keep the resourceVersion to resume from fresh), and
 *   wait longer than that timeout before giving up on a silent connection: a watch is re-opened
 *   when the API server ends it, not before.
 */
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import type { Logger } from "pino";

export type InformerEventType = "add" | "update" | "delete";

export interface InformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** The watch path, e.g. `/api/v1/namespaces/ns/configmaps` or `/apis/hubmirror.dev/v1alpha1/mirrorjobs`. */
  path: string;
  /** Lists the same resource as `path` (with the same label selector). */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  onEvent: (type: InformerEventType, obj: T) => void;
  logger: Logger;
  /** First restart delay after a failure. Default 1 s. */
  initialBackoffMs?: number;
  /** Cap of the restart delay. Default 30 s. */
  maxBackoffMs?: number;
}

export interface InformerHandle<T extends KubernetesObject> {
  /** Stops watching; no events are delivered after it resolves. */
  stop(): Promise<void>;
  /** True once a first full list has been put into the cache (stays true). */
  hasSynced(): boolean;
  list(): T[];
  /** For cluster-scoped objects pass `""` as namespace. */
  get(namespace: string, name: string): T | undefined;
}

/** The watch timeout asked of the API server: between these, at random (client-go's 5 to 10 minutes). */
export const WATCH_TIMEOUT_SECONDS = { min: 300, max: 600 } as const;

/** How long past the asked timeout a silent watch is kept before the client gives up on it. */
const WATCH_GRACE_MS = 60_000;

/**
 * Client-node's watcher, made stoppable (no new watch once stopped, connected ones aborted),
 * asking the API server for a watch timeout and bookmarks, and waiting as long for data
 * (see the module's notes).
 */
export class StoppableWatch extends Watch {
  stopped = false;
  private readonly open = new Set<AbortController>();
  private readonly onExpired: () => void;

  /** `onExpired` is told of each watch that ends with 410 Gone (the informer relists). */
  constructor(kc: KubeConfig, onExpired: () => void = () => undefined) {
    super(kc);
    this.onExpired = onExpired;
    // Client-node's inactivity timeout is a private field: refuse to run if it is gone rather
    // than silently re-open every watch every 30 s again.
    if (typeof Reflect.get(this, "requestTimeoutMs") !== "number")
      throw new Error("@kubernetes/client-node's Watch has no requestTimeoutMs: check informer.ts");
    Reflect.set(this, "requestTimeoutMs", WATCH_TIMEOUT_SECONDS.max * 1000 + WATCH_GRACE_MS);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.stopped) {
      // The ListWatch keeps this as its request and waits for a done() that never comes: it idles.
      const idle = new AbortController();
      idle.abort();
      return idle;
    }
    const { min, max } = WATCH_TIMEOUT_SECONDS;
    const params = {
      ...queryParams,
      timeoutSeconds: min + Math.floor(Math.random() * (max - min + 1)),
      allowWatchBookmarks: true,
    };
    const watched = (phase: string, apiObj: unknown, watchObj?: unknown) => {
      if (phase === "ERROR" && (apiObj as { code?: unknown } | undefined)?.code === 410) this.onExpired();
      callback(phase, phase === "ERROR" ? apiObj : trimForCache(apiObj), watchObj);
    };
    let controller: AbortController;
    try {
      controller = await super.watch(path, params, watched, (err: unknown) => {
        this.open.delete(controller);
        if ((err as { statusCode?: unknown } | null)?.statusCode === 410) this.onExpired();
        done(err);
      });
    } catch (err) {
      // Only setup errors (e.g. credentials) land here; the ListWatch would leave them unhandled.
      const failed = new AbortController();
      failed.abort();
      done(err);
      return failed;
    }
    // stop() may have run while this watch was connecting.
    if (this.isStopped()) controller.abort();
    else if (!controller.signal.aborted) this.open.add(controller);
    return controller;
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.stopped = true;
    for (const controller of this.open) controller.abort();
    this.open.clear();
  }
}

/**
 * Drops what no reader of the caches uses from an object as it enters them (in place; it is
 * the informer's own copy): `metadata.managedFields`, the server-side-apply bookkeeping that is
 * often the largest part of a small object (controller-runtime drops it likewise). Measured
 * with 1,000 MirrorJobs (bench/scale.ts): most of the operator's heap was its caches.
 */
export function trimForCache<T>(obj: T): T {
  const metadata = (obj as { metadata?: { managedFields?: unknown } } | null | undefined)?.metadata;
  if (metadata !== undefined && typeof metadata === "object") delete metadata.managedFields;
  return obj;
}

/** Starts the informer in the background; failures are logged and retried, never thrown. */
export function startInformer<T extends KubernetesObject>(options: InformerOptions<T>): InformerHandle<T> {
  const { path, logger } = options;
  const initialBackoffMs = options.initialBackoffMs ?? 1000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const watch = new StoppableWatch(options.kc, () => {
    if (!stopped) logger.info({ path }, "watch expired (410 Gone): listing again");
  });
  let stopped = false;
  let synced = false;
  let listed = false;
  let attempt = 0;
  let startedAt = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let wakeDelay: (() => void) | undefined;

  // The library's own pause before re-watching after a clean close; unref'd, cut short by stop().
  const delayFn = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (stopped) {
        resolve();
        return;
      }
      const finish = (): void => {
        clearTimeout(timer);
        wakeDelay = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      timer.unref();
      wakeDelay = finish;
    });

  const list = async (): Promise<KubernetesListObject<T>> => {
    const result = await options.list();
    for (const item of result.items) trimForCache(item);
    listed = true;
    attempt = 0;
    return result;
  };

  const informer = new ListWatch<T>(path, watch, list, false, options.labelSelector, undefined, { delayFn });

  // The ListWatch fills its cache and sets its resourceVersion right after our list() resolves.
  const checkSynced = (): boolean => {
    if (!synced && listed && informer.latestResourceVersion() !== "") synced = true;
    return synced;
  };

  const deliver = (type: InformerEventType) => (obj: T) => {
    if (stopped) return;
    attempt = 0;
    try {
      options.onEvent(type, obj);
    } catch (err) {
      logger.error({ err, path, type, name: obj.metadata?.name }, "informer event handler failed");
    }
  };
  informer.on("add", deliver("add"));
  informer.on("update", deliver("update"));
  informer.on("delete", deliver("delete"));
  informer.on("connect", () => {
    if (!stopped) logger.debug({ path }, "informer connecting");
  });
  informer.on("error", (err: unknown) => {
    if (stopped) return;
    // A run that stayed healthy for a full backoff period starts the backoff afresh.
    if (Date.now() - startedAt >= maxBackoffMs) attempt = 0;
    const ceiling = Math.min(initialBackoffMs * 2 ** attempt, maxBackoffMs);
    attempt++;
    // Jitter in [ceiling/2, ceiling]: restarting replicas do not hit the API server in step.
    const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    logger.warn({ err, path, attempt, delayMs }, "informer failed; restarting");
    scheduleStart(delayMs);
  });

  function scheduleStart(delayMs: number): void {
    if (stopped || restartTimer !== undefined) return;
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      run();
    }, delayMs);
    restartTimer.unref();
  }

  function run(): void {
    if (stopped) return;
    startedAt = Date.now();
    informer.start().catch((err: unknown) => {
      // start() itself rejects only on unexpected errors; treat them like an `error` event.
      if (stopped) return;
      logger.warn({ err, path }, "informer start failed; restarting");
      scheduleStart(maxBackoffMs);
    });
  }

  run();

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      if (restartTimer !== undefined) clearTimeout(restartTimer);
      restartTimer = undefined;
      wakeDelay?.();
      // Aborts open watches; a list still in flight completes, but its events are dropped and
      // the watch it would then open is refused.
      watch.stop();
      await informer.stop();
    },
    hasSynced: checkSynced,
    list: () => [...informer.list()],
    get: (namespace, name) => informer.get(name, namespace),
  };
}

/**
 * One informer over all namespaces (`namespaces` empty), or one per namespace behind a
 * single handle: an operator restricted to some namespaces (RBAC) cannot list cluster-wide.
 * `options(namespace)` gives the options for one namespace, or for all when undefined.
 */
export function startScopedInformer<T extends KubernetesObject>(
  namespaces: readonly string[],
  options: (namespace: string | undefined) => InformerOptions<T>,
): InformerHandle<T> {
  if (namespaces.length === 0) return startInformer(options(undefined));
  const handles = namespaces.map((ns) => startInformer(options(ns)));
  return {
    async stop() {
      await Promise.all(handles.map((h) => h.stop()));
    },
    hasSynced: () => handles.every((h) => h.hasSynced()),
    list: () => handles.flatMap((h) => h.list()),
    get: (namespace, name) => {
      const index = namespaces.indexOf(namespace);
      return index < 0 ? undefined : handles[index]?.get(namespace, name);
    },
  };
}
