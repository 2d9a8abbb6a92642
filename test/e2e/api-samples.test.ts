/**
 * The samples in config/samples/ are accepted by the real API server as kubectl sends
 * them, and `kubectl explain` documents the API from the CRD's descriptions.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { kubectlBinary, repoRoot } from "../../devkit/binaries.ts";
import { useNamespace } from "../harness/kube.ts";

function kubectl(args: readonly string[], input?: string): string {
  return execFileSync(kubectlBinary(), ["--kubeconfig", inject("kubeconfig"), ...args], {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

const samplesDir = join(repoRoot, "config", "samples");
const samples = readdirSync(samplesDir).filter((f) => f.endsWith(".yaml"));

describe("samples", () => {
  const ns = useNamespace();

  it.each(samples)("kubectl apply accepts %s", (file) => {
    // Samples name the operator's namespace; each test applies them into its own.
    const manifest = readFileSync(join(samplesDir, file), "utf8").replaceAll(
      "namespace: hub-mirror-operator",
      `namespace: ${ns.name}`,
    );
    const out = kubectl(["apply", "-f", "-"], manifest);
    expect(out).toMatch(/mirrorjob\.hubmirror\.dev\/\S+ created/);
    const listed = kubectl(["get", "mirrorjobs", "-n", ns.name]);
    expect(listed).toMatch(/^NAME\s+PHASE\s+READY\s+REGISTRY\s+ROLLOUT\s+LAST SUCCESS\s+AGE/);
    expect(listed).toContain("registry.example.com:8443/mirror");
  });
});

describe("kubectl explain", () => {
  it("prints the descriptions of spec.registry", () => {
    const out = kubectl(["explain", "mirrorjob.spec.registry"]);
    expect(out).toContain("The private registry the images are mirrored into.");
    expect(out).toMatch(
      /url\s+<string> -required-\s+Target registry and optional path, host\[:port\]\[\/path\]/,
    );
    expect(out).toMatch(/pushSecretRef\s+<Object> -required-/);
  });

  it("knows the short name and the category", () => {
    expect(kubectl(["get", "mj", "-A"])).toBeDefined();
    expect(kubectl(["api-resources", "--api-group=hubmirror.dev"])).toMatch(
      /mirrorjobs\s+mj\s+hubmirror.dev\/v1alpha1\s+true\s+MirrorJob/,
    );
  });
});
