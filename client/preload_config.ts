/**
 * The configuration the `socksify` launcher hands to the preload modules (as JSON: in the
 * generated Deno preload, or in the `DUALGATE_SOCKSIFY` environment variable for Node).
 *
 * @module
 */

import type { HopStrategy } from "./selector.ts";
import { GatewayList } from "./gateway_list.ts";
import { parseGatewayUrl } from "./gateway_url.ts";
import { SocksPolicy } from "./socks_lib.ts";

/** Name of the environment variable that carries the Node preload's configuration. */
export const CONFIG_ENV = "DUALGATE_SOCKSIFY";

/** What the preloads need, JSON-serialisable. */
export interface PreloadConfig {
  /** Gateway URLs, tried in order. */
  readonly gateways: readonly string[];
  /** Families this host reaches natively; the first is the caller's family. @default {[4]} */
  readonly nativeFamilies?: readonly (4 | 6)[];
  /** Names resolved locally. @default {[]} */
  readonly bypass?: readonly string[];
  /** IPv4 fake range. @default {"198.18.0.0/15"} */
  readonly ipv4Range?: string;
  /** IPv6 fake range. @default {"100::/64"} */
  readonly ipv6Range?: string;
  /** Per-gateway connect + handshake timeout, in milliseconds. @default {10000} */
  readonly connectTimeoutMs?: number;
  /** How connections pick among the gateways. @default {"failover"} */
  readonly strategy?: HopStrategy;
}

/** The parsed configuration: gateways and the policy. */
export interface LoadedConfig {
  /** Parsed gateways, with their selection state. */
  readonly gateways: GatewayList;
  /** Routing and the delegation table. */
  readonly policy: SocksPolicy;
  /** Per-gateway timeout, in milliseconds. */
  readonly connectTimeoutMs: number;
}

/**
 * Validates a {@linkcode PreloadConfig} and builds the policy.
 *
 * @throws {TypeError} when no gateway is given or one does not parse.
 */
export function loadPreloadConfig(config: PreloadConfig): LoadedConfig {
  if (!config.gateways?.length) {
    throw new TypeError("Cannot load socksify configuration: no gateway is given");
  }
  const table = {
    ...(config.ipv4Range ? { ipv4Range: config.ipv4Range } : {}),
    ...(config.ipv6Range ? { ipv6Range: config.ipv6Range } : {}),
  };
  return {
    gateways: new GatewayList(
      config.gateways.map(parseGatewayUrl),
      config.strategy ? { strategy: config.strategy } : {},
    ),
    policy: new SocksPolicy({
      nativeFamilies: config.nativeFamilies ?? [4],
      bypass: config.bypass ?? [],
      table,
    }),
    connectTimeoutMs: config.connectTimeoutMs ?? 10_000,
  };
}
