/**
 * The core relay: copies both directions until both are closed, preserving half-close,
 * with an idle timeout and byte counts.
 *
 * Hot path: one read/write loop per direction over a reused buffer. A direction starts with a
 * small buffer (cheap idle connections) and trades it for a larger pooled one while reads keep
 * filling it (fast bulk streams); when reads get short again the large buffer goes back to the
 * pool. No per-chunk logging, lookups or timers: idleness is sampled by one shared sweeper.
 *
 * @module
 */

import { IdleSweeper } from "./idle_sweeper.ts";
import { closeQuietly } from "../../net/io.ts";
import type { DuplexStream } from "../../net/stream.ts";

/** A stream the relay can drive: a TCP connection or anything shaped like one. */
export type RelayConn = DuplexStream;

/** Options of {@linkcode relay}. */
export interface RelayOptions {
  /** Close both sides after this long without traffic in either direction. @default 300000 */
  idleMs?: number;
  /** Aborting closes both sides at once (used by drain on shutdown). */
  signal?: AbortSignal;
  /** Bytes the client sent after its request, to be delivered to the server first. */
  clientPrelude?: Uint8Array;
  /**
   * Rate caps and quotas per direction (`up`: client to server). A throttled direction reads
   * no more than its allowance and waits as told before its next read: it slows down, never
   * drops or reorders bytes. @default none (the unthrottled loop)
   */
  throttle?: { readonly up?: RelayThrottle; readonly down?: RelayThrottle };
}

/**
 * What slows one direction of a relay down: a user's token bucket and quota. Synchronous and
 * allocation-free, so that a throttled chunk costs two calls and, when over the rate, a timer.
 */
export interface RelayThrottle {
  /**
   * How long (ms) to wait before the next read: 0 while the bucket holds tokens, else the time
   * to pay back its debt. Asked before every read, and again after each wait, so that relays
   * of one user woken together do not all read at once.
   */
  delay(): number;
  /**
   * The most bytes the next read may take, up to `max`, taken from the bucket now (so that the
   * next relay to ask sees them gone); 0 when the quota is spent.
   */
  allowance(max: number): number;
  /** Counts `bytes` relayed by a read that was allowed `allowed`; the rest goes back. */
  consumed(bytes: number, allowed: number): void;
}

/** Why a relay ended (`quota`: a throttle's quota was spent). */
export type RelayEnd = "closed" | "idle" | "aborted" | "error" | "quota";

/** Outcome of {@linkcode relay}. */
export interface RelayResult {
  /** Bytes copied from the client to the server. */
  clientToServer: number;
  /** Bytes copied from the server to the client. */
  serverToClient: number;
  /** How it ended. */
  end: RelayEnd;
  /** The first error seen, when `end` is `"error"`. */
  error?: unknown;
  /**
   * When `end` is not `"closed"`: the sides that had already ended their stream (EOF, passed
   * on as a half-close) by then; absent when neither had.
   */
  finished?: ("client" | "server")[];
}

/**
 * True when every direction that carried bytes was relayed up to its sender's end of stream,
 * and one direction was: a complete transfer (a data connection's), whatever closed the
 * connections afterwards (an abort when its control session ends, an idle timeout).
 */
export function transferComplete(result: RelayResult): boolean {
  if (result.end === "closed") return true;
  const finished = result.finished ?? [];
  return finished.length > 0 &&
    (result.clientToServer === 0 || finished.includes("client")) &&
    (result.serverToClient === 0 || finished.includes("server"));
}

// Measured (bench/RESULTS.md): 1 KiB keeps idle relays small and 1 MiB gives the best
// single-stream throughput and CPU per GiB. A direction goes back to its small buffer on every
// short read, so that a relay idle after a burst holds no large buffer; the pool is sized for
// 64 busy streams (two directions each) so that this does not turn into allocations.
const SMALL_BUFFER = 1024;
const LARGE_BUFFER = 1024 * 1024;
const POOL_LIMIT = 128;
const largePool: Uint8Array[] = [];

let largeInUse = 0;

function takeLarge(): Uint8Array {
  largeInUse++;
  return largePool.pop() ?? new Uint8Array(LARGE_BUFFER);
}

function giveLarge(buffer: Uint8Array): void {
  largeInUse--;
  if (largePool.length < POOL_LIMIT) largePool.push(buffer);
}

/** Large relay buffers held by relays now, and kept in the pool (for tests and metrics). */
export function relayBufferStats(): { inUse: number; pooled: number } {
  return { inUse: largeInUse, pooled: largePool.length };
}

const sweeper = new IdleSweeper();

/** Per-direction state shared with the idle sweeper (a flag flip per chunk, nothing more). */
class Direction {
  bytes = 0;
  done = false;
  /** A throttled direction's pending wait: the relay's close ends it at once. */
  timer: ReturnType<typeof setTimeout> | undefined;
  wake: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.wake = undefined;
        resolve();
      }, ms);
    });
  }

  /** Set by the relay's close: a throttled direction stops waiting. */
  cancelled = false;

  cancelSleep(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.wake?.();
    this.wake = undefined;
  }
}

/** Thrown by a throttled direction whose quota is spent: the relay ends with `quota`. */
class QuotaSpent extends Error {}

async function pump(
  from: RelayConn,
  to: RelayConn,
  state: Direction,
  other: Direction,
  activity: { active: boolean },
  throttle: RelayThrottle | undefined,
): Promise<void> {
  const small = new Uint8Array(SMALL_BUFFER);
  let buffer: Uint8Array = small;
  try {
    while (true) {
      // Throttled: wait out the bucket's debt, then read no more than the allowance (the
      // bucket's burst, the quota left).
      // A wait ended early by the relay's close: the read below then fails, as closed.
      if (throttle) {
        for (let wait = throttle.delay(); wait > 0 && !state.cancelled; wait = throttle.delay()) {
          await state.sleep(wait);
        }
      }
      const limit = throttle ? throttle.allowance(buffer.length) : buffer.length;
      if (limit <= 0) throw new QuotaSpent();
      const n = await from.read(limit === buffer.length ? buffer : buffer.subarray(0, limit));
      if (n === null) {
        throttle?.consumed(0, limit);
        break;
      }
      activity.active = true;
      state.bytes += n;
      let written = 0;
      while (written < n) {
        written += await to.write(
          written === 0 && n === buffer.length ? buffer : buffer.subarray(written, n),
        );
      }
      throttle?.consumed(n, limit);
      if (n === limit) {
        // Reads keep filling the buffer: a bulk stream, give it the large one.
        if (buffer === small) buffer = takeLarge();
      } else if (buffer !== small) {
        // A short read: the sender paused. Wait for it on the small buffer, so that a relay
        // that goes idle after a burst never holds a large one; the next full read takes a
        // large buffer back from the pool.
        giveLarge(buffer);
        buffer = small;
      }
    }
    state.done = true;
    // Pass the end of stream on as a half-close, unless the other direction has ended too: then
    // both sockets are closed next, and close sends the FIN (a shutdown would be an op for
    // nothing, on every connection).
    if (!other.done) await to.closeWrite().catch(() => {});
  } finally {
    if (buffer !== small) giveLarge(buffer);
  }
}

/** The byte counts of the relays running in this isolate (one entry per relay, not per chunk). */
const running = new Set<{ readonly up: Direction; readonly down: Direction }>();

/**
 * Bytes moved so far by the relays still running in this isolate, `up` client to server (a
 * relay's bytes are counted in the metrics only when it ends: this is the rest, for the status
 * page's throughput).
 */
export function runningRelayBytes(): { up: number; down: number } {
  let up = 0;
  let down = 0;
  for (const relay of running) {
    up += relay.up.bytes;
    down += relay.down.bytes;
  }
  return { up, down };
}

/**
 * Relays between `client` and `server` until both directions have ended, then closes both.
 * End of stream in one direction is passed on as a half-close; an error in either direction,
 * the idle timeout or `signal` closes both at once. Never throws.
 */
export async function relay(
  client: RelayConn,
  server: RelayConn,
  options: RelayOptions = {},
): Promise<RelayResult> {
  const up = new Direction();
  const down = new Direction();
  const counted = { up, down };
  running.add(counted);
  const activity = { active: true };
  let end: RelayEnd = "closed";
  let firstError: unknown;
  let closed = false;
  const closeBoth = (why: RelayEnd) => {
    if (closed) return;
    closed = true;
    if (end === "closed") end = why;
    up.cancelSleep();
    down.cancelSleep();
    for (const conn of [client, server]) {
      closeQuietly(conn);
    }
  };
  const onAbort = () => closeBoth("aborted");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const idleEntry = sweeper.add(activity, options.idleMs ?? 300_000, () => closeBoth("idle"));
  const run = async (
    from: RelayConn,
    to: RelayConn,
    state: Direction,
    other: Direction,
    throttle: RelayThrottle | undefined,
  ) => {
    try {
      await pump(from, to, state, other, activity, throttle);
    } catch (error) {
      if (error instanceof QuotaSpent) {
        closeBoth("quota");
      } else if (!closed) {
        firstError ??= error;
        end = "error";
        closeBoth("error");
      }
    }
  };
  try {
    if (options.clientPrelude && options.clientPrelude.length > 0) {
      let written = 0;
      const prelude = options.clientPrelude;
      try {
        while (written < prelude.length) written += await server.write(prelude.subarray(written));
        up.bytes += prelude.length;
        options.throttle?.up?.consumed(prelude.length, 0);
      } catch (error) {
        firstError = error;
        end = "error";
        closeBoth("error");
      }
    }
    const throttle = options.throttle;
    await Promise.all([
      run(client, server, up, down, throttle?.up),
      run(server, client, down, up, throttle?.down),
    ]);
  } finally {
    sweeper.remove(idleEntry);
    running.delete(counted);
    options.signal?.removeEventListener("abort", onAbort);
    closeBoth("closed");
  }
  const result: RelayResult = { clientToServer: up.bytes, serverToClient: down.bytes, end };
  if (firstError !== undefined) result.error = firstError;
  if (end !== "closed" && (up.done || down.done)) {
    result.finished = [
      ...(up.done ? ["client" as const] : []),
      ...(down.done ? ["server" as const] : []),
    ];
  }
  return result;
}
