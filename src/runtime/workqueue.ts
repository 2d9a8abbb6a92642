/**
 * A rate-limited work queue keyed by `namespace/name`, shaped like client-go's workqueue.
 *
 * Why it exists: reconciles are level-triggered, so many watch events for one object must
 * collapse into one pending reconcile; one object must never be reconciled by two workers at
 * once; and a failing object must back off on its own without slowing the others. The queue
 * carries keys only, never objects: the worker reads the current state from the informer cache.
 *
 * Semantics (client-go's `Typed` + `DelayingQueue` + `ItemExponentialFailureRateLimiter`):
 * - `add(key)` of a key that is already waiting does nothing (collapsing).
 * - A key handed out by `get()` is "processing" until `done(key)`. An `add` meanwhile only marks
 *   it dirty; `done` then puts it back, so it runs again, after the current run, never beside it.
 * - `addAfter(key, ms)` adds later; a key waiting on several delays keeps the earliest.
 * - `addRateLimited(key)` adds after a per-key exponential delay (base, 2·base, 4·base, ... capped);
 *   `forget(key)` resets that key's failure count (call it after a successful reconcile).
 * - After `shutDown()` adds are ignored, pending and delayed keys are dropped (a restarted
 *   controller re-lists everything anyway) and `get()` resolves `undefined`. `drain()` does the
 *   same and then waits until every key being processed is `done`.
 */

/**
 * Metric hooks, named after controller-runtime's `workqueue_*` metrics
 * (`workqueue_adds_total`, `workqueue_depth`, `workqueue_retries_total`,
 * `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`).
 */
export interface WorkQueueObserver {
  /** A key became pending (an add that was not collapsed into a pending one). */
  onAdd?(key: string): void;
  /** The number of pending keys changed (as client-go counts depth: dirty keys, including
   *  those that wait for their current run to finish). */
  onDepth?(depth: number): void;
  /** `addRateLimited` was called for the key. */
  onRetry?(key: string): void;
  /** Seconds a key waited between becoming pending and being handed out. */
  onQueueDuration?(seconds: number): void;
  /** Seconds between a key being handed out and `done`. */
  onWorkDuration?(seconds: number): void;
}

export interface WorkQueueOptions {
  /** First rate-limited delay; doubles per consecutive failure. Default 1 s. */
  baseDelayMs?: number;
  /** Cap of the rate-limited delay. Default 5 min. */
  maxDelayMs?: number;
  observer?: WorkQueueObserver;
  /** Monotonic clock in milliseconds, for durations; default `performance.now()`. */
  now?: () => number;
}

type Waiter = (key: string | undefined) => void;

interface Delayed {
  readonly readyAt: number;
  readonly timer: NodeJS.Timeout;
}

export class WorkQueue {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly observer: WorkQueueObserver;
  private readonly now: () => number;

  /** Keys ready to be handed out, in order. Every key here is also in `dirty`. */
  private queue: string[] = [];
  /** Keys that need processing: queued, or processing and added again. */
  private readonly dirty = new Set<string>();
  /** Keys handed out and not yet `done`, with the time they were handed out. */
  private readonly processing = new Map<string, number>();
  /** When each pending key became pending (for the queue-duration metric). */
  private readonly addedAt = new Map<string, number>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly failures = new Map<string, number>();
  private waiters: Waiter[] = [];
  private drainWaiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    if (!(this.baseDelayMs > 0) || !(this.maxDelayMs >= this.baseDelayMs)) {
      throw new Error("WorkQueue: need 0 < baseDelayMs <= maxDelayMs");
    }
    this.observer = options.observer ?? {};
    this.now = options.now ?? (() => performance.now());
  }

  /** Marks the key as needing processing. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, this.now());
    this.observer.onAdd?.(key);
    this.observer.onDepth?.(this.dirty.size);
    if (this.processing.has(key)) return; // re-queued by done()
    this.queue.push(key);
    this.dispatch();
  }

  /** Adds the key after `ms` milliseconds (at once if `ms <= 0`). */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.now() + ms;
    const existing = this.delayed.get(key);
    if (existing !== undefined) {
      if (existing.readyAt <= readyAt) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { readyAt, timer });
  }

  /** Adds the key after its per-key exponential backoff delay, and counts a failure. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.backoff(key));
  }

  /**
   * Counts a failure of the key and returns its backoff delay, for a caller that wants to
   * say when the key runs again before adding it (`addAfter(key, delay)`).
   */
  backoff(key: string): number {
    this.observer.onRetry?.(key);
    return this.nextDelay(key);
  }

  /** The delay of the key's next retry, counting one more failure. */
  private nextDelay(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    // 2 ** failures overflows to Infinity for huge counts, which the cap absorbs.
    return Math.min(this.baseDelayMs * 2 ** failures, this.maxDelayMs);
  }

  /** Resets the key's backoff (it does not remove the key from the queue). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many consecutive `addRateLimited` calls the key has had since the last `forget`. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * The next key to process; waits until one is ready. Resolves `undefined` once the queue is
   * shut down. The caller must call `done(key)` when it has finished with the key.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends processing of a key handed out by `get()`; re-queues it if it was added meanwhile. */
  done(key: string): void {
    const startedAt = this.processing.get(key);
    if (startedAt === undefined) return;
    this.processing.delete(key);
    this.observer.onWorkDuration?.((this.now() - startedAt) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.push(key);
      this.dispatch();
    }
    if (this.processing.size === 0) this.notifyDrained();
  }

  /** Keys ready to be handed out (not counting delayed keys or keys being processed). */
  len(): number {
    return this.queue.length;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops the queue: adds are ignored, pending and delayed keys dropped, `get()` yields `undefined`. */
  shutDown(): void {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const { timer } of this.delayed.values()) clearTimeout(timer);
      this.delayed.clear();
      this.queue = [];
      // With no key dirty, done() re-queues nothing.
      this.dirty.clear();
      this.addedAt.clear();
      this.observer.onDepth?.(0);
      const waiters = this.waiters;
      this.waiters = [];
      for (const resolve of waiters) resolve(undefined);
    }
    if (this.processing.size === 0) this.notifyDrained();
  }

  /** Shuts the queue down and resolves once every key being processed has been `done`. */
  drain(): Promise<void> {
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.shutDown();
    return drained;
  }

  private take(key: string): string {
    const now = this.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    const addedAt = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (addedAt !== undefined) this.observer.onQueueDuration?.((now - addedAt) / 1000);
    this.observer.onDepth?.(this.dirty.size);
    return key;
  }

  /** Hands ready keys to waiting `get()` callers, first come first served. */
  private dispatch(): void {
    while (this.waiters.length > 0 && this.queue.length > 0) {
      const resolve = this.waiters.shift();
      const key = this.queue.shift();
      if (resolve === undefined || key === undefined) break;
      resolve(this.take(key));
    }
  }

  private notifyDrained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
