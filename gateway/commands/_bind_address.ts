/**
 * Which local address BIND listens on and announces: the one the gateway's routing would use as
 * its source towards the expected peer, in the peer's family (RFC 1928 §4 with RFC 3089: on a
 * dual-homed gateway the client and the peer are on different links, so the address the client
 * reached is often one the peer cannot reach).
 *
 * Deno has no connected UDP socket to ask the kernel for the route's source address
 * (`node:dgram` `connect()` + `address()` reports the wildcard there), so the route is looked
 * up here, the way the kernel's main table would choose it: the longest prefix (then lowest
 * metric) of `/proc/net/route` or `/proc/net/ipv6_route` that holds the peer (for DST.ADDR all
 * zeros, the family's default route); the source is the outgoing interface's address whose
 * prefix holds the next hop (or the peer, on link), else its first address. Policy routing and
 * a route's `src` hint are not seen; `bind.external_address` covers those and NAT.
 *
 * Order: the interface whose on-link prefix holds the peer (longest first); for a loopback peer
 * a loopback address; the route's source; else the address the client reached when it is of the
 * peer's family; else the first global address of the family; else a loopback one.
 *
 * @module
 */

import { type IpAddress, parseIp, sameIp, unmapIpv4 } from "../../net/address.ts";
import { type Cidr, cidrContains, parseCidr } from "../../net/cidr.ts";

/** A local interface address with its on-link prefix. */
export interface InterfaceAddress {
  /** The address. */
  readonly address: IpAddress;
  /** The on-link network. */
  readonly network: Cidr;
  /** The interface's name (`eth0`), as in the routing table. */
  readonly name?: string;
}

/** One route of the kernel's main table. */
export interface RouteEntry {
  /** The destination prefix (`/0` for a default route). */
  readonly destination: Cidr;
  /** The next hop, `null` when the destination is on link. */
  readonly via: IpAddress | null;
  /** The outgoing interface's name. */
  readonly device: string;
  /** The route's metric; lower wins among equal prefixes. */
  readonly metric: number;
}

const LINK_LOCAL_V6 = parseCidr("fe80::/10");
const LOOPBACK = [parseCidr("127.0.0.0/8"), parseCidr("::1/128")];

const RTF_UP = 0x1;
const RTF_REJECT = 0x200;
const RTF_LOCAL = 0x80000000;

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
        name: nic.name,
      });
    } catch { /* an odd entry: skip it */ }
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** The 4 bytes of an IPv4 field of `/proc/net/route` (host-order hex of network-order bytes). */
function procIpv4(hex: string): Uint8Array | null {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return null;
  const value = parseInt(hex, 16);
  const bytes = Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
  return LITTLE_ENDIAN ? bytes.reverse() : bytes;
}

/** The prefix length of a contiguous netmask, `null` for a non-contiguous one. */
function prefixOfMask(mask: Uint8Array): number | null {
  let length = 0;
  while (length < 32 && mask[length >> 3]! & (0x80 >> (length & 7))) length++;
  for (let bit = length; bit < 32; bit++) {
    if (mask[bit >> 3]! & (0x80 >> (bit & 7))) return null;
  }
  return length;
}

/** Parses `/proc/net/route` (IPv4 main table); unusable lines are skipped. */
export function parseIpv4Routes(text: string): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const line of text.split("\n").slice(1)) {
    const [device, destination, gateway, flags, , , metric, mask] = line.trim().split(/\s+/);
    if (device === undefined || mask === undefined) continue;
    const flagBits = parseInt(flags ?? "", 16);
    if (!(flagBits & RTF_UP) || flagBits & RTF_REJECT) continue;
    const network = procIpv4(destination!);
    const hop = procIpv4(gateway!);
    const maskBytes = procIpv4(mask);
    const prefixLength = maskBytes ? prefixOfMask(maskBytes) : null;
    if (!network || !hop || prefixLength === null) continue;
    out.push({
      destination: { network: { family: 4, bytes: network }, prefixLength },
      via: hop.every((b) => b === 0) ? null : { family: 4, bytes: hop },
      device,
      metric: Number(metric) || 0,
    });
  }
  return out;
}

function hexBytes(hex: string | undefined): Uint8Array | null {
  if (hex === undefined || !/^[0-9a-fA-F]{32}$/.test(hex)) return null;
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Parses `/proc/net/ipv6_route`; local, reject and unusable entries are skipped. */
export function parseIpv6Routes(text: string): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const line of text.split("\n")) {
    const [destination, length, , , nextHop, metric, , , flags, device] = line.trim().split(/\s+/);
    if (device === undefined) continue;
    const flagBits = parseInt(flags ?? "", 16) >>> 0;
    if (!(flagBits & RTF_UP) || flagBits & RTF_REJECT || (flagBits & RTF_LOCAL) !== 0) continue;
    const network = hexBytes(destination);
    const hop = hexBytes(nextHop);
    const prefixLength = parseInt(length ?? "", 16);
    if (!network || !hop || !(prefixLength >= 0 && prefixLength <= 128)) continue;
    out.push({
      destination: { network: { family: 6, bytes: network }, prefixLength },
      via: hop.every((b) => b === 0) ? null : { family: 6, bytes: hop },
      device,
      metric: parseInt(metric ?? "", 16) || 0,
    });
  }
  return out;
}

/** This host's main routing table for `family` from `/proc`; `[]` where it cannot be read. */
export function hostRoutes(family: 4 | 6): RouteEntry[] {
  try {
    return family === 4
      ? parseIpv4Routes(Deno.readTextFileSync("/proc/net/route"))
      : parseIpv6Routes(Deno.readTextFileSync("/proc/net/ipv6_route"));
  } catch {
    return []; // not Linux, or no --allow-read: the interface-based choice remains
  }
}

/**
 * The source address the routing table gives towards `destination` (`null`: the family's
 * default route), or `null` when no route matches or its interface has no usable address.
 */
export function routeSource(
  family: 4 | 6,
  destination: IpAddress | null,
  options: {
    readonly routes: readonly RouteEntry[];
    readonly interfaces: readonly InterfaceAddress[];
  },
): IpAddress | null {
  let best: RouteEntry | undefined;
  for (const route of options.routes) {
    if (route.destination.network.family !== family) continue;
    const matches = destination === null
      ? route.destination.prefixLength === 0
      : cidrContains(route.destination, destination);
    if (!matches) continue;
    if (
      best === undefined || route.destination.prefixLength > best.destination.prefixLength ||
      (route.destination.prefixLength === best.destination.prefixLength &&
        route.metric < best.metric)
    ) best = route;
  }
  if (best === undefined) return null;
  const onDevice = options.interfaces.filter((nic) =>
    nic.name === best.device && nic.address.family === family
  );
  const toward = best.via ?? destination;
  const onLink = toward === null
    ? undefined
    : onDevice.find((nic) => cidrContains(nic.network, toward));
  return (onLink ?? onDevice[0])?.address ?? null;
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
    /** The main routing table. @default [] (no route lookup) */
    readonly routes?: readonly RouteEntry[];
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
  const loop = ofFamily.find((nic) => isLoopback(nic.address));
  if (peerIsLoopback && loop !== undefined) return loop.address;
  // A peer that is one of this host's own addresses reaches itself.
  if (peer !== null && ofFamily.some((nic) => sameIp(nic.address, peer))) return peer;
  if (!peerIsLoopback && options.routes !== undefined) {
    const routed = routeSource(family, peer, { routes: options.routes, interfaces: ofFamily });
    if (routed !== null && !isLoopback(routed)) return routed;
  }
  if (reached.family === family && (peerIsLoopback || !isLoopback(reached))) return reached;
  const global = ofFamily.find((nic) => !isLoopback(nic.address));
  if (global !== undefined && !peerIsLoopback) return global.address;
  if (loop !== undefined) return loop.address;
  if (reached.family === family) return reached;
  return global?.address ?? null;
}
