/**
 * Typed IP addresses, parsed strictly into bytes once at the edge.
 *
 * Inside dualgate an address is `{ family: 4 | 6, bytes }`; strings are parsed only where they
 * enter (config, sockets, the wire) and formatted only where they leave (logs, sockets).
 *
 * @module
 */

/** An IPv4 or IPv6 address as network-order bytes (4 or 16 of them). */
export interface IpAddress {
  /** 4 for IPv4, 6 for IPv6. */
  readonly family: 4 | 6;
  /** Network-order bytes: 4 for IPv4, 16 for IPv6. */
  readonly bytes: Uint8Array;
}

/** An IP address with a port: one end of a TCP connection or a UDP flow. */
export interface IpEndpoint {
  /** The address. */
  readonly address: IpAddress;
  /** The port, 0..65535. */
  readonly port: number;
}

const IPV4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses a dotted-quad IPv4 literal; returns `null` for anything else (no octal, no short forms). */
export function parseIpv4(text: string): IpAddress | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!IPV4_PART.test(part)) return null;
    bytes[i] = Number(part);
  }
  return { family: 4, bytes };
}

/** Parses an IPv6 literal (RFC 4291 text forms, optional trailing dotted quad, no zone). */
export function parseIpv6(text: string): IpAddress | null {
  if (text.length < 2 || text.length > 45 || text.includes("%")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parseGroups = (part: string, quadAllowed: boolean): number[] | null => {
    if (part === "") return [];
    const groups: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (quadAllowed && i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (!v4) return null;
        groups.push((v4.bytes[0]! << 8) | v4.bytes[1]!, (v4.bytes[2]! << 8) | v4.bytes[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
      groups.push(parseInt(piece, 16));
    }
    return groups;
  };
  // A dotted quad may stand only as the last 32 bits.
  const head = parseGroups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1]!, true) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [
    ...head,
    ...new Array<number>(halves.length === 2 ? missing : 0).fill(0),
    ...tail,
  ];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

/**
 * Parses an IPv4 or IPv6 literal, with or without brackets around an IPv6 one.
 * Returns `null` when `text` is not an IP literal (so it may be a name).
 */
export function parseIp(text: string): IpAddress | null {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  return bare.includes(":") ? parseIpv6(bare) : parseIpv4(bare);
}

/** Formats an address the usual way: dotted quad, or RFC 5952 compressed IPv6. */
export function formatIp(address: IpAddress): string {
  const b = address.bytes;
  if (address.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1, bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** Formats `address:port`, bracketing IPv6 (`[2001:db8::1]:80`). */
export function formatEndpoint(endpoint: IpEndpoint): string {
  const host = formatIp(endpoint.address);
  return endpoint.address.family === 6 ? `[${host}]:${endpoint.port}` : `${host}:${endpoint.port}`;
}

/** Returns the IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else the input. */
export function unmapIpv4(address: IpAddress): IpAddress {
  if (address.family !== 6) return address;
  const b = address.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return address;
  if (b[10] !== 0xff || b[11] !== 0xff) return address;
  return { family: 4, bytes: b.slice(12, 16) };
}

/** True when both addresses are the same family and bytes. */
export function sameIp(a: IpAddress, b: IpAddress): boolean {
  if (a.family !== b.family) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}

/** True for 0.0.0.0 and `::`. */
export function isUnspecified(address: IpAddress): boolean {
  return address.bytes.every((b) => b === 0);
}

/** The unspecified address of a family (0.0.0.0 or `::`). */
export function unspecified(family: 4 | 6): IpAddress {
  return { family, bytes: new Uint8Array(family === 4 ? 4 : 16) };
}

/**
 * Reads a Deno network address (from `conn.localAddr`/`remoteAddr`) into a typed endpoint,
 * unwrapping IPv4-mapped IPv6 so that an IPv4 client on a dual-stack socket is IPv4.
 *
 * @throws {TypeError} when the address is not an IP transport address.
 */
export function endpointFromNetAddr(addr: Deno.Addr): IpEndpoint {
  if (addr.transport !== "tcp" && addr.transport !== "udp") {
    throw new TypeError(`Cannot read address: transport ${addr.transport} is not IP`);
  }
  const parsed = parseIp(addr.hostname);
  if (!parsed) throw new TypeError(`Cannot read address: ${addr.hostname} is not an IP literal`);
  return { address: unmapIpv4(parsed), port: addr.port };
}

/**
 * The IP endpoint of `conn`'s peer (as {@linkcode endpointFromNetAddr} reads it), or `null` when
 * it has none: not an IP transport, or the connection is gone already.
 */
export function peerEndpoint(conn: { readonly remoteAddr: Deno.Addr }): IpEndpoint | null {
  try {
    return endpointFromNetAddr(conn.remoteAddr);
  } catch {
    return null;
  }
}

/** Formats an address for `Deno.connect`/`Deno.listen` `hostname` (no brackets). */
export function toHostname(address: IpAddress): string {
  return formatIp(address);
}
