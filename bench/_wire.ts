/**
 * The bench's own byte-level helpers: exact reads, full writes, the target server's request
 * header, and a minimal SOCKS5 CONNECT client that sends one message per round trip (some
 * peers, microsocks among them, treat each `recv()` as one whole protocol message, so the
 * greeting and the request are never pipelined).
 *
 * @module
 */

import { closeQuietly, writeAll } from "../net/io.ts";

export { closeQuietly, writeAll } from "../net/io.ts";

/** What the target server does with a connection, chosen by the first header byte. */
export const Mode = {
  /** Read `arg` bytes, answer with an 8-byte count, close (upload). */
  Upload: 0x55,
  /** Write `arg` bytes, close (download). */
  Download: 0x44,
  /** Read `arg` bytes, write them back, close (request/response). */
  Echo: 0x45,
  /** Write one byte, hold the connection until the client sends a byte, close (held). */
  Hold: 0x48,
} as const;

/** One of {@linkcode Mode}'s values. */
export type ModeByte = typeof Mode[keyof typeof Mode];

/** Size of the header the target server reads first: mode byte + 64-bit big-endian argument. */
export const HEADER_SIZE = 9;

/** Encodes the target server's header. */
export function encodeHeader(mode: ModeByte, arg: number): Uint8Array {
  const header = new Uint8Array(HEADER_SIZE);
  header[0] = mode;
  new DataView(header.buffer).setBigUint64(1, BigInt(arg));
  return header;
}

/** Decodes the target server's header. */
export function decodeHeader(header: Uint8Array): { mode: number; arg: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  return { mode: header[0] ?? 0, arg: Number(view.getBigUint64(1)) };
}

/** Reads exactly `buffer.length` bytes; throws on a premature end of stream. */
export async function readExact(conn: Deno.Conn, buffer: Uint8Array): Promise<Uint8Array> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await conn.read(filled === 0 ? buffer : buffer.subarray(filled));
    if (n === null) throw new Error("Cannot read: unexpected end of stream");
    filled += n;
  }
  return buffer;
}

/** Waits (bounded) for the peer's end of stream, then closes: the peer closes first. */
export async function awaitEndAndClose(conn: Deno.Conn, ms = 5000): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), ms);
  try {
    const sink = new Uint8Array(64);
    while ((await conn.read(sink)) !== null) { /* discard */ }
  } catch {
    /* closed by the timer or reset */
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Where a SOCKS CONNECT goes: an IP literal (ATYP 1 or 4) or a name (ATYP 3). */
export type SocksTarget =
  | { readonly kind: "ip"; readonly family: 4 | 6; readonly address: string; readonly port: number }
  | { readonly kind: "name"; readonly name: string; readonly port: number };

/** A TCP endpoint. */
export interface Endpoint {
  /** Address literal. */
  readonly hostname: string;
  /** Port. */
  readonly port: number;
}

function ipv4Bytes(address: string): number[] {
  return address.split(".").map(Number);
}

function ipv6Bytes(address: string): number[] {
  const [head = "", tail = ""] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = address.includes("::")
    ? [...left, ...new Array<string>(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return groups.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

/** Encodes a SOCKS5 CONNECT request for `target`. */
export function encodeConnect(target: SocksTarget): Uint8Array {
  let address: number[];
  if (target.kind === "name") {
    const name = new TextEncoder().encode(target.name);
    address = [3, name.length, ...name];
  } else if (target.family === 4) {
    address = [1, ...ipv4Bytes(target.address)];
  } else {
    address = [4, ...ipv6Bytes(target.address)];
  }
  return new Uint8Array([5, 1, 0, ...address, target.port >> 8, target.port & 0xff]);
}

const GREETING = new Uint8Array([5, 1, 0]);

/**
 * Opens a connection through the SOCKS5 proxy at `proxy` to `request` (an encoded CONNECT);
 * resolves once the success reply has been read in full, so the next byte is the target's.
 */
export async function socksConnect(proxy: Endpoint, request: Uint8Array): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: proxy.hostname, port: proxy.port });
  try {
    conn.setNoDelay(true);
    await writeAll(conn, GREETING);
    const selection = await readExact(conn, new Uint8Array(2));
    if (selection[0] !== 5 || selection[1] !== 0) {
      throw new Error(`Cannot negotiate: method selection ${selection[0]} ${selection[1]}`);
    }
    await writeAll(conn, request);
    const head = await readExact(conn, new Uint8Array(5));
    if (head[1] !== 0) throw new Error(`Cannot connect: reply code ${head[1]}`);
    const rest = head[3] === 1 ? 5 : head[3] === 4 ? 17 : (head[4] ?? 0) + 2;
    await readExact(conn, new Uint8Array(rest));
    return conn;
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
}

/**
 * Opens a tunnel through the HTTP proxy at `proxy` with `CONNECT authority`; resolves once the
 * response head has been read (the target sends nothing before the client's header, so one
 * response head is all there is to read).
 */
export async function httpConnect(proxy: Endpoint, authority: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: proxy.hostname, port: proxy.port });
  try {
    conn.setNoDelay(true);
    await writeAll(conn, new TextEncoder().encode(`CONNECT ${authority} HTTP/1.1\r\n\r\n`));
    const buffer = new Uint8Array(512);
    let got = 0;
    let text = "";
    while (!text.endsWith("\r\n\r\n")) {
      const n = await conn.read(buffer.subarray(got));
      if (n === null) throw new Error("Cannot connect: the proxy closed");
      got += n;
      if (got === buffer.length) throw new Error("Cannot connect: response head too long");
      text = new TextDecoder().decode(buffer.subarray(0, got));
    }
    if (!text.startsWith("HTTP/1.1 200")) {
      throw new Error(`Cannot connect: ${text.split("\r\n")[0]}`);
    }
    return conn;
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
}
