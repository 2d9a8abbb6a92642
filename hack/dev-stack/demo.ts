/**
 * The demo `npm start` runs on the local stack: the sample MirrorJob (demo-sample.ts) created,
 * its status changes printed until its run ends (demo-status.ts), then what oc-mirror said, what
 * the target registry holds and the objects applied (demo-report.ts).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import type { RunningStack } from "../../devkit/stack.ts";
import { NAMESPACE, say } from "./common.ts";
import { kubectlGet, showApplied, showMirrored, showOcMirrorOutput } from "./demo-report.ts";
import { createSampleObjects, INPUTS, SAMPLE_FILE, sampleMirrorJob } from "./demo-sample.ts";
import { outcome, watchMirrorJobs, type MirrorJobLike, type Outcome } from "./demo-status.ts";

/** How long the sample run may take (a real run of its 20 images takes well under a minute). */
const SAMPLE_TIMEOUT_MS = 300_000;

export interface SampleRun {
  readonly name: string;
  /** The sample as created, in the stack's folder (for `kubectl apply -f`). */
  readonly file: string;
  /** The run succeeded, and the report found every image in the target and the objects applied. */
  readonly ok: boolean;
}

/**
 * Runs the sample on `stack` (whose folder is `dir`) and prints its story. `onWatch` gets the
 * stop of the status watch as soon as it runs (to be called on shutdown).
 */
export async function runSample(
  stack: RunningStack,
  dir: string,
  onWatch: (stop: () => void) => void,
): Promise<SampleRun> {
  const { kc, cluster, upstream: up, target, logFile } = stack;
  const custom = kc.makeApiClient(CustomObjectsApi);
  await createSampleObjects(stack);
  const sample = sampleMirrorJob(up, target);
  const sampleFile = join(dir, "sample-mirrorjob.yaml");
  writeFileSync(sampleFile, stringify(sample));
  const sampleName = (sample.metadata as { name: string }).name;
  say(
    `created namespace ${NAMESPACE}: Secrets ${INPUTS.push}, ${INPUTS.pull} and ${INPUTS.source.secret}, ` +
      `ConfigMaps ${INPUTS.registryCa}, ${INPUTS.source.ca} and ${INPUTS.source.key}, and MirrorJob ${sampleName} ` +
      `(${SAMPLE_FILE} pointed at the upstream: ${sampleFile}):`,
  );
  const first = up.release.versions[0]?.version ?? "?";
  const last = up.release.versions.at(-1)?.version ?? "?";
  say(
    `  release channel ${up.release.channel} ${first} to ${last} with graph: true, operator package demo-operator, ` +
      "3 additional images;",
  );
  say(`  into ${target.host}/mirror, apply.mode Auto (disruptive: Allow)`);
  let ended: ((o: Outcome) => void) | undefined;
  const end = new Promise<Outcome>((done) => (ended = done));
  let last_: MirrorJobLike | undefined;
  say("");
  say("MirrorJob status changes (phase, conditions with their reasons, progress):");
  onWatch(
    watchMirrorJobs(kc, (mj) => {
      if (mj.metadata?.namespace !== NAMESPACE || mj.metadata.name !== sampleName) return;
      last_ = mj;
      const o = outcome(mj);
      if (o !== undefined) ended?.(o);
    }),
  );
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: NAMESPACE,
    body: sample,
  });
  const result = await Promise.race([end, sleep(SAMPLE_TIMEOUT_MS, "timeout" as const)]);
  // Let the last changes (Verified after Mirrored on a failure) print.
  await sleep(result === "Succeeded" ? 200 : 2_000);
  say("");
  say(
    result === "timeout"
      ? `the sample MirrorJob did not finish within ${SAMPLE_TIMEOUT_MS / 1000} s (see ${logFile})`
      : `the sample MirrorJob ${NAMESPACE}/${sampleName} ended: ${result}`,
  );
  if (result !== "Succeeded") {
    // Why, in the operator's words.
    for (const c of last_?.status?.conditions ?? []) {
      if (c.status !== "True" && c.message !== "") say(`  ${c.type}=${c.status}(${c.reason}): ${c.message}`);
    }
    const message = last_?.status?.lastRun?.message;
    if (message !== undefined) say(`  last run: ${message}`);
  }
  say("");
  say(`$ kubectl get mirrorjobs -A`);
  process.stdout.write(kubectlGet(cluster.kubeconfigFile));
  let shown = false;
  if (result === "Succeeded" && last_ !== undefined) {
    // The latest object (the watch may be a little behind).
    const mj = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: NAMESPACE,
      name: sampleName,
    })) as MirrorJobLike;
    say("");
    const jobName = mj.status?.lastRun?.jobName ?? "";
    showOcMirrorOutput(await stack.reporterLog(jobName), jobName);
    say("");
    const mirrored = await showMirrored(kc, mj, up, target);
    say("");
    const applied = await showApplied(kc, mj, target);
    shown = mirrored && applied;
  }
  return { name: sampleName, file: sampleFile, ok: result === "Succeeded" && shown };
}
