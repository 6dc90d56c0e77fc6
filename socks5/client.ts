/**
 * The SOCKS5 client handshake (RFC 1928 + RFC 1929), socket-agnostic: it runs over anything with
 * `read` and `write`, so the Socks Lib and the gateway's upstream hops share it.
 *
 * The reply is read without read-ahead: after {@linkcode socksHandshake} returns, every byte the
 * server sent after its reply is still in the socket, so the caller may hand the socket itself
 * (not a wrapper) to TLS or to the application. `leftover` is kept in the result for callers that
 * pass a source that cannot be bounded; with a plain socket it is always empty.
 *
 * @module
 */

import { abortable, writeAll } from "../net/io.ts";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
  readReply,
} from "./codec.ts";
import { SocksProtocolError, SocksReplyError } from "./errors.ts";
import { ExactReader } from "./exact_reader.ts";
import {
  AddressType,
  AuthMethod,
  type ByteSource,
  Reply,
  type SocksRequest,
  type SocksTarget,
} from "./types.ts";

/** A byte stream the handshake runs over (a `Deno.Conn`, or an adapter around a Node socket). */
export interface HandshakeConn extends ByteSource {
  /** Writes some of `data`; returns how many bytes were written. */
  write(data: Uint8Array): Promise<number>;
}

/** RFC 1929 user name and password. */
export interface SocksCredentials {
  /** User name, 1..255 bytes. */
  readonly username: string;
  /** Password, 1..255 bytes. */
  readonly password: string;
}

/** Options of {@linkcode socksHandshake}. */
export interface SocksHandshakeOptions {
  /**
   * Offer RFC 1929 with these credentials (no-auth is offered too).
   * @default {undefined} (offer no-auth only)
   */
  readonly credentials?: SocksCredentials;
  /**
   * Aborts a pending read or write. The handshake rejects with the signal's reason; the caller
   * must then close the connection (a read cannot be taken back from a socket).
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
  /**
   * Bounds the method selection and RFC 1929 exchange, in milliseconds: a server that accepts
   * the connection but never negotiates is given up on early, while the reply to the request
   * (which waits for the server's own connect, and for further hops) stays bounded by `signal`
   * alone. @default {undefined} (no separate bound)
   */
  readonly negotiationTimeoutMs?: number;
}

/** What a successful handshake returns. */
export interface SocksHandshakeResult {
  /** BND.ADDR / BND.PORT of the (first) reply. */
  readonly bound: SocksTarget;
  /** Bytes read past the reply (empty when the source is a socket; see the module doc). */
  readonly leftover: Uint8Array;
}

/** The server refused the RFC 1929 credentials, or accepted no offered method. */
export class SocksAuthenticationError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SocksAuthenticationError";
  }
}

/**
 * A source that returns no byte past one reply: it tracks `VER REP RSV ATYP` and caps each read at
 * what the reply still needs. Byte counts per ATYP follow RFC 1928 §6.
 */
class ReplyBoundedSource implements ByteSource {
  #conn: ByteSource;
  /** Aborts pending reads; replaced once negotiation is over. */
  signal: AbortSignal | undefined;
  #head = new Uint8Array(5);
  #seen = 0;
  #total = 5;
  #isReply = false;

  constructor(conn: ByteSource, signal: AbortSignal | undefined) {
    this.#conn = conn;
    this.signal = signal;
  }

  /** Starts a new message of `length` bytes, or a reply when `length` is omitted. */
  expect(length?: number): void {
    this.#seen = 0;
    this.#total = length ?? 5;
    this.#isReply = length === undefined;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    const want = this.#total - this.#seen;
    if (want <= 0) return null;
    const view = buffer.subarray(0, Math.min(want, buffer.length));
    const n = await abortable(this.#conn.read(view), this.signal);
    if (n === null) return null;
    if (this.#isReply) {
      for (let i = 0; i < n && this.#seen + i < 5; i++) this.#head[this.#seen + i] = view[i]!;
    }
    this.#seen += n;
    if (this.#isReply && this.#seen >= 5 && this.#total === 5) {
      const type = this.#head[3];
      const addressLength = type === AddressType.Ipv4
        ? 4
        : type === AddressType.Ipv6
        ? 16
        : type === AddressType.DomainName
        ? 1 + this.#head[4]!
        : 0;
      // An unknown ATYP: stop here, the codec reports it.
      this.#total = addressLength === 0 ? this.#seen : 4 + addressLength + 2;
    }
    return n;
  }
}

/**
 * Runs the SOCKS5 client handshake on `conn`: greeting (no-auth, plus user/password when
 * `credentials` are given), RFC 1929 sub-negotiation when the server picks it, the request, and
 * the first reply.
 *
 * @example
 * ```ts ignore
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 1080 });
 * const { bound } = await socksHandshake(conn, {
 *   command: 1,
 *   target: { address: { family: "name", name: "example.com" }, port: 80 },
 * });
 * ```
 *
 * @throws {SocksReplyError} when REP is not 0 (the REP code is kept).
 * @throws {SocksAuthenticationError} when no method is acceptable or the credentials are refused.
 * @throws {SocksProtocolError} on a malformed or truncated server message.
 */
export async function socksHandshake(
  conn: HandshakeConn,
  request: SocksRequest,
  options: SocksHandshakeOptions = {},
): Promise<SocksHandshakeResult> {
  const { credentials, signal } = options;
  signal?.throwIfAborted();
  const negotiation = options.negotiationTimeoutMs === undefined
    ? signal
    : signal
    ? AbortSignal.any([signal, AbortSignal.timeout(options.negotiationTimeoutMs)])
    : AbortSignal.timeout(options.negotiationTimeoutMs);
  const source = new ReplyBoundedSource(conn, negotiation);
  const reader = new ExactReader(source);
  const methods: number[] = [AuthMethod.NoAuthentication];
  if (credentials) methods.push(AuthMethod.UsernamePassword);
  await abortable(writeAll(conn, encodeGreeting({ methods })), negotiation);
  source.expect(2);
  const method = await readMethodSelection(reader);
  if (method === AuthMethod.UsernamePassword && credentials) {
    await abortable(writeAll(conn, encodePasswordAuthRequest(credentials)), negotiation);
    source.expect(2);
    const status = await readPasswordAuthReply(reader);
    if (status !== 0) {
      throw new SocksAuthenticationError(
        `Cannot authenticate: the server refused user "${credentials.username}" (status ${status})`,
      );
    }
  } else if (method === AuthMethod.NoAcceptableMethods) {
    throw new SocksAuthenticationError(
      credentials
        ? "Cannot authenticate: the server accepts none of no-auth and user/password"
        : "Cannot authenticate: the server requires authentication and no credentials were given",
    );
  } else if (method !== AuthMethod.NoAuthentication) {
    throw new SocksProtocolError(
      `Cannot negotiate: the server chose method ${method}, not offered`,
    );
  }
  source.signal = signal;
  await abortable(writeAll(conn, encodeRequest(request)), signal);
  const bound = await readOneReply(reader, source);
  return { bound, leftover: reader.takeBuffered() };
}

async function readOneReply(reader: ExactReader, source: ReplyBoundedSource): Promise<SocksTarget> {
  source.expect();
  const reply = await readReply(reader);
  if (reply.reply !== Reply.Succeeded) throw new SocksReplyError(reply.reply);
  return reply.bound;
}

/**
 * Reads the second BIND reply (RFC 1928 §4: sent when the peer connects to the bound address) on
 * a connection that {@linkcode socksHandshake} opened with a BIND request. Returns the peer's
 * address and port.
 *
 * @throws {SocksReplyError} when REP is not 0.
 */
export async function readBindSecondReply(
  conn: HandshakeConn,
  options: { readonly signal?: AbortSignal } = {},
): Promise<SocksHandshakeResult> {
  const source = new ReplyBoundedSource(conn, options.signal);
  const reader = new ExactReader(source);
  const bound = await readOneReply(reader, source);
  return { bound, leftover: reader.takeBuffered() };
}
