/**
 * What "the gateway host itself" is, for access control: the loopback and "this host" ranges
 * (`127.0.0.0/8`, `0.0.0.0/8`, `::1`, `::`, IPv4-mapped forms included), the host's own
 * interface addresses (re-read at most once a second, so an address that comes up later is
 * covered), the addresses the config declares as the gateway's (`listen`, `udp.public_address`,
 * `bind.external_address`), and the gateway's own SOCKS listeners.
 *
 * A relay to any of these is the classic SSRF (an admin or metrics port bound to loopback or to
 * the host's LAN address), and a relay to one of its own listeners nests a SOCKS session inside
 * the gateway. {@linkcode AccessRules} asks a {@linkcode HostView} before it applies rules.
 *
 * @module
 */

import {
  type IpAddress,
  type IpEndpoint,
  isUnspecified,
  parseIp,
  sameIp,
  unmapIpv4,
} from "../../net/address.ts";
import { isHostLocal } from "../../net/cidr.ts";
import { logger } from "../observe/log.ts";

/** What the access rules know about the gateway host. All addresses are taken in any form. */
export interface HostView {
  /** True for a loopback or "this host" address, or one of the host's own addresses. */
  isHostLocal(address: IpAddress): boolean;
  /** True when a TCP connection to `address`:`port` would reach one of the gateway's listeners. */
  isOwnListener(address: IpAddress, port: number): boolean;
}

/**
 * A host known only by the fixed ranges: no interface addresses, no listeners. What rules use
 * when no gateway is around (tests, tools).
 */
export const RANGES_ONLY_HOST: HostView = {
  isHostLocal,
  isOwnListener: () => false,
};

/** Options of {@linkcode GatewayHost}. */
export interface GatewayHostOptions {
  /**
   * Reads the host's interface addresses. @default the addresses of `Deno.networkInterfaces()`
   * (none, with a warning, without `--allow-sys`)
   */
  interfaces?: () => IpAddress[];
  /** How long a reading of the interfaces is reused, in ms. @default 1000 */
  refreshMs?: number;
  /** Millisecond clock. @default performance.now */
  now?: () => number;
  /** Addresses the config declares as this gateway's own (listen, public, external). @default [] */
  declared?: readonly IpAddress[];
}

const log = logger("gateway");

/** The interface addresses of this host, unmapped, zone ids dropped. */
export function interfaceAddresses(): IpAddress[] {
  const addresses: IpAddress[] = [];
  for (const nic of Deno.networkInterfaces()) {
    const parsed = parseIp(nic.address.split("%")[0]!);
    if (parsed) addresses.push(unmapIpv4(parsed));
  }
  return addresses;
}

/** The gateway host as {@linkcode AccessRules} sees it. */
export class GatewayHost implements HostView {
  readonly #interfaces: () => IpAddress[];
  readonly #refreshMs: number;
  readonly #now: () => number;
  readonly #declared: readonly IpAddress[];
  #own: readonly IpAddress[] = [];
  #readAt = -Infinity;
  #warned = false;
  #listeners: readonly IpEndpoint[] = [];

  /** Creates the view; interfaces are read on first use. */
  constructor(options: GatewayHostOptions = {}) {
    this.#interfaces = options.interfaces ?? interfaceAddresses;
    this.#refreshMs = options.refreshMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#declared = (options.declared ?? []).map(unmapIpv4).filter((a) => !isUnspecified(a));
  }

  /** The gateway's bound SOCKS listeners (port 0 already replaced by the real port). */
  set listeners(endpoints: readonly IpEndpoint[]) {
    this.#listeners = endpoints.map((e) => ({ address: unmapIpv4(e.address), port: e.port }));
  }

  /** {@inheritDoc HostView.isHostLocal} */
  isHostLocal(address: IpAddress): boolean {
    return isHostLocal(address) || this.isOwnAddress(address);
  }

  /** True for one of the host's own interface addresses or the addresses the config declares. */
  isOwnAddress(address: IpAddress): boolean {
    const a = unmapIpv4(address);
    return this.#declared.some((own) => sameIp(own, a)) ||
      this.#ownAddresses().some((own) => sameIp(own, a));
  }

  /** {@inheritDoc HostView.isOwnListener} */
  isOwnListener(address: IpAddress, port: number): boolean {
    const a = unmapIpv4(address);
    for (const listener of this.#listeners) {
      if (listener.port !== port) continue;
      // A wildcard listener takes connections to every address of the host; any listener takes
      // those to 0.0.0.0 and `::`, which Linux delivers to the host itself.
      if (isUnspecified(listener.address) ? this.isHostLocal(a) : sameIp(listener.address, a)) {
        return true;
      }
      if (isUnspecified(a) || (a.family === 4 && a.bytes[0] === 0)) return true;
    }
    return false;
  }

  #ownAddresses(): readonly IpAddress[] {
    const now = this.#now();
    if (now - this.#readAt < this.#refreshMs) return this.#own;
    this.#readAt = now;
    try {
      this.#own = this.#interfaces().map(unmapIpv4);
    } catch (error) {
      if (!this.#warned) {
        this.#warned = true;
        log.warn(
          "cannot read the host's interface addresses ({error}): only loopback, 0.0.0.0/8, " +
            "`::` and the configured addresses count as the gateway host; run with --allow-sys",
          { error },
        );
      }
    }
    return this.#own;
  }
}
