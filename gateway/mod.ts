/**
 * The dualgate gateway: an enhanced SOCKS5 server (RFC 1928, RFC 1929) on a dual-stack host
 * that relays every family mix and resolves names itself (RFC 3089).
 *
 * @module
 */

export { type Gateway, startGateway, type StartGatewayOptions } from "./gateway.ts";
export type { ConnectionRecord } from "./observe/connection_log.ts";
