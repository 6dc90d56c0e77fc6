/**
 * Stream helpers every layer shares: write a whole buffer, let an `AbortSignal` cut a wait
 * short, and close what may be closed already.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { abortable, writeAll } from "./io.ts";
 *
 * const chunks: number[] = [];
 * // A sink that takes at most two bytes per write.
 * const sink = {
 *   write: (data: Uint8Array) => {
 *     chunks.push(Math.min(2, data.length));
 *     return Promise.resolve(Math.min(2, data.length));
 *   },
 * };
 * await writeAll(sink, new Uint8Array(5));
 * assert.deepEqual(chunks, [2, 2, 1]);
 *
 * const stop = new AbortController();
 * const never = new Promise<number>(() => {});
 * const waiting = abortable(never, stop.signal);
 * stop.abort(new Error("stopped"));
 * await assert.rejects(waiting, /stopped/);
 * ```
 *
 * @module
 */

/** Something bytes are written to in parts (a `Deno.Conn`, an adapter around a Node socket). */
export interface ByteSink {
  /** Writes some of `data`; returns how many bytes were written. */
  write(data: Uint8Array): Promise<number>;
}

/** Writes all of `bytes`, however many writes it takes. */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await sink.write(bytes.subarray(written));
}

/** Closes a connection, listener or socket, ignoring "already closed". */
export function closeQuietly(resource: { close(): void } | null | undefined): void {
  try {
    resource?.close();
  } catch {
    // Already closed: closing is idempotent here.
  }
}

/**
 * Settles with `promise`, or rejects with the signal's reason when `signal` aborts first (at
 * once when it is aborted already). The operation behind `promise` is not cancelled: the caller
 * closes what it waits on.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
