/**
 * Test doubles for translator plugins (public: a plugin's tests use them, and so do the
 * framework's): a {@linkcode TranslatorContext}, a recording {@linkcode LineIo}, a recording
 * {@linkcode DataChannelBroker}, a stand-in for the gateway's relay, loopback connection
 * pairs, and a line reader with deadlines. Not used in production.
 *
 * @example Testing a hook without sockets
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineOf, recordingIo, testContext } from "./testing.ts";
 *
 * const ctx = testContext({ id: "doc" });
 * const { io, toClient } = recordingIo();
 * await io.sendToClient(`hello ${ctx.id}`);
 * assert.deepEqual(toClient, ["hello doc"]);
 * assert.equal(lineOf("USER x").text, "USER x");
 * ```
 *
 * @module
 */

import { formatEndpoint, type IpEndpoint, parseIp } from "../net/address.ts";
import { closeQuietly } from "../net/io.ts";
import type {
  DataChannelBroker,
  DataListener,
  DataListenOptions,
  ExpectOptions,
  Line,
  LineIo,
  RelayCounts,
  RelayStream,
  TranslatorContext,
} from "./types.ts";

export { withTimeout } from "./_timeout.ts";

/**
 * A session context with documentation addresses: an IPv4 client (192.0.2.1) reaching an
 * IPv6 server (2001:db8::20) by name, port 21; `overrides` replace fields.
 */
export function testContext(overrides: Partial<TranslatorContext> = {}): TranslatorContext {
  return {
    id: "test",
    client: { address: parseIp("192.0.2.1")!, port: 40000 },
    clientSideLocal: { address: parseIp("192.0.2.10")!, port: 1080 },
    server: { address: parseIp("2001:db8::20")!, port: 21 },
    serverSideLocal: { address: parseIp("2001:db8::10")!, port: 50000 },
    target: { address: { family: "name", name: "server.example" }, port: 21 },
    user: null,
    ...overrides,
  };
}

/** A {@linkcode Line} as the line loop hands it over: `text` with CRLF as its raw bytes. */
export function lineOf(text: string): Line {
  return { text, raw: new TextEncoder().encode(text + "\r\n") };
}

/** A recording {@linkcode LineIo} and what was done with it. */
export interface RecordingIo {
  /** The io to pass to hooks. */
  readonly io: LineIo;
  /** Lines sent to the client, in order. */
  readonly toClient: string[];
  /** Lines sent to the server, in order. */
  readonly toServer: string[];
  /** What the hooks asked: `close()` and `detach()` calls. */
  readonly calls: { closed: number; detached: number };
  /** Aborts `io.signal` (the session's end). */
  end(): void;
}

/** A {@linkcode LineIo} that records lines and calls instead of sending anything. */
export function recordingIo(): RecordingIo {
  const controller = new AbortController();
  const toClient: string[] = [];
  const toServer: string[] = [];
  const calls = { closed: 0, detached: 0 };
  return {
    io: {
      sendToClient: (text) => (toClient.push(text), Promise.resolve()),
      sendToServer: (text) => (toServer.push(text), Promise.resolve()),
      close: () => void calls.closed++,
      detach: () => void calls.detached++,
      signal: controller.signal,
    },
    toClient,
    toServer,
    calls,
    end: () => controller.abort(),
  };
}

/** What a {@linkcode recordingBroker} was asked. */
export interface RecordingBroker {
  /** The broker to pass to `startSession`. */
  readonly broker: DataChannelBroker;
  /** Every call, as `method side endpoint-or-label` strings, in order. */
  readonly calls: string[];
  /** The options of every `listen` call, in order. */
  readonly listens: DataListenOptions[];
  /** Expectations registered and not disposed. */
  readonly expected: ExpectOptions[];
}

/** Options of {@linkcode recordingBroker}. */
export interface RecordingBrokerOptions {
  /**
   * Where `listen` pretends to listen: given, it resolves with a listener at that endpoint
   * whose `accept` never sees a peer (it rejects when the listen's `signal` aborts); without
   * it, `listen` rejects.
   */
  readonly listenAt?: (options: DataListenOptions) => IpEndpoint;
}

/**
 * A {@linkcode DataChannelBroker} that records calls: `permits` answers `permit(endpoint)`
 * (default: allowed), `listen` rejects unless `options.listenAt` is given, `connect` rejects
 * (no sockets), `relay` resolves at once, `expect` keeps the options.
 */
export function recordingBroker(
  permit: (endpoint: IpEndpoint) => boolean = () => true,
  options: RecordingBrokerOptions = {},
): RecordingBroker {
  const calls: string[] = [];
  const listens: DataListenOptions[] = [];
  const expected: ExpectOptions[] = [];
  const at = formatEndpoint;
  return {
    broker: {
      listen(listen): Promise<DataListener> {
        calls.push(`listen ${listen.side}`);
        listens.push(listen);
        if (!options.listenAt) {
          return Promise.reject(new Error("Cannot listen: recordingBroker has no sockets"));
        }
        return Promise.resolve({
          endpoint: options.listenAt(listen),
          accept: () =>
            new Promise<Deno.Conn>((_, reject) => {
              const fail = () => reject(new Error("Cannot accept: the listener closed"));
              if (listen.signal.aborted) fail();
              else listen.signal.addEventListener("abort", fail, { once: true });
            }),
          [Symbol.dispose]() {},
        });
      },
      connect(endpoint, options): Promise<Deno.Conn> {
        calls.push(`connect ${options.side} ${at(endpoint)}`);
        return Promise.reject(new Error("Cannot connect: recordingBroker has no sockets"));
      },
      permits(endpoint, options) {
        calls.push(`permits ${options.side} ${at(endpoint)}`);
        return permit(endpoint);
      },
      refuse(endpoint, options) {
        calls.push(`refuse ${options.side} ${at(endpoint)}: ${options.reason}`);
      },
      relay(_a, _b, options) {
        calls.push(`relay ${options.label}`);
        return Promise.resolve();
      },
      expect(options) {
        calls.push(`expect ${options.targets.length}`);
        expected.push(options);
        return {
          [Symbol.dispose]: () => {
            const index = expected.indexOf(options);
            if (index >= 0) expected.splice(index, 1);
          },
        };
      },
    },
    calls,
    listens,
    expected,
  };
}

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

async function pump(from: RelayStream, to: RelayStream): Promise<number> {
  const buffer = new Uint8Array(16 * 1024);
  let total = 0;
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      total += n;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
    await to.closeWrite();
  } catch {
    // Closed under us: the relay ends.
  }
  return total;
}

/**
 * A stand-in for the gateway's core relay (as `BrokerDeps.relay` or the `relay` of
 * `runTranslation`): both directions, half-close, no idle timeout, closes both at the end.
 */
export async function standInRelay(
  a: RelayStream,
  b: RelayStream,
  options: { readonly signal: AbortSignal },
): Promise<RelayCounts> {
  const onAbort = () => {
    closeQuietly(a);
    closeQuietly(b);
  };
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const [clientToServer, serverToClient] = await Promise.all([pump(a, b), pump(b, a)]);
    return { clientToServer, serverToClient, end: options.signal.aborted ? "aborted" : "closed" };
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    onAbort();
  }
}
