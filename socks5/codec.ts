/**
 * RFC 1928 and RFC 1929 wire codec: pure encoding and decoding, no policy, no sockets.
 *
 * Decoders read exact lengths from an {@linkcode ExactReader}; encoders return fresh bytes.
 * Decoders return one form per address: an IPv4-mapped IPv6 address (ATYP 4 `::ffff:a.b.c.d`)
 * comes back as the IPv4 address it stands for, so that what follows (rules, routes, dialing)
 * never meets the same IPv4 destination in two forms.
 *
 * @module
 */

import { unmapIpv4 } from "../net/address.ts";
import { SocksProtocolError } from "./errors.ts";
import type { ExactReader } from "./exact_reader.ts";
import {
  AddressType,
  type Greeting,
  type PasswordAuthRequest,
  Reply,
  type SocksAddress,
  type SocksReply,
  type SocksRequest,
  type SocksTarget,
  type UdpDatagram,
} from "./types.ts";

const SOCKS_VERSION = 5;
const PASSWORD_AUTH_VERSION = 1;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function decodeText(bytes: Uint8Array, what: string, reply?: number): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new SocksProtocolError(`Cannot read ${what}: not valid UTF-8`, reply);
  }
}

/** Decodes the client's greeting: `VER NMETHODS METHODS...`. */
export async function readGreeting(reader: ExactReader): Promise<Greeting> {
  const [version, count] = await reader.readExact(2, "greeting");
  if (version !== SOCKS_VERSION) {
    throw new SocksProtocolError(`Cannot negotiate: version ${version} is not SOCKS5`);
  }
  if (count === 0) throw new SocksProtocolError("Cannot negotiate: client offers no method");
  const methods = await reader.readExact(count!, "greeting");
  return { methods: [...methods] };
}

/** Encodes the greeting a client sends. */
export function encodeGreeting(greeting: Greeting): Uint8Array {
  if (greeting.methods.length < 1 || greeting.methods.length > 255) {
    throw new RangeError("Cannot encode greeting: 1..255 methods required");
  }
  return Uint8Array.of(SOCKS_VERSION, greeting.methods.length, ...greeting.methods);
}

/** Encodes the server's method selection `VER METHOD` (0xFF: no acceptable method). */
export function encodeMethodSelection(method: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, method);
}

/** Decodes the server's method selection; returns the chosen method. */
export async function readMethodSelection(reader: ExactReader): Promise<number> {
  const [version, method] = await reader.readExact(2, "method selection");
  if (version !== SOCKS_VERSION) {
    throw new SocksProtocolError(`Cannot negotiate: server answered version ${version}`);
  }
  return method!;
}

/** Decodes an RFC 1929 request: `VER(1) ULEN UNAME PLEN PASSWD`. */
export async function readPasswordAuthRequest(reader: ExactReader): Promise<PasswordAuthRequest> {
  const [version, userLength] = await reader.readExact(2, "authentication request");
  if (version !== PASSWORD_AUTH_VERSION) {
    throw new SocksProtocolError(
      `Cannot authenticate: sub-negotiation version ${version} is not 1`,
    );
  }
  if (userLength === 0) throw new SocksProtocolError("Cannot authenticate: empty user name");
  const user = await reader.readExact(userLength!, "authentication request");
  const passwordLength = await reader.readByte("authentication request");
  if (passwordLength === 0) throw new SocksProtocolError("Cannot authenticate: empty password");
  const password = await reader.readExact(passwordLength, "authentication request");
  return {
    username: decodeText(user, "authentication request"),
    password: decodeText(password, "authentication request"),
  };
}

/** Encodes an RFC 1929 request. */
export function encodePasswordAuthRequest(request: PasswordAuthRequest): Uint8Array {
  const user = utf8.encode(request.username);
  const password = utf8.encode(request.password);
  if (user.length < 1 || user.length > 255 || password.length < 1 || password.length > 255) {
    throw new RangeError("Cannot encode authentication: user and password must be 1..255 bytes");
  }
  return Uint8Array.of(PASSWORD_AUTH_VERSION, user.length, ...user, password.length, ...password);
}

/** Encodes the RFC 1929 status reply (0 = success). */
export function encodePasswordAuthReply(status: number): Uint8Array {
  return Uint8Array.of(PASSWORD_AUTH_VERSION, status);
}

/** Decodes the RFC 1929 status reply; returns STATUS. */
export async function readPasswordAuthReply(reader: ExactReader): Promise<number> {
  const [version, status] = await reader.readExact(2, "authentication reply");
  if (version !== PASSWORD_AUTH_VERSION) {
    throw new SocksProtocolError(`Cannot authenticate: server answered sub-version ${version}`);
  }
  return status!;
}

async function readTarget(reader: ExactReader, what: string): Promise<SocksTarget> {
  const type = await reader.readByte(what);
  let address: SocksAddress;
  if (type === AddressType.Ipv4) {
    address = { family: 4, bytes: await reader.readExact(4, what) };
  } else if (type === AddressType.Ipv6) {
    address = unmapIpv4({ family: 6, bytes: await reader.readExact(16, what) });
  } else if (type === AddressType.DomainName) {
    const length = await reader.readByte(what);
    if (length === 0) {
      throw new SocksProtocolError(`Cannot read ${what}: empty domain name`, Reply.GeneralFailure);
    }
    address = decodeName(await reader.readExact(length, what), what);
  } else {
    throw new SocksProtocolError(
      `Cannot read ${what}: address type ${type} is not supported`,
      Reply.AddressTypeNotSupported,
    );
  }
  const portBytes = await reader.readExact(2, what);
  return { address, port: (portBytes[0]! << 8) | portBytes[1]! };
}

function decodeName(bytes: Uint8Array, what: string): SocksAddress {
  if (bytes.includes(0)) {
    throw new SocksProtocolError(`Cannot read ${what}: NUL in domain name`, Reply.GeneralFailure);
  }
  return { family: "name", name: decodeText(bytes, what, Reply.GeneralFailure) };
}

/** Size in bytes of `ATYP ADDR PORT` for `target`. */
export function targetLength(target: SocksTarget): number {
  const a = target.address;
  return 1 + (a.family === "name" ? 1 + utf8.encode(a.name).length : a.bytes.length) + 2;
}

/** Writes `ATYP ADDR PORT` into `out` at `offset`; returns the offset after it. */
export function writeTarget(out: Uint8Array, offset: number, target: SocksTarget): number {
  const a = target.address;
  if (target.port < 0 || target.port > 65535 || !Number.isInteger(target.port)) {
    throw new RangeError(`Cannot encode port ${target.port}`);
  }
  if (a.family === "name") {
    const name = utf8.encode(a.name);
    if (name.length < 1 || name.length > 255) {
      throw new RangeError("Cannot encode domain name: it must be 1..255 bytes");
    }
    out[offset++] = AddressType.DomainName;
    out[offset++] = name.length;
    out.set(name, offset);
    offset += name.length;
  } else {
    out[offset++] = a.family === 4 ? AddressType.Ipv4 : AddressType.Ipv6;
    out.set(a.bytes, offset);
    offset += a.bytes.length;
  }
  out[offset++] = target.port >> 8;
  out[offset++] = target.port & 0xff;
  return offset;
}

function encodeHeaderAndTarget(second: number, target: SocksTarget): Uint8Array {
  const out = new Uint8Array(3 + targetLength(target));
  out[0] = SOCKS_VERSION;
  out[1] = second;
  out[2] = 0;
  writeTarget(out, 3, target);
  return out;
}

/**
 * Decodes a request `VER CMD RSV ATYP DST.ADDR DST.PORT`. The command is returned as sent, so
 * the caller answers an unknown one with REP 7 after reading the whole message. RSV is ignored.
 */
export async function readRequest(reader: ExactReader): Promise<SocksRequest> {
  const [version, command] = await reader.readExact(3, "request");
  if (version !== SOCKS_VERSION) {
    throw new SocksProtocolError(
      `Cannot read request: version ${version} is not SOCKS5`,
      Reply.GeneralFailure,
    );
  }
  return { command: command!, target: await readTarget(reader, "request") };
}

/** Encodes a request. */
export function encodeRequest(request: SocksRequest): Uint8Array {
  return encodeHeaderAndTarget(request.command, request.target);
}

/** Encodes a reply `VER REP RSV ATYP BND.ADDR BND.PORT` (always complete). */
export function encodeReply(reply: SocksReply): Uint8Array {
  return encodeHeaderAndTarget(reply.reply, reply.bound);
}

/** Decodes a reply. */
export async function readReply(reader: ExactReader): Promise<SocksReply> {
  const [version, reply] = await reader.readExact(3, "reply");
  if (version !== SOCKS_VERSION) {
    throw new SocksProtocolError(`Cannot read reply: version ${version} is not SOCKS5`);
  }
  return { reply: reply!, bound: await readTarget(reader, "reply") };
}

/** The all-zero IPv4 endpoint that failure replies carry. */
export const ZERO_TARGET: SocksTarget = {
  address: { family: 4, bytes: new Uint8Array(4) },
  port: 0,
};

/** Encodes a UDP datagram: `RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA`. */
export function encodeUdpDatagram(datagram: UdpDatagram): Uint8Array {
  const headerLength = 3 + targetLength(datagram.target);
  const out = new Uint8Array(headerLength + datagram.payload.length);
  out[2] = datagram.fragment;
  writeTarget(out, 3, datagram.target);
  out.set(datagram.payload, headerLength);
  return out;
}

/**
 * Decodes a UDP datagram. The payload is a view into `bytes`; an IPv4-mapped DST.ADDR is
 * returned as IPv4.
 *
 * @throws {SocksProtocolError} on a truncated header, non-zero RSV or unknown ATYP.
 */
export function decodeUdpDatagram(bytes: Uint8Array): UdpDatagram {
  if (bytes.length < 4) throw new SocksProtocolError("Cannot read UDP datagram: header truncated");
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new SocksProtocolError("Cannot read UDP datagram: RSV is not zero");
  }
  const fragment = bytes[2]!;
  const type = bytes[3]!;
  let offset = 4;
  let address: SocksAddress;
  const need = (n: number) => {
    if (bytes.length < offset + n) {
      throw new SocksProtocolError("Cannot read UDP datagram: header truncated");
    }
  };
  if (type === AddressType.Ipv4 || type === AddressType.Ipv6) {
    const size = type === AddressType.Ipv4 ? 4 : 16;
    need(size);
    address = size === 4
      ? { family: 4, bytes: bytes.slice(offset, offset + size) }
      : unmapIpv4({ family: 6, bytes: bytes.slice(offset, offset + size) });
    offset += size;
  } else if (type === AddressType.DomainName) {
    need(1);
    const length = bytes[offset++]!;
    if (length === 0) throw new SocksProtocolError("Cannot read UDP datagram: empty domain name");
    need(length);
    address = decodeName(bytes.subarray(offset, offset + length), "UDP datagram");
    offset += length;
  } else {
    throw new SocksProtocolError(`Cannot read UDP datagram: address type ${type} is not supported`);
  }
  need(2);
  const port = (bytes[offset]! << 8) | bytes[offset + 1]!;
  offset += 2;
  return { fragment, target: { address, port }, payload: bytes.subarray(offset) };
}
