/**
 * The test pod runner plays the kubelet for pods of our Jobs (there is none in tests).
 * For each new pod it maps the pod's volumes to local folders as the kubelet would (PVCs by
 * claim name, so the cache and workspace survive across runs like real volumes; ConfigMap and
 * Secret volumes get the referenced object's keys, or only the listed `items`, as files with
 * the volume's modes; projected volumes get a real ServiceAccount token, ConfigMap keys and the
 * namespace; emptyDirs are fresh folders), runs the init containers one after the other (a
 * failing one fails the pod), then the containers together: the oc-mirror container's own
 * command and arguments (the wrapper script, with `oc-mirror` on PATH being the real oc-mirror
 * binary of the behaviour's line, and a free port for its cache registry) and, for containers
 * without a `command` (this project's image, whose entrypoint is its CLI), the real CLI with the
 * container's arguments: the `merge-auth` and `pull-oci` init containers and the reporter, which
 * runs as the Job's ServiceAccount (a real token, so RBAC is checked). Only containers that
 * mount a token get one. Then it sets the pod status so the real Job controller completes or
 * fails the Job.
 *
 * BENCHMARK ONLY, the `benchmark` behaviour (bench/scale.ts, and its smoke run in the e2e
 * tests): no oc-mirror runs, so that the numbers measure the operator. Everything else in the
 * tests and `npm start` runs the real oc-mirror binary.
 */
import { spawn } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Container,
  type V1KeyToPath,
  type V1Pod,
} from "@kubernetes/client-node";
import { stringify } from "yaml";
import { reportAs } from "../src/cli/report.ts";
import type { OcMirrorLine } from "../src/ocmirror/lines.ts";
import { ocMirrorBinary, repoRoot } from "./binaries.ts";
import { freePort } from "./ports.ts";

/** One start of the real oc-mirror binary by the oc-mirror container's wrapper. */
export interface OcMirrorPass {
  /** 1: the wrapper's dry run, 2: its mirror pass. */
  readonly pass: number;
  /** The oc-mirror process (the binary itself, not the wrapper). */
  readonly pid: number;
  /** The port of its local cache registry (--port: a free one per pod). */
  readonly port: number;
  /** The pod's volumes (volume name -> local folder). */
  readonly volumes: ReadonlyMap<string, string>;
  /**
   * SIGKILL now: `oc-mirror` the binary alone (the wrapper goes on and records its exit code,
   * 137), `container` the whole oc-mirror container (its process group: no exit code is
   * recorded and the heartbeat stops), as an OOM kill of either would.
   */
  kill(what: "oc-mirror" | "container"): void;
}

export interface PodBehaviour {
  /** The oc-mirror line whose real binary runs as `oc-mirror` (default: the harness's default line). */
  readonly line?: OcMirrorLine;
  /**
   * Runs before the containers start, with the pod's volumes (volume name -> local folder): e.g.
   * to tamper with the workspace as a stale earlier run could have left it.
   */
  readonly beforeStart?: (volumes: ReadonlyMap<string, string>) => Promise<void> | void;
  /** Kill the whole oc-mirror container (process group) after this many ms, as an OOM kill would. */
  readonly killAfterMs?: number;
  /**
   * Runs each time the wrapper starts oc-mirror, before the binary runs (it waits for this):
   * e.g. to break a registry between the dry run and the mirror pass, or to start watching for
   * the moment to kill it.
   */
  readonly beforeOcMirror?: (pass: OcMirrorPass) => Promise<void> | void;
  /**
   * Runs after the containers exit and before the pod's status says so: e.g. to tamper with
   * the result ConfigMap the way a compromised pod could.
   */
  readonly beforeExit?: (pod: V1Pod) => Promise<void>;
  /**
   * BENCHMARK ONLY (bench/scale.ts): completes the pod without oc-mirror. The oc-mirror
   * container's own wrapper script runs with a stand-in `oc-mirror` (a shell script, see
   * benchmarkOcMirror) that writes the smallest workspace of a successful mirror-to-mirror
   * run of these images: the dry run's mapping and the mirror pass's output lines and Results.
   * The reporter's real code reads it (in this process, as the Job's ServiceAccount, which
   * saves starting Node.js twice per pod); the init containers, which only prepare
   * oc-mirror's authfile and graph image, are reported completed without running.
   */
  readonly benchmark?: { readonly images: readonly BenchmarkImage[] };
}

/** An image the benchmark's stand-in oc-mirror reports copied: `host/path:tag` references. */
export interface BenchmarkImage {
  readonly source: string;
  readonly destination: string;
}

export interface PodRunnerOptions {
  readonly kc: KubeConfig;
  /** Folder for the pods' volumes. */
  readonly root: string;
  /** Only pods in these namespaces are run (tests in parallel each run their own). */
  readonly namespaces: () => readonly string[];
  readonly behaviour?: (pod: V1Pod) => PodBehaviour;
  /** Where the pods' processes write their output (for debugging failed tests). */
  readonly logDir?: string;
  /**
   * How pods are found: `poll` lists the namespaces every 200 ms (default); `watch` watches
   * pods of all namespaces (for many pods: bench/scale.ts) and keeps those of `namespaces()`.
   */
  readonly discovery?: "poll" | "watch";
  /** Pods run at once at most (default: no limit); later ones wait their turn. */
  readonly maxConcurrentPods?: number;
}

export interface PodRunner {
  /** Pods started so far, as namespace/name. */
  readonly started: string[];
  stop(): Promise<void>;
}

/**
 * A node selector that matches no node: test MirrorJobs carry it (spec.mirror.nodeSelector,
 * added by test/harness/operator.ts), so on a cluster with a scheduler and kubelets (HUBMIRROR_E2E_KUBECONFIG)
 * their pods stay Pending, unscheduled, and this runner plays their kubelet. Setting the status
 * of an unscheduled pod works through the status subresource like any other.
 */
export const TEST_POD_RUNNER_NODE_SELECTOR: Readonly<Record<string, string>> = {
  "hubmirror.dev/test-pod-runner": "true",
};

const NODE = process.execPath;
const MAIN = join(repoRoot, "src/cli/main.ts");

/** Replaces each container mount path prefix with its local folder. */
function mapper(mounts: readonly [string, string][]): (text: string) => string {
  const sorted = [...mounts].sort((a, b) => b[0].length - a[0].length);
  return (text) => {
    let out = text;
    for (const [from, to] of sorted) out = out.split(from).join(to);
    return out;
  };
}

interface Exit {
  readonly code: number | null;
  readonly signal: string | null;
}

function runProcess(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  killAfterMs?: number,
  onSpawn?: (pid: number) => void,
): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    const timer =
      killAfterMs !== undefined
        ? setTimeout(() => {
            // The whole process group: the wrapper shell, its heartbeat loop and oc-mirror.
            if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
          }, killAfterMs)
        : undefined;
    child.once("exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      writeFileSync(logFile, Buffer.concat(chunks));
      resolve({ code, signal });
    });
  });
}

function terminated(
  c: V1Container,
  exitCode: number,
  signal: string | null,
  startedAt: string,
  finishedAt: string,
): Record<string, unknown> {
  return {
    name: c.name,
    image: c.image,
    imageID: "",
    ready: false,
    restartCount: 0,
    started: false,
    state: {
      terminated: {
        exitCode,
        // A kubelet says OOMKilled only when the kernel's OOM killer ended the container; the
        // pod runner has no memory limits, so a SIGKILL here is a kill from outside: Error, 137.
        reason: signal === null && exitCode === 0 ? "Completed" : "Error",
        startedAt,
        finishedAt,
      },
    },
  };
}

/**
 * BENCHMARK ONLY: the stand-in `oc-mirror` of the `benchmark` behaviour. Called by the real
 * wrapper script twice: with `--dry-run` it writes the mapping of `images` where oc-mirror
 * writes it (`<workspace>/working-dir/dry-run/mapping.txt`); without, it prints what
 * oc-mirror prints for a successful copy of each image (the lines the reporter parses) and
 * exits 0.
 */
export function benchmarkOcMirror(images: readonly BenchmarkImage[]): string {
  const quote = (text: string) => `'${text.replaceAll("'", `'"'"'`)}'`;
  const say = (line: string) => `echo "$T  [INFO]   : "${quote(line)}`;
  const count = String(images.length);
  const mapping = images.map((i) => `docker://${i.source}=docker://${i.destination}`);
  return [
    "#!/bin/sh",
    "# BENCHMARK ONLY (devkit/pod-runner.ts, behaviour `benchmark`): stands in for oc-mirror.",
    'ws=""; dry=0; prev=""',
    'for a in "$@"; do',
    '  [ "$prev" = "--workspace" ] && ws="${a#file://}"',
    '  [ "$a" = "--dry-run" ] && dry=1',
    '  prev="$a"',
    "done",
    'wd="$ws/working-dir"',
    "T=$(date '+%Y/%m/%d %H:%M:%S')",
    'mkdir -p "$wd/logs" "$wd/dry-run"',
    say(`\u{1F4CC} images to copy ${count} `),
    'if [ "$dry" = 1 ]; then',
    `  printf '%s\\n' ${mapping.map(quote).join(" ")} > "$wd/dry-run/mapping.txt"`,
    "  exit 0",
    "fi",
    ...images.map((i) => say(`Success copying ${i.source} \u27A1\uFE0F ${i.destination}`)),
    say("=== Results ==="),
    say(` \u2713  ${count} / ${count} additional images mirrored successfully`),
    say("mirror time     : 0.1s"),
    "exit 0",
    "",
  ].join("\n");
}

export function startPodRunner(options: PodRunnerOptions): PodRunner {
  const core = options.kc.makeApiClient(CoreV1Api);
  const seen = new Set<string>();
  const running = new Set<Promise<void>>();
  let stopped = false;
  const logDir = options.logDir ?? join(options.root, "logs");
  mkdirSync(logDir, { recursive: true });

  /**
   * A folder whose `oc-mirror` is the real binary of `line` (the image's entrypoint on a node).
   * With `gate` (a folder), each start first records its pid as `started-<n>` there and waits
   * (at most 10 minutes) for `go-<n>`: see watchPasses.
   */
  function shimDir(dir: string, line: OcMirrorLine | undefined, gate?: string, script?: string): string {
    const shim = join(dir, "oc-mirror");
    mkdirSync(dir, { recursive: true });
    if (script !== undefined) {
      writeFileSync(shim, script, { mode: 0o755 });
      return dir;
    }
    const wait =
      gate === undefined
        ? ""
        : [
            `gate="${gate}"`,
            "n=1",
            'while [ -e "$gate/started-$n" ]; do n=$((n+1)); done',
            'echo $$ > "$gate/started-$n"',
            "i=0",
            'while [ ! -e "$gate/go-$n" ]; do',
            '  i=$((i+1)); if [ "$i" -gt 12000 ]; then echo "test pod runner: oc-mirror start $n never released" >&2; exit 125; fi',
            "  sleep 0.05",
            "done",
            "",
          ].join("\n");
    writeFileSync(shim, `#!/bin/sh\n${wait}exec "${ocMirrorBinary(line)}" "$@"\n`);
    chmodSync(shim, 0o755);
    return dir;
  }

  /**
   * Releases each oc-mirror start of a gated shim (see shimDir) after the behaviour's
   * beforeOcMirror, until `done` resolves.
   */
  async function watchPasses(
    gate: string,
    behaviour: PodBehaviour,
    volumes: ReadonlyMap<string, string>,
    ocMirror: { port?: number; pid?: number },
    done: Promise<unknown>,
  ): Promise<void> {
    let finished = false;
    const finish = () => {
      finished = true;
    };
    done.then(finish, finish);
    /** Whether the containers have ended (set by the callback above). */
    const ended = () => finished;
    for (let pass = 1; !ended(); pass++) {
      const started = join(gate, `started-${String(pass)}`);
      while (!ended() && !existsSync(started)) await sleep(25);
      if (ended()) return;
      const pid = Number.parseInt(readFileSync(started, "utf8").trim(), 10);
      const kill = (what: "oc-mirror" | "container") => {
        // Only processes this runner started and that still run: the binary (until the next
        // start), or the container's process group (until the containers ended).
        if (ended() || (what === "oc-mirror" && existsSync(join(gate, `started-${String(pass + 1)}`))))
          return;
        const target = what === "oc-mirror" ? pid : -(ocMirror.pid ?? pid);
        try {
          process.kill(target, "SIGKILL");
        } catch {
          // already gone
        }
      };
      await behaviour.beforeOcMirror?.({ pass, pid, port: ocMirror.port ?? 0, volumes, kill });
      writeFileSync(join(gate, `go-${String(pass)}`), "");
    }
  }

  async function setStatus(pod: V1Pod, status: Record<string, unknown>): Promise<void> {
    await core.patchNamespacedPodStatus(
      { name: pod.metadata?.name ?? "", namespace: pod.metadata?.namespace ?? "", body: { status } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  async function serviceAccountToken(pod: V1Pod): Promise<string> {
    const token = await core.createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName ?? "default",
      namespace: pod.metadata?.namespace ?? "",
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    return token.status?.token ?? "";
  }

  /** The pod's ServiceAccount as a client of this process (the benchmark's in-process reporter). */
  async function serviceAccountKubeConfig(pod: V1Pod): Promise<KubeConfig> {
    const token = await serviceAccountToken(pod);
    const cluster = options.kc.getCurrentCluster();
    if (cluster === null) throw new Error("the pod runner's kubeconfig has no current cluster");
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ ...cluster, name: "c" }],
      users: [{ name: "sa", token }],
      contexts: [{ name: "c", cluster: "c", user: "sa", namespace: pod.metadata?.namespace ?? "" }],
      currentContext: "c",
    });
    return kc;
  }

  /**
   * A kubeconfig with the pod's ServiceAccount token, for a container that has a token: the
   * pod's default one (automountServiceAccountToken not false) or a projected one it mounts.
   * Clients find it through KUBECONFIG, as real ones find the token in a real pod.
   */
  async function serviceAccountKubeconfig(pod: V1Pod, dir: string): Promise<string> {
    const namespace = pod.metadata?.namespace ?? "";
    const token = await serviceAccountToken(pod);
    const cluster = options.kc.getCurrentCluster();
    const file = join(dir, "kubeconfig");
    writeFileSync(
      file,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "c",
            cluster: {
              server: cluster?.server,
              // A kind kubeconfig holds its CA inline; the local control plane's names a file.
              ...(cluster?.caData !== undefined
                ? { "certificate-authority-data": cluster.caData }
                : { "certificate-authority": cluster?.caFile }),
            },
          },
        ],
        users: [{ name: "sa", user: { token } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "sa", namespace } }],
        "current-context": "c",
      }),
      { mode: 0o600 },
    );
    return file;
  }

  /** Writes a ConfigMap's or Secret's keys (or only `items`) into `dir`, with the volume's modes. */
  function project(
    dir: string,
    data: Record<string, Buffer>,
    items: readonly V1KeyToPath[] | undefined,
    defaultMode: number,
  ): void {
    const selected: readonly V1KeyToPath[] = items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of selected) {
      const value = data[item.key];
      if (value === undefined) throw new Error(`volume item ${item.key} is missing from its object`);
      writeFileSync(join(dir, item.path), value, { mode: item.mode ?? defaultMode });
    }
  }

  /** Local folders for the pod's volumes, and the files of its ConfigMap and Secret volumes. */
  async function materialize(pod: V1Pod, podDir: string): Promise<Map<string, string>> {
    const namespace = pod.metadata?.namespace ?? "";
    const volumes = new Map<string, string>();
    for (const volume of pod.spec?.volumes ?? []) {
      let dir: string;
      if (volume.persistentVolumeClaim) {
        dir = join(options.root, "pvc", namespace, volume.persistentVolumeClaim.claimName);
      } else {
        dir = join(podDir, "volumes", volume.name);
      }
      mkdirSync(dir, { recursive: true });
      // The kubelet's default mode for projected keys is 0644.
      if (volume.configMap) {
        const cm = await core.readNamespacedConfigMap({ name: volume.configMap.name ?? "", namespace });
        const data = Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
        project(dir, data, volume.configMap.items, volume.configMap.defaultMode ?? 0o644);
      }
      for (const source of volume.projected?.sources ?? []) {
        // As the kubelet: the token is requested for the pod's ServiceAccount; a configMap
        // source is read like a configMap volume; the downward API gives the namespace.
        if (source.serviceAccountToken) {
          writeFileSync(join(dir, source.serviceAccountToken.path), await serviceAccountToken(pod), {
            mode: 0o600,
          });
        }
        if (source.configMap) {
          const cm = await core.readNamespacedConfigMap({ name: source.configMap.name ?? "", namespace });
          const data = Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
          project(dir, data, source.configMap.items, 0o644);
        }
        for (const item of source.downwardAPI?.items ?? []) {
          if (item.fieldRef?.fieldPath !== "metadata.namespace")
            throw new Error(
              `downward API field ${item.fieldRef?.fieldPath ?? "?"} is not supported by the test pod runner`,
            );
          writeFileSync(join(dir, item.path), namespace, { mode: 0o644 });
        }
      }
      if (volume.secret) {
        // As the kubelet: read with the runner's (admin) credentials, not the pod's.
        const secret = await core.readNamespacedSecret({ name: volume.secret.secretName ?? "", namespace });
        const data = Object.fromEntries(
          Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]),
        );
        project(dir, data, volume.secret.items, volume.secret.defaultMode ?? 0o644);
      }
      volumes.set(volume.name, dir);
    }
    return volumes;
  }

  /** A container's arguments with its mount paths replaced by the local folders. */
  function localArgs(container: V1Container, volumes: Map<string, string>): string[] {
    const map = mapper(
      (container.volumeMounts ?? []).map((m) => [m.mountPath, volumes.get(m.name) ?? "/nonexistent"]),
    );
    return (container.args ?? []).map(map);
  }

  async function runContainer(
    container: V1Container,
    volumes: Map<string, string>,
    extraEnv: NodeJS.ProcessEnv,
    logFile: string,
    options: {
      readonly killAfterMs?: number;
      /** Folder of this pod's `oc-mirror` shim. */
      readonly bin: string;
      readonly line?: OcMirrorLine;
      /** See shimDir. */
      readonly gate?: string;
      /** A stand-in for oc-mirror (see shimDir). */
      readonly script?: string;
      /** Filled in: the container's process (group) and the port given to oc-mirror. */
      readonly ocMirror?: { port?: number; pid?: number };
    },
  ): Promise<Exit> {
    const map = mapper(
      (container.volumeMounts ?? []).map((m) => [m.mountPath, volumes.get(m.name) ?? "/nonexistent"]),
    );
    const env: NodeJS.ProcessEnv = {
      PATH: `${shimDir(options.bin, options.line, options.gate, options.script)}:${process.env.PATH ?? ""}`,
      ...extraEnv,
    };
    for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = map(e.value);
    // Pods of one node share its network: each oc-mirror gets a free port for its cache registry.
    const args = [...(container.args ?? [])];
    const port = args.indexOf("--port");
    if (port >= 0 && port + 1 < args.length) {
      const free = await freePort();
      args[port + 1] = String(free);
      if (options.ocMirror !== undefined) options.ocMirror.port = free;
    }
    const argv = [...(container.command ?? []), ...args].map(map);
    // No command: the image's entrypoint, which for this project's image is its CLI.
    const [command, ...rest] = container.command === undefined ? [NODE, MAIN, ...argv] : argv;
    return runProcess(command ?? "/bin/false", rest, env, logFile, options.killAfterMs, (pid) => {
      if (options.ocMirror !== undefined) options.ocMirror.pid = pid;
    });
  }

  /** BENCHMARK ONLY: the reporter's real code in this process, as the pod's ServiceAccount. */
  async function runBenchmarkReporter(
    pod: V1Pod,
    container: V1Container,
    volumes: Map<string, string>,
    logFile: string,
  ): Promise<Exit> {
    const [command, ...args] = localArgs(container, volumes);
    if (command !== "report") throw new Error(`benchmark pod runner: the reporter runs "${command ?? ""}"`);
    const echo = (line: string) => {
      appendFileSync(logFile, `${line}\n`);
    };
    try {
      return { code: await reportAs(args, await serviceAccountKubeConfig(pod), echo), signal: null };
    } catch (err) {
      echo(`reporter: ${err instanceof Error ? err.message : String(err)}`);
      return { code: 1, signal: null };
    }
  }

  async function runPod(pod: V1Pod): Promise<void> {
    const id = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
    const podDir = join(options.root, "pods", pod.metadata?.namespace ?? "", pod.metadata?.name ?? "");
    mkdirSync(podDir, { recursive: true });
    const behaviour = options.behaviour?.(pod) ?? {};
    const containers = pod.spec?.containers ?? [];
    const initContainers = pod.spec?.initContainers ?? [];
    const volumes = await materialize(pod, podDir);
    const logBase = join(logDir, id.replace("/", "_"));

    // Init containers, in order, while the pod is Pending (as the kubelet reports them).
    const initStarted = new Date().toISOString();
    const initStatuses: Record<string, unknown>[] = [];
    // Each container's own `oc-mirror` shim folder.
    const bin = (c: V1Container) => join(podDir, "bin", c.name);
    for (const c of initContainers) {
      const exit: Exit =
        behaviour.benchmark !== undefined
          ? { code: 0, signal: null } // benchmark only: nothing reads what they would prepare
          : await runContainer(c, volumes, {}, `${logBase}.${c.name}.log`, { bin: bin(c) });
      const exitCode = exit.code ?? 137;
      initStatuses.push(terminated(c, exitCode, exit.signal, initStarted, new Date().toISOString()));
      if (exitCode !== 0) {
        await setStatus(pod, {
          phase: "Failed",
          initContainerStatuses: initStatuses,
          containerStatuses: containers.map((k) => ({
            name: k.name,
            image: k.image,
            imageID: "",
            ready: false,
            restartCount: 0,
            started: false,
            state: { waiting: { reason: "PodInitializing" } },
          })),
        });
        return;
      }
    }

    const started = new Date().toISOString();
    await setStatus(pod, {
      phase: "Running",
      startTime: initStarted,
      ...(initStatuses.length > 0 && { initContainerStatuses: initStatuses }),
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image,
        imageID: "",
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt: started } },
      })),
    });
    const benchmark = behaviour.benchmark;
    const kubeconfig = benchmark === undefined ? await serviceAccountKubeconfig(pod, podDir) : "";
    await behaviour.beforeStart?.(volumes);
    const tokenVolumes = new Set(
      (pod.spec?.volumes ?? [])
        .filter((v) => v.projected?.sources?.some((source) => source.serviceAccountToken !== undefined))
        .map((v) => v.name),
    );
    const hasToken = (c: V1Container) =>
      pod.spec?.automountServiceAccountToken !== false ||
      (c.volumeMounts ?? []).some((m) => tokenVolumes.has(m.name));
    // oc-mirror's starts are gated only when the behaviour acts on them.
    const gate = behaviour.beforeOcMirror !== undefined ? join(podDir, "oc-mirror-starts") : undefined;
    if (gate !== undefined) mkdirSync(gate, { recursive: true });
    const ocMirror: { port?: number; pid?: number } = {};
    const running = Promise.all(
      containers.map((c) =>
        benchmark !== undefined && c.name === "reporter"
          ? runBenchmarkReporter(pod, c, volumes, `${logBase}.${c.name}.log`)
          : runContainer(
              c,
              volumes,
              hasToken(c) ? { KUBECONFIG: kubeconfig } : {},
              `${logBase}.${c.name}.log`,
              c.name === "reporter"
                ? { bin: bin(c) }
                : {
                    bin: bin(c),
                    ocMirror,
                    ...(gate !== undefined && { gate }),
                    ...(behaviour.killAfterMs !== undefined && { killAfterMs: behaviour.killAfterMs }),
                    ...(behaviour.line !== undefined && { line: behaviour.line }),
                    ...(benchmark !== undefined && { script: benchmarkOcMirror(benchmark.images) }),
                  },
            ),
      ),
    );
    const watching =
      gate !== undefined ? watchPasses(gate, behaviour, volumes, ocMirror, running) : undefined;
    const exits = await running;
    await watching;
    await behaviour.beforeExit?.(pod);
    const finished = new Date().toISOString();
    const codes = exits.map((e) => e.code ?? 137);
    await setStatus(pod, {
      phase: codes.every((c) => c === 0) ? "Succeeded" : "Failed",
      ...(initStatuses.length > 0 && { initContainerStatuses: initStatuses }),
      containerStatuses: containers.map((c, i) =>
        terminated(c, codes[i] ?? 137, exits[i]?.signal ?? null, started, finished),
      ),
    });
  }

  const LABEL_SELECTOR = "app.kubernetes.io/managed-by=hub-mirror-operator";
  // Pods wait here for a slot when maxConcurrentPods is reached.
  const waiting: (() => void)[] = [];
  let active = 0;
  const slot = async (): Promise<void> => {
    if (options.maxConcurrentPods === undefined) return;
    if (active >= options.maxConcurrentPods) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
  };
  const release = () => {
    if (options.maxConcurrentPods === undefined) return;
    active--;
    waiting.shift()?.();
  };

  /** Runs a pod once, if it is ours to run: Pending, not deleted, not bound to a node. */
  function consider(pod: V1Pod): void {
    const namespace = pod.metadata?.namespace ?? "";
    const id = `${namespace}/${pod.metadata?.name ?? ""}`;
    if (stopped || seen.has(id) || pod.status?.phase !== "Pending" || pod.metadata?.deletionTimestamp) return;
    // Scheduled to a node: a real kubelet runs it, not this runner.
    if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== "") return;
    seen.add(id);
    runner.started.push(id);
    const run = slot()
      .then(() => runPod(pod))
      .catch((err: unknown) => {
        writeFileSync(join(logDir, `${id.replace("/", "_")}.runner-error.log`), String(err));
      })
      .finally(release);
    running.add(run);
    void run.finally(() => running.delete(run));
  }

  async function poll(): Promise<void> {
    while (!stopped) {
      for (const namespace of options.namespaces()) {
        const pods = await core
          .listNamespacedPod({ namespace, labelSelector: LABEL_SELECTOR })
          .catch(() => ({ items: [] as V1Pod[] }));
        for (const pod of pods.items) consider(pod);
      }
      await sleep(200);
    }
  }

  /** Watches pods of all namespaces; the library re-lists and re-watches by itself. */
  async function watch(): Promise<void> {
    const informer = new ListWatch<V1Pod>(
      "/api/v1/pods",
      new Watch(options.kc),
      () => core.listPodForAllNamespaces({ labelSelector: LABEL_SELECTOR }),
      false,
      LABEL_SELECTOR,
    );
    const onPod = (pod: V1Pod) => {
      if (options.namespaces().includes(pod.metadata?.namespace ?? "")) consider(pod);
    };
    informer.on("add", onPod);
    informer.on("update", onPod);
    informer.on("error", () => {
      if (!stopped) setTimeout(() => void informer.start(), 1000);
    });
    await informer.start();
    while (!stopped) await sleep(200);
    await informer.stop();
  }

  const runner: PodRunner = {
    started: [],
    async stop() {
      stopped = true;
      await looping;
      await Promise.all(running);
    },
  };
  const looping = options.discovery === "watch" ? watch() : poll();
  return runner;
}
