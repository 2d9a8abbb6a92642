/** What an API server's error says: its HTTP status, and the `message` of the Status it carries. */
import { ApiException } from "@kubernetes/client-node";

/** Whether `err` is the API server's answer with this status code (defined once, in src/runtime/kube-api.ts). */
export { isStatus as isApiStatus } from "../src/runtime/kube-api.ts";

/** The `message` of the Status an API error carries (the client keeps the body as text). */
export function statusMessage(err: unknown): string {
  if (!(err instanceof ApiException)) return String(err);
  const body: unknown = err.body;
  const text = typeof body === "string" ? body : JSON.stringify(body);
  try {
    const status = JSON.parse(text) as { message?: unknown };
    return typeof status.message === "string" ? status.message : text;
  } catch {
    return text;
  }
}

/** `HTTP <code>: <the Status's message>` for an API error, else the error's message. */
export function errorText(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = typeof err.body === "string" ? safeJson(err.body) : err.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return `HTTP ${err.code}${typeof message === "string" ? `: ${message}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The JSON value of `text`, or undefined if it is not JSON. */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
