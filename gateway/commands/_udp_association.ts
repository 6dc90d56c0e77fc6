/**
 * The per-association state of UDP ASSOCIATE, free of sockets so that it can be tested alone:
 * the client source filter (RFC 1928 §7: datagrams only from the client), the SOCKS UDP header
 * check, the destination table (raw header bytes -> resolved peer, with the
 * reply header prepared once) and the counters.
 *
 * Hot path: every check here works on the receive buffer in place and on numbers; strings are
 * compared, never parsed, unless a datagram is already headed for the slow path (a miss).
 *
 * @module
 */

import { formatIp, type IpAddress, parseIp, sameIp, unmapIpv4 } from "../../net/address.ts";
import { AddressType } from "../../socks5/types.ts";

/** Why a datagram was not relayed. */
export type DropReason =
  | "foreign"
  | "fragment"
  | "malformed"
  | "oversize"
  | "client_rate"
  | "total_rate"
  | "denied"
  | "unresolved"
  | "pending"
  | "unknown_peer"
  | "send_failed"
  | "no_egress";

/** Every {@linkcode DropReason}, in the order they are reported. */
export const DROP_REASONS: readonly DropReason[] = [
  "foreign",
  "fragment",
  "malformed",
  "oversize",
  "client_rate",
  "total_rate",
  "denied",
  "unresolved",
  "pending",
  "unknown_peer",
  "send_failed",
  "no_egress",
];

/** Datagram and byte counts of one association; plain numbers that only grow. */
export class UdpCounters {
  /** Datagrams relayed client -> peer. */
  datagramsUp = 0;
  /** Datagrams relayed peer -> client. */
  datagramsDown = 0;
  /** Payload bytes relayed client -> peer. */
  bytesUp = 0;
  /** Payload bytes relayed peer -> client. */
  bytesDown = 0;
  /** Dropped datagrams by reason. */
  readonly dropped: Record<DropReason, number> = {
    foreign: 0,
    fragment: 0,
    malformed: 0,
    oversize: 0,
    client_rate: 0,
    total_rate: 0,
    denied: 0,
    unresolved: 0,
    pending: 0,
    unknown_peer: 0,
    send_failed: 0,
    no_egress: 0,
  };

  /** `up=N down=N dropped foreign=N ...` (only non-zero drops), for the connection record. */
  summary(): string {
    const drops = DROP_REASONS.filter((r) => this.dropped[r] > 0)
      .map((r) => `${r}=${this.dropped[r]}`);
    return `datagrams up=${this.datagramsUp} down=${this.datagramsDown}` +
      (drops.length > 0 ? ` dropped ${drops.join(" ")}` : "");
  }
}

/**
 * Length of the SOCKS UDP header `RSV RSV FRAG ATYP ADDR PORT` at the start of
 * `bytes[0..length)`, or -1 when it is truncated, has a non-zero RSV, an unknown ATYP, an empty
 * name or port 0. FRAG is not judged here.
 */
export function udpHeaderLength(bytes: Uint8Array, length: number): number {
  if (length < 4 || bytes[0] !== 0 || bytes[1] !== 0) return -1;
  let end: number;
  switch (bytes[3]) {
    case AddressType.Ipv4:
      end = 4 + 4 + 2;
      break;
    case AddressType.Ipv6:
      end = 4 + 16 + 2;
      break;
    case AddressType.DomainName: {
      if (length < 5 || bytes[4] === 0) return -1;
      end = 5 + bytes[4]! + 2;
      break;
    }
    default:
      return -1;
  }
  if (end > length) return -1;
  if (bytes[end - 2] === 0 && bytes[end - 1] === 0) return -1;
  return end;
}

/**
 * Owns an association for one client endpoint (RFC 1928 §7: datagrams only from the client).
 * The address is the control connection's; the port is DST.PORT when the request gave one,
 * else the source port of the first datagram accepted. From then on every other source, other
 * ports of the client's own address included (another program on that host, or a datagram
 * spoofed with the client's address), is refused: it can neither be relayed nor take the
 * replies over.
 */
export class ClientFilter {
  readonly #address: IpAddress;
  readonly #hostname: string;
  /** The owning port; 0 until the first datagram when the request did not declare one. */
  #port: number;
  /** The last accepted spelling that differed from `#hostname` (for example IPv4-mapped). */
  #alias: string | undefined;

  /** Creates the filter for `client` and the DST.PORT of the request (0: the first sender's). */
  constructor(client: IpAddress, declaredPort: number) {
    this.#address = client;
    this.#port = declaredPort;
    this.#hostname = formatIp(client);
  }

  /** The client's address as socket APIs want it. */
  get hostname(): string {
    return this.#hostname;
  }

  /** The port the association belongs to, or 0 while no datagram has set it. */
  get port(): number {
    return this.#port;
  }

  /**
   * True when a datagram from `hostname`:`port` comes from the owner. The first datagram from
   * the client's address sets the owning port when the request did not.
   */
  accepts(hostname: string, port: number): boolean {
    // Port 0 (only a crafted datagram has it) could neither own the association nor be answered.
    if (port === 0 || (this.#port !== 0 && port !== this.#port)) return false;
    if (!this.#isClientAddress(hostname)) return false;
    if (this.#port === 0) this.#port = port;
    return true;
  }

  #isClientAddress(hostname: string): boolean {
    if (hostname === this.#hostname || hostname === this.#alias) return true;
    // Slow path, taken by foreign datagrams (and once by an unusual spelling of the client).
    const parsed = parseIp(hostname);
    if (parsed === null || !sameIp(unmapIpv4(parsed), this.#address)) return false;
    this.#alias = hostname;
    return true;
  }
}

/** What became of one destination as the client wrote it. */
export type DestinationState =
  | { readonly kind: "pending" }
  | { readonly kind: "ready"; readonly peer: ResolvedPeer }
  | { readonly kind: "denied" }
  | { readonly kind: "unresolved"; readonly retryAt: number }
  /** The egress pool has no source address of the destination's families. */
  | { readonly kind: "no_egress" };

/** A destination resolved, permitted and ready to send to. */
export interface ResolvedPeer {
  /** The peer's address. */
  readonly address: IpAddress;
  /** The peer's port. */
  readonly port: number;
  /** Socket address for `send`, built once. */
  readonly netAddr: Deno.NetAddr;
  /** `RSV RSV FRAG ATYP ADDR PORT` naming the peer, prepended to its replies. */
  readonly replyHeader: Uint8Array;
}

/** One row of the destination table. */
export interface Destination {
  /** The `ATYP ADDR PORT` bytes as the client sent them (a copy). */
  readonly key: Uint8Array;
  /** Current state. */
  state: DestinationState;
  /** Datagrams held while a name resolves (copies), sent once it is ready. */
  held: Uint8Array[];
}

/** Builds a {@linkcode ResolvedPeer}. */
export function resolvedPeer(address: IpAddress, port: number): ResolvedPeer {
  const size = address.bytes.length;
  const replyHeader = new Uint8Array(4 + size + 2);
  replyHeader[3] = address.family === 4 ? AddressType.Ipv4 : AddressType.Ipv6;
  replyHeader.set(address.bytes, 4);
  replyHeader[4 + size] = port >> 8;
  replyHeader[5 + size] = port & 0xff;
  return {
    address,
    port,
    netAddr: { transport: "udp", hostname: formatIp(address), port },
    replyHeader,
  };
}

/** The longest reply header: IPv6 (`3 + 1 + 16 + 2`). */
export const MAX_REPLY_HEADER = 22;

/**
 * Destinations of one association, looked up by the header bytes the client sent (no decoding
 * on a hit) and, for replies, by the peer's socket address. Bounded: the oldest row goes when
 * it is full.
 */
export class DestinationTable {
  readonly #rows: Destination[] = [];
  readonly #capacity: number;
  readonly #onEvict: (row: Destination) => void;

  /**
   * A table of at most `capacity` destinations; `onEvict` sees each row the table drops, to
   * release what it holds (its pending lookup may still refer to it).
   */
  constructor(capacity = 64, onEvict: (row: Destination) => void = () => {}) {
    this.#capacity = capacity;
    this.#onEvict = onEvict;
  }

  /** Number of rows. */
  get size(): number {
    return this.#rows.length;
  }

  /** The rows, oldest first. */
  get rows(): readonly Destination[] {
    return this.#rows;
  }

  /** The row whose key equals `bytes[from..to)`, if any. */
  find(bytes: Uint8Array, from: number, to: number): Destination | undefined {
    const length = to - from;
    for (const row of this.#rows) {
      const key = row.key;
      if (key.length !== length) continue;
      let i = 0;
      while (i < length && key[i] === bytes[from + i]) i++;
      if (i === length) return row;
    }
    return undefined;
  }

  /** Adds a row for `bytes[from..to)` (copied) in `state`, evicting the oldest when full. */
  add(bytes: Uint8Array, from: number, to: number, state: DestinationState): Destination {
    if (this.#rows.length >= this.#capacity) this.#onEvict(this.#rows.shift()!);
    const row: Destination = { key: bytes.slice(from, to), state, held: [] };
    this.#rows.push(row);
    return row;
  }

  /** The ready peer that sent from `hostname`:`port`, if the client has written to it. */
  findPeer(hostname: string, port: number): ResolvedPeer | undefined {
    for (const row of this.#rows) {
      const state = row.state;
      if (
        state.kind === "ready" && state.peer.port === port &&
        state.peer.netAddr.hostname === hostname
      ) {
        return state.peer;
      }
    }
    // Slow path: another spelling of a known address (IPv4-mapped on a dual-stack socket).
    const parsed = parseIp(hostname);
    if (parsed === null) return undefined;
    const address = unmapIpv4(parsed);
    for (const row of this.#rows) {
      const state = row.state;
      if (
        state.kind === "ready" && state.peer.port === port && sameIp(state.peer.address, address)
      ) {
        return state.peer;
      }
    }
    return undefined;
  }
}

/**
 * A byte budget for datagrams held while their destinations resolve, shared by every
 * association of the process: the memory a client can pin with datagrams to names that never
 * resolve is bounded by `limit`, whatever the number of associations. Each association takes
 * through its own {@linkcode HeldAccount}, limited to `share` bytes, so that a few flooding
 * associations cannot take the whole budget from the others.
 */
export class HeldBudget {
  /** Most bytes held at once. */
  readonly limit: number;
  /** Most bytes one {@linkcode HeldAccount} holds at once. */
  readonly share: number;
  #bytes = 0;

  /** A budget of `limit` bytes, at most `share` of them (default all) per account. */
  constructor(limit: number, share: number = limit) {
    this.limit = limit;
    this.share = Math.min(share, limit);
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Takes `size` bytes; false (nothing taken) when that would pass the limit. */
  take(size: number): boolean {
    if (this.#bytes + size > this.limit) return false;
    this.#bytes += size;
    return true;
  }

  /** Gives back the bytes of `held` (datagrams earlier taken); returns how many there were. */
  release(held: readonly Uint8Array[]): number {
    for (const datagram of held) this.#bytes -= datagram.length;
    return held.length;
  }

  /** A new account (one per association) taking from this budget up to its share. */
  account(): HeldAccount {
    return new HeldAccount(this);
  }
}

/** One association's part of a {@linkcode HeldBudget}: at most its `share` bytes. */
export class HeldAccount {
  readonly #budget: HeldBudget;
  #bytes = 0;

  /** An empty account of `budget`. */
  constructor(budget: HeldBudget) {
    this.#budget = budget;
  }

  /** Bytes this account holds now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Takes `size` bytes; false (nothing taken) past the share or the budget's limit. */
  take(size: number): boolean {
    if (this.#bytes + size > this.#budget.share || !this.#budget.take(size)) return false;
    this.#bytes += size;
    return true;
  }

  /** Gives back the bytes of `held` (datagrams earlier taken); returns how many there were. */
  release(held: readonly Uint8Array[]): number {
    for (const datagram of held) this.#bytes -= datagram.length;
    return this.#budget.release(held);
  }
}
