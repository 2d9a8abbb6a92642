import type { V1ObjectMeta } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { mirrorJobSpecSchema } from "../api/mirrorjob.ts";
import { ocMirrorArgs, pruneDeleteArgs, pruneGenerateArgs } from "./argv.ts";
import {
  buildPruneObjects,
  buildRunObjects,
  buildVolumeClaims,
  type JobSettings,
  type MirrorJobRef,
} from "./builders.ts";
import {
  eventName,
  isPruneObject,
  labelValue,
  mirrorJobNames,
  ownerName,
  pruneId,
  pruneStepId,
  runId,
  runNames,
  runLabels,
} from "./names.ts";
import { specFieldOfRefusal } from "./spec-fields.ts";

const settings: JobSettings = {
  defaultOcMirrorImage: "registry.example.com/oc-mirror:4.20",
  defaultOcMirrorLine: "4.20",
  operatorImage: "registry.example.com/hub-mirror-operator:1",
  heartbeatTimeoutSeconds: 120,
};

function mirrorJob(spec: Record<string, unknown> = {}): MirrorJobRef {
  return {
    name: "weekly",
    namespace: "mirror",
    uid: "uid-1",
    spec: mirrorJobSpecSchema.parse({
      imageSet: { inline: { mirror: { additionalImages: [{ name: "quay.io/a/b:1" }] } } },
      registry: { url: "reg.example.com:8443/mirror", pushSecretRef: { name: "push" } },
      ...spec,
    }),
  };
}

const run = {
  id: "abc123",
  trigger: "Created",
  inputsHash: "h",
  imageSet: { mirror: {} },
};

describe("ocMirrorArgs", () => {
  it("maps the spec to oc-mirror's flags, with no credentials", () => {
    const args = ocMirrorArgs(
      mirrorJob({ mirror: { parallelImages: 8, retryDelay: "30s", imageTimeout: "90m", logLevel: "debug" } })
        .spec,
    );
    expect(args).toEqual([
      "--v2",
      "--config",
      "/hubmirror/input/imageset-config.yaml",
      "--workspace",
      "file:///hubmirror/workspace",
      "--cache-dir",
      "/hubmirror/cache",
      "--authfile",
      "/hubmirror/auth/containers/auth.json",
      "--port",
      "55000",
      "--parallel-images",
      "8",
      "--parallel-layers",
      "5",
      "--retry-times",
      "5",
      "--retry-delay",
      "30s",
      "--image-timeout",
      "90m",
      "--log-level",
      "debug",
      "--dest-tls-verify=true",
      "--src-tls-verify=true",
      "docker://reg.example.com:8443/mirror",
    ]);
  });

  it("turns TLS verification off only when asked", () => {
    const args = ocMirrorArgs(
      mirrorJob({ registry: { url: "r.example.com", pushSecretRef: { name: "p" }, tlsVerify: false } }).spec,
    );
    expect(args).toContain("--dest-tls-verify=false");
    expect(args).toContain("--src-tls-verify=true");
  });
});

describe("names", () => {
  it("are deterministic per MirrorJob and trigger, and short enough", () => {
    expect(runId("uid-1", "inputs:x")).toBe(runId("uid-1", "inputs:x"));
    expect(runId("uid-1", "inputs:x")).not.toBe(runId("uid-2", "inputs:x"));
    const long = runNames("a".repeat(200), runId("u", "t"));
    expect(long.job.length).toBeLessThanOrEqual(52);
    expect(long.result.length).toBeLessThanOrEqual(63);
  });

  it("derive label values one way: names up to 63 characters as they are, longer ones cut and hashed", () => {
    const name63 = "a".repeat(63);
    const name64 = "a".repeat(64);
    const name253 = `${"b".repeat(60)}.${"c".repeat(192)}`;
    expect(labelValue(name63)).toBe(name63);
    for (const long of [name64, name253]) {
      const value = labelValue(long);
      expect(value.length).toBeLessThanOrEqual(63);
      expect(value).toMatch(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/);
      expect(runLabels(long)["hubmirror.dev/mirrorjob"]).toBe(value);
    }
    expect(labelValue(name64)).not.toBe(labelValue(`${name64}x`));
    // A cut that would end in a dot or dash does not: label values must end alphanumeric.
    expect(labelValue(`${"d".repeat(51)}.${"e".repeat(20)}`)).toMatch(/^d{51}-[0-9a-f]{10}$/);
  });

  it("keep derived object and Event names valid for 253-character MirrorJob names", () => {
    const name = `${"x".repeat(28)}.${"y".repeat(224)}`;
    const names = { ...runNames(name, "0123456789"), ...mirrorJobNames(name) };
    for (const derived of [...Object.values(names), eventName(name, "0011223344556677")]) {
      expect(derived.length).toBeLessThanOrEqual(63);
      expect(derived).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
    }
  });

  it("find an object's MirrorJob by its controller owner reference", () => {
    const owned = {
      metadata: {
        ownerReferences: [{ apiVersion: "v", kind: "MirrorJob", name: "n", uid: "u", controller: true }],
      },
    };
    expect(ownerName(owned, "MirrorJob")).toBe("n");
    expect(ownerName(owned, "Job")).toBeUndefined();
    expect(ownerName({ metadata: {} }, "MirrorJob")).toBeUndefined();
  });
});

describe("specFieldOfRefusal", () => {
  const names = mirrorJobNames("weekly");
  it.each([
    ["PersistentVolumeClaim", names.cache, ["spec.resources[storage]"], "spec.storage.cache.size"],
    [
      "PersistentVolumeClaim",
      names.workspace,
      ["spec.storageClassName"],
      "spec.storage.workspace.storageClassName",
    ],
    ["ConfigMap", "weekly-abc-input", ["data"], "spec.imageSet"],
    ["Job", "weekly-abc", ["spec.template.spec.containers[0].resources.requests"], "spec.mirror.resources"],
    ["Job", "weekly-abc", ["spec.template.spec.tolerations[0].operator"], "spec.mirror.tolerations"],
    ["Job", "weekly-abc", ["spec.template.spec.nodeSelector"], "spec.mirror.nodeSelector"],
    ["Job", "weekly-abc", [], "spec.mirror"],
    ["Role", "weekly-abc-reporter", ["rules"], undefined],
  ])("%s %s %j comes from %s", (kind, name, fields, field) => {
    expect(specFieldOfRefusal({ kind, name, fields }, "weekly")).toBe(field);
  });
});

describe("buildRunObjects", () => {
  const objects = buildRunObjects(
    mirrorJob({
      proxy: { httpsProxy: "http://proxy:3128", noProxy: ".corp" },
      registry: { url: "reg.example.com/m", pushSecretRef: { name: "push" }, caBundleRef: { name: "ca" } },
      mirror: { resources: { requests: { cpu: 1, memory: "2Gi" } }, activeDeadlineSeconds: 3600 },
    }),
    run,
    settings,
  );
  const pod = objects.job.spec?.template.spec;
  const [ocMirror, reporter] = pod?.containers ?? [];
  const [mergeAuth] = pod?.initContainers ?? [];

  it("passes the restricted Pod Security standard", () => {
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod?.initContainers).toHaveLength(1);
    for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
    }
    expect(pod?.volumes?.some((v) => v.hostPath !== undefined)).toBe(false);
  });

  it("creates no Secret: the pod merges the authfile from the mounted Secrets", () => {
    expect(Object.values(objects).map((o: { kind?: string }) => o.kind)).not.toContain("Secret");
    expect(pod?.volumes).toContainEqual({
      name: "push-secret",
      secret: {
        secretName: "push",
        items: [{ key: ".dockerconfigjson", path: ".dockerconfigjson" }],
        defaultMode: 0o444,
      },
    });
    expect(pod?.volumes?.find((v) => v.name === "source-secret")).toBeUndefined();
    expect(pod?.volumes).toContainEqual({ name: "auth", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } });
    expect(mergeAuth).toMatchObject({
      name: "merge-auth",
      image: settings.operatorImage,
      args: [
        "merge-auth",
        "--out=/hubmirror/auth/containers/auth.json",
        "/hubmirror/secrets/push/.dockerconfigjson",
      ],
    });
    expect(mergeAuth?.command).toBeUndefined();
    expect(mergeAuth?.volumeMounts).toEqual([
      { name: "auth", mountPath: "/hubmirror/auth" },
      { name: "push-secret", mountPath: "/hubmirror/secrets/push", readOnly: true },
    ]);
    // oc-mirror reads only the merged file, read-only, at the path --authfile names.
    expect(ocMirror?.volumeMounts).toContainEqual({
      name: "auth",
      mountPath: "/hubmirror/auth",
      readOnly: true,
    });
    expect(ocMirror?.args).toContain("/hubmirror/auth/containers/auth.json");
    for (const c of [ocMirror, reporter]) {
      expect(c?.volumeMounts?.map((m) => m.name)).not.toContain("push-secret");
    }
    expect(reporter?.volumeMounts?.map((m) => m.name)).not.toContain("auth");
  });

  it("merges the source pull Secret first, so the push Secret wins", () => {
    const withSource = buildRunObjects(
      mirrorJob({ source: { pullSecretRef: { name: "redhat-pull" } } }),
      run,
      settings,
    ).job.spec?.template.spec;
    expect(withSource?.volumes).toContainEqual({
      name: "source-secret",
      secret: {
        secretName: "redhat-pull",
        items: [{ key: ".dockerconfigjson", path: ".dockerconfigjson" }],
        defaultMode: 0o444,
      },
    });
    expect(withSource?.initContainers?.[0]?.args).toEqual([
      "merge-auth",
      "--out=/hubmirror/auth/containers/auth.json",
      "/hubmirror/secrets/source/.dockerconfigjson",
      "/hubmirror/secrets/push/.dockerconfigjson",
    ]);
  });

  it("never puts credentials into args or env", () => {
    const containers = [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])];
    expect(JSON.stringify(containers.map((c) => [c.args, c.env, c.command]))).not.toContain("auths");
  });

  it("gives oc-mirror a writable HOME and TMPDIR, the CA bundle and the proxy", () => {
    const env = Object.fromEntries((ocMirror?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      HOME: "/hubmirror/home",
      TMPDIR: "/hubmirror/tmp",
      HTTPS_PROXY: "http://proxy:3128",
    });
    expect(env.NO_PROXY).toBe(".corp,.svc,.svc.cluster.local,localhost,127.0.0.1");
    expect(env.SSL_CERT_DIR).toContain("/hubmirror/ca/registry");
    expect(ocMirror?.resources).toEqual({ requests: { cpu: "1", memory: "2Gi" } });
    expect(objects.job.spec?.activeDeadlineSeconds).toBe(3600);
    expect(objects.job.spec?.backoffLimit).toBe(0);
  });

  it("lets the reporter write only its own result ConfigMap", () => {
    expect(objects.role.rules).toEqual([
      {
        apiGroups: [""],
        resources: ["configmaps"],
        resourceNames: [objects.result.metadata?.name],
        verbs: ["get", "update", "patch"],
      },
    ]);
    expect(reporter?.args).toContain(`--result-configmap=${objects.result.metadata?.name ?? ""}`);
  });

  it("gives a token to the reporter alone", () => {
    expect(pod?.automountServiceAccountToken).toBe(false);
    const token = pod?.volumes?.find((v) => v.projected?.sources?.some((p) => p.serviceAccountToken));
    expect(token?.projected?.sources).toMatchObject([
      { serviceAccountToken: { path: "token" } },
      { configMap: { name: "kube-root-ca.crt" } },
      { downwardAPI: { items: [{ path: "namespace" }] } },
    ]);
    const mounting = [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])].filter((c) =>
      c.volumeMounts?.some((m) => m.name === token?.name),
    );
    expect(
      mounting.map((c) => [c.name, c.volumeMounts?.find((m) => m.name === token?.name)?.mountPath]),
    ).toEqual([["reporter", "/var/run/secrets/kubernetes.io/serviceaccount"]]);
  });

  it("pulls the update graph image into an emptyDir the oc-mirror container copies it from; the workspace is oc-mirror's alone", () => {
    const graphRun = {
      ...run,
      imageSet: { mirror: { platform: { graph: true, channels: [{ name: "stable-4.19" }] } } },
    };
    const withGraph = buildRunObjects(
      mirrorJob({
        source: {
          release: {
            updateGraphURL: "https://graph.example.com/api/upgrades_info/v1/graph",
            graphImage: "reg.example.com/openshift/graph-image:latest",
          },
        },
      }),
      graphRun,
      settings,
    ).job.spec?.template.spec;
    const pull = withGraph?.initContainers?.find((c) => c.name === "pull-graph-image");
    expect(pull?.args).toContain("--layout=/hubmirror/graph-image/layout");
    expect(pull?.volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly])).toEqual([
      ["graph-image", "/hubmirror/graph-image", undefined],
      ["auth", "/hubmirror/auth", true],
    ]);
    expect(withGraph?.volumes).toContainEqual({ name: "graph-image", emptyDir: {} });
    const ocMirrorOf = withGraph?.containers.find((c) => c.name === "oc-mirror");
    expect(ocMirrorOf?.volumeMounts).toContainEqual({
      name: "graph-image",
      mountPath: "/hubmirror/graph-image",
      readOnly: true,
    });
    // Only the oc-mirror container writes the workspace; its wrapper copies the layout there.
    const writers = [...(withGraph?.initContainers ?? []), ...(withGraph?.containers ?? [])].filter((c) =>
      c.volumeMounts?.some((m) => m.name === "workspace" && m.readOnly !== true),
    );
    expect(writers.map((c) => c.name)).toEqual(["oc-mirror"]);
    expect(ocMirrorOf?.command?.[2]).toContain(
      'cp -R "/hubmirror/graph-image/layout" "/hubmirror/workspace/working-dir/graph-preparation"',
    );
    // Without the init container, no such volume.
    expect(pod?.volumes?.find((v) => v.name === "graph-image")).toBeUndefined();
    expect(ocMirror?.volumeMounts?.find((m) => m.name === "graph-image")).toBeUndefined();
  });

  it("owns everything through the MirrorJob", () => {
    for (const o of Object.values(objects) as { metadata?: V1ObjectMeta }[]) {
      expect(o.metadata?.ownerReferences).toEqual([
        {
          apiVersion: "hubmirror.dev/v1alpha1",
          kind: "MirrorJob",
          name: "weekly",
          uid: "uid-1",
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(o.metadata?.labels?.["hubmirror.dev/run"]).toBe("abc123");
    }
  });
});

describe("buildVolumeClaims", () => {
  it("creates cache and workspace claims unless an existing claim is named", () => {
    const claims = buildVolumeClaims(mirrorJob({ storage: { workspace: { existingClaim: "mine" } } }), {
      ...settings,
      storageClassName: "fast",
    });
    expect(
      claims.map((c) => [c.metadata?.name, c.spec?.resources?.requests?.storage, c.spec?.storageClassName]),
    ).toEqual([["weekly-cache", "100Gi", "fast"]]);
  });

  it("owns a volume (deleted with the MirrorJob) only with deletionPolicy Delete; the cache is retained by default", () => {
    const owners = (spec: Record<string, unknown>): Record<string, string[]> =>
      Object.fromEntries(
        buildVolumeClaims(mirrorJob(spec), settings).map((c): [string, string[]] => [
          c.metadata?.name ?? "",
          (c.metadata?.ownerReferences ?? []).map((r) => r.name),
        ]),
      );
    expect(owners({})).toEqual({ "weekly-cache": [], "weekly-workspace": ["weekly"] });
    expect(
      owners({ storage: { cache: { deletionPolicy: "Delete" }, workspace: { deletionPolicy: "Retain" } } }),
    ).toEqual({ "weekly-cache": ["weekly"], "weekly-workspace": [] });
  });
});

describe("prune steps (oc-mirror delete)", () => {
  const mj = mirrorJob({
    registry: { url: "reg.example.com/m", pushSecretRef: { name: "push" }, caBundleRef: { name: "ca" } },
    source: { pullSecretRef: { name: "redhat-pull" } },
    mirror: { parallelImages: 2, retryDelay: "5s", logLevel: "error" },
  });
  const id = pruneId("uid-1", "run-a", "run-b");
  const generate = buildPruneObjects(
    mj,
    {
      id: pruneStepId(id, "generate", 1),
      pruneId: id,
      step: "generate",
      input: "kind: DeleteImageSetConfiguration\n",
    },
    settings,
  );
  const del = buildPruneObjects(
    mj,
    { id: pruneStepId(id, "delete", 2), pruneId: id, step: "delete", input: "kind: DeleteImageList\n" },
    settings,
  );
  const run = buildRunObjects(
    mj,
    { id: "abc123", trigger: "Created", inputsHash: "h", imageSet: { mirror: {} } },
    settings,
  );

  it("run oc-mirror's two delete steps with the run's flags, credentials by file only", () => {
    expect(pruneGenerateArgs(mj.spec, "s1")).toEqual([
      "--v2",
      "delete",
      "--generate",
      "--config",
      "/hubmirror/input/delete-imageset-config.yaml",
      "--workspace",
      "file:///hubmirror/workspace",
      "--delete-id",
      "s1",
      "--cache-dir",
      "/hubmirror/cache",
      "--authfile",
      "/hubmirror/auth/containers/auth.json",
      "--port",
      "55000",
      "--log-level",
      "info",
      "--dest-tls-verify=true",
      "--src-tls-verify=true",
      "docker://reg.example.com/m",
    ]);
    const args = pruneDeleteArgs(mj.spec);
    expect(args.slice(0, 10)).toEqual([
      "--v2",
      "delete",
      "--delete-yaml-file",
      "/hubmirror/input/delete-images.yaml",
      "--parallel-images",
      "2",
      "--retry-times",
      "5",
      "--retry-delay",
      "5s",
    ]);
    // No --workspace (oc-mirror would write its logs under ./file:/...) and no cache deletion.
    expect(args).not.toContain("--workspace");
    expect(args).not.toContain("--force-cache-delete");
    expect(args.at(-1)).toBe("docker://reg.example.com/m");
    expect(del.job.spec?.template.spec?.containers[0]?.args).toEqual(args);
  });

  it("have the run's pod: restricted, the same identity, volumes and authfile, a token for the reporter alone", () => {
    const runPod = run.job.spec?.template.spec;
    for (const step of [generate, del]) {
      const pod = step.job.spec?.template.spec;
      expect(pod?.serviceAccountName).toBe(runPod?.serviceAccountName);
      expect(pod?.automountServiceAccountToken).toBe(false);
      expect(pod?.securityContext).toEqual(runPod?.securityContext);
      expect(pod?.volumes?.map((v) => v.name)).toEqual(runPod?.volumes?.map((v) => v.name));
      expect(pod?.initContainers).toEqual(runPod?.initContainers);
      const [ocMirror, reporter] = pod?.containers ?? [];
      const [runOcMirror, runReporter] = runPod?.containers ?? [];
      expect(ocMirror?.securityContext).toEqual(runOcMirror?.securityContext);
      expect(ocMirror?.volumeMounts).toEqual(runOcMirror?.volumeMounts);
      expect(reporter?.volumeMounts).toEqual(runReporter?.volumeMounts);
      expect(ocMirror?.env?.filter((e) => e.name !== "HUBMIRROR_PRUNE_STEP")).toEqual(runOcMirror?.env);
      expect(ocMirror?.command?.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
      expect(JSON.stringify([ocMirror?.args, ocMirror?.env, reporter?.args])).not.toContain("auths");
      // A failed step is planned again by the operator, not rerun by the Job.
      expect(step.job.spec?.backoffLimit).toBe(0);
    }
    expect(generate.job.spec?.template.spec?.containers[1]?.args).toEqual([
      "report-prune",
      "--step=generate",
      `--step-id=${pruneStepId(id, "generate", 1)}`,
      "--state=/hubmirror/workspace/.hubmirror",
      "--workspace=/hubmirror/workspace",
      "--namespace=mirror",
      `--result-configmap=${runNames("weekly", pruneStepId(id, "generate", 1)).result}`,
      "--heartbeat-timeout=120",
    ]);
  });

  it("label every object as the prune's, apart from runs, owned by the MirrorJob; the reporter writes only its result", () => {
    for (const step of [generate, del])
      for (const o of Object.values(step) as { metadata?: V1ObjectMeta }[]) {
        expect(o.metadata?.labels).toMatchObject({
          "hubmirror.dev/prune": id,
          "app.kubernetes.io/component": "prune",
          "app.kubernetes.io/managed-by": "hub-mirror-operator",
        });
        expect(isPruneObject(o)).toBe(true);
        expect(o.metadata?.ownerReferences?.[0]?.uid).toBe("uid-1");
      }
    expect(isPruneObject(run.job)).toBe(false);
    expect(generate.job.spec?.template.metadata?.labels?.["hubmirror.dev/prune"]).toBe(id);
    expect(generate.input).toMatchObject({
      immutable: true,
      data: { "delete-imageset-config.yaml": "kind: DeleteImageSetConfiguration\n" },
    });
    expect(del.input.data).toEqual({ "delete-images.yaml": "kind: DeleteImageList\n" });
    expect(del.role.rules).toEqual([
      {
        apiGroups: [""],
        resources: ["configmaps"],
        resourceNames: [del.result.metadata?.name],
        verbs: ["get", "update", "patch"],
      },
    ]);
    expect(pruneStepId(id, "delete", 1)).not.toBe(pruneStepId(id, "delete", 2));
  });
});
