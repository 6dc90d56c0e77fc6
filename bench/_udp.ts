/**
 * UDP through a peer: one association (or, for direct, one plain socket) to the target
 * server's UDP echo, measured two ways, each bounded in time:
 *
 * - rate: the client sends windows of `window` datagrams of `size` bytes and waits for their
 *   echoes (or 100 ms of silence) before the next window; datagrams echoed per second, and the
 *   share lost;
 * - round trip at one client: one datagram at a time, `count` times; a datagram not echoed
 *   within 500 ms counts as lost, not as a latency.
 *
 * @module
 */

import type { Peer } from "./_peers.ts";
import { treeCpuSeconds } from "./_proc.ts";
import { closeQuietly, type Endpoint, readExact, writeAll } from "./_wire.ts";

/** A way to send datagrams to the UDP echo and receive their echoes (payload only). */
export interface UdpPath {
  /** Sends `payload` toward the echo. */
  send(payload: Uint8Array): Promise<void>;
  /** Echoed payloads received so far; grows in the background. */
  readonly received: () => number;
  /** Resolves at the next echo, or after `ms`. */
  next(ms: number): Promise<void>;
  /** Closes the sockets (and the control connection). */
  close(): void;
}

/** Where a UDP datagram goes, as its SOCKS UDP header names it. */
export type UdpTarget =
  | { readonly kind: "ip"; readonly family: 4 | 6; readonly address: string; readonly port: number }
  | { readonly kind: "name"; readonly name: string; readonly port: number };

function addressBytes(target: UdpTarget): number[] {
  if (target.kind === "name") {
    const name = new TextEncoder().encode(target.name);
    return [3, name.length, ...name];
  }
  if (target.family === 4) return [1, ...target.address.split(".").map(Number)];
  // Only the loopback literal "::1" is used here.
  if (target.address !== "::1") throw new RangeError("Cannot encode: only ::1 is supported");
  return [4, ...new Array<number>(15).fill(0), 1];
}

/** The SOCKS UDP request header `RSV RSV FRAG ATYP ADDR PORT` for `target`. */
export function udpHeader(target: UdpTarget): Uint8Array {
  return new Uint8Array([0, 0, 0, ...addressBytes(target), target.port >> 8, target.port & 0xff]);
}

/** Receives in the background on `socket`, counting datagrams and waking waiters. */
function counter(socket: Deno.DatagramConn, minimum: number) {
  let count = 0;
  let wake: (() => void) | undefined;
  (async () => {
    const buffer = new Uint8Array(2048);
    try {
      while (true) {
        const [data] = await socket.receive(buffer);
        if (data.length >= minimum) count++;
        wake?.();
      }
    } catch { /* closed */ }
  })();
  return {
    received: () => count,
    next: (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          wake = undefined;
          resolve();
        }, ms);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      }),
  };
}

/** A plain UDP socket to the echo at `to`. */
export function directUdp(to: Deno.NetAddr): UdpPath {
  const family = to.hostname.includes(":") ? 6 : 4;
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: family === 4 ? "127.0.0.1" : "::1",
    port: 0,
  });
  const { received, next } = counter(socket, 1);
  return {
    send: async (payload) => {
      await socket.send(payload, to);
    },
    received,
    next,
    close: () => socket.close(),
  };
}

/**
 * A SOCKS5 UDP ASSOCIATE through `proxy` (DST 0.0.0.0:0: the client's port is not known
 * yet), datagrams headed for `target`; the control connection stays open until `close`.
 */
export async function socksUdp(proxy: Endpoint, target: UdpTarget): Promise<UdpPath> {
  const control = await Deno.connect({ hostname: proxy.hostname, port: proxy.port });
  let socket: Deno.DatagramConn | undefined;
  try {
    await writeAll(control, new Uint8Array([5, 1, 0]));
    const selection = await readExact(control, new Uint8Array(2));
    if (selection[0] !== 5 || selection[1] !== 0) throw new Error("Cannot negotiate a method");
    await writeAll(control, new Uint8Array([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
    const head = await readExact(control, new Uint8Array(4));
    if (head[1] !== 0) throw new Error(`Cannot associate: reply code ${head[1]}`);
    if (head[3] !== 1 && head[3] !== 4) throw new Error(`Cannot associate: ATYP ${head[3]}`);
    const address = await readExact(control, new Uint8Array(head[3] === 1 ? 4 : 16));
    const portBytes = await readExact(control, new Uint8Array(2));
    const port = (portBytes[0]! << 8) | portBytes[1]!;
    const unspecified = address.every((b) => b === 0);
    const hostname = unspecified ? proxy.hostname : head[3] === 1 ? [...address].join(".") : "::1";
    const relay: Deno.NetAddr = { transport: "udp", hostname, port };
    const header = udpHeader(target);
    socket = Deno.listenDatagram({
      transport: "udp",
      hostname: hostname.includes(":") ? "::1" : "127.0.0.1",
      port: 0,
    });
    const open = socket;
    const { received, next } = counter(open, 4);
    return {
      send: async (payload) => {
        const datagram = new Uint8Array(header.length + payload.length);
        datagram.set(header);
        datagram.set(payload, header.length);
        await open.send(datagram, relay);
      },
      received,
      next,
      close: () => {
        open.close();
        closeQuietly(control);
      },
    };
  } catch (error) {
    socket?.close();
    closeQuietly(control);
    throw error;
  }
}

/** One UDP rate measurement. */
export interface UdpRateSample {
  /** Datagrams echoed per second. */
  readonly rate: number;
  /** Datagrams sent. */
  readonly sent: number;
  /** Datagrams echoed. */
  readonly echoed: number;
  /** CPU seconds the proxy's tree used (0 for direct). */
  readonly proxyCpu: number;
}

/** Options of the UDP measurements. */
export interface UdpOptions {
  /** Length of the rate run (ms). @default 2000 */
  readonly durationMs?: number;
  /** Datagrams per window. @default 64 */
  readonly window?: number;
  /** Payload bytes per datagram. @default 64 */
  readonly size?: number;
  /** Round trips at one client. @default 2000 */
  readonly count?: number;
}

/** Datagrams per second through `path` in windows (see the module doc). */
export async function udpRate(
  peer: Peer,
  path: UdpPath,
  options: UdpOptions = {},
): Promise<UdpRateSample> {
  const window = options.window ?? 64;
  const payload = new Uint8Array(options.size ?? 64).fill(0x75);
  const durationMs = options.durationMs ?? 2000;
  const cpuBefore = peer.pid === null ? 0 : treeCpuSeconds(peer.pid);
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < durationMs) {
    // This window's echoes are awaited, not every echo so far: a datagram lost earlier (a proxy
    // drops the first ones to a name while it resolves) must not make every later window wait.
    const expected = path.received() + window;
    for (let i = 0; i < window; i++) await path.send(payload);
    sent += window;
    // Wait for this window's echoes, or 100 ms without one.
    while (path.received() < expected) {
      const before = path.received();
      await path.next(100);
      if (path.received() === before) break;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const proxyCpu = peer.pid === null ? 0 : treeCpuSeconds(peer.pid) - cpuBefore;
  const echoed = path.received();
  return { rate: echoed / seconds, sent, echoed, proxyCpu };
}

/** Round trips (ms, sorted) of one datagram at a time, and how many were lost. */
export async function udpRoundTrips(
  path: UdpPath,
  options: UdpOptions = {},
): Promise<{ latencies: number[]; lost: number }> {
  const payload = new Uint8Array(options.size ?? 64).fill(0x76);
  const latencies: number[] = [];
  let lost = 0;
  const count = options.count ?? 2000;
  for (let i = 0; i < count; i++) {
    const before = path.received();
    const t0 = performance.now();
    await path.send(payload);
    const deadline = t0 + 500;
    while (path.received() === before && performance.now() < deadline) {
      await path.next(deadline - performance.now());
    }
    if (path.received() === before) lost++;
    else latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  return { latencies, lost };
}
