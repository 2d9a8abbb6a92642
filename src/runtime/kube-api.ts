/**
 * Talking to the API server: the operator's field manager and reporting controller, and how
 * to read the errors client-node throws (a status code, the Status message, a refusal that
 * names fields) without dragging the whole response (headers, body) into logs or status.
 */
import { ApiException, type KubernetesObject } from "@kubernetes/client-node";
import type { Refusal } from "../reconcile/protocol.ts";

export const FIELD_MANAGER = "hub-mirror-operator";
export const REPORTING_CONTROLLER = "hubmirror.dev/hub-mirror-operator";

export function isStatus(err: unknown, code: number): err is ApiException<unknown> {
  return err instanceof ApiException && err.code === code;
}

/** A conditional write lost to a newer version of the object. */
export function isStaleWrite(err: unknown): boolean {
  return isStatus(err, 409) || isStatus(err, 422);
}

interface StatusBody {
  message?: unknown;
  details?: { causes?: { field?: unknown }[]; retryAfterSeconds?: unknown };
}

/** The Status object in an ApiException's body (client-node hands it over parsed or as text). */
function statusBody(err: ApiException<unknown>): StatusBody | undefined {
  const body: unknown = err.body;
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return undefined;
    }
  }
  return body !== null && typeof body === "object" ? body : undefined;
}

/** `<code>: <the Status message>` of an API error; other errors' own message. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const message = statusBody(err as ApiException<unknown>)?.message;
    return `${String(err.code)}: ${typeof message === "string" ? message : "error"}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A short, secret-free description of any error, for status and logs. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) return `the API server answered ${apiMessage(err)}`.slice(0, 1024);
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n")[0] ?? "").slice(0, 1024);
}

/**
 * How long the API server asks a throttled client to wait (a 429's Retry-After, or the
 * Status' retryAfterSeconds), or undefined for other errors. client-go waits that long and
 * tries again without counting a failure; so does the controller.
 */
export function retryAfterMs(err: unknown): number | undefined {
  if (!isStatus(err, 429)) return undefined;
  const header = Number((err.headers as Record<string, string | undefined>)["retry-after"]);
  const seconds =
    Number.isFinite(header) && header > 0 ? header : Number(statusBody(err)?.details?.retryAfterSeconds);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : 1000;
}

/**
 * The API server's refusal of `object`, when `err` is one: a 4xx other than 409 (exists:
 * handled by the caller) and 429 (throttled: retried).
 */
export function refusalOf(err: unknown, object: KubernetesObject): Refusal | undefined {
  if (!(err instanceof ApiException) || err.code < 400 || err.code >= 500 || err.code === 429)
    return undefined;
  const body = statusBody(err as ApiException<unknown>);
  const causes = body?.details?.causes ?? [];
  return {
    kind: object.kind ?? "",
    name: object.metadata?.name ?? "",
    code: err.code,
    message: typeof body?.message === "string" ? body.message : `HTTP ${String(err.code)}`,
    fields: causes.flatMap((c) => (typeof c.field === "string" ? [c.field] : [])),
  };
}
