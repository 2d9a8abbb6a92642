/**
 * `npm start` without a cluster (or with `--local` or `--check`): the local development stack
 * (devkit/stack.ts) and its demo (demo.ts), then how to use the stack, until Ctrl-C. `--check`
 * stops after the sample's run and exits 0 only if it succeeded, every image is in the target
 * and the objects are applied.
 *
 * Nothing outlives the stack: besides `stop()` on Ctrl-C or an error, a reaper process
 * (devkit/stack-reaper.ts) kills the pods' processes and removes the stack's folder
 * (`$TMPDIR/hubmirror-dev-*`) should this process be killed outright.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromEnv } from "../../src/cli/manager.ts";
import { kubectlBinary } from "../../devkit/binaries.ts";
import type { TestRegistry } from "../../devkit/registry.ts";
import { LocalStack, realNodeProblem, type RunningStack } from "../../devkit/stack.ts";
import { startReaper } from "../../devkit/stack-reaper.ts";
import { NAMESPACE, say, START_TIME } from "./common.ts";
import { runSample, type SampleRun } from "./demo.ts";

export async function localMode(why: string, check: boolean, podRunner: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "hubmirror-dev-"));
  startReaper(dir);
  const nodeProblem = podRunner ? "--pod-runner" : realNodeProblem();
  const pods = nodeProblem === undefined ? "node" : "runner";
  const stack = new LocalStack({ dir, namespace: NAMESPACE, say, startTime: START_TIME, pods });
  let stopWatch: (() => void) | undefined;
  let stopping = false;
  const shutdown = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      say("stopping the development stack ...");
      stopWatch?.();
      await stack.stop();
      say("stopped; removed " + dir);
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));

  try {
    const config = configFromEnv({
      HUBMIRROR_NAMESPACE: NAMESPACE,
      POD_NAME: "dev-stack",
      HUBMIRROR_LEADER_ELECTION: "false",
      HUBMIRROR_HEALTH_PORT: "0",
      HUBMIRROR_OPERATOR_IMAGE: "localhost/hub-mirror-operator:dev",
      HUBMIRROR_HEARTBEAT_TIMEOUT_SECONDS: "30",
      ...process.env,
    });
    say(`local development stack (${why}); files in ${dir}`);
    say(
      nodeProblem === undefined
        ? "the Jobs' pods run on a real node (kubelet and containerd; --pod-runner for the test pod runner)"
        : `the Jobs' pods run on the test pod runner, not a real node (${nodeProblem})`,
    );
    const running = await stack.start(config);
    const sample = await runSample(running, dir, (stop) => (stopWatch = stop));
    say(howToUse(running, sample, dir));
    if (check) await shutdown(sample.ok ? 0 : 1);
    say("press Ctrl-C to stop (everything above is removed)");
    setInterval(() => undefined, 1 << 30);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await shutdown(1);
  }
}

/** How to use the stack from another terminal: its kubeconfig, registries, logs. */
function howToUse(stack: RunningStack, sample: SampleRun, dir: string): string {
  const { cluster, upstream: up, target, logFile } = stack;
  const kubectl = (() => {
    try {
      return kubectlBinary();
    } catch {
      return "kubectl";
    }
  })();
  // skopeo/podman read every *.crt of --cert-dir as a CA (and want a .cert for every .key).
  const certDir = (r: TestRegistry, name: string) => {
    const certs = join(dir, "certs", name);
    mkdirSync(certs, { recursive: true });
    writeFileSync(join(certs, "ca.crt"), r.caPem);
    return certs;
  };
  const [sourceCerts, targetCerts] = [certDir(up.source, "source"), certDir(target, "target")];
  return `
how to use the stack (from another terminal):
  export KUBECONFIG=${cluster.kubeconfigFile}
  alias kubectl=${kubectl}   # matches the API server (v1.32)
  kubectl get mirrorjobs -A
  kubectl -n ${NAMESPACE} describe mirrorjob ${sample.name}
  kubectl get imagedigestmirrorsets,imagetagmirrorsets,clustercatalogs
  kubectl get catalogsources,updateservices -A; kubectl -n openshift-config-managed get configmaps
  kubectl apply -f ${sample.file}   # edit it first: another name, other content of the upstream
registries (TLS with their own CA, htpasswd user "mirror"):
  source  https://${up.source.host}  CA ${up.source.caFile}  authfile ${up.source.authFile}
  target  https://${target.host}  CA ${target.caFile}  authfile ${target.authFile}
  e.g. skopeo inspect --authfile ${target.authFile} --cert-dir ${targetCerts} docker://${target.host}/mirror/demo/toolbox:1.0
       (--cert-dir ${sourceCerts} for the source)
update graph and signatures: ${up.httpsUrl} (CA ${up.httpsCaFile}); release key ${up.publicKeyFile}
logs: operator ${logFile}
      pods ${stack.podLogs}, others ${dir}/*/*.log and ${dir}/upstream/*/*.log
${
  stack.pods === "runner"
    ? `MirrorJobs in any namespace are run (with their Secrets and ConfigMaps there), by the real
oc-mirror; what they mirror must be reachable from this machine (the upstream is on 127.0.0.1).`
    : `MirrorJobs in any namespace are run (with their Secrets and ConfigMaps there) on the real node,
by the real oc-mirror; its pods reach only the upstream and the target (on ${target.host.replace(/:\d+$/, "")}).`
}`;
}
