/**
 * The measurements. Each one is bounded in count and in time: a run that exceeds its deadline
 * closes its connections and fails instead of hanging the bench.
 *
 * @module
 */

import { errorText } from "../net/error_text.ts";
import type { Peer } from "./_peers.ts";
import { processCpuSeconds, treeCpuSeconds, type TreeMemory, treeMemory } from "./_proc.ts";
import {
  awaitEndAndClose,
  closeQuietly,
  encodeHeader,
  Mode,
  readExact,
  writeAll,
} from "./_wire.ts";

const CHUNK = 256 * 1024;
const payload = new Uint8Array(CHUNK).fill(0x62);

/** Direction of a bulk transfer, seen from the client. */
export type Direction = "upload" | "download";

/** One bulk measurement. */
export interface BulkSample {
  /** Bytes moved (payload only). */
  bytes: number;
  /** Wall seconds from the first header byte to the last payload byte (or the upload ack). */
  seconds: number;
  /** CPU seconds the proxy's process tree used meanwhile (0 for direct). */
  proxyCpu: number;
  /** CPU seconds the harness (`harnessPids`: load generator, target server) used meanwhile. */
  harnessCpu: number;
}

/** Rejects with a timeout error after `ms`, running `onTimeout` first (which should close). */
async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`Cannot finish: deadline of ${ms} ms exceeded`));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
  }
}

function cpuOf(peer: Peer): number {
  return peer.pid === null ? 0 : treeCpuSeconds(peer.pid);
}

async function transfer(conn: Deno.TcpConn, direction: Direction, size: number): Promise<void> {
  if (direction === "upload") {
    let sent = 0;
    while (sent < size) {
      const n = Math.min(CHUNK, size - sent);
      await writeAll(conn, n === CHUNK ? payload : payload.subarray(0, n));
      sent += n;
    }
    await readExact(conn, new Uint8Array(8));
  } else {
    const buffer = new Uint8Array(CHUNK);
    let received = 0;
    while (received < size) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error(`Cannot download: end of stream after ${received} bytes`);
      received += n;
    }
  }
}

async function openBulk(
  peer: Peer,
  family: 4 | 6,
  direction: Direction,
  size: number,
): Promise<Deno.TcpConn> {
  return await peer.open(
    family,
    encodeHeader(direction === "upload" ? Mode.Upload : Mode.Download, size),
  );
}

/** Options of {@linkcode bulk}. */
export interface BulkOptions {
  /** Parallel streams. @default 1 */
  streams?: number;
  /** Family of the target (6: reached through a name the peer resolves). @default 4 */
  family?: 4 | 6;
  /** Give up after this long. @default 60000 */
  timeoutMs?: number;
  /** Processes (each alone, not their trees) whose CPU is `harnessCpu`. @default [] */
  harnessPids?: readonly number[];
}

function cpuOfAll(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
}

/**
 * Moves `size` bytes per stream in `direction` over `streams` parallel connections opened
 * through `peer`; timing starts after every SOCKS handshake has completed.
 */
export async function bulk(
  peer: Peer,
  direction: Direction,
  size: number,
  options: BulkOptions = {},
): Promise<BulkSample> {
  const streams = options.streams ?? 1;
  const family = options.family ?? 4;
  const conns: Deno.TcpConn[] = [];
  const closeAll = () => conns.forEach(closeQuietly);
  try {
    const opened = await withDeadline(
      Promise.all(Array.from({ length: streams }, () => openBulk(peer, family, direction, size))),
      10_000,
      closeAll,
    );
    conns.push(...opened);
    const harnessPids = options.harnessPids ?? [];
    const cpuBefore = cpuOf(peer);
    const harnessBefore = cpuOfAll(harnessPids);
    const start = performance.now();
    await withDeadline(
      Promise.all(conns.map((conn) => transfer(conn, direction, size))),
      options.timeoutMs ?? 60_000,
      closeAll,
    );
    const seconds = (performance.now() - start) / 1000;
    const proxyCpu = cpuOf(peer) - cpuBefore;
    const harnessCpu = cpuOfAll(harnessPids) - harnessBefore;
    await Promise.all(conns.map((conn) => awaitEndAndClose(conn)));
    return { bytes: size * streams, seconds, proxyCpu, harnessCpu };
  } finally {
    closeAll();
  }
}

/** One connection-rate measurement. */
export interface RateSample {
  /** Completed round trips per second. */
  rate: number;
  /** Latencies of the completed round trips, in milliseconds, sorted. */
  latencies: number[];
  /** Failed round trips. */
  errors: number;
  /** CPU seconds the proxy's process tree used during the run (0 for direct). */
  proxyCpu: number;
}

/** Options of {@linkcode connectionRate}. */
export interface RateOptions {
  /** Concurrent clients. @default 32 */
  concurrency?: number;
  /** Stop starting new round trips after this long. @default 3000 */
  durationMs?: number;
  /** Stop after this many round trips in all. @default 50000 */
  maxCount?: number;
  /** Request and response size. @default 32 */
  messageSize?: number;
}

/**
 * Full SOCKS round trips as fast as `concurrency` clients can go: connect, negotiate, CONNECT,
 * a small request and its response, close (the target closes first; the latency ends when the
 * client has seen that close). Bounded by `durationMs` and `maxCount`.
 */
export async function connectionRate(peer: Peer, options: RateOptions = {}): Promise<RateSample> {
  const concurrency = options.concurrency ?? 32;
  const durationMs = options.durationMs ?? 3000;
  const maxCount = options.maxCount ?? 50_000;
  const size = options.messageSize ?? 32;
  const message = new Uint8Array(size).fill(0x63);
  const header = encodeHeader(Mode.Echo, size);
  const request = new Uint8Array(header.length + size);
  request.set(header);
  request.set(message, header.length);
  const latencies: number[] = [];
  const live = new Set<Deno.TcpConn>();
  let started = 0;
  let errors = 0;
  const cpuBefore = cpuOf(peer);
  const start = performance.now();
  const stopAt = start + durationMs;
  const worker = async () => {
    const response = new Uint8Array(size);
    while (performance.now() < stopAt && started < maxCount) {
      started++;
      const t0 = performance.now();
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await peer.open(4, request);
        live.add(conn);
        await readExact(conn, response);
        await awaitEndAndClose(conn);
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
        if (conn) closeQuietly(conn);
      } finally {
        if (conn) live.delete(conn);
      }
    }
  };
  await withDeadline(
    Promise.all(Array.from({ length: concurrency }, worker)),
    durationMs + 15_000,
    () => live.forEach(closeQuietly),
  );
  const elapsed = (performance.now() - start) / 1000;
  const proxyCpu = cpuOf(peer) - cpuBefore;
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / elapsed, latencies, errors, proxyCpu };
}

/** One held-connections measurement. */
export interface HeldSample {
  /** Connections asked for. */
  wanted: number;
  /** Connections established and confirmed relayed (the target's byte came back). */
  held: number;
  /** Proxy memory before opening any. */
  before: TreeMemory;
  /** Proxy memory while holding them, after a settle pause. */
  during: TreeMemory;
  /** Failed opens. */
  errors: number;
  /** The first failure's message, if any. */
  firstError?: string;
}

/** Options of {@linkcode heldConnections}. */
export interface HeldOptions {
  /** Opens in flight at once. @default 64 */
  concurrency?: number;
  /** Pause before sampling memory. @default 1500 */
  settleMs?: number;
  /** Give up opening after this long. @default 60000 */
  timeoutMs?: number;
}

/**
 * Opens `count` relayed connections through `peer` (each confirmed by a byte from the target),
 * samples the proxy's memory while they sit idle, then closes them all.
 */
export async function heldConnections(
  peer: Peer,
  count: number,
  options: HeldOptions = {},
): Promise<HeldSample> {
  if (peer.pid === null) throw new TypeError("Cannot measure memory: direct has no proxy");
  const pid = peer.pid;
  const concurrency = options.concurrency ?? 64;
  const header = encodeHeader(Mode.Hold, 0);
  const conns: Deno.TcpConn[] = [];
  const before = treeMemory(pid);
  let next = 0;
  let held = 0;
  let errors = 0;
  let firstError: string | undefined;
  const deadline = performance.now() + (options.timeoutMs ?? 60_000);
  const worker = async () => {
    const ack = new Uint8Array(1);
    while (next < count && performance.now() < deadline && errors < 100) {
      next++;
      try {
        const conn = await peer.open(4, header);
        conns.push(conn);
        await readExact(conn, ack);
        held++;
      } catch (error) {
        errors++;
        firstError ??= errorText(error);
      }
    }
  };
  try {
    await withDeadline(
      Promise.all(Array.from({ length: concurrency }, worker)),
      (options.timeoutMs ?? 60_000) + 10_000,
      () => conns.forEach(closeQuietly),
    );
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 1500));
    const during = treeMemory(pid);
    return {
      wanted: count,
      held,
      before,
      during,
      errors,
      ...(firstError !== undefined ? { firstError } : {}),
    };
  } finally {
    // Ask the target to close first (see target_server.ts), then close our side.
    await Promise.all(conns.map(async (conn) => {
      try {
        await writeAll(conn, new Uint8Array([0]));
      } catch { /* already gone */ }
      await awaitEndAndClose(conn);
    }));
    // Let the proxy see the closes and free what it held before the next figure.
    await new Promise((resolve) => setTimeout(resolve, Math.min(3000, 200 + count / 5)));
  }
}
