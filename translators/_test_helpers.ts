/**
 * Private test helpers: loopback connection pairs, a line reader with a deadline, and a
 * trivial stand-in for the gateway's relay.
 *
 * @module
 */

import { closeQuietly } from "../net/io.ts";
import type { DataRelayOptions } from "./types.ts";

/** A connected pair on loopback: `near` dialed, `far` accepted. */
export async function tcpPair(hostname = "127.0.0.1"): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  using listener = Deno.listen({ hostname, port: 0 });
  const [near, far] = await Promise.all([
    Deno.connect({ hostname, port: listener.addr.port }),
    listener.accept(),
  ]);
  return [near, far];
}

const encoder = new TextEncoder();

/** Writes all of `text` (Latin-1 safe for ASCII test data). */
export async function writeText(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Reads CRLF lines from a connection, each within a deadline. */
export class LineReader {
  #conn: Deno.Conn;
  #buffer = "";
  #pending: Promise<number | null> | null = null;
  #chunk = new Uint8Array(4096);
  #decoder = new TextDecoder("utf-8");

  /** Wraps `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next line without CRLF; `null` at EOF. Throws after `timeoutMs`. */
  async line(timeoutMs = 5000): Promise<string | null> {
    while (true) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end).replace(/\r$/, "");
        this.#buffer = this.#buffer.slice(end + 1);
        return line;
      }
      const n = await this.#read(timeoutMs);
      if (n === null) return this.#buffer === "" ? null : this.#take();
      this.#buffer += this.#decoder.decode(this.#chunk.subarray(0, n), { stream: true });
    }
  }

  /** Everything until EOF. */
  async all(timeoutMs = 5000): Promise<string> {
    while (true) {
      const n = await this.#read(timeoutMs);
      if (n === null) return this.#take();
      this.#buffer += this.#decoder.decode(this.#chunk.subarray(0, n), { stream: true });
    }
  }

  /** Resolves `true` if nothing arrives within `ms` (the read stays pending for later). */
  async silent(ms: number): Promise<boolean> {
    if (this.#buffer !== "") return false;
    try {
      await this.#read(ms);
      return false;
    } catch {
      return true;
    }
  }

  #take(): string {
    const rest = this.#buffer;
    this.#buffer = "";
    return rest;
  }

  async #read(timeoutMs: number): Promise<number | null> {
    this.#pending ??= this.#conn.read(this.#chunk);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const n = await Promise.race([
        this.#pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("Cannot read line: timed out")), timeoutMs);
        }),
      ]);
      this.#pending = null;
      return n;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection and settles a pending read. */
  async close(): Promise<void> {
    closeQuietly(this.#conn);
    await this.#pending?.catch(() => null);
    this.#pending = null;
  }
}

async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
    await to.closeWrite();
  } catch {
    // Closed under us: the relay ends.
  }
}

/** A stand-in for the gateway's relay: both directions, half-close, closes both at the end. */
export async function standInRelay(
  a: Deno.Conn,
  b: Deno.Conn,
  options: DataRelayOptions,
): Promise<void> {
  const onAbort = () => {
    closeQuietly(a);
    closeQuietly(b);
  };
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.all([pump(a, b), pump(b, a)]);
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    onAbort();
  }
}
