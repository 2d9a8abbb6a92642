#!/usr/bin/env node
/**
 * hub-mirror-operator's command line: `manager` runs the operator; `merge-auth` and `report`
 * run inside a mirror Job's pod, `report-prune` inside a prune Job's pod. One image serves all.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { configFromEnv, runManager } from "./manager.ts";
import { mergeAuth } from "./merge-auth.ts";
import { pullOci } from "./pull-oci.ts";
import { report } from "./report.ts";
import { reportPrune } from "./report-prune.ts";

const USAGE = `usage: hub-mirror-operator <command>

commands:
  manager     run the operator (configuration from HUBMIRROR_* environment variables)
  report      run a mirror Job's reporter (started by the operator, not by hand)
  report-prune  run a prune Job's reporter (oc-mirror delete; started by the operator)
  merge-auth  merge dockerconfigjson files into oc-mirror's authfile (a mirror Job's init container)
  pull-oci    copy an image into an OCI layout folder (a mirror Job's init container, for graph: true)
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "manager": {
      const logger = pino({
        level: process.env.HUBMIRROR_LOG_LEVEL ?? "info",
        base: { component: "manager" },
      });
      const kc = new KubeConfig();
      kc.loadFromDefault();
      const manager = await runManager(configFromEnv(process.env), kc, logger);
      logger.info({ healthPort: manager.health.port }, "manager started");
      await new Promise<void>((resolve) => {
        for (const signal of ["SIGINT", "SIGTERM"] as const)
          process.once(signal, () => {
            resolve();
          });
      });
      logger.info("shutting down");
      await manager.stop();
      return 0;
    }
    case "report":
      return report(rest);
    case "report-prune":
      return reportPrune(rest);
    case "merge-auth":
      return mergeAuth(rest);
    case "pull-oci":
      return pullOci(rest);
    case undefined:
    case "help":
    case "--help":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
