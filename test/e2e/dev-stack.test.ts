/**
 * `npm start` (hack/dev-stack.ts) as a user runs it, in a subprocess:
 * - the local development stack with `--check`: its own control plane and registries, the
 *   sample MirrorJob run to its end, the summary printed, everything stopped and removed;
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
import { repoRoot } from "../harness/binaries.ts";
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
  it("runs the sample MirrorJob to Succeeded with --check, says oc-mirror is simulated, leaves nothing", async () => {
    const run = runDevStack(
      ["--check"],
      cleanEnv({ HUBMIRROR_DEV_OC_MIRROR: "fixture", HUBMIRROR_DEV_FIXTURE_DELAY_MS: "500" }),
    );
    const code = await exitWithin(run, 200_000);
    const output = run.output();
    expect(code, output).toBe(0);

    expect(output).toMatch(/oc-mirror is simulated/);
    expect(output).toMatch(/Go module proxy refuses/);
    // Status lines as the run goes, ending with the sample Ready.
    expect(output).toMatch(/hub-mirror-operator\/tools {2}Mirroring {2}Ready=False\(RunInProgress\)/);
    expect(output).toMatch(
      /hub-mirror-operator\/tools {2}Succeeded {2}Ready=True\(RunSucceeded\) {2}Mirrored=True\(RunSucceeded\) {2}Verified=True\(AllImagesPresent\) {2}last run Succeeded: copied 2\/2/,
    );
    expect(output).toContain("the sample MirrorJob hub-mirror-operator/tools ended: Succeeded");
    // `kubectl get mirrorjobs -A` from the real kubectl.
    expect(output).toMatch(/NAMESPACE\s+NAME\s+PHASE\s+READY\s+REGISTRY/);
    expect(output).toMatch(/hub-mirror-operator\s+tools\s+Succeeded\s+True\s+127\.0\.0\.1:\d+\/mirror/);
    // Copied, not made up: the target holds the source's digests.
    expect(output.match(/ = source$/gm)).toHaveLength(2);
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
