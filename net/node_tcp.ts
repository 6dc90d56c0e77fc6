/**
 * Outbound TCP from a chosen source address. `Deno.connect` cannot bind the local end;
 * `node:net`'s `localAddress` can. {@linkcode connectFrom} dials with it and wraps the socket as
 * a `Deno.TcpConn`, so that the relay and every other consumer see one kind of connection.
 *
 * Reads use `onread`: libuv reads into one reused buffer and the callback copies the bytes
 * straight into the buffer of the waiting `read()` (Deno's node:net `Buffer` stream path was
 * about half as fast in `bench/egress_bench.ts`, counting bytes only). With no reader waiting, one chunk is
 * kept and the socket stops reading until it is taken: backpressure as with `Deno.connect`.
 *
 * @module
 */

import { connect as nodeConnect, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { formatIp, type IpAddress, type IpEndpoint } from "./address.ts";

/** Size of the reused read buffer. */
const READ_BUFFER = 64 * 1024;

/** Options of {@linkcode connectFrom}. */
export interface ConnectFromOptions {
  /** Aborts the attempt (closing the socket); after connecting it has no effect. */
  signal?: AbortSignal;
}

/**
 * Connects to `remote` from the source address `local` (any port).
 *
 * @throws the connect error (`code` `ECONNREFUSED`, `EADDRNOTAVAIL`, ...), or the signal's
 *   reason when aborted.
 */
export function connectFrom(
  local: IpAddress,
  remote: IpEndpoint,
  options: ConnectFromOptions = {},
): Promise<Deno.TcpConn> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    let conn: NodeTcpConn | undefined;
    const socket = nodeConnect({
      host: formatIp(remote.address),
      port: remote.port,
      localAddress: formatIp(local),
      family: remote.address.family,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER),
        callback: (n: number, buffer: Uint8Array) => conn!.deliver(n, buffer),
      },
    });
    const onAbort = () => {
      socket.destroy();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const onError = (error: Error) => {
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(bindFailure(error, local) ?? error);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      conn = new NodeTcpConn(socket);
      resolve(conn);
    });
  });
}

/**
 * A failed bind of the source address, as `EADDRNOTAVAIL` (Deno's node:net reports `EINVAL`
 * whatever the cause): the host does not have the address, nor may bind it non-locally.
 */
function bindFailure(error: Error, local: IpAddress): Error | undefined {
  if ((error as { syscall?: string }).syscall !== "bind") return undefined;
  return Object.assign(
    new Error(
      `Cannot bind source address ${formatIp(local)}: not an address of this host ` +
        `(for a prefix, see "Egress addresses" in the README)`,
      { cause: error },
    ),
    { code: "EADDRNOTAVAIL" },
  );
}

function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/** A connected `node:net` socket behind the `Deno.TcpConn` interface. */
class NodeTcpConn implements Deno.TcpConn {
  readonly #socket: Socket;
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  /** Bytes read while no reader waited (a copy: the read buffer is reused). */
  #kept: Uint8Array | null = null;
  #waiter:
    | { into: Uint8Array; resolve: (n: number | null) => void; reject: (e: unknown) => void }
    | null = null;
  #ended = false;
  #error: unknown = null;
  #paused = false;
  #closed = false;
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  #writable?: WritableStream<Uint8Array<ArrayBufferLike>>;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.localAddr = netAddr(socket.localAddress, socket.localPort);
    this.remoteAddr = netAddr(socket.remoteAddress, socket.remotePort);
    socket.on("end", () => this.#finish(null));
    socket.on("error", (error: Error) => this.#finish(error));
    socket.on("close", () => this.#finish(null));
  }

  /** The `onread` callback: hands the bytes to the waiting reader, or keeps them. */
  deliver(n: number, buffer: Uint8Array): boolean {
    if (n <= 0) return true;
    const waiter = this.#waiter;
    if (waiter !== null) {
      this.#waiter = null;
      const taken = Math.min(n, waiter.into.length);
      waiter.into.set(buffer.subarray(0, taken));
      if (taken < n) this.#keep(buffer.slice(taken, n));
      waiter.resolve(taken);
      return !this.#paused;
    }
    this.#keep(buffer.slice(0, n));
    return false;
  }

  #keep(bytes: Uint8Array): void {
    this.#kept = this.#kept === null ? bytes : concat(this.#kept, bytes);
    this.#paused = true;
  }

  #finish(error: unknown): void {
    if (error !== null && this.#error === null && !this.#closed) this.#error = error;
    this.#ended = true;
    const waiter = this.#waiter;
    if (waiter === null) return;
    this.#waiter = null;
    if (this.#error !== null) waiter.reject(this.#error);
    else waiter.resolve(null);
  }

  /** Reads into `into`; `null` at end of stream. */
  read(into: Uint8Array): Promise<number | null> {
    if (into.length === 0) return Promise.resolve(0);
    const kept = this.#kept;
    if (kept !== null) {
      const taken = Math.min(kept.length, into.length);
      into.set(kept.subarray(0, taken));
      this.#kept = taken === kept.length ? null : kept.subarray(taken);
      if (this.#kept === null) this.#resume();
      return Promise.resolve(taken);
    }
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    if (this.#waiter !== null) return Promise.reject(new Deno.errors.Busy("read in progress"));
    return new Promise((resolve, reject) => {
      this.#waiter = { into, resolve, reject };
    });
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#ended) this.#socket.resume();
  }

  /** Writes all of `bytes` (resolving once the socket has taken them); returns their count. */
  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    if (bytes.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      // The callback runs once the bytes are handed to the kernel: the caller may reuse them.
      this.#socket.write(bytes, (error) => error ? reject(error) : resolve(bytes.length));
    });
  }

  /** Sends FIN once queued writes are out. */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(new Deno.errors.NotConnected("connection closed"));
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  /** Closes both directions at once; a pending read ends with `BadResource`. */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("connection closed");
    this.#closed = true;
    this.#socket.destroy();
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(new Deno.errors.BadResource("connection closed"));
  }

  /** Turns Nagle's algorithm off (`true`, the default here) or on. */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  /** Turns TCP keep-alive on or off. */
  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive(keepAlive);
  }

  /** Lets the connection keep the process alive (the default). */
  ref(): void {
    this.#socket.ref();
  }

  /** Lets the process exit while the connection is open. */
  unref(): void {
    this.#socket.unref();
  }

  /** The read side as a byte stream (made on first use). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const chunk = new Uint8Array(READ_BUFFER);
        const n = await this.read(chunk).catch((error) => {
          controller.error(error);
          return null;
        });
        if (n === null) {
          controller.close();
          controller.byobRequest?.respond(0);
        } else controller.enqueue(chunk.subarray(0, n));
      },
      cancel: () => this.#closeQuietly(),
    });
    return this.#readable;
  }

  /** The write side as a byte stream (made on first use). */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    this.#writable ??= new WritableStream({
      write: async (chunk) => {
        let written = 0;
        while (written < chunk.length) written += await this.write(chunk.subarray(written));
      },
      close: () => this.closeWrite(),
      abort: () => this.#closeQuietly(),
    });
    return this.#writable;
  }

  #closeQuietly(): void {
    if (!this.#closed) this.close();
  }

  [Symbol.dispose](): void {
    this.#closeQuietly();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
