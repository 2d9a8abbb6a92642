/**
 * The Helm chart against the real API server: `helm lint`, `helm template` for the
 * control plane's version accepted by `kubectl apply --dry-run=server` (with and without
 * OpenShift), and the chart's RBAC applied for real and checked as the chart's
 * ServiceAccount (impersonated): what the operator may do, and what it may not.
 * The operator itself is not started here.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { AuthorizationV1Api } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { CHART_DIR, RBAC_DIR, renderChart, type RenderOptions } from "../../src/cli/generate-rbac.ts";
import { helmBinary, kubectlBinary, repoRoot } from "../../devkit/binaries.ts";
import { adminKubeConfig, useNamespace } from "../harness/kube.ts";
import { installOpenShiftStandIns } from "../../devkit/openshift.ts";

const RBAC_KINDS = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

function kubectl(
  args: readonly string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(kubectlBinary(), ["--kubeconfig", inject("kubeconfig"), ...args], {
    encoding: "utf8",
    input,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function kubectlOk(args: readonly string[], input?: string): string {
  const result = kubectl(args, input);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout + result.stderr;
}

let kubeVersion = "";

// The namespaces OpenShift has and the chart's openshift.enabled Roles live in (shared with
// other test files: created once, by whoever comes first).
beforeAll(() => installOpenShiftStandIns(adminKubeConfig()));

beforeAll(() => {
  const version = JSON.parse(kubectlOk(["version", "-o", "json"])) as {
    serverVersion: { gitVersion: string };
  };
  kubeVersion = version.serverVersion.gitVersion;
});

describe("helm", () => {
  it("lints the chart", () => {
    const out = execFileSync(helmBinary(), ["lint", "--strict", CHART_DIR], {
      cwd: repoRoot,
      encoding: "utf8",
    });
    expect(out).toContain("1 chart(s) linted, 0 chart(s) failed");
  });
});

describe("helm template | kubectl apply --dry-run=server", () => {
  const ns = useNamespace({
    // The Deployment's pods must pass the restricted Pod Security standard.
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
  });

  it.each([
    ["on OpenShift (openshift.enabled=true)", "true"],
    ["on vanilla Kubernetes (openshift.enabled=false)", "false"],
  ])("is accepted %s", (_title, openshift) => {
    const rendered = renderChart(helmBinary(), {
      release: "hub-mirror-operator",
      namespace: ns.name,
      kubeVersion,
      set: { "openshift.enabled": openshift },
    });
    if (openshift === "false") expect(rendered).not.toMatch(/namespace: openshift-/);
    const out = kubectlOk(["apply", "--dry-run=server", "-f", "-"], rendered);
    for (const kind of [
      "serviceaccount",
      "clusterrole.rbac.authorization.k8s.io",
      "clusterrolebinding.rbac.authorization.k8s.io",
      "role.rbac.authorization.k8s.io",
      "rolebinding.rbac.authorization.k8s.io",
      "service",
      "deployment.apps",
      "poddisruptionbudget.policy",
    ]) {
      expect(out).toMatch(
        new RegExp(`^${kind.replaceAll(".", "\\.")}/\\S+ (created|configured) \\(server dry run\\)`, "m"),
      );
    }
    expect(out).not.toMatch(/Warning|PodSecurity/);
  });

  it("accepts config/rbac/ (rendered from the chart for installs without Helm)", () => {
    const manifests = readdirSync(join(repoRoot, RBAC_DIR))
      .map((f) => readFileSync(join(repoRoot, RBAC_DIR, f), "utf8"))
      .join("---\n")
      .replaceAll("namespace: hub-mirror-operator", `namespace: ${ns.name}`);
    const out = kubectlOk(["apply", "--dry-run=server", "-f", "-"], manifests);
    expect(out).toMatch(
      /rolebinding\.rbac\.authorization\.k8s\.io\/hub-mirror-operator-pull-secret created \(server dry run\)/,
    );
    expect(out).not.toMatch(/Warning/);
  });

  it("accepts the chart's CRD (helm template --include-crds)", () => {
    const rendered = execFileSync(
      helmBinary(),
      [
        "template",
        "hub-mirror-operator",
        CHART_DIR,
        "--namespace",
        ns.name,
        "--include-crds",
        "--kube-version",
        kubeVersion,
      ],
      { cwd: repoRoot, encoding: "utf8" },
    );
    const out = kubectlOk(
      ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"],
      rendered,
    );
    expect(out).toMatch(
      /customresourcedefinition\.apiextensions\.k8s\.io\/mirrorjobs\.hubmirror\.dev serverside-applied/,
    );
  });
});

describe("the chart's RBAC, as the operator's ServiceAccount", () => {
  const release = useNamespace(); // the release namespace: also watched and allowed to apply
  const watched = useNamespace(); // a second watched namespace
  const unwatched = useNamespace();
  let name = "";
  let rendered = "";
  let as = "";

  const install = (options: RenderOptions) => {
    name = `hmo-${randomBytes(3).toString("hex")}`;
    as = `--as=system:serviceaccount:${release.name}:${name}`;
    const docs = parseAllDocuments(
      renderChart(helmBinary(), {
        release: name,
        namespace: release.name,
        kubeVersion,
        ...options,
        set: {
          fullnameOverride: name,
          "watchNamespaces[0]": release.name,
          "watchNamespaces[1]": watched.name,
          ...options.set,
        },
      }),
    )
      .map((d) => d.toJS() as { kind?: string } | null)
      .filter((d) => d !== null);
    // The identity and its rights only: the operator is not started here.
    const rbac = docs.filter((d) => RBAC_KINDS.includes(d.kind ?? ""));
    rendered = rbac.map((d) => stringify(d)).join("---\n");
    kubectlOk(["apply", "-f", "-"], rendered);
  };
  afterEach(() => {
    // Namespaced objects go with the test namespaces; these are cluster-scoped or in openshift-*.
    if (rendered !== "") kubectlOk(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], rendered);
    rendered = "";
  });

  /**
   * Whether the ServiceAccount may: a SubjectAccessReview for its user and groups (what the
   * API server's authorizer decides for its token). Types the test API server does not
   * serve (OpenShift's) are checked just the same; `kubectl auth can-i` would need discovery.
   * Check: [verb, "resource[.group][/subresource]", namespace?, name?].
   */
  type Check = [string, string, string?, string?];
  const authorization = adminKubeConfig().makeApiClient(AuthorizationV1Api);
  const can = async ([verb, what, namespace, objectName]: Check): Promise<boolean> => {
    const [resourceAndGroup = "", subresource] = what.split("/");
    const dot = resourceAndGroup.indexOf(".");
    const review = await authorization.createSubjectAccessReview({
      body: {
        spec: {
          user: `system:serviceaccount:${release.name}:${name}`,
          groups: [
            "system:serviceaccounts",
            `system:serviceaccounts:${release.name}`,
            "system:authenticated",
          ],
          resourceAttributes: {
            verb,
            resource: dot < 0 ? resourceAndGroup : resourceAndGroup.slice(0, dot),
            group: dot < 0 ? "" : resourceAndGroup.slice(dot + 1),
            ...(subresource !== undefined && { subresource }),
            ...(namespace !== undefined && { namespace }),
            ...(objectName !== undefined && { name: objectName }),
          },
        },
      },
    });
    return review.status?.allowed === true;
  };
  const failing = async (checks: Check[], expected: boolean) => {
    const results = await Promise.all(checks.map(can));
    return checks.filter((_, i) => results[i] !== expected).map((c) => c.filter(Boolean).join(" "));
  };
  const allowed = async (checks: Check[]) => {
    expect(await failing(checks, true), "denied, but the operator needs it").toEqual([]);
  };
  const denied = async (checks: Check[]) => {
    expect(await failing(checks, false), "allowed, but the operator must not").toEqual([]);
  };

  it("allows what the operator does, in watched namespaces and on its apply targets", async () => {
    install({ set: { "applyNamespaces[0]": release.name } });
    const w = watched.name;
    await allowed([
      // cluster-wide
      ["list", "mirrorjobs.hubmirror.dev"],
      ["watch", "mirrorjobs.hubmirror.dev"],
      ["get", "mirrorjobs.hubmirror.dev", unwatched.name],
      ["update", "mirrorjobs.hubmirror.dev/status", w],
      ["patch", "mirrorjobs.hubmirror.dev/status", w],
      ["update", "mirrorjobs.hubmirror.dev/finalizers", w],
      ["create", "events.events.k8s.io", w],
      ["patch", "events.events.k8s.io", release.name],
      // the Lease, in the release namespace
      ["get", "leases.coordination.k8s.io", release.name],
      ["create", "leases.coordination.k8s.io", release.name],
      ["update", "leases.coordination.k8s.io", release.name],
      // per watched namespace: read Secrets, run Jobs
      ...[release.name, w].flatMap((n): [string, string, string][] => [
        ["get", "secrets", n],
        ["list", "secrets", n],
        ["watch", "secrets", n],
        ["create", "configmaps", n],
        ["delete", "configmaps", n],
        ["create", "serviceaccounts", n],
        ["create", "persistentvolumeclaims", n],
        ["patch", "persistentvolumeclaims", n],
        ["create", "jobs.batch", n],
        ["delete", "jobs.batch", n],
        ["watch", "pods", n],
        ["create", "roles.rbac.authorization.k8s.io", n],
        ["create", "rolebindings.rbac.authorization.k8s.io", n],
        ["delete", "rolebindings.rbac.authorization.k8s.io", n],
      ]),
      // cluster-scoped apply targets
      ["create", "imagedigestmirrorsets.config.openshift.io"],
      ["patch", "imagetagmirrorsets.config.openshift.io"],
      ["delete", "clustercatalogs.olm.operatorframework.io"],
      // how the applied mirror sets roll out
      ["list", "machineconfigpools.machineconfiguration.openshift.io"],
      // namespaced apply targets (openshift.enabled)
      ["create", "catalogsources.operators.coreos.com", "openshift-marketplace"],
      ["patch", "updateservices.updateservice.operator.openshift.io", "openshift-update-service"],
      ["create", "configmaps", "openshift-config-managed"],
      ["get", "secrets", "openshift-config", "pull-secret"],
      ["update", "secrets", "openshift-config", "pull-secret"],
      ["patch", "secrets", "openshift-config", "pull-secret"],
    ]);
  });

  it("denies everything else", async () => {
    install({ set: { "applyNamespaces[0]": release.name } });
    const w = watched.name;
    await denied([
      // Secrets: never created, never read outside watched namespaces, only pull-secret written
      ["get", "secrets", unwatched.name],
      ["list", "secrets", unwatched.name],
      ["list", "secrets"],
      ...[release.name, w, unwatched.name, "openshift-config"].map((n): [string, string, string] => [
        "create",
        "secrets",
        n,
      ]),
      ["update", "secrets", w],
      ["delete", "secrets", w],
      ["update", "secrets", "openshift-config", "other"],
      ["get", "secrets", "openshift-config", "other"],
      ["list", "secrets", "openshift-config"],
      ["watch", "secrets", "openshift-config"],
      ["delete", "secrets", "openshift-config", "pull-secret"],
      // run objects only in watched namespaces
      ["create", "configmaps", unwatched.name],
      ["create", "jobs.batch", unwatched.name],
      ["create", "roles.rbac.authorization.k8s.io", unwatched.name],
      ["create", "pods", w],
      ["delete", "persistentvolumeclaims", w],
      ["update", "jobs.batch", w],
      // MirrorJobs are the users' to write
      ["create", "mirrorjobs.hubmirror.dev", w],
      ["update", "mirrorjobs.hubmirror.dev", w],
      ["delete", "mirrorjobs.hubmirror.dev", w],
      // the Lease lives in the release namespace only
      ["create", "leases.coordination.k8s.io", w],
      // nothing cluster-wide it does not need
      ["create", "clusterroles.rbac.authorization.k8s.io"],
      ["create", "clusterrolebindings.rbac.authorization.k8s.io"],
      ["delete", "namespaces"],
      ["create", "namespaces"],
      ["list", "nodes"],
      ["create", "customresourcedefinitions.apiextensions.k8s.io"],
      ["update", "machineconfigpools.machineconfiguration.openshift.io"],
      ["impersonate", "serviceaccounts", w],
      ["escalate", "roles.rbac.authorization.k8s.io", w],
      ["bind", "clusterroles.rbac.authorization.k8s.io"],
      ["create", "catalogsources.operators.coreos.com", w],
      ["create", "configmaps", "openshift-config"],
    ]);
  });

  it("reads Secrets and writes the pull secret for real, and cannot create a Secret", () => {
    install({ set: { "applyNamespaces[0]": release.name } });
    kubectlOk(["create", "secret", "generic", "source", "-n", watched.name, "--from-literal=a=b"]);
    kubectlOk(["create", "secret", "generic", "other", "-n", "openshift-config", "--from-literal=a=b"]);
    const pullSecret = kubectl(["get", "secret", "pull-secret", "-n", "openshift-config"]);
    if (pullSecret.status !== 0) {
      kubectlOk([
        "create",
        "secret",
        "generic",
        "pull-secret",
        "-n",
        "openshift-config",
        "--from-literal=a=b",
      ]);
    }
    try {
      expect(kubectlOk(["get", "secrets", "-n", watched.name, as, "-o", "name"])).toContain("secret/source");
      expect(kubectl(["get", "secrets", "-n", unwatched.name, as]).stderr).toMatch(/forbidden/i);
      expect(
        kubectl(["create", "secret", "generic", "x", "-n", watched.name, "--from-literal=a=b", as]).stderr,
      ).toMatch(/forbidden/i);
      expect(
        kubectlOk([
          "label",
          "secret",
          "pull-secret",
          "-n",
          "openshift-config",
          "hubmirror.dev/test=1",
          "--overwrite",
          as,
        ]),
      ).toMatch(/labeled/);
      expect(
        kubectl(["label", "secret", "other", "-n", "openshift-config", "hubmirror.dev/test=1", as]).stderr,
      ).toMatch(/forbidden/i);
    } finally {
      kubectlOk(["delete", "secret", "other", "-n", "openshift-config", "--ignore-not-found"]);
    }
  });

  it("may create the per-run Role on one result ConfigMap and bind it (RBAC's escalation check)", () => {
    install({});
    const role = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "run-1", namespace: watched.name },
      rules: [
        {
          apiGroups: [""],
          resources: ["configmaps"],
          resourceNames: ["run-1-result"],
          verbs: ["get", "update", "patch"],
        },
      ],
    };
    const binding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "run-1", namespace: watched.name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "run-1" },
      subjects: [{ kind: "ServiceAccount", name: "mirror", namespace: watched.name }],
    };
    const out = kubectlOk(
      ["create", "-f", "-", as],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: [role, binding] }),
    );
    expect(out).toMatch(/role.rbac.authorization.k8s.io\/run-1 created/);
    expect(out).toMatch(/rolebinding.rbac.authorization.k8s.io\/run-1 created/);
    // A Role granting what the operator lacks is refused.
    const wider = {
      ...role,
      metadata: { name: "run-2", namespace: watched.name },
      rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["create"] }],
    };
    expect(kubectl(["create", "-f", "-", as], JSON.stringify(wider)).stderr).toMatch(
      /forbidden.*escalat|attempting to grant RBAC permissions not currently held/i,
    );
  });

  it("without openshift.enabled, cannot touch the OpenShift namespaces", async () => {
    install({ set: { "openshift.enabled": "false", "applyNamespaces[0]": release.name } });
    await denied([
      ["update", "secrets", "openshift-config", "pull-secret"],
      ["create", "catalogsources.operators.coreos.com", "openshift-marketplace"],
      ["create", "updateservices.updateservice.operator.openshift.io", "openshift-update-service"],
      ["create", "configmaps", "openshift-config-managed"],
    ]);
    await allowed([["create", "imagedigestmirrorsets.config.openshift.io"]]);
  });
});
