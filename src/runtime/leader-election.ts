/**
 * Lease-based leader election (coordination.k8s.io/v1 Lease), after client-go's `leaderelection`.
 *
 * Why it exists: the operator runs with more than one replica for availability, but only one may
 * reconcile (two would start two oc-mirror runs on one workspace). The replica holding the Lease
 * leads; the others stand by and take over when it releases the Lease or stops renewing it.
 *
 * The protocol:
 * - A candidate takes the Lease when it does not exist, has no holder, or has expired. Expired
 *   means `renewTime + leaseDurationSeconds < now` AND this candidate has itself seen the Lease
 *   unchanged for `leaseDurationSeconds` (client-go's guard against clock skew between nodes:
 *   a standby whose clock runs ahead cannot depose a healthy leader). The price: a candidate that
 *   has just started waits one lease duration before taking over an abandoned Lease.
 * - Every write carries the resourceVersion it read (optimistic concurrency): a 409 Conflict or
 *   AlreadyExists means another candidate wrote first, and this one did not win.
 * - The leader renews every retry period. If it cannot renew for `renewDeadlineSeconds`
 *   (measured from the send time of its last successful renewal, with every request cut off at
 *   that deadline) it steps down: the AbortSignal passed to `onStartedLeading` is aborted and
 *   `onStoppedLeading` is called. `leaseDurationSeconds > renewDeadlineSeconds` leaves a margin
 *   so the old leader has stopped before any standby may take over. It also steps down at once
 *   when it sees another holder in the Lease.
 * - After stepping down it waits for the work started by `onStartedLeading` to finish (the work
 *   must honour the signal) and campaigns again. A manager that would rather restart can exit
 *   from `onStoppedLeading`.
 * - `release()` (graceful shutdown) stops campaigning, steps down, waits for the work (at most
 *   until the Lease would expire anyway) and clears `holderIdentity`, so a standby takes over at
 *   its next retry instead of after the lease duration.
 *
 * MicroTime: client-node 2.x types `acquireTime`/`renewTime` as `V1MicroTime` (a `Date`
 * subclass whose `toISOString()` has the microsecond digits the API server requires; a plain
 * `Date` would serialize with milliseconds and be rejected). The serializer does not know the
 * type, so values read from the server stay RFC 3339 strings at runtime; both are handled here.
 */
import { isStatus } from "./kube-api.ts";
import {
  ApiException,
  CoordinationV1Api,
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
  type V1LeaseSpec,
} from "@kubernetes/client-node";
import { pino, type Logger } from "pino";

export interface LeaderElectionOptions {
  kc: KubeConfig;
  /** Namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** Unique per candidate, e.g. the pod name. */
  identity: string;
  /** How long a Lease stays valid after its last renewal. Default 15. */
  leaseDurationSeconds?: number;
  /** How long the leader keeps trying to renew before it steps down. Default 10. */
  renewDeadlineSeconds?: number;
  /** Pause between attempts to acquire or renew. Default 2. */
  retryPeriodSeconds?: number;
  /**
   * Called on becoming leader. The signal is aborted on losing leadership; a returned promise is
   * awaited before this candidate campaigns again or releases the Lease.
   */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called on losing leadership (only after having led). */
  onStoppedLeading: () => void;
  /** Called when the observed leader changes to a (non-empty) identity, including this one. */
  onNewLeader?: (identity: string) => void;
  /**
   * Called with `false` when campaigning starts, `true` on becoming leader and `false` on
   * stepping down: client-go's `leader_election_master_status` metric.
   */
  onMasterStatus?: (leading: boolean) => void;
  logger?: Logger;
}

export interface LeaderElector {
  /** True while this candidate holds a Lease it renewed within the renew deadline. */
  isLeader(): boolean;
  /** The holder of the Lease as last observed, if any. */
  leader(): string | undefined;
  /** Stops campaigning; if leading, steps down and clears the Lease's holder. Idempotent. */
  release(): Promise<void>;
}

/** client-go's `JitterFactor`: retries wait between 1 and 2.2 retry periods when not leading. */
const JITTER_FACTOR = 1.2;

type Outcome = "acquired" | "held-by-other" | "failed";

export function startLeaderElection(options: LeaderElectionOptions): LeaderElector {
  const election = new LeaderElection(options);
  election.start();
  return election;
}

class LeaderElection implements LeaderElector {
  private readonly options: LeaderElectionOptions;
  private readonly api: CoordinationV1Api;
  private readonly log: Logger;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  /** Aborted by release(): wakes sleeps and cancels requests in flight. */
  private readonly stopping = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private released: Promise<void> | undefined;

  private observed: V1Lease | undefined;
  private observedVersion: string | undefined;
  /** Local time (ms) at which `observedVersion` was first seen. */
  private observedAt = 0;
  private observedLeader: string | undefined;

  private leading = false;
  /** Send time (ms) of the last successful acquire or renew. */
  private renewedAt = 0;
  private leadership: AbortController | undefined;
  private work: Promise<void> = Promise.resolve();

  constructor(options: LeaderElectionOptions) {
    this.options = options;
    this.leaseDurationMs = (options.leaseDurationSeconds ?? 15) * 1000;
    this.renewDeadlineMs = (options.renewDeadlineSeconds ?? 10) * 1000;
    this.retryPeriodMs = (options.retryPeriodSeconds ?? 2) * 1000;
    if (options.identity === "") throw new Error("leader election: identity must not be empty");
    if (!(this.retryPeriodMs > 0)) throw new Error("leader election: retryPeriodSeconds must be > 0");
    if (!(this.renewDeadlineMs > JITTER_FACTOR * this.retryPeriodMs)) {
      throw new Error(
        `leader election: renewDeadlineSeconds must be > ${JITTER_FACTOR} × retryPeriodSeconds`,
      );
    }
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new Error("leader election: leaseDurationSeconds must be > renewDeadlineSeconds");
    }
    this.api = options.kc.makeApiClient(CoordinationV1Api);
    this.log = (options.logger ?? pino({ enabled: false })).child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
  }

  start(): void {
    this.reportMasterStatus(false);
    this.loop = this.run().catch((err: unknown) => {
      // run() handles its own errors; this is a last resort so a bug cannot go unnoticed.
      this.log.error({ err }, "leader election loop failed");
      if (this.leading) this.stepDown("leader election loop failed");
    });
  }

  private isStopping(): boolean {
    return this.stopping.signal.aborted;
  }

  isLeader(): boolean {
    return this.leading && Date.now() < this.renewedAt + this.renewDeadlineMs;
  }

  leader(): string | undefined {
    return this.observedLeader;
  }

  release(): Promise<void> {
    this.released ??= this.doRelease();
    return this.released;
  }

  private async doRelease(): Promise<void> {
    this.stopping.abort(new Error("leader election released"));
    await this.loop;
    if (!this.leading) return;
    const validUntil = this.renewedAt + this.leaseDurationMs;
    this.stepDown("released", "info");
    // Hand over only once our work has stopped; past the lease's expiry a standby may take over anyway.
    await settledWithin(this.work, validUntil - Date.now());
    const { name, namespace, identity } = this.options;
    const opts = withSignal(AbortSignal.timeout(this.renewDeadlineMs));
    try {
      // Read afresh: a renewal cut short by release() may still have reached the server.
      const lease = await this.api.readNamespacedLease({ name, namespace }, opts);
      this.observe(lease);
      if (lease.spec?.holderIdentity !== identity) return;
      const now = new V1MicroTime();
      const body = withSpec(lease, {
        holderIdentity: "",
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      });
      this.observe(await this.api.replaceNamespacedLease({ name, namespace, body }, opts));
      this.log.info("released the lease");
    } catch (err) {
      // A conflict means another candidate has written the Lease since: nothing of ours to clear.
      this.log.warn({ err: describe(err) }, "could not release the lease");
    }
  }

  private async run(): Promise<void> {
    const stop = this.stopping.signal;
    while (!this.isStopping()) {
      if (!this.leading) {
        const sentAt = Date.now();
        const outcome = await this.tryAcquireOrRenew(sentAt, this.renewDeadlineMs);
        if (outcome === "acquired") {
          this.becomeLeader(sentAt);
        } else {
          await sleep(this.retryPeriodMs * (1 + Math.random() * JITTER_FACTOR), stop);
        }
        continue;
      }
      const deadline = this.renewedAt + this.renewDeadlineMs;
      const sentAt = Date.now();
      if (sentAt >= deadline) {
        this.stepDown(`could not renew the lease for ${this.renewDeadlineMs / 1000}s`);
        await this.afterStepDown();
        continue;
      }
      const outcome = await this.tryAcquireOrRenew(sentAt, deadline - sentAt);
      if (this.isStopping()) break;
      if (outcome === "acquired") {
        this.renewedAt = sentAt;
        await sleep(this.retryPeriodMs, stop);
      } else if (outcome === "held-by-other") {
        this.stepDown(`the lease is held by ${this.observedLeader ?? "another candidate"}`);
        await this.afterStepDown();
      } else {
        await sleep(Math.min(this.retryPeriodMs, deadline - Date.now()), stop);
      }
    }
  }

  private becomeLeader(acquiredAt: number): void {
    this.leading = true;
    this.renewedAt = acquiredAt;
    const leadership = new AbortController();
    this.leadership = leadership;
    this.log.info("became leader");
    this.reportMasterStatus(true);
    this.work = (async () => {
      try {
        await this.options.onStartedLeading(leadership.signal);
      } catch (err) {
        this.log.error({ err }, "onStartedLeading failed");
      }
    })();
  }

  private stepDown(reason: string, level: "info" | "warn" = "warn"): void {
    if (!this.leading) return;
    this.leading = false;
    this.log[level]({ reason }, "stopped leading");
    this.leadership?.abort(new Error(`leadership lost: ${reason}`));
    this.leadership = undefined;
    this.reportMasterStatus(false);
    try {
      this.options.onStoppedLeading();
    } catch (err) {
      this.log.error({ err }, "onStoppedLeading failed");
    }
  }

  private reportMasterStatus(leading: boolean): void {
    try {
      this.options.onMasterStatus?.(leading);
    } catch (err) {
      this.log.error({ err }, "onMasterStatus failed");
    }
  }

  /** Before campaigning again, lets the previous term's work finish (release() cuts this short). */
  private async afterStepDown(): Promise<void> {
    await untilAborted(this.work, this.stopping.signal);
    await sleep(this.retryPeriodMs, this.stopping.signal);
  }

  /** One attempt to acquire or renew; every request is cut off after `timeoutMs`. */
  private async tryAcquireOrRenew(sentAt: number, timeoutMs: number): Promise<Outcome> {
    const { name, namespace, identity } = this.options;
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(Math.max(0, timeoutMs))]);
    const opts = withSignal(signal);
    const now = new V1MicroTime(sentAt);

    // Fast path for the leader: renew from the Lease it last wrote, without reading it first.
    const own = this.observed;
    if (this.leading && own?.spec?.holderIdentity === identity) {
      try {
        const updated = await this.api.replaceNamespacedLease(
          { name, namespace, body: withSpec(own, { renewTime: now }) },
          opts,
        );
        this.observe(updated);
        return "acquired";
      } catch (err) {
        if (!isStatus(err, 409)) {
          this.requestFailed("could not renew the lease", err);
          return "failed";
        }
        // Someone else wrote the Lease: read it and decide below.
      }
    }

    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace }, opts);
    } catch (err) {
      if (!isStatus(err, 404)) {
        this.requestFailed("could not read the lease", err);
        return "failed";
      }
      try {
        const created = await this.api.createNamespacedLease(
          {
            namespace,
            body: {
              metadata: { name, namespace },
              spec: {
                holderIdentity: identity,
                leaseDurationSeconds: this.leaseDurationMs / 1000,
                acquireTime: now,
                renewTime: now,
                leaseTransitions: 0,
              },
            },
          },
          opts,
        );
        this.observe(created);
        return "acquired";
      } catch (createErr) {
        if (isStatus(createErr, 409)) return "held-by-other";
        this.requestFailed("could not create the lease", createErr);
        return "failed";
      }
    }
    this.observe(lease);

    const spec: V1LeaseSpec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    if (holder !== "" && holder !== identity && !this.expired(spec, Date.now())) return "held-by-other";

    const takingOver = holder !== identity;
    const body = withSpec(lease, {
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDurationMs / 1000,
      renewTime: now,
      acquireTime: takingOver ? now : spec.acquireTime,
      leaseTransitions: takingOver ? (spec.leaseTransitions ?? 0) + 1 : spec.leaseTransitions,
    });
    try {
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body }, opts);
      this.observe(updated);
      if (takingOver) this.log.info({ previousHolder: holder || undefined }, "acquired the lease");
      return "acquired";
    } catch (err) {
      if (isStatus(err, 409)) return "held-by-other";
      this.requestFailed("could not update the lease", err);
      return "failed";
    }
  }

  /** Failed requests are worth a warning, except those that release() cut short. */
  private requestFailed(message: string, err: unknown): void {
    if (this.isStopping()) this.log.debug({ err: describe(err) }, message);
    else this.log.warn({ err: describe(err) }, message);
  }

  private expired(spec: V1LeaseSpec, now: number): boolean {
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
    const renewTime = microTimeMs(spec.renewTime);
    const byRenewTime = renewTime === undefined || renewTime + durationMs < now;
    const byObservation = this.observedAt + durationMs < now;
    return byRenewTime && byObservation;
  }

  private observe(lease: V1Lease): void {
    const version = lease.metadata?.resourceVersion;
    if (version !== this.observedVersion || this.observed === undefined) {
      this.observedVersion = version;
      this.observedAt = Date.now();
    }
    this.observed = lease;
    const holder = lease.spec?.holderIdentity ?? "";
    const leader = holder === "" ? undefined : holder;
    if (leader === this.observedLeader) return;
    this.observedLeader = leader;
    if (leader === undefined) return;
    this.log.info({ leader }, "new leader observed");
    try {
      this.options.onNewLeader?.(leader);
    } catch (err) {
      this.log.error({ err }, "onNewLeader failed");
    }
  }
}

/**
 * The Lease with some spec fields changed. Lists the fields instead of spreading: client-node's
 * models are classes, and its serializer writes only the fields it knows anyway.
 */
function withSpec(lease: V1Lease, changes: Partial<V1LeaseSpec>): V1Lease {
  const spec = lease.spec;
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: lease.metadata,
    spec: {
      holderIdentity: spec?.holderIdentity,
      leaseDurationSeconds: spec?.leaseDurationSeconds,
      acquireTime: spec?.acquireTime,
      renewTime: spec?.renewTime,
      leaseTransitions: spec?.leaseTransitions,
      preferredHolder: spec?.preferredHolder,
      strategy: spec?.strategy,
      ...changes,
    },
  };
}

/** Milliseconds since the epoch of a MicroTime as client-node returns it (a string, or a Date we made). */
function microTimeMs(value: V1MicroTime | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = (value instanceof Date ? value : new Date(value)).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

/** Per-request options that let a signal abort the HTTP request. */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (ctx: ResponseContext) => new Observable(Promise.resolve(ctx)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

/** A short description for logs: API errors carry the whole response, which is noise. */
function describe(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || !(ms > 0)) {
      resolve();
      return;
    }
    const finish = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    timer.unref();
    signal.addEventListener("abort", finish, { once: true });
  });
}

/** Waits for the promise, or until the signal is aborted. */
async function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  let onAbort = (): void => undefined;
  const abort = new Promise<void>((resolve) => {
    onAbort = () => {
      resolve();
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([promise, abort]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

async function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  const timeout = new AbortController();
  await Promise.race([promise, sleep(ms, timeout.signal)]);
  timeout.abort();
}
