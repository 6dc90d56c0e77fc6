/**
 * The PROXY protocol header (HAProxy's `send-proxy` v1 text and `send-proxy-v2` binary) that a
 * load balancer puts in front of the SOCKS greeting, so that rules and logs see the real client.
 *
 * Read with exact-length reads from the session's own reader, so bytes the client pipelined
 * after the header stay buffered for the SOCKS greeting. A `LOCAL` command (v2, health checks)
 * or `UNKNOWN` / non-TCP family means "use the connection's own endpoints" for the record; the
 * client behind it is unknown, so the session never counts as local (a loopback balancer does
 * not make it a client on the gateway host).
 *
 * @module
 */

import {
  type IpAddress,
  type IpEndpoint,
  parseIpv4,
  parseIpv6,
  unmapIpv4,
} from "../../net/address.ts";
import type { ExactReader } from "../../socks5/exact_reader.ts";
import type { ProxyProtocolMode } from "../config/types.ts";

/** What a PROXY header says about the connection. */
export type ProxyHeader =
  | {
    /** The balancer relays a client. */
    readonly command: "proxy";
    /** The PROXY protocol version read. */
    readonly version: 1 | 2;
    /** The real client. */
    readonly source: IpEndpoint;
    /** The address the client reached on the balancer. */
    readonly destination: IpEndpoint;
  }
  | {
    /**
     * The connection's own endpoints apply to the record (health check, unknown or non-TCP
     * family); the real client is unknown, so it is not a local client.
     */
    readonly command: "local";
    /** The PROXY protocol version read. */
    readonly version: 1 | 2;
  };

/** A connection that should have started with a PROXY header did not carry a valid one. */
export class ProxyHeaderError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ProxyHeaderError";
  }
}

/** The 12-byte v2 signature. */
export const PROXY_V2_SIGNATURE: Uint8Array = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);

const V1_PREFIX = "PROXY";
/** v1: 107 bytes at most, CRLF included. */
const V1_MAX = 107;
const TLV_CHUNK = 512;
const decoder = new TextDecoder();

/**
 * Reads one PROXY header of the versions `mode` accepts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExactReader } from "../../socks5/exact_reader.ts";
 * import { readProxyHeader } from "./proxy_protocol.ts";
 *
 * const bytes = new TextEncoder().encode("PROXY TCP4 192.0.2.2 192.0.2.1 40000 1080\r\n\x05");
 * let done = false;
 * const reader = new ExactReader({
 *   read: (buffer) => {
 *     if (done) return Promise.resolve(null);
 *     buffer.set(bytes);
 *     done = true;
 *     return Promise.resolve(bytes.length);
 *   },
 * });
 * const header = await readProxyHeader(reader, "any");
 * assert.equal(header.command, "proxy");
 * assert.equal(await reader.readByte(), 5); // the SOCKS greeting stays buffered
 * ```
 *
 * @throws {ProxyHeaderError} for a missing, malformed or unaccepted header.
 * @throws {TruncatedMessageError} when the stream ends inside the header.
 */
export async function readProxyHeader(
  reader: ExactReader,
  mode: ProxyProtocolMode,
): Promise<ProxyHeader> {
  // The first byte decides at once: a bare SOCKS greeting (3 bytes, then silence) is refused
  // without waiting for bytes the client will never send.
  const first = await reader.readByte("PROXY header");
  if (first !== 0x50 && first !== 0x0d) {
    throw new ProxyHeaderError("Cannot read PROXY header: the connection does not start with one");
  }
  const head = new Uint8Array(5);
  head[0] = first;
  head.set(await reader.readExact(4, "PROXY header"), 1);
  if (decoder.decode(head) === V1_PREFIX) {
    if (mode === "v2") throw new ProxyHeaderError("Cannot read PROXY header: v1 sent, v2 expected");
    return await readV1(reader);
  }
  if (head.every((b, i) => b === PROXY_V2_SIGNATURE[i])) {
    if (mode === "v1") throw new ProxyHeaderError("Cannot read PROXY header: v2 sent, v1 expected");
    return await readV2(reader);
  }
  throw new ProxyHeaderError("Cannot read PROXY header: the connection does not start with one");
}

async function readV1(reader: ExactReader): Promise<ProxyHeader> {
  const bytes: number[] = [];
  let length = V1_PREFIX.length;
  while (true) {
    if (length >= V1_MAX) {
      throw new ProxyHeaderError("Cannot read PROXY v1 header: no CRLF within 107 bytes");
    }
    const byte = await reader.readByte("PROXY v1 header");
    length++;
    if (byte === 0x0a) break;
    bytes.push(byte);
  }
  if (bytes.pop() !== 0x0d) {
    throw new ProxyHeaderError("Cannot read PROXY v1 header: LF without CR");
  }
  const line = decoder.decode(new Uint8Array(bytes));
  const fields = line.split(" ");
  // The line after "PROXY" starts with one space: fields[0] is empty.
  if (fields[0] !== "") {
    throw new ProxyHeaderError("Cannot read PROXY v1 header: no space after PROXY");
  }
  const protocol = fields[1];
  if (protocol === "UNKNOWN") return { command: "local", version: 1 };
  if (protocol !== "TCP4" && protocol !== "TCP6") {
    throw new ProxyHeaderError(`Cannot read PROXY v1 header: unknown protocol "${protocol}"`);
  }
  if (fields.length !== 6) {
    throw new ProxyHeaderError("Cannot read PROXY v1 header: expected 4 fields after the protocol");
  }
  const parse = protocol === "TCP4" ? parseIpv4 : parseIpv6;
  const source = parse(fields[2]!), destination = parse(fields[3]!);
  const sourcePort = parsePort(fields[4]!), destinationPort = parsePort(fields[5]!);
  if (!source || !destination) {
    throw new ProxyHeaderError(`Cannot read PROXY v1 header: bad ${protocol} address`);
  }
  if (sourcePort === null || destinationPort === null) {
    throw new ProxyHeaderError("Cannot read PROXY v1 header: bad port");
  }
  return {
    command: "proxy",
    version: 1,
    source: { address: unmapIpv4(source), port: sourcePort },
    destination: { address: unmapIpv4(destination), port: destinationPort },
  };
}

function parsePort(text: string): number | null {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

async function readV2(reader: ExactReader): Promise<ProxyHeader> {
  const rest = await reader.readExact(PROXY_V2_SIGNATURE.length - 5 + 4, "PROXY v2 header");
  for (let i = 5; i < PROXY_V2_SIGNATURE.length; i++) {
    if (rest[i - 5] !== PROXY_V2_SIGNATURE[i]) {
      throw new ProxyHeaderError("Cannot read PROXY v2 header: bad signature");
    }
  }
  const versionCommand = rest[7]!, family = rest[8]!;
  const length = (rest[9]! << 8) | rest[10]!;
  if (versionCommand >> 4 !== 2) {
    throw new ProxyHeaderError(`Cannot read PROXY v2 header: version ${versionCommand >> 4}`);
  }
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyHeaderError(`Cannot read PROXY v2 header: command ${command}`);
  const addressLength = family === 0x11 ? 12 : family === 0x21 ? 36 : 0;
  if (command === 0 || addressLength === 0) {
    // LOCAL, or a family we do not relay (UNSPEC, UNIX, UDP): skip what follows.
    await skip(reader, length);
    return { command: "local", version: 2 };
  }
  if (length < addressLength) {
    throw new ProxyHeaderError(
      `Cannot read PROXY v2 header: ${length} address bytes, ${addressLength} needed`,
    );
  }
  const a = await reader.readExact(addressLength, "PROXY v2 addresses");
  await skip(reader, length - addressLength); // TLVs: nothing we use
  const size = family === 0x11 ? 4 : 16;
  const ip = (offset: number): IpAddress =>
    unmapIpv4({ family: size === 4 ? 4 : 6, bytes: a.slice(offset, offset + size) });
  const port = (offset: number) => (a[offset]! << 8) | a[offset + 1]!;
  return {
    command: "proxy",
    version: 2,
    source: { address: ip(0), port: port(2 * size) },
    destination: { address: ip(size), port: port(2 * size + 2) },
  };
}

async function skip(reader: ExactReader, length: number): Promise<void> {
  for (let left = length; left > 0; left -= TLV_CHUNK) {
    await reader.readExact(Math.min(TLV_CHUNK, left), "PROXY v2 TLVs");
  }
}

/**
 * Encodes a PROXY v2 header (what HAProxy's `send-proxy-v2` sends): `PROXY` over TCP from
 * `source` to `destination`, or, without endpoints, `LOCAL` (which a dualgate listener reads as
 * "the client is unknown" and treats as a non-local client). Mixed families are sent as IPv6
 * (IPv4-mapped), which the reader unmaps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeProxyV2Header } from "./proxy_protocol.ts";
 *
 * const header = encodeProxyV2Header({
 *   source: { address: { family: 4, bytes: new Uint8Array([192, 0, 2, 5]) }, port: 40000 },
 *   destination: { address: { family: 4, bytes: new Uint8Array([192, 0, 2, 1]) }, port: 1080 },
 * });
 * assert.equal(header.length, 16 + 12);
 * assert.equal(header[12], 0x21); // version 2, PROXY
 * assert.equal(header[13], 0x11); // TCP over IPv4
 * ```
 */
export function encodeProxyV2Header(
  endpoints?: { readonly source: IpEndpoint; readonly destination: IpEndpoint },
): Uint8Array {
  if (endpoints === undefined) {
    const local = new Uint8Array(16);
    local.set(PROXY_V2_SIGNATURE);
    local[12] = 0x20; // version 2, LOCAL
    local[13] = 0x00; // UNSPEC
    return local;
  }
  const source = unmapIpv4(endpoints.source.address);
  const destination = unmapIpv4(endpoints.destination.address);
  const v4 = source.family === 4 && destination.family === 4;
  const bytesOf = (address: IpAddress): Uint8Array => v4 ? address.bytes : asIpv6(address);
  const size = v4 ? 4 : 16;
  const length = 2 * size + 4;
  const header = new Uint8Array(16 + length);
  header.set(PROXY_V2_SIGNATURE);
  header[12] = 0x21; // version 2, PROXY
  header[13] = v4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  header[14] = length >> 8;
  header[15] = length & 0xff;
  header.set(bytesOf(source), 16);
  header.set(bytesOf(destination), 16 + size);
  const ports = 16 + 2 * size;
  header[ports] = endpoints.source.port >> 8;
  header[ports + 1] = endpoints.source.port & 0xff;
  header[ports + 2] = endpoints.destination.port >> 8;
  header[ports + 3] = endpoints.destination.port & 0xff;
  return header;
}

/** The IPv6 form of an address (IPv4 as `::ffff:a.b.c.d`). */
function asIpv6(address: IpAddress): Uint8Array {
  if (address.family === 6) return address.bytes;
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  bytes.set(address.bytes, 12);
  return bytes;
}
