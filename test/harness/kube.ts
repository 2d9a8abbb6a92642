/**
 * Kubernetes helpers for e2e tests: clients for the admin and for restricted
 * identities, and one fresh namespace per test.
 */
import { randomBytes } from "node:crypto";
import { ApiException, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterEach, beforeEach, inject } from "vitest";
import { userKubeconfig } from "./control-plane.ts";
import { waitFor } from "./processes.ts";

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  return kc;
}

/** A client identity with no rights but those RBAC grants to `user` and `groups`. */
export function restrictedKubeConfig(user: string, groups: readonly string[] = []): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(userKubeconfig(inject("clusterDir"), inject("apiServer"), user, groups));
  return kc;
}

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

export interface TestNamespace {
  /** Valid inside a test (set before each test). */
  readonly name: string;
}

/**
 * Creates a namespace before each test of the calling suite and deletes it after.
 * The real namespace controller then removes everything in it.
 */
export function useNamespace(labels: Record<string, string> = {}): TestNamespace {
  let current: string | undefined;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  beforeEach(async () => {
    current = `t-${randomBytes(4).toString("hex")}`;
    await core.createNamespace({ body: { metadata: { name: current, labels } } });
  });
  afterEach(async () => {
    if (current === undefined) return;
    const name = current;
    current = undefined;
    await core.deleteNamespace({ name }).catch((err: unknown) => {
      if (!isApiStatus(err, 404)) throw err;
    });
  });
  return {
    get name() {
      if (current === undefined) throw new Error("useNamespace: no namespace outside a test");
      return current;
    },
  };
}

export { waitFor };
