/** What an API server's error says: its HTTP status, and the `message` of the Status it carries. */
import { ApiException } from "@kubernetes/client-node";

export function isApiStatus(err: unknown, code: number): err is ApiException<unknown> {
  return err instanceof ApiException && err.code === code;
}

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
