/**
 * The Helm chart rendered without a cluster: lint, the Deployment's configuration and
 * security, values that must be refused. test/e2e/chart.test.ts sends the output to a
 * real API server and checks the RBAC as the chart's ServiceAccount.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { V1ClusterRole, V1Deployment, V1Role, V1RoleBinding, V1Service } from "@kubernetes/client-node";
import { CHART_DIR, renderChart, type RenderOptions } from "../../src/cli/generate-rbac.ts";
import { helmBinary, repoRoot } from "../../devkit/binaries.ts";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

function render(options: RenderOptions = {}): Manifest[] {
  return parseAllDocuments(renderChart(helmBinary(), options))
    .map((d) => d.toJS() as Manifest | null)
    .filter((d) => d !== null);
}

function renderError(options: RenderOptions): string {
  try {
    renderChart(helmBinary(), options);
  } catch (err) {
    return (err as { stderr?: string }).stderr ?? String(err);
  }
  throw new Error("rendering succeeded");
}

function one(docs: Manifest[], kind: string): unknown {
  const found = docs.filter((d) => d.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
}

describe("Helm chart", () => {
  it("passes helm lint --strict, with and without the monitoring objects", () => {
    for (const set of [[], ["--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true"]]) {
      const out = execFileSync(helmBinary(), ["lint", "--strict", CHART_DIR, ...set], {
        cwd: repoRoot,
        encoding: "utf8",
      });
      expect(out).toContain("0 chart(s) failed");
    }
  });

  const docs = render();
  const deployment = one(docs, "Deployment") as V1Deployment;
  const pod = deployment.spec?.template.spec;
  const container = pod?.containers[0];
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

  it("runs two replicas with leader election", () => {
    expect(deployment.spec?.replicas).toBe(2);
    expect(env.HUBMIRROR_LEADER_ELECTION).toBe("true");
    expect(env.HUBMIRROR_LEASE_NAME).toBe("hub-mirror-operator");
    expect(one(docs, "PodDisruptionBudget")).toBeDefined();
  });

  it("configures the manager through its environment", () => {
    expect(container?.args).toEqual(["manager"]);
    expect(env).toMatchObject({
      POD_NAME: { fieldRef: { fieldPath: "metadata.name" } },
      POD_NAMESPACE: { fieldRef: { fieldPath: "metadata.namespace" } },
      HUBMIRROR_OC_MIRROR_IMAGE: "registry.redhat.io/openshift4/oc-mirror-plugin-rhel9:v4.20",
      HUBMIRROR_OC_MIRROR_LINE: "4.20",
      HUBMIRROR_OPERATOR_IMAGE: container?.image,
      HUBMIRROR_WATCH_NAMESPACES: "hub-mirror-operator",
      HUBMIRROR_APPLY_NAMESPACES: "hub-mirror-operator",
      HUBMIRROR_HEALTH_PORT: "8081",
    });
    expect(env).not.toHaveProperty("HUBMIRROR_STORAGE_CLASS");
    expect(container?.image).toBe("ghcr.io/hubmirror/hub-mirror-operator:0.1.0");
  });

  it("passes the chart's image, storage class and namespaces on", () => {
    const custom = render({
      set: {
        "image.digest": `sha256:${"a".repeat(64)}`,
        storageClassName: "fast",
        "watchNamespaces[0]": "mirrors",
        "watchNamespaces[1]": "hub-mirror-operator",
        "applyNamespaces[0]": "mirrors",
      },
    });
    const c = (one(custom, "Deployment") as V1Deployment).spec?.template.spec?.containers[0];
    const e = Object.fromEntries((c?.env ?? []).map((v) => [v.name, v.value]));
    expect(c?.image).toBe(`ghcr.io/hubmirror/hub-mirror-operator@sha256:${"a".repeat(64)}`);
    expect(e.HUBMIRROR_OPERATOR_IMAGE).toBe(c?.image);
    expect(e.HUBMIRROR_STORAGE_CLASS).toBe("fast");
    expect(e.HUBMIRROR_WATCH_NAMESPACES).toBe("mirrors,hub-mirror-operator");
    expect(e.HUBMIRROR_APPLY_NAMESPACES).toBe("mirrors");
    const runs = custom.filter((d) => d.kind === "RoleBinding" && d.metadata.name.endsWith("-runs"));
    expect(runs.map((d) => d.metadata.namespace).sort()).toEqual(["hub-mirror-operator", "mirrors"]);
  });

  it("runs restricted: non-root, RuntimeDefault seccomp, no capabilities, read-only root", () => {
    expect(pod?.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(container?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container?.resources?.requests).toBeDefined();
    expect(container?.resources?.limits?.memory).toBeDefined();
  });

  it("probes /healthz and /readyz and serves metrics on the health port", () => {
    expect(container?.ports).toEqual([{ name: "health", containerPort: 8081, protocol: "TCP" }]);
    expect(container?.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "health" });
    expect(container?.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "health" });
    const service = one(docs, "Service") as V1Service;
    expect(service.spec?.ports).toEqual([
      { name: "metrics", port: 8081, targetPort: "health", protocol: "TCP" },
    ]);
  });

  it("renders ServiceMonitor and PrometheusRule only when asked", () => {
    expect(docs.map((d) => d.kind)).not.toContain("ServiceMonitor");
    expect(docs.map((d) => d.kind)).not.toContain("PrometheusRule");
    const monitoring = render({
      set: { "serviceMonitor.enabled": "true", "prometheusRule.enabled": "true" },
    });
    const monitor = one(monitoring, "ServiceMonitor") as { spec: { endpoints: Record<string, unknown>[] } };
    expect(monitor.spec.endpoints).toEqual([
      expect.objectContaining({ port: "metrics", path: "/metrics", honorLabels: true }),
    ]);
    expect(one(monitoring, "PrometheusRule")).toBeDefined();
  });

  it("grants the OpenShift apply targets only with openshift.enabled", () => {
    const namespaces = (d: Manifest[]) =>
      d
        .filter((m) => m.kind === "Role")
        .map((m) => m.metadata.namespace)
        .sort();
    expect(namespaces(docs)).toEqual([
      "hub-mirror-operator",
      "openshift-config",
      "openshift-config-managed",
      "openshift-marketplace",
      "openshift-update-service",
    ]);
    expect(namespaces(render({ set: { "openshift.enabled": "false" } }))).toEqual(["hub-mirror-operator"]);
    const pullSecret = docs.find(
      (d) => d.kind === "Role" && d.metadata.namespace === "openshift-config",
    ) as V1Role;
    expect(pullSecret.rules).toEqual([
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["pull-secret"],
        verbs: ["get", "update", "patch"],
      },
    ]);
  });

  it("never lets the operator write Secrets outside openshift-config/pull-secret", () => {
    const roles = docs.filter((d) => d.kind === "Role" || d.kind === "ClusterRole") as (
      V1Role | V1ClusterRole
    )[];
    for (const role of roles) {
      for (const rule of role.rules ?? []) {
        if (!rule.resources?.includes("secrets") && !rule.resources?.includes("*")) continue;
        const writes = rule.verbs.filter((v) => !["get", "list", "watch"].includes(v));
        if (writes.length > 0) expect(rule.resourceNames, role.metadata?.name).toEqual(["pull-secret"]);
      }
    }
    const bindings = docs.filter((d) => d.kind === "RoleBinding" || d.kind === "ClusterRoleBinding");
    for (const b of bindings as unknown as V1RoleBinding[]) {
      expect(b.subjects).toEqual([
        { kind: "ServiceAccount", name: "hub-mirror-operator", namespace: "hub-mirror-operator" },
      ]);
    }
  });

  it.each([
    [{ bogus: "1" }, /Additional property bogus is not allowed/],
    [{ "watchNamespaces[0]": "Not_A_Namespace" }, /watchNamespaces.0: Does not match pattern/],
    [{ "image.digest": "latest" }, /image.digest: Does not match pattern/],
    [{ replicaCount: "0" }, /replicaCount: Must be greater than or equal to 1/],
    [{ "applyNamespaces[0]": "elsewhere" }, /applyNamespaces: "elsewhere" is not in watchNamespaces/],
    [{ "leaderElection.enabled": "false" }, /leaderElection.enabled=false needs replicaCount 1/],
  ])("refuses %o", (set, message) => {
    expect(renderError({ set })).toMatch(message);
  });
});
