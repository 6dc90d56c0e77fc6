/**
 * The addresses a config names as the gateway's own, beyond its interfaces: what host-local
 * protection (gateway/access/host_local.ts) and the same-host hop warning count as this host.
 *
 * @module
 */

import { type IpAddress, unmapIpv4 } from "../../net/address.ts";
import type { Config } from "./types.ts";

/** `listen` addresses, `udp.public_address` and `bind.external_address`, IPv4-mapped unwrapped. */
export function declaredAddresses(config: Config): IpAddress[] {
  return [
    ...config.listen.map((entry) => entry.endpoint.address),
    config.udp.publicAddress.v4,
    config.udp.publicAddress.v6,
    config.bind.externalAddress.v4,
    config.bind.externalAddress.v6,
  ].filter((address) => address !== undefined).map(unmapIpv4);
}
