/**
 * Events a decision records. Their notes are cut here, once, to the 1024 characters
 * events.k8s.io accepts; nothing else shortens them.
 */
import type { EventSpec } from "./protocol.ts";

export const MAX_EVENT_NOTE = 1024;

export function event(
  type: EventSpec["type"],
  reason: string,
  action: string,
  note: string,
  once?: string,
): EventSpec {
  return {
    type,
    reason,
    action,
    note: note.length <= MAX_EVENT_NOTE ? note : note.slice(0, MAX_EVENT_NOTE),
    ...(once !== undefined && { once }),
  };
}
