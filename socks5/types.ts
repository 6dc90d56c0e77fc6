/**
 * RFC 1928 / RFC 1929 protocol constants and message shapes. Types only.
 *
 * @module
 */

import type { IpAddress } from "../net/address.ts";

/** A domain name as carried in ATYP 3 (1..255 bytes on the wire). */
export interface DomainName {
  /** Marks a name rather than an IP address. */
  readonly family: "name";
  /** The name exactly as sent (decoded as UTF-8 / Latin-1-safe). */
  readonly name: string;
}

/** What a SOCKS address field holds: an IPv4/IPv6 address or a name. */
export type SocksAddress = IpAddress | DomainName;

/** A SOCKS destination: address (or name) and port. */
export interface SocksTarget {
  /** Address or name. */
  readonly address: SocksAddress;
  /** Port, 0..65535. */
  readonly port: number;
}

/**
 * SOCKS5 commands: RFC 1928 §4, and Tor's extensions (`socks-extensions.txt`) that torsocks
 * uses to resolve names through the proxy: RESOLVE (a name in DST.ADDR, its address in
 * BND.ADDR) and RESOLVE_PTR (an address in DST.ADDR, its name in BND.ADDR).
 */
export const Command = {
  Connect: 1,
  Bind: 2,
  UdpAssociate: 3,
  Resolve: 0xf0,
  ResolvePtr: 0xf1,
} as const;
/** A SOCKS5 command code. */
export type Command = typeof Command[keyof typeof Command];

/** Address types (RFC 1928 §4/§5). */
export const AddressType = {
  Ipv4: 1,
  DomainName: 3,
  Ipv6: 4,
} as const;

/** Authentication methods (RFC 1928 §3). */
export const AuthMethod = {
  NoAuthentication: 0x00,
  Gssapi: 0x01,
  UsernamePassword: 0x02,
  NoAcceptableMethods: 0xff,
} as const;

/** Reply codes (RFC 1928 §6). */
export const Reply = {
  Succeeded: 0,
  GeneralFailure: 1,
  NotAllowedByRuleset: 2,
  NetworkUnreachable: 3,
  HostUnreachable: 4,
  ConnectionRefused: 5,
  TtlExpired: 6,
  CommandNotSupported: 7,
  AddressTypeNotSupported: 8,
} as const;
/** A reply code, 0..255 on the wire (0..8 defined). */
export type ReplyCode = number;

/** Human-readable names of the reply codes, for logs and errors. */
export const REPLY_NAMES: Readonly<Record<number, string>> = {
  0: "succeeded",
  1: "general SOCKS server failure",
  2: "connection not allowed by ruleset",
  3: "network unreachable",
  4: "host unreachable",
  5: "connection refused",
  6: "TTL expired",
  7: "command not supported",
  8: "address type not supported",
};

/** The client's method-selection message. */
export interface Greeting {
  /** Methods the client offers. */
  readonly methods: readonly number[];
}

/** RFC 1929 username/password request. */
export interface PasswordAuthRequest {
  /** User name, 1..255 bytes. */
  readonly username: string;
  /** Password, 1..255 bytes. */
  readonly password: string;
}

/** A SOCKS5 request (CONNECT, BIND or UDP ASSOCIATE). */
export interface SocksRequest {
  /** The command code; may be an unknown one, answered with REP 7. */
  readonly command: number;
  /** DST.ADDR / DST.PORT. */
  readonly target: SocksTarget;
}

/** A SOCKS5 reply. */
export interface SocksReply {
  /** REP. */
  readonly reply: ReplyCode;
  /** BND.ADDR / BND.PORT. */
  readonly bound: SocksTarget;
}

/** A SOCKS5 UDP datagram header plus payload (RFC 1928 §7). */
export interface UdpDatagram {
  /** FRAG: 0 for a whole datagram. */
  readonly fragment: number;
  /** DST (client to gateway) or source (gateway to client). */
  readonly target: SocksTarget;
  /** The payload (a view into the received buffer). */
  readonly payload: Uint8Array;
}

/** Where exact-length reads come from: a socket or anything with the same `read`. */
export interface ByteSource {
  /** Reads into `buffer`; `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}
