/**
 * The `pull-oci` subcommand: an init container of a mirror Job's pod that copies the update
 * graph image (spec.source.release.graphImage) as an OCI layout into an emptyDir, from which
 * the oc-mirror container copies it to `working-dir/graph-preparation`, where oc-mirror looks
 * for it with `graph: true` and UPDATE_URL_OVERRIDE (src/job/argv.ts). It reads
 * the pod's merged authfile and the mounted CA folders; nothing it prints quotes a credential.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { RegistryClient } from "../registry/client.ts";
import { credentialsFor } from "../registry/credentials.ts";
import { pullToOciLayout } from "../registry/oci-layout.ts";
import { parseReference } from "../registry/reference.ts";

const USAGE =
  "usage: hub-mirror-operator pull-oci --image=REF --layout=DIR --authfile=FILE [--ca-dir=DIR...] [--tls-verify=false]\n";

/** The PEM files of the given folders, as one bundle. */
function caBundle(dirs: readonly string[]): string | undefined {
  const pems = dirs.flatMap((dir) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => !f.startsWith("."))
          .map((f) => readFileSync(join(dir, f), "utf8"))
      : [],
  );
  return pems.length > 0 ? pems.join("\n") : undefined;
}

export async function pullOci(argv: readonly string[]): Promise<number> {
  const values = new Map<string, string[]>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (match?.[1] === undefined || match[2] === undefined) {
      process.stderr.write(`pull-oci: unexpected argument "${arg}"\n${USAGE}`);
      return 2;
    }
    values.set(match[1], [...(values.get(match[1]) ?? []), match[2]]);
  }
  const one = (name: string) => values.get(name)?.[0];
  const image = one("image");
  const layout = one("layout");
  const authfile = one("authfile");
  if (image === undefined || layout === undefined || authfile === undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const ref = parseReference(image);
  const ca = caBundle(values.get("ca-dir") ?? []);
  const client = new RegistryClient({
    registry: ref.registry,
    credentials: credentialsFor(
      JSON.parse(readFileSync(authfile, "utf8")),
      `${ref.registry}/${ref.repository}`,
    ),
    tlsVerify: one("tls-verify") !== "false",
    timeoutMs: 60_000,
    ...(ca !== undefined && { caBundle: ca }),
  });
  try {
    const digest = await pullToOciLayout(client, ref, layout);
    process.stdout.write(`pull-oci: copied ${image} (${digest}) into ${layout}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`pull-oci: ${image}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
