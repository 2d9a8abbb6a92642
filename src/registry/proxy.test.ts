import { describe, expect, it } from "vitest";
import {
  proxyFromEnvironment,
  proxySecrets,
  proxySettings,
  secureContextFor,
  usesProxy,
  withOperatorNoProxy,
} from "./proxy.ts";

describe("proxy settings", () => {
  it("always exempts cluster services and loopback, without duplicates", () => {
    expect(withOperatorNoProxy(undefined)).toBe(".svc,.svc.cluster.local,localhost,127.0.0.1");
    expect(withOperatorNoProxy(" .corp.example.com, localhost ,10.0.0.0/8")).toBe(
      ".corp.example.com,localhost,10.0.0.0/8,.svc,.svc.cluster.local,127.0.0.1",
    );
  });

  it("reads the environment, lower case first, empty meaning unset", () => {
    expect(
      proxyFromEnvironment({
        https_proxy: "http://lower:3128",
        HTTPS_PROXY: "http://upper:3128",
        HTTP_PROXY: "http://plain:3128",
        no_proxy: "",
        NO_PROXY: "registry.example.com",
      }),
    ).toEqual({
      httpProxy: "http://plain:3128",
      httpsProxy: "http://lower:3128",
      noProxy: "registry.example.com,.svc,.svc.cluster.local,localhost,127.0.0.1",
    });
    expect(proxyFromEnvironment({})).toEqual({ noProxy: ".svc,.svc.cluster.local,localhost,127.0.0.1" });
  });

  it("normalizes spec.proxy", () => {
    expect(proxySettings({ httpsProxy: " http://p:3128 ", httpProxy: "" })).toEqual({
      httpsProxy: "http://p:3128",
      noProxy: ".svc,.svc.cluster.local,localhost,127.0.0.1",
    });
  });

  it("proxies registry traffic only with an HTTPS proxy, as Go does", () => {
    expect(usesProxy({ httpProxy: "http://p:3128" })).toBe(false);
    expect(usesProxy({ httpsProxy: "http://p:3128" })).toBe(true);
    expect(usesProxy(undefined)).toBe(false);
  });

  it("knows the passwords in proxy URLs", () => {
    expect(proxySecrets({ httpsProxy: "http://user:p%40ss@proxy:3128" })).toEqual(["p%40ss", "p@ss"]);
    expect(proxySecrets({ httpsProxy: "http://proxy:3128" })).toEqual([]);
    expect(proxySecrets({ httpsProxy: "not a url" })).toEqual([]);
  });
});

describe("secureContextFor", () => {
  const pem = (n: number) =>
    `-----BEGIN CERTIFICATE-----\nnot parsed ${String(n)}\n-----END CERTIFICATE-----\n`;
  it("shares one context per CA list, and keeps at most 16", () => {
    // Text without a certificate block Node takes as an empty list: enough to tell lists apart.
    const a = secureContextFor([]);
    expect(secureContextFor([])).toBe(a);
    const others = Array.from({ length: 16 }, (_, i) => secureContextFor([`# ${pem(i)}`]));
    expect(new Set(others).size).toBe(16);
    expect(secureContextFor(["# " + pem(15)])).toBe(others[15]);
    // The least recently used (the empty list) went when the 17th came.
    expect(secureContextFor([])).not.toBe(a);
  });
});
