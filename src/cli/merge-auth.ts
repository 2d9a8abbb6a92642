/**
 * The `merge-auth` subcommand: the init container of a mirror Job's pod. It merges the
 * dockerconfigjson files of the mounted Secrets (source pull Secret, then push Secret: later
 * files win for the same registry) into the authfile oc-mirror reads (`--authfile`), written
 * into an in-memory emptyDir. This is what lets the operator itself write no Secret.
 *
 * The file is written readable by every user (0444): the containers of the pod may run as
 * different users (another image, no shared fsGroup), and the volume is mounted only into this
 * container and, read-only, into oc-mirror's. Nothing it prints quotes a credential.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { AuthFileError, mergeAuthFiles, readDockerConfigAuths } from "../job/auth.ts";

const USAGE = "usage: hub-mirror-operator merge-auth --out=FILE DOCKERCONFIGJSON...\n";

export function mergeAuth(argv: readonly string[]): number {
  let out: string | undefined;
  const inputs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg.startsWith("--out=")) out = arg.slice("--out=".length);
    else if (arg === "--out") out = argv[++i];
    else if (arg.startsWith("-")) {
      process.stderr.write(`merge-auth: unknown option ${arg}\n${USAGE}`);
      return 2;
    } else inputs.push(arg);
  }
  if (out === undefined || out === "" || inputs.length === 0) {
    process.stderr.write(USAGE);
    return 2;
  }
  const configs = [];
  for (const file of inputs) {
    try {
      configs.push(readDockerConfigAuths(readFileSync(file)));
    } catch (err) {
      const why =
        err instanceof AuthFileError ? err.message : err instanceof Error ? err.message : String(err);
      process.stderr.write(`merge-auth: ${file}: ${why}\n`);
      return 1;
    }
  }
  const merged = mergeAuthFiles(configs);
  mkdirSync(dirname(out), { recursive: true, mode: 0o755 });
  // Atomically: oc-mirror never sees a half-written file.
  const tmp = join(dirname(out), `.${String(process.pid)}.tmp`);
  writeFileSync(tmp, merged, { mode: 0o444 });
  renameSync(tmp, out);
  const registries = new Set(configs.flatMap((c) => Object.keys(c))).size;
  process.stdout.write(
    `merge-auth: wrote ${out} from ${String(inputs.length)} file(s), ${String(registries)} registry entries\n`,
  );
  return 0;
}
