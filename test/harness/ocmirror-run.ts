/**
 * Runs the real oc-mirror v2 binary directly (not through the operator's Job): its environment
 * (private HOME and TMPDIR, the CAs in SSL_CERT_DIR, the credentials where containers/image looks
 * for them even without --authfile), its mirror-to-registry argv, and a bounded run that captures
 * its output. The process runs under `setpriv --pdeathsig KILL` like every harness process.
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

export interface OcMirrorEnvOptions {
  /** The run's private folder: home/, tmp/, runtime/ and certs/ are made in it. */
  readonly dir: string;
  /** The authfile oc-mirror gets with --authfile (e.g. mergeAuthFiles of source and target). */
  readonly authFile: string;
  /** CA certificates to trust (PEM files): copied into one folder named by SSL_CERT_DIR. */
  readonly caFiles: readonly string[];
  /** More variables (e.g. the upstream's UPDATE_URL_OVERRIDE, OCP_SIGNATURE_*). */
  readonly extra?: Readonly<Record<string, string>>;
}

/**
 * A clean environment for oc-mirror (nothing inherited but PATH): HOME and TMPDIR (writable,
 * exec-capable) in `dir`; SSL_CERT_DIR naming a folder with the given CAs (Go reads every file
 * of it into the system pool, which oc-mirror's update-graph and signature clients and
 * containers/image use); XDG_RUNTIME_DIR whose containers/auth.json is the authfile, because
 * some lookups ignore --authfile (a release given by tag: internal/pkg/release/cincinnati.go
 * uses the global system context, and containers/image then reads
 * $XDG_RUNTIME_DIR/containers/auth.json; go.podman.io/image/v5 pkg/docker/config/config.go).
 */
export function ocMirrorEnv(options: OcMirrorEnvOptions): Record<string, string> {
  const home = join(options.dir, "home");
  const tmp = join(options.dir, "tmp");
  const runtime = join(options.dir, "runtime");
  const certs = join(options.dir, "certs");
  for (const d of [home, tmp, certs]) mkdirSync(d, { recursive: true });
  mkdirSync(join(runtime, "containers"), { recursive: true, mode: 0o700 });
  copyFileSync(options.authFile, join(runtime, "containers", "auth.json"));
  for (const [i, ca] of options.caFiles.entries()) copyFileSync(ca, join(certs, `${i}-${basename(ca)}`));
  return {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    TMPDIR: tmp,
    XDG_RUNTIME_DIR: runtime,
    SSL_CERT_DIR: certs,
    LANG: "C.UTF-8",
    ...options.extra,
  };
}

/** Writes one authfile (mode 0600) holding the `auths` of every given authfile. */
export function mergeAuthFiles(out: string, files: readonly string[]): string {
  const auths: Record<string, unknown> = {};
  for (const f of files) {
    const parsed = JSON.parse(readFileSync(f, "utf8")) as { auths?: Record<string, unknown> };
    Object.assign(auths, parsed.auths);
  }
  writeFileSync(out, JSON.stringify({ auths }), { mode: 0o600 });
  return out;
}

export interface MirrorArgs {
  readonly configFile: string;
  /** The workspace folder (oc-mirror gets `file://<it>` and makes `working-dir/` in it). */
  readonly workspace: string;
  readonly cacheDir: string;
  readonly authFile: string;
  /** The local cache registry's port (give each concurrent run its own). */
  readonly port: number;
  /** `host:port[/path]` of the target registry (no scheme). */
  readonly destination: string;
  readonly dryRun?: boolean;
  readonly logLevel?: "info" | "debug" | "trace" | "error";
  readonly extra?: readonly string[];
}

/** argv for a mirror-to-registry run (TLS verification stays on: no --*-tls-verify flags). */
export function mirrorToRegistryArgs(a: MirrorArgs): string[] {
  return [
    "--v2",
    "-c",
    a.configFile,
    "--workspace",
    `file://${a.workspace}`,
    `docker://${a.destination}`,
    "--cache-dir",
    a.cacheDir,
    "--authfile",
    a.authFile,
    "--port",
    String(a.port),
    ...(a.dryRun === true ? ["--dry-run"] : []),
    ...(a.logLevel !== undefined ? ["--log-level", a.logLevel] : []),
    ...(a.extra ?? []),
  ];
}

export interface OcMirrorResult {
  /** Exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr lines in the order they arrived. */
  readonly lines: readonly string[];
  readonly durationMs: number;
}

export interface RunOptions {
  readonly binary: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Killed (SIGTERM, then SIGKILL 5 s later) when it runs longer (default 120 s). */
  readonly timeoutMs?: number;
  /** Also writes the combined output here. */
  readonly logFile?: string;
}

export async function runOcMirror(options: RunOptions): Promise<OcMirrorResult> {
  const started = Date.now();
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", options.binary, ...options.args], {
    env: options.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const lines: string[] = [];
  const partial = { stdout: "", stderr: "" };
  const collect = (stream: "stdout" | "stderr", sink: Buffer[]) => (chunk: Buffer) => {
    sink.push(chunk);
    const text = partial[stream] + chunk.toString("utf8");
    const parts = text.split("\n");
    partial[stream] = parts.pop() ?? "";
    lines.push(...parts);
  };
  child.stdout.on("data", collect("stdout", out));
  child.stderr.on("data", collect("stderr", err));
  let timedOut = false;
  const timeoutMs = options.timeoutMs ?? 120_000;
  let killer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGTERM");
    killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  }, timeoutMs);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c, s) => {
      resolve([c, s]);
    });
  }).finally(() => {
    clearTimeout(timer);
    clearTimeout(killer);
  });
  for (const rest of [partial.stdout, partial.stderr]) if (rest !== "") lines.push(rest);
  const result: OcMirrorResult = {
    exitCode: code,
    signal,
    timedOut,
    stdout: Buffer.concat(out).toString("utf8"),
    stderr: Buffer.concat(err).toString("utf8"),
    lines,
    durationMs: Date.now() - started,
  };
  if (options.logFile !== undefined) {
    writeFileSync(
      options.logFile,
      `$ oc-mirror ${options.args.join(" ")}\n${lines.join("\n")}\nexit ${String(code ?? signal)}\n`,
    );
  }
  return result;
}
