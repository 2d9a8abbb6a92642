/**
 * The local development stack: a real control plane and a TLS registry on loopback,
 * the same parts the e2e tests use. Runs until interrupted (Ctrl-C), then stops
 * everything and removes its files. `--check` starts the stack, prints it, and stops.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControlPlane } from "../test/harness/control-plane.ts";
import { stopAll } from "../test/harness/processes.ts";
import { startRegistry } from "../test/harness/registry.ts";

const dir = mkdtempSync(join(tmpdir(), "hubmirror-dev-"));
let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("stopping the development stack");
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  const started = Date.now();
  console.log("starting etcd, kube-apiserver, kube-controller-manager and a TLS registry on 127.0.0.1 ...");
  const [cluster, registry] = await Promise.all([
    startControlPlane(join(dir, "cluster")),
    startRegistry(join(dir, "registry")),
  ]);
  console.log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s

  API server:  ${cluster.server}
  kubeconfig:  export KUBECONFIG=${cluster.kubeconfigFile}
  registry:    https://${registry.host}
               CA ${registry.caFile}
               credentials ${registry.authFile}  (e.g. skopeo --authfile)
  logs:        ${dir}/*/*.log
`);
  if (process.argv.includes("--check")) await shutdown(0);
  console.log("press Ctrl-C to stop");
  setInterval(() => undefined, 1 << 30);
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  await shutdown(1);
}
