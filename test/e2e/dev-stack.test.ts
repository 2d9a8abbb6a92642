/**
 * `npm start` (hack/dev-stack.ts) as a user runs it, in a subprocess:
 * - the local development stack with `--check`: its own control plane, offline upstream and
 *   target registry, the sample MirrorJob (a release range with its update graph, an operator
 *   package and three additional images) run to its end by the real oc-mirror, what the target
 *   holds and the objects applied printed, everything stopped and removed; once with the test
 *   pod runner (`--pod-runner`), once on a real node (the default where it can run);
 * - cluster mode against the shared test control plane: the CRD found, the manager started,
 *   and stopped cleanly by SIGTERM. A Lease held by someone else keeps it on standby, so it
 *   never reconciles the other tests' MirrorJobs.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CoordinationV1Api, V1MicroTime } from "@kubernetes/client-node";
import { describe, expect, inject, it } from "vitest";
import { ocMirrorBinary, ocMirrorPins, repoRoot } from "../../devkit/binaries.ts";
import { realNodeProblem } from "../../devkit/stack.ts";
import { adminKubeConfig, useNamespace, waitFor } from "../harness/kube.ts";

const DEV_STACK = join(repoRoot, "hack/dev-stack.ts");

interface Run {
  readonly output: () => string;
  readonly exited: Promise<number | string>;
  readonly pid: number;
}

/** Runs the dev stack under `setpriv --pdeathsig TERM`, so it stops (cleanly) if the test runner dies. */
function runDevStack(args: readonly string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn("setpriv", ["--pdeathsig", "TERM", "--", process.execPath, DEV_STACK, ...args], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => chunks.push(c));
  child.stderr.on("data", (c: Buffer) => chunks.push(c));
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      resolve(code ?? signal ?? "unknown");
    });
  });
  if (child.pid === undefined) throw new Error("could not start hack/dev-stack.ts");
  return { output: () => Buffer.concat(chunks).toString("utf8"), exited, pid: child.pid };
}

/** Waits for the exit at most `ms`; then SIGTERM, and SIGKILL 20 s later. */
async function exitWithin(run: Run, ms: number): Promise<number | string> {
  const outcome = await Promise.race([run.exited, sleep(ms, "timeout" as const)]);
  if (outcome !== "timeout") return outcome;
  process.kill(run.pid, "SIGTERM");
  if ((await Promise.race([run.exited, sleep(20_000, "timeout" as const)])) === "timeout") {
    process.kill(run.pid, "SIGKILL");
  }
  await run.exited;
  return `did not exit within ${ms} ms`;
}

/** Processes whose command line or environment mentions `dir`. */
function processesMentioning(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "latin1");
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1");
      if (cmdline.includes(dir) || environ.includes(dir))
        found.push(`${entry}: ${cmdline.replace(/\0/g, " ")}`);
    } catch {
      // gone
    }
  }
  return found;
}

/** The environment without any cluster configuration of the test runner's. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (extra.KUBECONFIG === undefined) delete env.KUBECONFIG;
  return env;
}

describe("npm start without a cluster: the local development stack", () => {
  it("mirrors a release, a catalog and images with the real oc-mirror, applies the objects, leaves nothing", async () => {
    // The default line: the operator's (HUBMIRROR_OC_MIRROR_LINE unset), built by hack/setup.sh.
    const env = cleanEnv({});
    delete env.HUBMIRROR_OC_MIRROR_LINE;
    const run = runDevStack(["--check", "--pod-runner"], env);
    const code = await exitWithin(run, 200_000);
    const output = run.output();
    expect(code, output).toBe(0);
    expect(output).toContain("the Jobs' pods run on the test pod runner, not a real node (--pod-runner)");

    // oc-mirror is the real binary, and the output says so (and who plays the kubelet).
    const pin = ocMirrorPins().pins.find((p) => p.line === "4.20");
    const version = /oc-mirror is real: the Jobs run oc-mirror (\S+) \(line 4\.20, /.exec(output)?.[1];
    expect(version, output).toBeDefined();
    const own = (process.env.HUBMIRROR_OC_MIRROR ?? "") !== "";
    if (!own) expect(version).toBe(pin?.version);
    const origin = own ? "HUBMIRROR_OC_MIRROR" : "built from source by hack/setup.sh";
    expect(output).toContain(`(line 4.20, ${origin}: ${ocMirrorBinary("4.20")})`);
    expect(output).toMatch(/This stack has no kubelet \(nor scheduler\): the test pod runner/);
    expect(output).not.toMatch(/simulated|fixture/i);

    // The upstream's content, the stand-in OpenShift APIs and the sample.
    expect(output).toMatch(/release channel stable-4\.19: 4\.19\.1, 4\.19\.2, 4\.19\.3/);
    expect(output).toContain("operator catalog redhat/redhat-operator-index:v4.19: packages demo-operator");
    expect(output).toMatch(/stand-in CRDs for ImageDigestMirrorSet, ImageTagMirrorSet, CatalogSource/);
    expect(output).toContain(
      "release channel stable-4.19 4.19.1 to 4.19.3 with graph: true, operator package demo-operator, 3 additional images",
    );
    expect(output).toMatch(/into 127\.0\.0\.1:\d+\/mirror, apply\.mode Auto/);

    // Status lines as the run goes, ending with the sample Ready and its objects applied.
    expect(output).toMatch(/hub-mirror-operator\/ocp-4-19 {2}Mirroring {2}Ready=False\(RunInProgress\)/);
    expect(output).toMatch(
      /hub-mirror-operator\/ocp-4-19 {2}Succeeded {2}Ready=True\(RunSucceeded\) {2}Mirrored=True\(RunSucceeded\) {2}Verified=True\(AllImagesPresent\) {2}Applied=True\(Applied\) {2}last run Succeeded: copied 20\/20/,
    );
    expect(output).toContain("the sample MirrorJob hub-mirror-operator/ocp-4-19 ended: Succeeded");
    // `kubectl get mirrorjobs -A` from the real kubectl.
    expect(output).toMatch(/NAMESPACE\s+NAME\s+PHASE\s+READY\s+REGISTRY/);
    expect(output).toMatch(/hub-mirror-operator\s+ocp-4-19\s+Succeeded\s+True\s+127\.0\.0\.1:\d+\/mirror/);

    // oc-mirror's own words: its version and Results (release, operator and additional images).
    expect(output).toContain(`⚙️  environment version: ${version ?? "?"}`);
    expect(output).toMatch(/^ {2}📌 images to copy 20$/m);
    expect(output).toMatch(/^ {3}✓ {2}10 \/ 10 release images mirrored successfully$/m);
    expect(output).toMatch(/^ {3}✓ {2}7 \/ 7 operator images mirrored successfully$/m);
    expect(output).toMatch(/^ {3}✓ {2}3 \/ 3 additional images mirrored successfully$/m);

    // Copied, not made up: every image of the mapping is in the target, with the source's digest.
    const row = (path: string, verdict: string) =>
      new RegExp(`^ {2}mirror/${path}\\s+sha256:[0-9a-f]{12} {2}${verdict}$`, "m");
    for (const v of ["4.19.1", "4.19.2", "4.19.3"]) {
      expect(output).toMatch(row(`openshift/release-images:${v}-x86_64`, "= source by tag"));
      expect(output).toMatch(row(`openshift/release:${v}-x86_64-cli`, "= source by digest"));
    }
    expect(output).toMatch(row("openshift/graph-image:latest", "= the upstream's graph data image"));
    expect(output).toMatch(row("redhat/redhat-operator-index:v4\\.19", "rebuilt by oc-mirror .*"));
    expect(output).toMatch(
      row("demo/demo-operator-bundle:sha256-[0-9a-f]{12}\\.\\.\\.", "= source by digest"),
    );
    expect(output).toMatch(row("demo/toolbox:1\\.0", "= source by tag"));
    expect(output).toMatch(row("demo/pause:sha256-[0-9a-f]{12}\\.\\.\\.", "= source by digest"));
    expect(output).toMatch(row("demo/busybox:stable", "= source by tag"));
    expect(output.match(/ = source by (digest|tag)$/gm)).toHaveLength(17);
    expect(output).toContain(
      "19 of 19 images present; 18 compared with the source: all the source's digests",
    );
    expect(output).not.toMatch(/MISSING|DIFFERS|NOT FOUND|NOT APPLIED/);

    // The objects oc-mirror generated, applied to the stand-in APIs and read back.
    expect(output).toMatch(/Applied=True: run [0-9a-f]+: 10 objects on the cluster:/);
    const object = (kind: string, namespace: string, name: string, content: string) =>
      new RegExp(`^ {2}${kind}\\s+${namespace}\\s+ocp-4-19-${name}-[0-9a-f]{8}\\s+${content}$`, "m");
    const host = "127\\.0\\.0\\.1:\\d+";
    expect(output).toMatch(
      object(
        "ImageDigestMirrorSet",
        "",
        "idms-release-0",
        `${host}/openshift-release-dev/ocp-release -> ${host}/mirror/openshift/release-images`,
      ),
    );
    expect(output).toMatch(
      object("ImageDigestMirrorSet", "", "idms-operator-0", `${host}/demo -> ${host}/mirror/demo`),
    );
    expect(output).toMatch(
      object("ImageDigestMirrorSet", "", "idms-generic-0", `${host}/demo -> ${host}/mirror/demo`),
    );
    expect(output).toMatch(
      object(
        "ImageTagMirrorSet",
        "",
        "itms-release-0",
        `${host}/openshift-release-dev/ocp-release -> ${host}/mirror/openshift/release-images`,
      ),
    );
    expect(output).toMatch(
      object("ImageTagMirrorSet", "", "itms-generic-0", `${host}/demo -> ${host}/mirror/demo`),
    );
    expect(output).toMatch(
      object(
        "CatalogSource",
        "openshift-marketplace",
        "cs-redhat-operator-index-v4-19",
        `image ${host}/mirror/redhat/redhat-operator-index:v4\\.19 \\(grpc\\)`,
      ),
    );
    expect(output).toMatch(
      object(
        "ClusterCatalog",
        "",
        "cc-redhat-operator-index-v4-19",
        `image ${host}/mirror/redhat/redhat-operator-index:v4\\.19`,
      ),
    );
    expect(output).toMatch(
      object(
        "UpdateService",
        "openshift-update-service",
        "update-service-oc-mirror",
        `releases ${host}/mirror/openshift/release-images`,
      ),
    );
    expect(output).toMatch(
      new RegExp(`^\\s+graphDataImage ${host}/mirror/openshift/graph-image:latest$`, "m"),
    );
    expect(output).toMatch(
      object(
        "ConfigMap",
        "openshift-config-managed",
        "mirrored-release-signatures",
        "3 release signatures: .*",
      ),
    );
    expect(output).toMatch(
      new RegExp(
        `^ {2}Secret\\s+openshift-config\\s+pull-secret\\s+auths ${host}: the credentials of Secret hub-mirror-operator/mirror-registry-pull \\(not shown\\)$`,
        "m",
      ),
    );
    // No credential in the printout: no auth entry, no base64 of "mirror:" or "reader:" (the users).
    expect(output).not.toMatch(/"auths?"\s*:/);
    expect(output).not.toMatch(/bWlycm9yO|cmVhZGVyO/);
    expect(output).toMatch(/export KUBECONFIG=\/\S+\/cluster\/admin\.kubeconfig/);

    const dir = /files in (\S*hubmirror-dev-\w+)/.exec(output)?.[1] ?? "";
    expect(dir).not.toBe("");
    expect(output).toContain(`stopped; removed ${dir}`);
    expect(existsSync(dir)).toBe(false);
    // The reaper exits right after the stack; nothing else may remain.
    const deadline = Date.now() + 10_000;
    while (processesMentioning(dir).length > 0 && Date.now() < deadline) await sleep(200);
    expect(processesMentioning(dir)).toEqual([]);
  }, 240_000);

  it("runs the sample's pods on a real node where it can run, and says so", async () => {
    // CI and this machine can run it (root, hack/setup.sh's packages and builds).
    expect(realNodeProblem()).toBeUndefined();
    const env = cleanEnv({});
    delete env.HUBMIRROR_OC_MIRROR_LINE;
    const run = runDevStack(["--check"], env);
    const code = await exitWithin(run, 400_000);
    const output = run.output();
    expect(code, output).toBe(0);
    expect(output).toContain(
      "the Jobs' pods run on a real node (kubelet and containerd; --pod-runner for the test pod runner)",
    );
    expect(output).not.toMatch(/test pod runner \(devkit\/pod-runner\.ts\)/);
    expect(output).toMatch(
      /The Jobs' pods run on the real node \(devkit\/node\.ts\): kube-scheduler places them/,
    );
    expect(output).toMatch(
      /oc-mirror in 10\.244\.0\.1:5000\/hubmirror\/oc-mirror:v4\.20\.\S+ \(that binary\)/,
    );
    expect(output).toMatch(/the others in 10\.244\.0\.1:5000\/hubmirror\/hub-mirror-operator:test-\w+ /);
    // The upstream and the target on the host's end of the node's host link, not 127.0.0.1.
    expect(output).toMatch(/into 10\.245\.\d+\.\d+:\d+\/mirror, apply\.mode Auto/);
    expect(output).toContain("the sample MirrorJob hub-mirror-operator/ocp-4-19 ended: Succeeded");
    // oc-mirror's output read from the kubelet (kubectl logs), not from a file of the runner's.
    expect(output).toMatch(/here kubectl -n hub-mirror-operator logs ocp-4-19-[0-9a-f]+-\w+ -c reporter\):/);
    expect(output).toMatch(/^ {3}✓ {2}10 \/ 10 release images mirrored successfully$/m);
    expect(output).toMatch(/^ {3}✓ {2}7 \/ 7 operator images mirrored successfully$/m);
    expect(output).toMatch(/^ {3}✓ {2}3 \/ 3 additional images mirrored successfully$/m);
    expect(output).toContain(
      "19 of 19 images present; 18 compared with the source: all the source's digests",
    );
    expect(output).not.toMatch(/MISSING|DIFFERS|NOT FOUND|NOT APPLIED/);
    expect(output).toMatch(/Applied=True: run [0-9a-f]+: 10 objects on the cluster:/);
    expect(output).not.toMatch(/"auths?"\s*:/);
    expect(output).not.toMatch(/bWlycm9yO|cmVhZGVyO/);

    const dir = /files in (\S*hubmirror-dev-\w+)/.exec(output)?.[1] ?? "";
    expect(dir).not.toBe("");
    expect(output).toContain(`stopped; removed ${dir}`);
    expect(existsSync(dir)).toBe(false);
    // The node's processes (containerd, kubelet, the containers) name the stack's folder.
    const deadline = Date.now() + 10_000;
    while (processesMentioning(dir).length > 0 && Date.now() < deadline) await sleep(200);
    expect(processesMentioning(dir)).toEqual([]);
  }, 480_000);
});

describe("npm start with a cluster configured: the manager", () => {
  const ns = useNamespace();

  it("checks the CRD, starts the manager (standing by for another Lease holder), stops on SIGTERM", async () => {
    const kc = adminKubeConfig();
    const lease = "dev-stack-test";
    const now = new V1MicroTime();
    await kc.makeApiClient(CoordinationV1Api).createNamespacedLease({
      namespace: ns.name,
      body: {
        metadata: { name: lease },
        spec: {
          holderIdentity: "someone-else",
          leaseDurationSeconds: 3600,
          acquireTime: now,
          renewTime: now,
        },
      },
    });
    const run = runDevStack(
      [],
      cleanEnv({
        KUBECONFIG: inject("kubeconfig"),
        HUBMIRROR_NAMESPACE: ns.name,
        HUBMIRROR_LEASE_NAME: lease,
        HUBMIRROR_HEALTH_PORT: "0",
      }),
    );
    try {
      await waitFor(
        "the manager to start",
        () => (run.output().includes('"manager started"') ? true : undefined),
        {
          timeoutMs: 60_000,
          intervalMs: 200,
        },
      );
    } catch (err) {
      process.kill(run.pid, "SIGKILL");
      throw new Error(`${(err as Error).message}\n${run.output()}`, { cause: err });
    }
    // A few seconds of running: it must stay up (and on standby).
    await sleep(3_000);
    expect(await Promise.race([run.exited, sleep(0, "running")])).toBe("running");
    process.kill(run.pid, "SIGTERM");
    const code = await exitWithin(run, 30_000);
    const output = run.output();
    expect(code, output).toBe(0);

    expect(output).toContain(`cluster mode (KUBECONFIG=${inject("kubeconfig")})`);
    expect(output).toContain("CRD mirrorjobs.hubmirror.dev is installed (serves v1alpha1)");
    expect(output).toContain(`leader election on: Lease ${ns.name}/${lease}`);
    expect(output).toMatch(/"msg":"manager started"/);
    expect(output).toMatch(/"msg":"shutting down"/);
    expect(output).toContain("manager stopped");
    expect(output).not.toMatch(/"level":50/); // no errors logged
    const held = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace: ns.name, name: lease });
    expect(held.spec?.holderIdentity).toBe("someone-else");
  }, 120_000);
});
