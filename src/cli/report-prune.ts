/** The `report-prune` subcommand, run as the second container of a prune Job's pod. */
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { runPruneReporter } from "../report/prune-reporter.ts";

function flags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (match?.[1] === undefined || match[2] === undefined)
      throw new Error(`report-prune: unexpected argument "${arg}" (use --name=value)`);
    out.set(match[1], match[2]);
  }
  return out;
}

export async function reportPrune(argv: readonly string[]): Promise<number> {
  const f = flags(argv);
  const required = (name: string) => {
    const value = f.get(name);
    if (value === undefined || value === "") throw new Error(`report-prune: --${name} is required`);
    return value;
  };
  const step = required("step");
  if (step !== "generate" && step !== "delete")
    throw new Error(`report-prune: --step must be generate or delete, not "${step}"`);
  const namespace = required("namespace");
  const name = required("result-configmap");
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  return runPruneReporter({
    stateDir: required("state"),
    workspace: required("workspace"),
    step,
    stepId: required("step-id"),
    heartbeatTimeoutSeconds: Number(f.get("heartbeat-timeout") ?? "120"),
    echo: (line) => {
      process.stdout.write(`${line}\n`);
    },
    writer: {
      async write(data, binaryData) {
        await core.patchNamespacedConfigMap(
          { namespace, name, body: { data, ...(binaryData !== undefined && { binaryData }) } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
      },
    },
  });
}
