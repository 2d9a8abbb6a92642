/**
 * `npm start`: runs the operator, in one of two modes.
 *
 * - **Cluster mode** (KUBECONFIG set, or ~/.kube/config present and its cluster answering):
 *   the manager in this process against that cluster (dev-stack/cluster-mode.ts).
 * - **Local mode** (no cluster configured, or `--local`, or `--check`): the local development
 *   stack of devkit/stack.ts (a real control plane, the offline upstream, a target registry, the
 *   operator, and the Jobs' pods with the real oc-mirror on a real node where it can run, else
 *   with the test pod runner, or with it anyway given `--pod-runner`; it says which), and the
 *   demo on it (dev-stack/demo.ts): a sample MirrorJob (config/samples/release-and-operator.yaml
 *   pointed at the upstream: a release range with its update graph, an operator package and
 *   three additional images, apply.mode Auto), its status changes until its run ends, then what
 *   the target registry holds and the objects applied, then how to use the stack, until Ctrl-C.
 *   `--check` stops after the sample run and exits 0 only if it succeeded, every image is in the
 *   target and the objects are applied (dev-stack/local-mode.ts).
 */
import { accessSync, constants } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeConfig, VersionApi } from "@kubernetes/client-node";
import { errorText } from "../devkit/kube-errors.ts";
import { clusterMode } from "./dev-stack/cluster-mode.ts";
import { fail, say } from "./dev-stack/common.ts";
import { localMode } from "./dev-stack/local-mode.ts";

const USAGE = `usage: node hack/dev-stack.ts [--local | --cluster] [--check] [--pod-runner]

  (no option)  cluster mode if KUBECONFIG is set or ~/.kube/config reaches a cluster,
               otherwise the local development stack
  --local      the local development stack, even if a cluster is configured
  --cluster    cluster mode (fails if no cluster is configured)
  --check      the local stack: run the sample MirrorJob to its end, print, stop; exit 0
               only if it succeeded, the target holds its images and its objects are applied
  --pod-runner the local stack runs the Jobs' pods with the test pod runner (local processes)
               even where a real node can run (by default: a real node where it can run,
               that is as root with hack/setup.sh's packages and builds; it says which)

environment: HUBMIRROR_* (the manager's settings, see docs/operations.md; HUBMIRROR_OC_MIRROR_LINE picks
  the oc-mirror line the local stack's Jobs run), and HUBMIRROR_OC_MIRROR (an oc-mirror binary
  of your own for the default line, instead of the one hack/setup.sh builds)
`;

type Mode = { kind: "local"; why: string } | { kind: "cluster"; kc: KubeConfig; why: string };

async function reachable(kc: KubeConfig): Promise<string | undefined> {
  try {
    await Promise.race([
      kc.makeApiClient(VersionApi).getCode(),
      sleep(5_000).then(() => {
        throw new Error("no answer within 5 s");
      }),
    ]);
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}

async function chooseMode(args: readonly string[]): Promise<Mode> {
  if (args.includes("--check") || args.includes("--local")) {
    return { kind: "local", why: args.includes("--check") ? "--check" : "--local" };
  }
  const envFile = process.env.KUBECONFIG ?? "";
  const homeFile = join(homedir(), ".kube", "config");
  const load = (what: string): KubeConfig => {
    const kc = new KubeConfig();
    try {
      kc.loadFromDefault();
    } catch (err) {
      fail(`cannot read ${what}: ${errorText(err)}`);
    }
    return kc;
  };
  if (envFile !== "") {
    const kc = load(`KUBECONFIG (${envFile})`);
    const problem = await reachable(kc);
    if (problem !== undefined) {
      fail(
        `KUBECONFIG is set (${envFile}) but its cluster ${kc.getCurrentCluster()?.server ?? "?"} cannot be used: ${problem}\n` +
          "unset KUBECONFIG (or run `npm start -- --local`) to start the local development stack instead",
      );
    }
    return { kind: "cluster", kc, why: `KUBECONFIG=${envFile}` };
  }
  let homeExists = true;
  try {
    accessSync(homeFile, constants.R_OK);
  } catch {
    homeExists = false;
  }
  if (homeExists) {
    const kc = load(homeFile);
    const problem = await reachable(kc);
    if (problem === undefined) return { kind: "cluster", kc, why: homeFile };
    if (args.includes("--cluster")) {
      fail(`${homeFile}: cluster ${kc.getCurrentCluster()?.server ?? "?"} cannot be used: ${problem}`);
    }
    say(
      `${homeFile} names cluster ${kc.getCurrentCluster()?.server ?? "?"}, which cannot be used (${problem}): ` +
        "starting the local development stack instead",
    );
    return { kind: "local", why: `${homeFile} unreachable` };
  }
  if (args.includes("--cluster")) fail("--cluster: neither KUBECONFIG nor ~/.kube/config is set up");
  return { kind: "local", why: "no KUBECONFIG and no ~/.kube/config" };
}

async function main(args: readonly string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    say(USAGE);
    return;
  }
  const unknown = args.filter((a) => !["--local", "--cluster", "--check", "--pod-runner"].includes(a));
  if (unknown.length > 0) fail(`unknown option ${unknown.join(" ")}\n${USAGE}`);
  if (
    args.includes("--cluster") &&
    (args.includes("--local") || args.includes("--check") || args.includes("--pod-runner"))
  ) {
    fail("--cluster cannot be combined with --local, --check or --pod-runner");
  }
  const mode = await chooseMode(args);
  if (mode.kind === "cluster") await clusterMode(mode.kc, mode.why);
  else await localMode(mode.why, args.includes("--check"), args.includes("--pod-runner"));
}

if (import.meta.filename === resolve(process.argv[1] ?? "")) await main(process.argv.slice(2));
