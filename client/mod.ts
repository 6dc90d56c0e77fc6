/**
 * The Socks Lib (RFC 3089's client side) as a TypeScript library: a SOCKS5 client over a list
 * of gateways (CONNECT, BIND, UDP ASSOCIATE, RFC 1929, typed reply errors, failover or
 * balancing), the fake-address delegation table, and the policy that decides which names are
 * delegated. `main.ts socksify` builds on the same pieces for unmodified programs.
 *
 * @example The delegation table: a fake address of the caller's family stands for the name
 * ```ts
 * import assert from "node:assert/strict";
 * import { DelegationTable } from "./mod.ts";
 *
 * const table = new DelegationTable();
 * const fake = table.lookup("V6.Dualgate.Example.", 4);
 * assert.equal(fake.family, 4); // from 198.18.0.0/15
 * assert.equal(table.resolve(fake), "v6.dualgate.example");
 * ```
 *
 * @example Ask a gateway for a name this host cannot resolve
 * ```ts ignore
 * import { connectVia, DelegationTable, GatewayList, parseGatewayUrl } from "./mod.ts";
 *
 * const gateways = new GatewayList(
 *   ["socks5://192.0.2.1:1080", "socks5://[2001:db8:1::1]:1080"].map(parseGatewayUrl),
 *   { strategy: "failover" },
 * );
 * // A lookup answers a fake address of the caller's family and remembers the name ...
 * const table = new DelegationTable();
 * const fake = table.lookup("v6.dualgate.example", 4);
 * // ... and a connect to that fake address becomes a CONNECT carrying the name (ATYP 3).
 * const name = table.resolve(fake);
 * const { conn } = await connectVia(gateways, {
 *   address: { family: "name", name: name ?? "v6.dualgate.example" },
 *   port: 80,
 * });
 * conn.close();
 * ```
 *
 * @module
 */

export {
  type Alternative,
  AlternativesFailedError,
  NEGOTIATION_TIMEOUT_MS,
  tryAlternatives,
  type TryAlternativesOptions,
} from "./alternatives.ts";
export {
  associateUdpVia,
  bindVia,
  connectVia,
  type ConnectViaOptions,
  type GatewayBinding,
  type GatewayConnection,
} from "./connect.ts";
export {
  DEFAULT_FAKE_RANGE_V4,
  DEFAULT_FAKE_RANGE_V6,
  DelegationTable,
  type DelegationTableOptions,
} from "./delegation_table.ts";
export {
  type GatewayAttempt,
  GatewayList,
  type GatewayListOptions,
  type Gateways,
} from "./gateway_list.ts";
export { formatGatewayUrl, type GatewayEndpoint, parseGatewayUrl } from "./gateway_url.ts";
export {
  type Route,
  SocksPolicy,
  type SocksPolicyOptions,
  UnknownFakeAddressError,
} from "./socks_lib.ts";
export {
  HOP_STRATEGIES,
  HopSelector,
  type HopSelectorOptions,
  type HopStrategy,
  isHopStrategy,
} from "./selector.ts";
export { type SocksFront, type SocksFrontOptions, startSocksFront } from "./socks_front.ts";
export { runSocksify, type SocksifyOptions } from "./socksify.ts";
export { SocksReplyError } from "../socks5/errors.ts";
