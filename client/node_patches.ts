/**
 * Socksification of the `node:` networking modules, in Node (through the `--import` preload) and
 * in Deno (whose `node:net` does not go through `Deno.connect`).
 *
 * - `dns.lookup`, `dns.promises.lookup`, `dns.resolve4/6` and their promise forms answer fake
 *   addresses from the delegation table (named ESM imports follow in Node through
 *   `syncBuiltinESMExports`).
 * - `net.Socket.prototype.connect` on a delegated destination first does the SOCKS handshake on a
 *   socket of its own (the gateways tried in turn, {@linkcode tryAlternatives}); meanwhile the
 *   application's socket is `connecting`, so its writes queue as Node's own do. Once the gateway
 *   has answered, the application's socket connects to an in-process loopback relay, which pairs
 *   it with the gateway connection by its source port; `connect` fires then and the queued writes
 *   flush in order. A refusal is an `error` (code `ECONNREFUSED`, `ENOTFOUND`, …, from the REP)
 *   with no `connect`, as for a direct connection. A handshake inside the application's socket
 *   would be wrapped by TLS. This covers `net`, `tls`, `http`, `https` and Node's built-in
 *   `fetch` (undici dials through `net`/`tls`).
 * - `remoteAddress`/`remotePort` of such a socket report the fake address and the real port.
 *
 * Installing the patches is synchronous (only the relay's listen completes later, and sockets
 * wait for it), so a program that connects on its first line is covered.
 *
 * @module
 */

import dns from "node:dns";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";
import process from "node:process";
import { formatIp } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";
import { readQueued } from "../net/stream.ts";
import { socksHandshake } from "../socks5/client.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import type { SocksTarget } from "../socks5/types.ts";
import { attemptHandshakeOptions, tryAlternatives } from "./alternatives.ts";
import { type GatewayAttemptOptions, gatewayAttemptOptions } from "./connect.ts";
import { gatewayAttempts, type Gateways } from "./gateway_list.ts";
import type { GatewayEndpoint } from "./gateway_url.ts";
import type { SocksPolicy } from "./socks_lib.ts";

/** Options of {@linkcode installNodePatches}. */
export interface NodePatchOptions {
  /** Routing and fake addresses (shared with the Deno patches in Deno). */
  readonly policy: SocksPolicy;
  /** Gateways, tried in order. */
  readonly gateways: Gateways;
  /**
   * Time allowed per gateway for TCP connect plus handshake, in milliseconds.
   * @default {10000}
   */
  readonly connectTimeoutMs?: number;
}

const BYPASS = Symbol("dualgate.bypass");
const installed = Symbol.for("dualgate.nodePatches");

type Callback = (...args: unknown[]) => void;
// deno-lint-ignore no-explicit-any
type AnyOptions = Record<string, any>;

/** Reads a Node socket as `{read, write}` for the handshake, then gives the socket back. */
class SocketSource {
  #socket: net.Socket;
  #chunks: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  #onData = (chunk: Uint8Array) => {
    this.#chunks.push(chunk);
    this.#wake?.();
  };
  #onEnd = () => {
    this.#ended = true;
    this.#wake?.();
  };
  #onError = (error: Error) => {
    this.#error = error;
    this.#wake?.();
  };

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
    socket.on("error", this.#onError);
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    return readQueued(this.#chunks, buffer);
  }

  write(data: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(data, (error) => error ? reject(error) : resolve(data.length));
    });
  }

  /** Stops reading; puts back what was read past the handshake. */
  detach(): void {
    const s = this.#socket;
    s.off("data", this.#onData).off("end", this.#onEnd).off("close", this.#onEnd);
    s.off("error", this.#onError);
    s.pause();
    for (const chunk of this.#chunks.reverse()) s.unshift(chunk);
    this.#chunks = [];
  }
}

function dialOnce(gateway: GatewayEndpoint, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = new net.Socket({ allowHalfOpen: true }) as net.Socket & { [BYPASS]?: boolean };
    socket[BYPASS] = true;
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", (error) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    });
    socket.connect({ host: gateway.hostname, port: gateway.port }, () => {
      signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("error");
      resolve(socket);
    });
  });
}

/**
 * Opens a CONNECT through the first gateway that answers, with `node:net` sockets (the same
 * {@linkcode tryAlternatives} loop and 3 s greeting bound as {@linkcode connectVia}).
 *
 * @throws {SocksReplyError} with the gateway's REP.
 * @throws {AlternativesFailedError} when no gateway could be reached.
 */
export function connectViaNode(
  gateways: Gateways,
  target: SocksTarget,
  options: GatewayAttemptOptions = {},
): Promise<net.Socket> {
  return tryAlternatives(gatewayAttempts(gateways), async ({ gateway }, signal) => {
    const socket = await dialOnce(gateway, signal);
    const source = new SocketSource(socket);
    try {
      await socksHandshake(
        source,
        { command: 1, target },
        attemptHandshakeOptions(gateway, signal, options.negotiationTimeoutMs),
      );
    } catch (error) {
      source.detach();
      socket.destroy();
      throw error;
    }
    source.detach();
    return socket;
  }, gatewayAttemptOptions(target, options));
}

const REPLY_CODES: Record<number, string> = {
  2: "EACCES",
  3: "ENETUNREACH",
  4: "EHOSTUNREACH",
  5: "ECONNREFUSED",
  6: "ETIMEDOUT",
};

function nodeError(error: unknown, target: SocksTarget): Error {
  const where = target.address.family === "name"
    ? `${target.address.name}:${target.port}`
    : `${formatIp(target.address)}:${target.port}`;
  let code = "ECONNREFUSED";
  if (error instanceof SocksReplyError) {
    code = error.reply === 4 && target.address.family === "name"
      ? "ENOTFOUND"
      : REPLY_CODES[error.reply] ?? "ECONNRESET";
  }
  const reason = errorText(error);
  return Object.assign(new Error(`Cannot connect to ${where} through the gateway: ${reason}`), {
    code,
    cause: error,
  });
}

/**
 * Patches `node:dns` and `node:net` in this process. Idempotent.
 *
 * @example
 * ```ts ignore
 * import { installNodePatches } from "./node_patches.ts";
 * import { SocksPolicy } from "./socks_lib.ts";
 * import { parseGatewayUrl } from "./gateway_url.ts";
 *
 * installNodePatches({
 *   policy: new SocksPolicy({ nativeFamilies: [4] }),
 *   gateways: [parseGatewayUrl("socks5://192.0.2.1:1080")],
 * });
 * ```
 */
export function installNodePatches(options: NodePatchOptions): void {
  const global = globalThis as { [installed]?: boolean };
  if (global[installed]) return;
  global[installed] = true;
  const { policy, gateways } = options;
  const timeout = options.connectTimeoutMs ?? 10_000;

  // --- the loopback relay ---------------------------------------------------------------------
  // An application socket connects here once its gateway connection is ready; the relay pairs
  // them by the application socket's source port and copies bytes both ways.
  const ready = new Map<number, net.Socket>();
  const waiters = new Map<number, (upstream: net.Socket) => void>();
  let relayPort = 0;
  const relay = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (inbound) => {
    inbound.unref();
    inbound.on("error", () => inbound.destroy());
    const key = inbound.remotePort ?? 0;
    const found = ready.get(key);
    const paired = found
      ? Promise.resolve(found)
      : new Promise<net.Socket | undefined>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(key);
          resolve(undefined);
        }, 5000);
        waiters.set(key, (upstream) => {
          clearTimeout(timer);
          resolve(upstream);
        });
      });
    paired.then((upstream) => {
      if (!upstream) return inbound.destroy();
      ready.delete(key);
      upstream.on("error", () => inbound.destroy());
      inbound.on("error", () => upstream.destroy());
      upstream.on("close", () => inbound.destroy());
      inbound.on("close", () => upstream.destroy());
      inbound.pipe(upstream);
      upstream.pipe(inbound);
      upstream.resume();
    });
  });
  relay.unref();
  const relayReady = new Promise<void>((resolve) => {
    relay.listen(0, "127.0.0.1", () => {
      relayPort = (relay.address() as net.AddressInfo).port;
      resolve();
    });
  });

  // --- net.Socket.prototype.connect ----------------------------------------------------------
  type AppSocket = net.Socket & { [BYPASS]?: boolean; connecting: boolean };
  const proto = net.Socket.prototype as unknown as {
    connect: (this: AppSocket, ...args: unknown[]) => net.Socket;
  };
  const originalConnect = proto.connect;
  proto.connect = function (this: AppSocket, ...args: unknown[]) {
    if (this[BYPASS]) return originalConnect.apply(this, args);
    let connectOptions: AnyOptions;
    let callback: Callback | undefined;
    const first = args[0];
    if (Array.isArray(first)) {
      // Node's net.connect() passes its already-normalised [options, callback].
      connectOptions = first[0] as AnyOptions;
      callback = first[1] as Callback | undefined;
    } else if (first !== null && typeof first === "object") {
      connectOptions = first as AnyOptions;
      callback = args[1] as Callback | undefined;
    } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
      connectOptions = { port: first, host: typeof args[1] === "string" ? args[1] : undefined };
      callback = args.find((a) => typeof a === "function") as Callback | undefined;
    } else {
      return originalConnect.apply(this, args); // a path: IPC
    }
    if (typeof connectOptions.path === "string" || connectOptions.port == null) {
      return originalConnect.apply(this, args);
    }
    const host = String(connectOptions.host ?? "localhost");
    let route;
    try {
      route = policy.route(host);
    } catch (error) {
      process.nextTick(() => this.destroy(Object.assign(error as Error, { code: "EHOSTUNREACH" })));
      return this;
    }
    if (route.kind === "direct") return originalConnect.apply(this, args);
    const port = Number(connectOptions.port);
    const release = policy.hold(route);
    this.once("close", release);
    const peer = formatIp(route.peer);
    Object.defineProperties(this, {
      remoteAddress: { get: () => peer, configurable: true },
      remotePort: { get: () => port, configurable: true },
      remoteFamily: { get: () => route.peer.family === 4 ? "IPv4" : "IPv6", configurable: true },
    });
    const target: SocksTarget = { address: route.target, port };
    // As Node's own sockets: connecting from here on, so writes queue (in order) until
    // `connect`, which fires only once the gateway has answered; a failure is an `error` with
    // no `connect` before it.
    this.connecting = true;
    const abort = new AbortController();
    const onEarlyClose = () => abort.abort(new Error("Cannot connect: the socket was closed"));
    this.once("close", onEarlyClose);
    Promise.all([
      connectViaNode(gateways, target, { connectTimeoutMs: timeout, signal: abort.signal }),
      relayReady,
    ]).then(([upstream]) => {
      this.off("close", onEarlyClose);
      if (this.destroyed) return void upstream.destroy();
      upstream.unref();
      this.once("close", () => upstream.destroy());
      this.prependOnceListener("connect", () => {
        const key = this.localPort ?? 0;
        const waiter = waiters.get(key);
        if (waiter) {
          waiters.delete(key);
          waiter(upstream);
        } else {
          ready.set(key, upstream);
          this.once("close", () => ready.get(key) === upstream && ready.delete(key));
        }
      });
      const { lookup: _l, family: _f, localAddress: _a, localPort: _p, path: _path, ...rest } =
        connectOptions;
      originalConnect.call(this, { ...rest, host: "127.0.0.1", port: relayPort }, callback);
    }, (error) => {
      this.off("close", onEarlyClose);
      if (!this.destroyed) this.destroy(nodeError(error, target));
    });
    return this;
  };

  // --- node:dns ----------------------------------------------------------------------------------
  const familyOf = (options: unknown): 0 | 4 | 6 => {
    const family = typeof options === "number"
      ? options
      : (options as AnyOptions | undefined)?.family;
    return family === 4 || family === "IPv4" ? 4 : family === 6 || family === "IPv6" ? 6 : 0;
  };
  const fakeFor = (hostname: unknown, family: 0 | 4 | 6) => {
    if (typeof hostname !== "string") return null;
    try {
      return policy.lookup(hostname, family);
    } catch {
      return null;
    }
  };
  const d = dns as unknown as AnyOptions;
  const originalLookup = d.lookup as Callback;
  d.lookup = function lookup(hostname: unknown, options: unknown, callback?: Callback) {
    const cb = (typeof options === "function" ? options : callback) as Callback;
    const opts = typeof options === "function" ? undefined : options;
    const fake = fakeFor(hostname, familyOf(opts));
    if (!fake) return originalLookup.call(dns, hostname, opts ?? {}, cb);
    const address = formatIp(fake);
    process.nextTick(() =>
      (opts as AnyOptions | undefined)?.all
        ? cb(null, [{ address, family: fake.family }])
        : cb(null, address, fake.family)
    );
    return {};
  };
  const promises = d.promises as AnyOptions;
  const originalPromisesLookup = promises.lookup as (...args: unknown[]) => Promise<unknown>;
  promises.lookup = function lookup(hostname: unknown, options?: unknown) {
    const fake = fakeFor(hostname, familyOf(options));
    if (!fake) return originalPromisesLookup.call(promises, hostname, options);
    const address = formatIp(fake);
    return Promise.resolve(
      (options as AnyOptions | undefined)?.all
        ? [{ address, family: fake.family }]
        : { address, family: fake.family },
    );
  };
  for (const family of [4, 6] as const) {
    const name = `resolve${family}`;
    const original = d[name] as Callback;
    d[name] = function resolve(hostname: unknown, options: unknown, callback?: Callback) {
      const cb = (typeof options === "function" ? options : callback) as Callback;
      const fake = fakeFor(hostname, family);
      if (!fake) return original.call(dns, hostname, ...(callback ? [options, cb] : [cb]));
      const address = formatIp(fake);
      const ttl = (options as AnyOptions | undefined)?.ttl;
      process.nextTick(() => cb(null, ttl ? [{ address, ttl: 1 }] : [address]));
    };
    const originalPromise = promises[name] as (...args: unknown[]) => Promise<unknown>;
    promises[name] = function resolve(hostname: unknown, options?: AnyOptions) {
      const fake = fakeFor(hostname, family);
      if (!fake) return originalPromise.call(promises, hostname, options);
      const address = formatIp(fake);
      return Promise.resolve(options?.ttl ? [{ address, ttl: 1 }] : [address]);
    };
  }
  try {
    syncBuiltinESMExports();
  } catch {
    // Deno: a no-op or absent; named `node:dns` imports escape there (documented).
  }
}
