/**
 * Dialing through a list of gateways: CONNECT, BIND and UDP ASSOCIATE over Deno sockets.
 *
 * Gateways are tried in order ({@linkcode tryAlternatives}), each with a connect timeout and a
 * 3 s bound on the greeting; a transport failure (refused, unreachable, timeout, silence,
 * malformed answer) moves on to the next one, while a SOCKS reply error is the gateway's answer
 * about the destination and is thrown as is (REP kept end to end).
 *
 * @module
 */

import { formatIp } from "../net/address.ts";
import { closeQuietly } from "../net/io.ts";
import { readBindSecondReply, socksHandshake } from "../socks5/client.ts";
import { Command, type SocksTarget } from "../socks5/types.ts";
import {
  attemptHandshakeOptions,
  tryAlternatives,
  type TryAlternativesOptions,
} from "./alternatives.ts";
import { type GatewayAttempt, gatewayAttempts, type Gateways } from "./gateway_list.ts";
import type { GatewayEndpoint } from "./gateway_url.ts";

/** How each gateway of a list is tried: shared by {@linkcode connectVia} and the Node patches. */
export interface GatewayAttemptOptions {
  /**
   * Time allowed for each gateway: TCP connect plus the SOCKS handshake, in milliseconds.
   * @default {10000}
   */
  readonly connectTimeoutMs?: number;
  /**
   * Time a gateway may take to answer the greeting (and RFC 1929) before the next one is
   * tried, in milliseconds. @default {NEGOTIATION_TIMEOUT_MS} (3000)
   */
  readonly negotiationTimeoutMs?: number;
  /** Aborts the whole attempt. @default {undefined} */
  readonly signal?: AbortSignal;
}

/** Options of {@linkcode connectVia} and its siblings. */
export interface ConnectViaOptions extends GatewayAttemptOptions {
  /**
   * The TCP dialer (the Deno preload passes the original `Deno.connect`).
   * @default {Deno.connect}
   */
  readonly dial?: (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;
}

/** A connection through a gateway. */
export interface GatewayConnection {
  /** The socket to the gateway, past the handshake: application bytes from here on. */
  readonly conn: Deno.TcpConn;
  /** BND.ADDR / BND.PORT of the reply. */
  readonly bound: SocksTarget;
  /** The gateway that answered. */
  readonly gateway: GatewayEndpoint;
}

/** Formats a SOCKS target for messages (`name:port`, `[v6]:port`). */
export function formatTarget(target: SocksTarget): string {
  const a = target.address;
  if (a.family === "name") return `${a.name}:${target.port}`;
  return a.family === 6 ? `[${formatIp(a)}]:${target.port}` : `${formatIp(a)}:${target.port}`;
}

/**
 * The {@linkcode tryAlternatives} options of a request for `target` through a gateway list:
 * each gateway's bound, the messages, the caller's signal.
 */
export function gatewayAttemptOptions(
  target: SocksTarget,
  options: GatewayAttemptOptions,
): TryAlternativesOptions<GatewayAttempt> {
  return {
    attemptTimeoutMs: options.connectTimeoutMs ?? 10_000,
    describe: ({ gateway }) =>
      `Cannot connect to ${formatTarget(target)} through ${gateway.hostname}`,
    failure: `Cannot connect to ${formatTarget(target)}: no gateway answered`,
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

async function handshakeVia(
  gateways: Gateways,
  command: number,
  target: SocksTarget,
  options: ConnectViaOptions,
): Promise<GatewayConnection> {
  const attempts = gatewayAttempts(gateways);
  if (attempts.length === 0) {
    throw new TypeError(`Cannot connect to ${formatTarget(target)}: no gateway is configured`);
  }
  const dial = options.dial ?? Deno.connect;
  return await tryAlternatives(attempts, async ({ gateway }, signal) => {
    const conn = await dial({ hostname: gateway.hostname, port: gateway.port, signal });
    try {
      const { bound } = await socksHandshake(
        conn,
        { command, target },
        attemptHandshakeOptions(gateway, signal, options.negotiationTimeoutMs),
      );
      return { conn, bound, gateway };
    } catch (error) {
      closeQuietly(conn);
      throw error;
    }
  }, gatewayAttemptOptions(target, options));
}

/** A request through the first gateway of `gateways` that answers. */
export type GatewayRequest = (
  gateways: Gateways,
  target: SocksTarget,
  options?: ConnectViaOptions,
) => Promise<GatewayConnection>;

/** The {@linkcode GatewayRequest} that sends `command`. */
function requestVia(command: number): GatewayRequest {
  return (gateways, target, options = {}) => handshakeVia(gateways, command, target, options);
}

/**
 * Opens a CONNECT to `target` through the first gateway that answers.
 *
 * @example
 * ```ts ignore
 * import { connectVia } from "./connect.ts";
 * import { parseGatewayUrl } from "./gateway_url.ts";
 *
 * const gateways = ["socks5://192.0.2.1:1080", "socks5://[2001:db8:1::1]:1080"].map(parseGatewayUrl);
 * const { conn } = await connectVia(gateways, {
 *   address: { family: "name", name: "v6.dualgate.example" },
 *   port: 80,
 * }, { connectTimeoutMs: 3000 });
 * conn.close();
 * ```
 *
 * @throws {SocksReplyError} with the gateway's REP (4 for a name it cannot resolve, 5 refused…).
 * @throws {AlternativesFailedError} (an `AggregateError`) when no gateway could be reached.
 */
export const connectVia: GatewayRequest = requestVia(Command.Connect);

/** A BIND in progress: the gateway listens at `bound`; the peer is awaited with `accept()`. */
export interface GatewayBinding extends GatewayConnection {
  /** Waits for the second reply; resolves to the peer's address (the connection then relays). */
  accept(options?: { readonly signal?: AbortSignal }): Promise<SocksTarget>;
}

/**
 * Opens a BIND (RFC 1928 §4): the gateway listens for one connection from `target` (the expected
 * peer); `bound` is where the peer must connect.
 *
 * @throws {SocksReplyError} with the gateway's REP.
 */
export async function bindVia(
  gateways: Gateways,
  target: SocksTarget,
  options: ConnectViaOptions = {},
): Promise<GatewayBinding> {
  const result = await handshakeVia(gateways, Command.Bind, target, options);
  return {
    ...result,
    accept: async (acceptOptions = {}) =>
      (await readBindSecondReply(result.conn, acceptOptions)).bound,
  };
}

/**
 * Opens a UDP ASSOCIATE (RFC 1928 §7). `target` is where the client will send from (all zeros
 * when unknown); `bound` is the gateway's relay endpoint. The association lives as long as
 * `conn`; datagrams are framed with `encodeUdpDatagram`/`decodeUdpDatagram` from `socks5/codec.ts`.
 *
 * @throws {SocksReplyError} with the gateway's REP.
 */
export const associateUdpVia: GatewayRequest = requestVia(Command.UdpAssociate);
