/**
 * `WWW-Authenticate` challenges (RFC 7235) as registries send them:
 * `Basic realm="x"` or `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
 */

export interface Challenge {
  /** Lower-cased, e.g. `basic`, `bearer`. */
  readonly scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

const SCHEME = /^([A-Za-z][\w.+-]*)\s*/;
const PARAM = /^,?\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*/;

/** Parses every challenge in a header value; parsing stops at syntax it does not know. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let rest = header.trim();
  for (let scheme = SCHEME.exec(rest); scheme?.[1] !== undefined; scheme = SCHEME.exec(rest)) {
    rest = rest.slice(scheme[0].length);
    const params: Record<string, string> = {};
    for (let param = PARAM.exec(rest); param?.[1] !== undefined; param = PARAM.exec(rest)) {
      params[param[1].toLowerCase()] =
        param[2] !== undefined ? param[2].replace(/\\(.)/g, "$1") : (param[3] ?? "");
      rest = rest.slice(param[0].length);
    }
    challenges.push({ scheme: scheme[1].toLowerCase(), params });
    rest = rest.replace(/^[\s,]+/, "");
  }
  return challenges;
}
