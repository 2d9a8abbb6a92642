/** What the parts of `npm start` (hack/dev-stack.ts) share: their output and the operator's namespace. */

/** The operator's namespace, and the sample MirrorJob's (as in config/samples). */
export const NAMESPACE = "hub-mirror-operator";
/** When `npm start` started, for the times it prints. */
export const START_TIME = Date.now();

export const say = (line = "") => {
  process.stdout.write(`${line}\n`);
};

export function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
