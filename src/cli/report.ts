/** The `report` subcommand, run as the second container of a run's pod. */
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { runReporter } from "../report/reporter.ts";

function flags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (match?.[1] === undefined || match[2] === undefined)
      throw new Error(`report: unexpected argument "${arg}" (use --name=value)`);
    out.set(match[1], match[2]);
  }
  return out;
}

export async function report(argv: readonly string[]): Promise<number> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return reportAs(argv, kc, (line) => {
    process.stdout.write(`${line}\n`);
  });
}

/**
 * The reporter with the given identity and output: what `report` runs after loading the
 * pod's credentials (the dev kit's benchmark pod runner calls it in its own process).
 */
export async function reportAs(
  argv: readonly string[],
  kc: KubeConfig,
  echo: (line: string) => void,
): Promise<number> {
  const f = flags(argv);
  const required = (name: string) => {
    const value = f.get(name);
    if (value === undefined || value === "") throw new Error(`report: --${name} is required`);
    return value;
  };
  const namespace = required("namespace");
  const name = required("result-configmap");
  const core = kc.makeApiClient(CoreV1Api);
  return runReporter({
    stateDir: required("state"),
    workspace: required("workspace"),
    registry: required("registry"),
    heartbeatTimeoutSeconds: Number(f.get("heartbeat-timeout") ?? "120"),
    echoLevel: f.get("echo-level") === "error" ? "error" : "all",
    echo,
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
