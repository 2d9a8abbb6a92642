/**
 * Stage "cleanup": a MirrorJob being deleted. With its finalizer, what it applied is
 * deleted (deletionPolicy Delete) or left (Orphan), then the finalizer goes. The status is
 * left as stored: the object is on its way out.
 */
import { hasFinalizer } from "../../apply/kinds.ts";
import type { Draft } from "../draft.ts";
import { AWAIT_CHANGE, BACKOFF, type Decision } from "../protocol.ts";

export function cleanup(d: Draft): Decision | undefined {
  const mj = d.mj;
  if (mj.metadata.deletionTimestamp === undefined) return undefined;
  if (!hasFinalizer(mj)) {
    d.keepStoredStatus();
    return d.decision(AWAIT_CHANGE);
  }
  if (mj.spec.apply.deletionPolicy === "Delete") {
    const deleted = d.observed.answers.deleteApplied;
    if (deleted === undefined) {
      d.keepStoredStatus();
      return d.decision({ query: { kind: "deleteApplied" } });
    }
    if (deleted.errors.length > 0) {
      const message = `deleting what this MirrorJob applied failed: ${deleted.errors.slice(0, 5).join("; ")}`;
      d.set("Applied", "False", "CleanupFailed", message);
      d.event("Warning", "CleanupFailed", "Delete", message);
      return d.decision(BACKOFF);
    }
    d.event(
      "Normal",
      "AppliedResourcesDeleted",
      "Delete",
      `deleted ${String(deleted.deleted)} objects this MirrorJob applied (spec.apply.deletionPolicy: Delete)`,
    );
  } else {
    d.event(
      "Normal",
      "AppliedResourcesOrphaned",
      "Delete",
      "left the objects this MirrorJob applied on the cluster (spec.apply.deletionPolicy: Orphan)",
    );
  }
  d.keepStoredStatus();
  d.effect({ kind: "removeFinalizer" });
  return d.decision(AWAIT_CHANGE);
}
