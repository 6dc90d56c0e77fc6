/**
 * Which local address BIND listens on and announces: one from which the expected peer can
 * connect, in the peer's family (RFC 1928 §4 with RFC 3089: the destination's family).
 *
 * Deno has no connected UDP socket to ask the kernel for the route's source address
 * (`node:dgram` `connect()` + `address()` reports the wildcard there), so the choice is made
 * from the interface list: the address whose on-link prefix contains the peer (longest prefix
 * first); else the address the client reached when it is of the peer's family; else the first
 * global address of the family; else a loopback one. A routed peer on a multi-homed host may
 * need `bind.external_address`.
 *
 * @module
 */

import { type IpAddress, parseIp, unmapIpv4 } from "../net/address.ts";
import { type Cidr, cidrContains, parseCidr } from "../net/cidr.ts";

/** A local interface address with its on-link prefix. */
export interface InterfaceAddress {
  /** The address. */
  readonly address: IpAddress;
  /** The on-link network. */
  readonly network: Cidr;
}

const LINK_LOCAL_V6 = parseCidr("fe80::/10");
const LOOPBACK = [parseCidr("127.0.0.0/8"), parseCidr("::1/128")];

/** This host's interface addresses, link-local IPv6 left out (they need a zone). */
export function hostInterfaces(): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  let interfaces: Deno.NetworkInterfaceInfo[];
  try {
    interfaces = Deno.networkInterfaces();
  } catch {
    return out; // no --allow-sys: callers fall back to the control connection's address
  }
  for (const nic of interfaces) {
    const parsed = parseIp(nic.address.split("%")[0]!);
    if (parsed === null) continue;
    const address = unmapIpv4(parsed);
    if (cidrContains(LINK_LOCAL_V6, address)) continue;
    try {
      out.push({
        address,
        network: parseCidr(nic.cidr ?? `${nic.address}/${address.family === 4 ? 32 : 128}`),
      });
    } catch { /* an odd entry: skip it */ }
  }
  return out;
}

/**
 * The local address of `family` that `peer` (when known) can reach; `reached` is the gateway
 * address the client connected to. `null` when the host has no address of the family.
 */
export function chooseBindAddress(
  family: 4 | 6,
  options: {
    readonly peer: IpAddress | null;
    readonly reached: IpAddress;
    readonly interfaces: readonly InterfaceAddress[];
  },
): IpAddress | null {
  const { peer, reached, interfaces } = options;
  const ofFamily = interfaces.filter((nic) => nic.address.family === family);
  if (peer !== null) {
    let best: InterfaceAddress | undefined;
    for (const nic of ofFamily) {
      if (!cidrContains(nic.network, peer)) continue;
      if (best === undefined || nic.network.prefixLength > best.network.prefixLength) best = nic;
    }
    if (best !== undefined) return best.address;
  }
  const isLoopback = (a: IpAddress) => LOOPBACK.some((cidr) => cidrContains(cidr, a));
  const peerIsLoopback = peer !== null && isLoopback(peer);
  if (reached.family === family && (peerIsLoopback || !isLoopback(reached))) return reached;
  const global = ofFamily.find((nic) => !isLoopback(nic.address));
  if (global !== undefined && !peerIsLoopback) return global.address;
  const loop = ofFamily.find((nic) => isLoopback(nic.address));
  if (loop !== undefined) return loop.address;
  if (reached.family === family) return reached;
  return global?.address ?? null;
}
