/**
 * A throw-away OpenPGP signing key made with Debian's `gpg` (GnuPG 2.2), as OpenShift release
 * signatures are: `gpg --sign` (binary, not armored, not detached) of a JSON body, verified by
 * oc-mirror against the armored public key named by OCP_SIGNATURE_VERIFICATION_PK
 * (oc-mirror internal/pkg/release/signature.go: openpgp.ReadArmoredKeyRing + ReadMessage).
 *
 * gpg runs its secret-key operations through a gpg-agent daemon that it starts itself (outside
 * setpriv's reach). `close()` stops that agent; the harness signs everything it needs right after
 * creating the key and then closes, so no agent outlives the upstream's start. (An agent whose
 * home folder is removed also exits by itself within a minute or so.)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * gpg-agent listens on a Unix socket in the home folder, and a socket path may have at most
 * 107 bytes: a harness folder deep in a test's TMPDIR is too long ("failed to start agent").
 * gpg is therefore given a short path in /tmp that links to the real home; the link goes when
 * the key is closed.
 */
const MAX_SOCKET_HOME = 80;

function shortHome(home: string): string {
  if (home.length <= MAX_SOCKET_HOME) return home;
  const dir = mkdtempSync("/tmp/hm-gpg-");
  const link = join(dir, "h");
  symlinkSync(home, link);
  return link;
}

export interface SigningKey {
  /** Armored public key file (what OCP_SIGNATURE_VERIFICATION_PK names). */
  readonly publicKeyFile: string;
  readonly publicKeyArmored: string;
  readonly fingerprint: string;
  /** `gpg --sign` of `body`: an OpenPGP message (one-pass signature, literal data, signature). */
  sign(body: string | Buffer): Buffer;
  /** Stops the key's gpg-agent. The key cannot sign afterwards. */
  close(): void;
}

function gpg(home: string, args: readonly string[], input?: string | Buffer): Buffer {
  return execFileSync(
    "gpg",
    [
      "--homedir",
      home,
      "--batch",
      "--no-tty",
      "--quiet",
      "--pinentry-mode",
      "loopback",
      "--passphrase",
      "",
      ...args,
    ],
    { input, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 16 * 1024 * 1024 },
  );
}

/** Creates an RSA-2048 signing-only key without passphrase in `dir/<name>` (a private GNUPGHOME). */
export function createSigningKey(dir: string, name: string): SigningKey {
  const realHome = join(dir, name);
  mkdirSync(realHome, { recursive: true, mode: 0o700 });
  const home = shortHome(realHome);
  const uid = `${name} (hub-mirror-operator tests) <${name}@release.test>`;
  gpg(home, ["--quick-gen-key", uid, "rsa2048", "sign", "never"]);
  const colons = gpg(home, ["--list-keys", "--with-colons", uid]).toString();
  const fingerprint = /^fpr:+([0-9A-F]+):/m.exec(colons)?.[1];
  if (fingerprint === undefined) throw new Error(`gpg made no key for ${uid}`);
  const publicKeyArmored = gpg(home, ["--armor", "--export", fingerprint]).toString();
  const publicKeyFile = join(dir, `${name}.pub.asc`);
  writeFileSync(publicKeyFile, publicKeyArmored);
  let closed = false;
  return {
    publicKeyFile,
    publicKeyArmored,
    fingerprint,
    sign: (body) => {
      if (closed) throw new Error(`signing key ${name} is closed`);
      return gpg(home, ["--local-user", fingerprint, "--sign", "--output", "-"], body);
    },
    close: () => {
      if (closed) return;
      closed = true;
      try {
        execFileSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], { stdio: "ignore" });
      } catch {
        // no agent running
      }
      if (home !== realHome) rmSync(join(home, ".."), { recursive: true, force: true });
    },
  };
}
