import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkQueue, type WorkQueueObserver } from "./workqueue.ts";

const PENDING = Symbol("pending");

/** The next key if `get()` settles before the next macrotask, else PENDING. */
async function poll(queue: WorkQueue): Promise<string | undefined | typeof PENDING> {
  const later = new Promise<typeof PENDING>((resolve) => {
    setImmediate(() => {
      resolve(PENDING);
    });
  });
  return Promise.race([queue.get(), later]);
}

describe("WorkQueue", () => {
  it("hands keys out in order and collapses repeated adds of a waiting key", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/a");
    q.add("ns/a");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
    expect(q.len()).toBe(0);
    q.shutDown();
  });

  it("resolves a waiting get() when a key is added", async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add("ns/a");
    expect(await next).toBe("ns/a");
    q.shutDown();
  });

  it("never hands out a key that is being processed; an add meanwhile re-queues it on done", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    expect(await q.get()).toBe("ns/a");

    q.add("ns/a"); // while processing: marked dirty, not queued
    q.add("ns/a"); // and collapsed
    expect(q.len()).toBe(0);
    const second = q.get();
    expect(await poll(q)).toBe(PENDING);

    q.done("ns/a");
    expect(await second).toBe("ns/a");
    q.done("ns/a");
    expect(q.len()).toBe(0);
    expect(await poll(q)).toBe(PENDING);
    q.shutDown();
  });

  it("does not re-queue on done when the key was not added during processing", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    expect(await q.get()).toBe("ns/a");
    q.done("ns/a");
    expect(q.len()).toBe(0);
    // done() of a key that is not processing is a no-op
    q.done("ns/a");
    q.done("ns/unknown");
    expect(q.len()).toBe(0);
    q.shutDown();
  });

  it("with concurrent workers, runs one key at most once at a time", async () => {
    const q = new WorkQueue();
    const running = new Set<string>();
    let overlaps = 0;
    let runs = 0;
    const worker = async (): Promise<void> => {
      for (let key = await q.get(); key !== undefined; key = await q.get()) {
        if (running.has(key)) overlaps++;
        running.add(key);
        runs++;
        // Let other workers and adders interleave while this key is processing.
        await new Promise((r) => setImmediate(r));
        q.add(key === "ns/a" ? "ns/b" : "ns/a");
        await new Promise((r) => setImmediate(r));
        running.delete(key);
        q.done(key);
        if (runs >= 200) q.shutDown();
      }
    };
    q.add("ns/a");
    q.add("ns/b");
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(runs).toBeGreaterThanOrEqual(200);
    expect(overlaps).toBe(0);
  });

  describe("with fake timers", () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    const fakeClock = (): number => Date.now();

    it("backs off per key exponentially from the base delay up to the cap", () => {
      const q = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 10_000, now: fakeClock });
      const delays: number[] = [];
      for (let i = 0; i < 6; i++) {
        const start = Date.now();
        q.addRateLimited("ns/a");
        // Advance in 1 ms steps until the key shows up.
        while (q.len() === 0) vi.advanceTimersByTime(1);
        delays.push(Date.now() - start);
        q.done("ns/a"); // not processing: no-op
        void q.get(); // take it out again so the next add is not collapsed
        q.done("ns/a");
      }
      expect(delays).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
      expect(q.numRequeues("ns/a")).toBe(6);
      q.shutDown();
    });

    it("uses the defaults of 1 s doubling up to 5 min", () => {
      const q = new WorkQueue({ now: fakeClock });
      const delays: number[] = [];
      for (let i = 0; i < 11; i++) {
        q.addRateLimited("ns/a");
        const before = Date.now();
        vi.advanceTimersToNextTimer();
        delays.push(Date.now() - before);
        void q.get();
        q.done("ns/a");
      }
      expect(delays).toEqual([
        1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000,
      ]);
      q.shutDown();
    });

    it("keeps backoff per key and resets it on forget", () => {
      const q = new WorkQueue({ baseDelayMs: 100, now: fakeClock });
      q.addRateLimited("ns/a");
      vi.advanceTimersByTime(100);
      void q.get();
      q.done("ns/a");
      q.addRateLimited("ns/a"); // second failure: 200 ms
      q.addRateLimited("ns/b"); // other key: its own first failure, 100 ms
      vi.advanceTimersByTime(100);
      expect(q.len()).toBe(1);
      vi.advanceTimersByTime(100);
      expect(q.len()).toBe(2);
      expect(q.numRequeues("ns/a")).toBe(2);

      q.forget("ns/a");
      expect(q.numRequeues("ns/a")).toBe(0);
      expect(q.numRequeues("ns/b")).toBe(1);
      q.shutDown();
    });

    it("forget does not remove a waiting key", async () => {
      const q = new WorkQueue({ now: fakeClock });
      q.add("ns/a");
      q.forget("ns/a");
      expect(await q.get()).toBe("ns/a");
      q.shutDown();
    });

    it("addAfter adds the key after the delay and keeps the earliest of several delays", () => {
      const q = new WorkQueue({ now: fakeClock });
      q.addAfter("ns/a", 5000);
      q.addAfter("ns/a", 2000); // earlier: replaces
      q.addAfter("ns/a", 8000); // later: ignored
      vi.advanceTimersByTime(1999);
      expect(q.len()).toBe(0);
      vi.advanceTimersByTime(1);
      expect(q.len()).toBe(1);
      vi.advanceTimersByTime(10_000);
      expect(q.len()).toBe(1);
      expect(vi.getTimerCount()).toBe(0);

      q.addAfter("ns/b", 0); // no delay: added at once
      expect(q.len()).toBe(2);
      q.shutDown();
    });

    it("collapses a delayed add into the key when it is already waiting", () => {
      const q = new WorkQueue({ now: fakeClock });
      q.add("ns/a");
      q.addAfter("ns/a", 1000);
      vi.advanceTimersByTime(1000);
      expect(q.len()).toBe(1);
      q.shutDown();
    });

    it("unrefs its timers", () => {
      const q = new WorkQueue({ now: fakeClock });
      const spy = vi.spyOn(globalThis, "setTimeout");
      q.addAfter("ns/a", 1000);
      const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      spy.mockRestore();
      q.shutDown();
    });

    it("reports metrics through the observer", async () => {
      const events: string[] = [];
      const observer: WorkQueueObserver = {
        onAdd: (key) => events.push(`add ${key}`),
        onDepth: (n) => events.push(`depth ${n}`),
        onRetry: (key) => events.push(`retry ${key}`),
        onQueueDuration: (s) => events.push(`queued ${s}`),
        onWorkDuration: (s) => events.push(`work ${s}`),
      };
      const q = new WorkQueue({ observer, now: fakeClock });
      q.add("ns/a");
      q.add("ns/a"); // collapsed: no metrics
      vi.advanceTimersByTime(1500);
      expect(await q.get()).toBe("ns/a");
      vi.advanceTimersByTime(250);
      q.done("ns/a");
      q.addRateLimited("ns/a");
      vi.advanceTimersByTime(1000);
      expect(events).toEqual([
        "add ns/a",
        "depth 1",
        "queued 1.5",
        "depth 0",
        "work 0.25",
        "retry ns/a",
        "add ns/a",
        "depth 1",
      ]);
      q.shutDown();
    });

    it("shutDown clears delayed timers, drops pending keys and ignores later adds", async () => {
      const q = new WorkQueue({ now: fakeClock });
      q.add("ns/a");
      q.addAfter("ns/b", 1000);
      q.addRateLimited("ns/c");
      expect(vi.getTimerCount()).toBe(2);
      q.shutDown();
      expect(vi.getTimerCount()).toBe(0);
      expect(q.len()).toBe(0);
      q.add("ns/d");
      q.addAfter("ns/e", 1000);
      q.addRateLimited("ns/f");
      expect(q.len()).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      expect(await q.get()).toBeUndefined();
      expect(q.isShuttingDown()).toBe(true);
    });
  });

  it("shutDown resolves every waiting get() with undefined", async () => {
    const q = new WorkQueue();
    const waiting = [q.get(), q.get(), q.get()];
    q.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined, undefined]);
    q.shutDown(); // idempotent
  });

  it("does not re-queue a key added during processing once shut down", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    expect(await q.get()).toBe("ns/a");
    q.add("ns/a");
    q.shutDown();
    q.done("ns/a");
    expect(q.len()).toBe(0);
    expect(await q.get()).toBeUndefined();
  });

  it("drain waits for keys being processed to be done", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/c");
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
    let drained = false;
    const draining = q.drain().then(() => {
      drained = true;
    });
    expect(await q.get()).toBeUndefined(); // ns/c was pending: dropped
    q.done("ns/a");
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    q.done("ns/b");
    await draining;
    expect(drained).toBe(true);
  });

  it("drain resolves at once when nothing is processing", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    await q.drain();
    expect(await q.get()).toBeUndefined();
  });

  it("rejects invalid backoff settings", () => {
    expect(() => new WorkQueue({ baseDelayMs: 0 })).toThrow(/baseDelayMs/);
    expect(() => new WorkQueue({ baseDelayMs: 10, maxDelayMs: 5 })).toThrow(/maxDelayMs/);
  });
});
