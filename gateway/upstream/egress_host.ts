/**
 * Is this host set up for the configured egress addresses? `check` prints, and `serve` logs at
 * start, a warning for each pool the host cannot leave from:
 * - a listed address (`egress`) that cannot be bound: the host does not have it;
 * - a prefix (`egress_prefix`) whose addresses cannot be bound: `net.ipv6.ip_nonlocal_bind` is
 *   off (node:net cannot set `IP_FREEBIND` on its sockets, so the sysctl is the way);
 * - a prefix with no local route covering it: answers to its addresses would not be delivered
 *   to this host (`ip -6 route add local PREFIX dev lo`).
 *
 * The probe binds a UDP socket to port 0 of the address (and closes it), and reads the local
 * routes from `/proc/net/ipv6_route` (Linux; elsewhere that part is skipped).
 *
 * @module
 */

import { formatIp, type IpAddress } from "../../net/address.ts";
import { type Cidr, cidrWithin, formatCidr } from "../../net/cidr.ts";
import { errorText } from "../../net/error_text.ts";
import type { Config, EgressConfig } from "../config/types.ts";
import type { ConfigWarning } from "../config/warnings.ts";
import { addressInPrefix } from "./egress.ts";

/** What the host is asked (a test hook). */
export interface EgressHostProbe {
  /** `null` when a socket can be bound to `address`, else why not. */
  bindError(address: IpAddress): string | null;
  /** The IPv6 local routes (`ip -6 route show table local`), or `null` when unknown. */
  localRoutes(): Cidr[] | null;
}

/** The probe of this host: a UDP bind, and `/proc/net/ipv6_route`. */
export const HOST_PROBE: EgressHostProbe = {
  bindError(address) {
    try {
      Deno.listenDatagram({ transport: "udp", hostname: formatIp(address), port: 0 }).close();
      return null;
    } catch (error) {
      return errorText(error);
    }
  },
  localRoutes() {
    let text: string;
    try {
      text = Deno.readTextFileSync("/proc/net/ipv6_route");
    } catch {
      return null;
    }
    return parseLocalRoutes(text);
  },
};

/** RTF_LOCAL in the flags column of `/proc/net/ipv6_route`. */
const RTF_LOCAL = 0x80000000;

/** The local routes in the text of `/proc/net/ipv6_route`. */
export function parseLocalRoutes(text: string): Cidr[] {
  const routes: Cidr[] = [];
  for (const line of text.split("\n")) {
    const [dest, length, , , , , , , flags] = line.trim().split(/\s+/);
    if (!dest || dest.length !== 32 || !length || !flags) continue;
    if ((Number.parseInt(flags, 16) & RTF_LOCAL) === 0) continue;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(dest.slice(i * 2, i * 2 + 2), 16);
    routes.push({ network: { family: 6, bytes }, prefixLength: Number.parseInt(length, 16) });
  }
  return routes;
}

/** The pools of `config`, with their YAML paths. */
function poolsOf(config: Config): { path: string; egress: EgressConfig }[] {
  return [
    ...config.routes.flatMap((route, i) =>
      route.egress ? [{ path: `routes[${i}]`, egress: route.egress }] : []
    ),
    ...config.auth.users.flatMap((user, i) =>
      user.egress ? [{ path: `auth.users[${i}]`, egress: user.egress }] : []
    ),
  ];
}

/** Warnings for each egress pool of `config` this host cannot leave from. */
export function egressHostWarnings(
  config: Config,
  probe: EgressHostProbe = HOST_PROBE,
): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  let routes: Cidr[] | null | undefined;
  for (const { path, egress } of poolsOf(config)) {
    egress.addresses.forEach((address, index) => {
      const error = probe.bindError(address);
      if (error !== null) {
        warnings.push({
          path: `${path}.egress[${index}]`,
          message: `cannot bind ${formatIp(address)} (${error}): connections from it will fail ` +
            `with REP 3; the host does not have this address`,
        });
      }
    });
    const prefix = egress.prefix;
    if (prefix === undefined) continue;
    const shown = formatCidr(prefix);
    const sample = addressInPrefix(prefix, crypto.getRandomValues(new Uint8Array(16)));
    const error = probe.bindError(sample);
    if (error !== null) {
      warnings.push({
        path: `${path}.egress_prefix`,
        message: `cannot bind ${formatIp(sample)} of ${shown} (${error}): ` +
          `set sysctl net.ipv6.ip_nonlocal_bind=1`,
      });
    }
    routes ??= probe.localRoutes();
    if (routes !== null && !routes.some((route) => cidrWithin(prefix, route))) {
      warnings.push({
        path: `${path}.egress_prefix`,
        message: `no local route for ${shown}: answers to its addresses will not reach ` +
          `this host; add one with: ip -6 route add local ${shown} dev lo`,
      });
    }
  }
  return warnings;
}
