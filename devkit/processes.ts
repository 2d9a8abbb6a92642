/**
 * Child processes of the test harness. Every process is started under
 * `setpriv --pdeathsig KILL`, so the kernel kills it when the test runner dies,
 * even by SIGKILL; `stop()` ends it gracefully first. Output goes to a log file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const running = new Set<ManagedProcess>();

export function startProcess(options: StartOptions): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: "a" });
  const child: ChildProcess = spawn(
    "setpriv",
    ["--pdeathsig", "KILL", "--", options.command, ...options.args],
    {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      log.end();
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", (err) => {
      log.end(`spawn failed: ${err.message}\n`);
      resolve("spawn-error");
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${options.name} (${options.command})`);
  const pid = child.pid;
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  const managed: ManagedProcess = {
    name: options.name,
    pid,
    logFile: options.logFile,
    exited,
    hasExited: () => ended,
    async stop(graceMs = 5_000) {
      running.delete(managed);
      if (ended) return;
      child.kill("SIGTERM");
      const outcome = await Promise.race([exited, sleep(graceMs, "timeout")]);
      if (outcome === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
  running.add(managed);
  return managed;
}

/** Stops every process still running, newest first. */
export async function stopAll(): Promise<void> {
  for (const p of [...running].reverse()) await p.stop();
}

/**
 * Polls `check` until it returns a value other than undefined, at most `timeoutMs`,
 * every `intervalMs`. Fails early when `process` has exited.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; process?: ManagedProcess },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const watched = options.process;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (watched?.hasExited()) {
      throw new Error(`${watched.name} exited while waiting for ${what}; see ${watched.logFile}`);
    }
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(options.intervalMs ?? 100);
  }
  const cause = lastError instanceof Error ? `: ${lastError.message}` : "";
  throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${cause}`);
}
