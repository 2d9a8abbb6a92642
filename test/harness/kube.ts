/**
 * Kubernetes helpers for e2e tests: clients for the admin and for restricted
 * identities, and one fresh namespace per test, on the local control plane or on the
 * cluster HUBMIRROR_E2E_KUBECONFIG names (see global-setup.ts).
 */
import { randomBytes } from "node:crypto";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterEach, beforeEach, inject } from "vitest";
import { userKubeconfig } from "../../devkit/control-plane.ts";
import { isApiStatus, statusMessage } from "../../devkit/kube-errors.ts";
import { RUN_LABEL } from "./global-setup.ts";
import { waitFor } from "../../devkit/processes.ts";

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  return kc;
}

/** True when the tests run on the control plane this harness started (not an external cluster). */
export function localControlPlane(): boolean {
  return inject("clusterMode") === "local";
}

/**
 * A client identity with no rights but those RBAC grants to `user` (and `groups`, plus
 * system:authenticated). On the local control plane: a client certificate from its CA. On an
 * external cluster, whose CA key the harness does not have: the admin impersonating `user`
 * (the API server authorizes the impersonated user, so RBAC is checked for real just the same).
 */
export function restrictedKubeConfig(user: string, groups: readonly string[] = []): KubeConfig {
  const kc = new KubeConfig();
  if (localControlPlane()) {
    kc.loadFromFile(userKubeconfig(inject("clusterDir"), inject("apiServer"), user, groups));
    return kc;
  }
  // client-node impersonates a user only (no Impersonate-Group header).
  if (groups.length > 0) throw new Error("restrictedKubeConfig: groups need the local control plane");
  const admin = adminKubeConfig();
  const cluster = admin.getCurrentCluster();
  const adminUser = admin.getCurrentUser();
  if (cluster === null || adminUser === null) throw new Error("the admin kubeconfig has no current context");
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ ...adminUser, name: "impersonated", impersonateUser: user }],
    contexts: [{ name: "impersonated", cluster: cluster.name, user: "impersonated" }],
    currentContext: "impersonated",
  });
  return kc;
}

export interface TestNamespace {
  /** Valid inside a test (set before each test). */
  readonly name: string;
}

/**
 * Creates a namespace before each test of the calling suite and deletes it after.
 * The real namespace controller then removes everything in it. The namespace carries the
 * run's label (RUN_LABEL), so the global teardown removes whatever a failed test left.
 */
export function useNamespace(labels: Record<string, string> = {}): TestNamespace {
  let current: string | undefined;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  beforeEach(async () => {
    current = `t-${randomBytes(4).toString("hex")}`;
    await core.createNamespace({
      body: { metadata: { name: current, labels: { ...labels, [RUN_LABEL]: inject("runId") } } },
    });
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

export { isApiStatus, statusMessage, waitFor };
