/**
 * A decision in the making: what the stages of decide (reconcile/stages/) read and write
 * as they run in order. It holds the MirrorJob, what was observed and the settings; the
 * status being built, its conditions, the Events and effects so far; and what a stage leaves
 * for the later ones (the resolved inputs, the apply stage's wish for `next`). A stage either
 * passes on (returns undefined) or ends the decision (returns `draft.decision(...)`).
 */
import type { Condition, MirrorJobStatus } from "../api/status.ts";
import type { MirrorJob } from "../api/validation.ts";
import type { OcMirrorLine } from "../ocmirror/lines.ts";
import { removeCondition, setCondition, settleConditions } from "./conditions.ts";
import { event } from "./events.ts";
import type { ResolvedInputs } from "./preflight.ts";
import type { Trigger } from "./triggers.ts";
import {
  AWAIT_CHANGE,
  type DecideSettings,
  type Decision,
  type Effect,
  type EventSpec,
  type Next,
  type Observed,
  type Query,
} from "./protocol.ts";

export type ConditionStatus = Condition["status"];

export class Draft {
  readonly mj: MirrorJob;
  readonly observed: Observed;
  readonly settings: DecideSettings;
  readonly now: Date;
  readonly generation: number;
  /** The status being built (conditions apart: see set, remove, condition). */
  readonly status: MirrorJobStatus;
  private conditions: Condition[];
  private readonly events: EventSpec[] = [];
  private readonly effects: Effect[] = [];
  /** Set by the resolve-inputs stage for the stages after it. */
  inputs?: ResolvedInputs;
  /** Set by the schedule stage when a run is due, for the start-run stage. */
  due?: { readonly trigger: Trigger; readonly inputsHash: string };
  /** The oc-mirror line the MirrorJob's Jobs run. */
  readonly line: OcMirrorLine;
  /** What the apply stage wants of `next` when the decision ends later (schedule stage). */
  applyNext: Next = AWAIT_CHANGE;
  /** What the prune stage wants of `next` when the decision ends later (schedule stage). */
  pruneNext: Next = AWAIT_CHANGE;
  /** The phase the apply (or verify) stage reports when nothing else is going on. */
  applyPhase?: "AwaitingApproval" | "Verifying";
  /** The decision writes the status as stored (a MirrorJob being deleted). */
  private keepStored = false;

  constructor(mj: MirrorJob, observed: Observed, settings: DecideSettings) {
    this.mj = mj;
    this.observed = observed;
    this.settings = settings;
    this.now = observed.now;
    this.generation = mj.metadata.generation ?? 0;
    // A run waits for a slot only as long as a decision says so (start run sets it again).
    const { queued: _, ...stored } = mj.status ?? {};
    this.status = { ...stored, observedGeneration: this.generation };
    this.conditions = [...(mj.status?.conditions ?? [])];
    this.line = mj.spec.mirror.line ?? settings.defaultOcMirrorLine;
  }

  /** A condition as stored before this decision (what an Event is "new" against). */
  stored(type: string): Condition | undefined {
    return this.mj.status?.conditions?.find((c) => c.type === type);
  }

  /** A condition as it stands in this decision. */
  condition(type: string): Condition | undefined {
    return this.conditions.find((c) => c.type === type);
  }

  set(type: string, status: ConditionStatus, reason: string, message: string): void {
    this.conditions = setCondition(
      this.conditions,
      { type, status, reason, message },
      this.generation,
      this.now,
    );
  }

  remove(type: string): void {
    this.conditions = removeCondition(this.conditions, type);
  }

  event(type: EventSpec["type"], reason: string, action: string, note: string, once?: string): void {
    this.record(event(type, reason, action, note, once));
  }

  /** Records an Event made elsewhere (with reconcile/events.ts's `event`). */
  record(spec: EventSpec): void {
    this.events.push(spec);
  }

  /** Records an Event unless the condition it explains was stored with the same reason and message. */
  eventOnChange(
    type: EventSpec["type"],
    reason: string,
    action: string,
    condition: { readonly type: string; readonly reason: string; readonly message: string },
  ): void {
    const before = this.stored(condition.type);
    if (before?.reason === condition.reason && before.message === condition.message) return;
    this.event(type, reason, action, condition.message);
  }

  effect(effect: Effect): void {
    this.effects.push(effect);
  }

  /** The decision leaves the stored status as it is (nothing of it is worth writing). */
  keepStoredStatus(): void {
    this.keepStored = true;
  }

  /** Ends the decision: a query to answer first, or when to look again. */
  decision(next: Next | { readonly query: Query }): Decision {
    const conditions = settleConditions(this.mj.status?.conditions ?? [], this.conditions);
    return {
      status: this.keepStored ? (this.mj.status ?? {}) : { ...this.status, conditions },
      events: this.events,
      effects: this.effects,
      ...("query" in next ? { query: next.query, next: AWAIT_CHANGE } : { next }),
    };
  }
}
