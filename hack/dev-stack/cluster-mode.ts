/**
 * `npm start` with a cluster configured: checks that the MirrorJob CRD is installed (installs it
 * from config/crd/ when missing and allowed), then runs the manager in this process against that
 * cluster, with Lease-based leader election (so an operator already installed there keeps this
 * one on standby), logging JSON lines (pino) to stdout until Ctrl-C.
 */
import { hostname } from "node:os";
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { GROUP, PLURAL, VERSION } from "../../src/api/mirrorjob.ts";
import { configFromEnv, runManager } from "../../src/cli/manager.ts";
import { installCrds, projectCrds } from "../../devkit/crds.ts";
import { errorText, isApiStatus } from "../../devkit/kube-errors.ts";
import { fail, NAMESPACE, say } from "./common.ts";

export const CRD_NAME = `${PLURAL}.${GROUP}`;

async function ensureCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const hint = "ask a cluster admin to run: kubectl apply --server-side -f config/crd/";
  try {
    const crd = await api.readCustomResourceDefinition({ name: CRD_NAME });
    const served = crd.spec.versions.filter((v) => v.served).map((v) => v.name);
    if (!served.includes(VERSION)) {
      fail(
        `CRD ${CRD_NAME} is installed but does not serve ${VERSION} (serves ${served.join(", ") || "nothing"}): ` +
          "update it with `kubectl apply --server-side -f config/crd/`",
      );
    }
    say(`CRD ${CRD_NAME} is installed (serves ${served.join(", ")})`);
    return;
  } catch (err) {
    if (isApiStatus(err, 403)) {
      // May not read CRDs: whether MirrorJobs are served tells the same.
      try {
        await kc
          .makeApiClient(CustomObjectsApi)
          .listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 });
        say(`MirrorJobs are served (this user may not read CRDs, so ${CRD_NAME} was not inspected)`);
        return;
      } catch (listErr) {
        if (isApiStatus(listErr, 404)) fail(`CRD ${CRD_NAME} is not installed; ${hint}`);
        fail(
          `this user may neither read CRDs nor list MirrorJobs (${errorText(listErr)}). The manager needs ` +
            `cluster-wide access to MirrorJobs (and Jobs, Pods, Secrets, ConfigMaps...); if CRD ${CRD_NAME} ` +
            `is missing, ${hint}`,
        );
      }
    }
    if (!isApiStatus(err, 404)) fail(`cannot check CRD ${CRD_NAME}: ${errorText(err)}`);
  }
  say(`CRD ${CRD_NAME} is not installed: installing it from config/crd/ ...`);
  try {
    await installCrds(kc, projectCrds());
  } catch (err) {
    if (isApiStatus(err, 403)) fail(`this user may not install CRD ${CRD_NAME} (${errorText(err)}); ${hint}`);
    fail(`installing CRD ${CRD_NAME} failed: ${errorText(err)}; ${hint}`);
  }
  say(`CRD ${CRD_NAME} installed`);
}

async function namespaceExists(kc: KubeConfig, name: string): Promise<boolean> {
  try {
    await kc.makeApiClient(CoreV1Api).readNamespace({ name });
    return true;
  } catch {
    return false;
  }
}

export async function clusterMode(kc: KubeConfig, why: string): Promise<void> {
  say(
    `cluster mode (${why}): context ${kc.getCurrentContext()}, API server ${kc.getCurrentCluster()?.server ?? "?"}`,
  );
  await ensureCrd(kc);
  const leaseNamespace =
    process.env.HUBMIRROR_NAMESPACE ??
    ((await namespaceExists(kc, NAMESPACE))
      ? NAMESPACE
      : (kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default"));
  const config = configFromEnv({
    HUBMIRROR_NAMESPACE: leaseNamespace,
    POD_NAME: `${hostname()}-dev-${process.pid}`,
    ...process.env,
  });
  say(
    config.leaderElection
      ? `leader election on: Lease ${config.namespace}/${config.leaseName} as ${config.identity} ` +
          "(if an operator in the cluster holds it, this one stands by; HUBMIRROR_LEADER_ELECTION=false turns election off)"
      : "leader election off (HUBMIRROR_LEADER_ELECTION=false): this process reconciles every MirrorJob",
  );
  say(
    `mirror Jobs will run on the cluster's nodes: oc-mirror image ${config.defaultOcMirrorImage}, ` +
      `reporter image ${config.operatorImage} (HUBMIRROR_OC_MIRROR_IMAGE, HUBMIRROR_OPERATOR_IMAGE)`,
  );
  const logger = pino({ level: process.env.HUBMIRROR_LOG_LEVEL ?? "info", base: { component: "manager" } });
  const manager = await runManager(config, kc, logger);
  say(`health: http://127.0.0.1:${manager.health.port}/healthz and /readyz`);
  say("manager logs follow (JSON lines); press Ctrl-C to stop");
  logger.info({ healthPort: manager.health.port, identity: config.identity }, "manager started");
  await new Promise<void>((done) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, done);
  });
  logger.info("shutting down");
  await manager.stop();
  say("manager stopped");
  process.exit(0);
}
