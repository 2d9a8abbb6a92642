/**
 * The real node's host link: the one way its pods reach servers on the host (the offline
 * upstream and the target registry a MirrorJob mirrors from and to; node.ts `hostLink`).
 *
 * Why a link: the node's pods live in network namespaces of their own behind the node's
 * bridge, where 127.0.0.1 is each pod's own loopback. The content of the upstream names its
 * registry by the address it was pushed with (release image-references, catalog bundles, the
 * update graph's payloads), so oc-mirror in a pod must reach the very name the host uses. A
 * forwarder cannot make a pod's 127.0.0.1 the host's; an address both sides reach can. So:
 *
 * - a veth pair: one end on the host (`hmh-<id>`, `<net>.1/30`), the other inside the node's
 *   network namespace (`hml0`, `<net>.2/30`), with a /30 of 10.245.0.0/16 picked at random
 *   and not used on the host, so that nodes of parallel test runs never share addresses (the
 *   node's own 10.244.0.0/24 stays invisible to the host: nothing of it is routed there);
 * - the servers for the node's pods listen on the host's end (`listenAddress` of
 *   registry.ts and upstream.ts), with certificates that name it;
 * - inside the node (its namespace: the host's tables are never touched): pods' packets for
 *   the link are routed by the node (`ip_forward` in its namespace) and leave with the node's
 *   end as their source (SNAT), so the host needs no route to the pods; a chain
 *   `HUBMIRROR-HOST-LINK` on FORWARD and OUTPUT lets through only TCP to the ports `allow()`
 *   names and rejects everything else sent into the link (counted: `counters()`); and
 *   nothing the host opens reaches into the node (INPUT and FORWARD from the link accept only
 *   replies).
 *
 * The node's namespace has no default route: a packet for any address other than the bridge's
 * subnet and the link's /30 is unroutable there. Both ends vanish with the node's network
 * namespace (a veth pair dies with either end), also after a SIGKILL of the test runner.
 */
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";
import type { NodeSandbox } from "./node-sandbox.ts";

export const LINK_CHAIN = "HUBMIRROR-HOST-LINK";
/** The link's end inside the node. */
export const NODE_LINK_INTERFACE = "hml0";

export interface HostLink {
  /** The host's end, e.g. `10.245.17.9`: servers for the node's pods listen here. */
  readonly hostAddress: string;
  /** The node's end: the source address of everything the node sends into the link. */
  readonly nodeAddress: string;
  /** `10.245.17.8/30` */
  readonly subnet: string;
  /** The host's interface (`hmh-<id>`). */
  readonly hostInterface: string;
  /** Lets the node (its pods) open TCP connections to these ports of `hostAddress`, only these. */
  allow(ports: readonly number[]): void;
  /** Packets sent into the link: `allowed` (to an allowed port) and `refused` (anything else). */
  counters(): { allowed: number; refused: number };
}

/** IPv4 addresses of the host's interfaces. */
function hostAddresses(): string[] {
  const out = execFileSync("ip", ["-j", "-4", "addr", "show"], { encoding: "utf8" });
  return (JSON.parse(out) as { addr_info?: { local?: string }[] }[]).flatMap((i) =>
    (i.addr_info ?? []).flatMap((a) => (a.local !== undefined ? [a.local] : [])),
  );
}

/** A /30 of 10.245.0.0/16 none of whose addresses the host uses (bounded tries). */
function pickSubnet(): { base: string; host: string; node: string } {
  const used = new Set(hostAddresses());
  for (let attempt = 0; attempt < 50; attempt++) {
    const third = randomInt(0, 256);
    const fourth = randomInt(0, 64) * 4;
    const addresses = [0, 1, 2, 3].map((i) => `10.245.${third}.${fourth + i}`);
    if (addresses.some((a) => used.has(a))) continue;
    return { base: addresses[0] ?? "", host: addresses[1] ?? "", node: addresses[2] ?? "" };
  }
  throw new Error("no free /30 in 10.245.0.0/16 for the node's host link");
}

/** Creates the link of a node's sandbox (see the module comment). */
export function createHostLink(sandbox: NodeSandbox): HostLink {
  const { base, host, node } = pickSubnet();
  const hostInterface = `hmh-${sandbox.name.slice(-8)}`;
  const subnet = `${base}/30`;
  // The pair is made on the host with its other end moved straight into the node's namespace.
  execFileSync("ip", [
    "link",
    "add",
    hostInterface,
    "type",
    "veth",
    "peer",
    "name",
    NODE_LINK_INTERFACE,
    "netns",
    String(sandbox.initPid),
  ]);
  try {
    execFileSync("ip", ["addr", "add", `${host}/30`, "dev", hostInterface]);
    execFileSync("ip", ["link", "set", hostInterface, "up"]);
    const run = (command: string, args: readonly string[]) => sandbox.run(command, args);
    run("ip", ["addr", "add", `${node}/30`, "dev", NODE_LINK_INTERFACE]);
    run("ip", ["link", "set", NODE_LINK_INTERFACE, "up"]);
    // Per network namespace: the node routes its pods' packets (the bridge's subnet <-> the link).
    run("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
    run("iptables", [
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "-o",
      NODE_LINK_INTERFACE,
      "-j",
      "SNAT",
      "--to-source",
      node,
    ]);
    run("iptables", ["-N", LINK_CHAIN]);
    run("iptables", ["-A", LINK_CHAIN, "-j", "REJECT"]);
    run("iptables", ["-I", "FORWARD", "1", "-o", NODE_LINK_INTERFACE, "-j", LINK_CHAIN]);
    run("iptables", ["-I", "OUTPUT", "1", "-o", NODE_LINK_INTERFACE, "-j", LINK_CHAIN]);
    const repliesOnly = [
      "-i",
      NODE_LINK_INTERFACE,
      "-m",
      "conntrack",
      "!",
      "--ctstate",
      "ESTABLISHED,RELATED",
      "-j",
      "DROP",
    ];
    run("iptables", ["-I", "INPUT", "1", ...repliesOnly]);
    run("iptables", ["-I", "FORWARD", "1", ...repliesOnly]);
  } catch (err) {
    // Deleting one end deletes the pair.
    try {
      execFileSync("ip", ["link", "del", hostInterface], { stdio: "ignore" });
    } catch {
      // gone with the node's namespace already
    }
    throw err;
  }
  const allowed = new Set<number>();
  return {
    hostAddress: host,
    nodeAddress: node,
    subnet,
    hostInterface,
    allow(ports) {
      for (const port of ports) {
        if (allowed.has(port)) continue;
        sandbox.run("iptables", [
          "-I",
          LINK_CHAIN,
          "1",
          "-d",
          host,
          "-p",
          "tcp",
          "--dport",
          String(port),
          "-j",
          "ACCEPT",
        ]);
        allowed.add(port);
      }
    },
    counters() {
      // `iptables -L <chain> -v -x -n`: two header lines, then "pkts bytes target ...".
      const lines = sandbox.run("iptables", ["-L", LINK_CHAIN, "-v", "-x", "-n"]).trim().split("\n").slice(2);
      let accepted = 0;
      let refused = 0;
      for (const line of lines) {
        const [pkts, , target] = line.trim().split(/\s+/);
        if (target === "ACCEPT") accepted += Number(pkts);
        else if (target === "REJECT") refused += Number(pkts);
      }
      return { allowed: accepted, refused };
    },
  };
}
