/**
 * Verification of a run: every destination image the run was supposed to mirror is
 * checked in the target registry with a manifest HEAD (bounded concurrency, one
 * long-lived client per registry), and its `Docker-Content-Digest` is compared with
 * the expected digest where one is known (the source was digest-pinned, or the
 * destination is a digest reference).
 *
 * The result is deterministic for a given registry state: problems are the first
 * ones in input order (not in completion order), counts do not depend on timing.
 * `verifiedCondition` turns a result into the `Verified` condition.
 *
 * Memory does not grow with the number of images beyond the caller's own list:
 * workers take the next index, counters and a bounded problem list are all that is kept.
 */
import { sha256Digest, type Manifest, type ManifestInfo } from "./client.ts";
import { RegistryError, type RegistryErrorKind } from "./errors.ts";
import { parseReference, type ImageReference } from "./reference.ts";

export type ExpectedImageKind = "release" | "catalog" | "image";

export interface ExpectedImage {
  /** `host[:port]/path/repo:tag` or `...@sha256:...` */
  readonly destination: string;
  /** Digest the destination must resolve to (known when the source was digest-pinned). */
  readonly expectedDigest?: string;
  /** Release payload images and operator catalogs are called out in the result. */
  readonly kind?: ExpectedImageKind;
}

/** What verification needs from a registry client (RegistryClient has it). */
export interface ManifestChecker {
  /** `host[:port]` */
  readonly registry: string;
  ping(): Promise<void>;
  headManifest(repository: string, reference: string): Promise<ManifestInfo | undefined>;
  /** Used only when a registry answers HEAD without `Docker-Content-Digest`. */
  getManifest?(repository: string, reference: string): Promise<Manifest | undefined>;
  /** Called ahead of the first check of a repository (e.g. to fetch its token early). */
  prepare?(repository: string): void;
}

/**
 * How far ahead of the checks in flight repositories are prepared: far enough that a
 * token request finishes before the workers reach the repository.
 */
const PREPARE_AHEAD = 2;

/**
 * A client, or a factory returning the client for a registry and repository. A factory
 * must return the same object for destinations that should share a client (e.g. one
 * per registry and credentials, see RegistryClients); the caller owns and closes them.
 */
export type ClientSource = ManifestChecker | ((registry: string, repository: string) => ManifestChecker);

export interface VerifyOptions {
  /** Manifest checks in flight at once (default 32). */
  readonly concurrency?: number;
  /** Problems listed in the result (default 20). */
  readonly maxProblems?: number;
  /** Stops starting new checks; images not checked count as errors. */
  readonly signal?: AbortSignal;
}

export type ProblemType = "missing" | "digest-mismatch" | "error";
export type VerifyErrorKind = RegistryErrorKind | "invalid-reference" | "aborted";

export interface VerifyProblem {
  readonly destination: string;
  readonly problem: ProblemType;
  readonly kind?: ExpectedImageKind;
  readonly expected?: string;
  readonly actual?: string;
  /** For errors: what went wrong (never contains credentials). */
  readonly message?: string;
}

export interface VerifyResult {
  /** The common registry/path prefix of all destinations, e.g. `registry.example.com:8443/mirror`. */
  readonly target: string;
  readonly checked: number;
  readonly present: number;
  readonly missing: number;
  readonly mismatched: number;
  readonly errors: number;
  /** Present images whose digest was compared (the rest had no expected digest). */
  readonly digestsCompared: number;
  /** The first problems in input order. */
  readonly problems: readonly VerifyProblem[];
  /** At least one image of kind `release` is missing. */
  readonly releasePayloadMissing: boolean;
  /** Missing images of kind `catalog`, in input order (at most maxProblems). */
  readonly catalogsMissing: readonly string[];
  /** The first error in input order, which decides the condition's reason. */
  readonly firstError?: {
    readonly destination: string;
    readonly kind: VerifyErrorKind;
    readonly message: string;
  };
}

/** Failures after which further checks on the same registry are pointless. */
const REGISTRY_WIDE: ReadonlySet<RegistryErrorKind> = new Set(["unreachable", "tls", "timeout"]);

interface ClientState {
  readonly client: ManifestChecker;
  /** Resolves with the ping's failure, or undefined when the registry answered. */
  readonly ready: Promise<RegistryError | undefined>;
  broken?: RegistryError;
}

/** Keeps the `limit` entries with the lowest index, sorted by index. */
class FirstN<T> {
  readonly items: { index: number; value: T }[] = [];
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(index: number, value: T): void {
    const items = this.items;
    if (items.length >= this.limit && index > (items[items.length - 1]?.index ?? Infinity)) return;
    let at = items.length;
    while (at > 0 && (items[at - 1]?.index ?? -1) > index) at--;
    items.splice(at, 0, { index, value });
    if (items.length > this.limit) items.pop();
  }

  values(): T[] {
    return this.items.map((i) => i.value);
  }
}

function asRegistryError(err: unknown, registry: string): RegistryError {
  if (err instanceof RegistryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RegistryError("protocol", `registry ${registry}: ${message}`);
}

/** `host/repo` of `host/repo:tag@digest`, cheaply (no validation). */
function repositoryKey(destination: string): string {
  const at = destination.indexOf("@");
  const name = at >= 0 ? destination.slice(0, at) : destination;
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
}

/** `host` and the path components before the repository's last one. */
function prefixOf(ref: ImageReference): string[] {
  return [ref.registry, ...ref.repository.split("/").slice(0, -1)];
}

export async function verifyImages(
  images: readonly ExpectedImage[],
  clients: ClientSource,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 32));
  const maxProblems = options.maxProblems ?? 20;
  const states = new Map<ManifestChecker, ClientState>();
  const problems = new FirstN<VerifyProblem>(maxProblems);
  const catalogs = new FirstN<string>(maxProblems);
  let firstError: { index: number; value: NonNullable<VerifyResult["firstError"]> } | undefined;
  let present = 0;
  let missing = 0;
  let mismatched = 0;
  let errors = 0;
  let digestsCompared = 0;
  let releasePayloadMissing = false;
  let prefix: string[] | undefined;

  const stateFor = (ref: ImageReference): ClientState | RegistryError => {
    let client: ManifestChecker;
    if (typeof clients === "function") {
      client = clients(ref.registry, ref.repository);
    } else {
      client = clients;
      if (client.registry !== ref.registry) {
        return new RegistryError(
          "protocol",
          `not on registry ${client.registry}, which is the only one checked`,
        );
      }
    }
    let state = states.get(client);
    if (state === undefined) {
      // One ping per client: a registry that is down, refuses the credentials or the
      // TLS handshake fails every image at once instead of once per image.
      const ready = client.ping().then(
        () => undefined,
        (err: unknown) => asRegistryError(err, client.registry),
      );
      state = { client, ready };
      states.set(client, state);
    }
    return state;
  };

  const recordError = (index: number, image: ExpectedImage, kind: VerifyErrorKind, message: string): void => {
    errors++;
    problems.add(index, {
      destination: image.destination,
      problem: "error",
      ...(image.kind !== undefined && { kind: image.kind }),
      message,
    });
    if (firstError === undefined || index < firstError.index) {
      firstError = { index, value: { destination: image.destination, kind, message } };
    }
  };

  const check = async (index: number, image: ExpectedImage): Promise<void> => {
    let ref: ImageReference;
    try {
      ref = parseReference(image.destination);
    } catch (err) {
      recordError(index, image, "invalid-reference", err instanceof Error ? err.message : String(err));
      return;
    }
    const components = prefixOf(ref);
    if (prefix === undefined) prefix = components;
    else {
      let n = 0;
      while (n < prefix.length && n < components.length && prefix[n] === components[n]) n++;
      if (n < prefix.length) prefix = prefix.slice(0, n);
    }
    const state = stateFor(ref);
    if (state instanceof RegistryError) {
      recordError(index, image, state.kind, `${image.destination}: ${state.message}`);
      return;
    }
    const unavailable = (await state.ready) ?? state.broken;
    if (unavailable !== undefined) {
      recordError(index, image, unavailable.kind, unavailable.message);
      return;
    }
    const reference = ref.digest ?? ref.tag ?? "latest";
    const expected = image.expectedDigest ?? ref.digest;
    let actual: string | undefined;
    try {
      const info = await state.client.headManifest(ref.repository, reference);
      if (info === undefined) {
        missing++;
        if (image.kind === "release") releasePayloadMissing = true;
        if (image.kind === "catalog") catalogs.add(index, image.destination);
        problems.add(index, {
          destination: image.destination,
          problem: "missing",
          ...(image.kind !== undefined && { kind: image.kind }),
          ...(expected !== undefined && { expected }),
        });
        return;
      }
      actual = info.digest;
      if (actual === "" && expected !== undefined && state.client.getManifest !== undefined) {
        const manifest = await state.client.getManifest(ref.repository, reference);
        actual = manifest !== undefined ? sha256Digest(manifest.body) : "";
      }
    } catch (err) {
      const error = asRegistryError(err, state.client.registry);
      if (REGISTRY_WIDE.has(error.kind)) state.broken ??= error;
      recordError(index, image, error.kind, error.message);
      return;
    }
    if (expected === undefined) {
      present++;
      return;
    }
    digestsCompared++;
    if (actual === expected) {
      present++;
      return;
    }
    mismatched++;
    problems.add(index, {
      destination: image.destination,
      problem: "digest-mismatch",
      ...(image.kind !== undefined && { kind: image.kind }),
      expected,
      actual: actual === "" ? "(no digest reported)" : actual,
    });
  };

  // Lists are grouped by repository, so every worker reaches a new repository at about
  // the same time; preparing the repository `PREPARE_AHEAD * concurrency` images ahead
  // (once, after its client answered the ping) keeps them from all waiting for its token.
  let prepared = -1;
  let lastPrepared = "";
  let preparing = false;
  const prepareAhead = async (ahead: number): Promise<void> => {
    if (preparing) return; // one worker at a time walks ahead; the others go on checking
    preparing = true;
    try {
      while (prepared < ahead) {
        const destination = images[++prepared]?.destination ?? "";
        const repo = repositoryKey(destination);
        if (repo === lastPrepared) continue;
        lastPrepared = repo;
        let ref: ImageReference;
        try {
          ref = parseReference(destination);
        } catch {
          continue; // reported when the image itself is checked
        }
        const state = stateFor(ref);
        if (state instanceof RegistryError || state.client.prepare === undefined) continue;
        if ((await state.ready) === undefined) state.client.prepare(ref.repository);
      }
    } finally {
      preparing = false;
    }
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < images.length; index = next++) {
      const image = images[index];
      if (image === undefined) continue;
      if (options.signal?.aborted === true) {
        recordError(index, image, "aborted", "verification was stopped before this image was checked");
        continue;
      }
      const ahead = Math.min(images.length - 1, index + PREPARE_AHEAD * concurrency);
      if (ahead > prepared) await prepareAhead(ahead);
      await check(index, image);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, images.length)) }, worker));

  return {
    target: prefix?.join("/") ?? "",
    checked: images.length,
    present,
    missing,
    mismatched,
    errors,
    digestsCompared,
    problems: problems.values(),
    releasePayloadMissing,
    catalogsMissing: catalogs.values(),
    ...(firstError !== undefined && { firstError: firstError.value }),
  };
}

export type VerifiedReason =
  | "AllImagesPresent"
  | "NothingToVerify"
  | "ImagesMissing"
  | "DigestMismatch"
  | "RegistryUnreachable"
  | "RegistryAuthFailed"
  | "RegistryTLSFailed";

export interface VerifiedCondition {
  readonly status: "True" | "False";
  readonly reason: VerifiedReason;
  readonly message: string;
}

/** metav1.Condition allows 32768 characters; stay far below. */
const MAX_MESSAGE = 2_000;
const NAMED = 3;
const RERUN = "re-run the MirrorJob (change spec.runRequest)";

function images(n: number): string {
  return `${n} image${n === 1 ? "" : "s"}`;
}

function list(names: readonly string[], total: number): string {
  const shown = names.slice(0, NAMED).join(", ");
  return total > NAMED ? `${shown} and ${total - NAMED} more` : shown;
}

function reasonForError(kind: VerifyErrorKind): VerifiedReason {
  if (kind === "unauthorized" || kind === "forbidden") return "RegistryAuthFailed";
  if (kind === "tls") return "RegistryTLSFailed";
  if (kind === "invalid-reference") return "ImagesMissing";
  return "RegistryUnreachable";
}

function adviceForError(reason: VerifiedReason, kind: VerifyErrorKind): string {
  switch (reason) {
    case "RegistryAuthFailed":
      return "check that the push secret (spec.registry.pushSecretRef) holds valid credentials with pull access to these repositories";
    case "RegistryTLSFailed":
      return "trust the registry's CA with spec.registry.caBundleRef (or set spec.registry.tlsVerify: false)";
    case "ImagesMissing":
      return `the run's image list is malformed; ${RERUN}`;
    default:
      return kind === "aborted"
        ? "verification will run again"
        : "check that the registry is up and reachable from the operator (network policies, spec.proxy); " +
            "verification runs again every minute until the registry answers";
  }
}

function cap(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
}

/**
 * The `Verified` condition for a result, with a message that says what is wrong, where,
 * and what to do. Errors (the registry could not answer) come first: they make the
 * other counts incomplete. Then missing images, then digest mismatches.
 */
export function verifiedCondition(result: VerifyResult): VerifiedCondition {
  const where = result.target !== "" ? result.target : "the registry";
  const total = result.checked;
  if (result.errors > 0 && result.firstError !== undefined) {
    const reason = reasonForError(result.firstError.kind);
    const message =
      `${result.errors} of ${images(total)} could not be checked in ${where}: ${result.firstError.message}` +
      (result.missing > 0 ? `; ${result.missing} more are missing` : "") +
      `; ${adviceForError(reason, result.firstError.kind)}`;
    return { status: "False", reason, message: cap(message) };
  }
  if (result.missing > 0) {
    const missing = result.problems.filter((p) => p.problem === "missing");
    const release = missing.find((p) => p.kind === "release");
    const callouts: string[] = [];
    if (result.releasePayloadMissing) {
      callouts.push(`the release payload${release !== undefined ? ` (${release.destination})` : ""}`);
    }
    if (result.catalogsMissing.length > 0) {
      const n = result.catalogsMissing.length;
      callouts.push(
        `${n === 1 ? "the operator catalog" : `${n} operator catalogs`} ${list(result.catalogsMissing, n)}`,
      );
    }
    const others = missing
      .filter((p) => p.kind !== "release" && p.kind !== "catalog")
      .map((p) => p.destination);
    const message =
      `${result.missing} of ${images(total)} ${result.missing === 1 ? "is" : "are"} missing from ${where}` +
      (callouts.length > 0 ? `, including ${callouts.join(" and ")}` : "") +
      (others.length > 0 ? `; missing: ${list(others, others.length)}` : "") +
      (result.mismatched > 0
        ? `; ${result.mismatched} more ${result.mismatched === 1 ? "has" : "have"} a different digest than mirrored`
        : "") +
      `: ${RERUN}`;
    return { status: "False", reason: "ImagesMissing", message: cap(message) };
  }
  if (result.mismatched > 0) {
    const first = result.problems.find((p) => p.problem === "digest-mismatch");
    const message =
      `${result.mismatched} of ${images(total)} in ${where} ${result.mismatched === 1 ? "has" : "have"} a different digest than mirrored` +
      (first !== undefined
        ? `, e.g. ${first.destination} (expected ${first.expected ?? "?"}, found ${first.actual ?? "?"})`
        : "") +
      `: something pushed over these tags after the run; ${RERUN} and make sure nothing else writes to these repositories`;
    return { status: "False", reason: "DigestMismatch", message: cap(message) };
  }
  if (total === 0) {
    // Nothing checked proves nothing: a run whose mapping is empty (or was never written)
    // copied nothing that could be found again, so it is not verified.
    return {
      status: "False",
      reason: "NothingToVerify",
      message: `the run lists no images to verify in ${where}: oc-mirror wrote no image mapping, so nothing it mirrored can be checked; see the run's log and change spec.runRequest to run again`,
    };
  }
  const message =
    `all ${images(total)} are present in ${where}` +
    (result.digestsCompared > 0
      ? result.digestsCompared === total
        ? " with the expected digests"
        : ` (${result.digestsCompared} digests compared)`
      : "");
  return { status: "True", reason: "AllImagesPresent", message: cap(message) };
}
