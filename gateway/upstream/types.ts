/**
 * The Dialer contract: how a session gets an outbound connection for a SOCKS target.
 * Types only.
 *
 * @module
 */

import type { IpAddress, IpEndpoint } from "../../net/address.ts";
import type { SocksTarget } from "../../socks5/types.ts";

/** Per-dial context: who asks, and a filter the rules impose on the addresses tried. */
export interface DialRequest {
  /** The requested destination (name or address). */
  readonly target: SocksTarget;
  /** Aborts the whole attempt (the connect timeout). */
  readonly signal: AbortSignal;
  /**
   * Rules verdict for a candidate address; denied ones are never dialed. A chain, which does not
   * resolve names, asks without an address for a name: then only name patterns can decide.
   */
  readonly permit: (address?: IpAddress) => boolean;
  /**
   * The SOCKS client this dial is for: what a hop with `proxy_protocol` sends in its PROXY
   * header, and whether the client is on the gateway host. Absent: an unknown, non-local client.
   */
  readonly client?: DialClient;
  /**
   * The client's requested destination, when this dial is for a hop of a chain (`target` is
   * then the next hop): what the first hop checks against a gateway on the same host.
   */
  readonly destination?: SocksTarget;
  /**
   * The source address per family (egress pools, gateway/upstream/egress.ts): the connection
   * leaves from it, and a family it gives `null` for is never dialed. Absent: the host's
   * default source. A chain's hops pass it down to the dial of the first hop.
   */
  readonly egress?: (family: 4 | 6) => IpAddress | null;
}

/** The client a dial is made for. */
export interface DialClient {
  /** The client's address and port (from the PROXY header, when the listener takes one). */
  readonly source: IpEndpoint;
  /** The gateway address and port the client reached. */
  readonly destination: IpEndpoint;
  /** True when the client is on the gateway host (see `Handshaken.clientIsLocal`). */
  readonly isLocal: boolean;
}

/** A connected outbound stream. */
export interface Dialed {
  /** The connection. */
  readonly conn: Deno.TcpConn;
  /** The peer actually connected (the resolved address, or the first hop of a chain). */
  readonly remote: IpEndpoint;
  /** The gateway's local end of the connection (CONNECT's BND); for a chain, the last hop's BND. */
  readonly local: IpEndpoint;
  /** How the name was resolved, for the log (`literal`, `hosts`, `dns`, ..., or the last hop). */
  readonly resolvedBy?: string;
  /**
   * The source address an egress pool chose for this (direct) connection: further connections
   * of the same session (an FTP data channel) leave from it too.
   */
  readonly egress?: IpAddress;
}

/**
 * Opens an outbound connection to a SOCKS target. Fails with a `SocksReplyError` carrying the
 * precise REP code.
 */
export interface Dialer {
  /** Dials `request.target`. */
  dial(request: DialRequest): Promise<Dialed>;
}
