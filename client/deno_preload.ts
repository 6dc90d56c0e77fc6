/**
 * The Deno preload: socksifies an unmodified Deno program (`deno run --preload …`).
 *
 * - `Deno.connect`: delegated hosts (names, fake addresses, literals of a family the host lacks)
 *   go through the gateway; `remoteAddr` reports the fake address and the real port.
 * - `Deno.connectTls`: SOCKS first, then TLS with the original name as SNI.
 * - `Deno.resolveDns`: A → a fake IPv4, AAAA → a fake IPv6 (other record types pass through).
 * - `fetch`, `WebSocket`, Workers' `fetch`: Deno's HTTP stack speaks socks5h when `ALL_PROXY` is
 *   set, so the preload sets it to a loopback SOCKS5 front of its own. The front maps fake
 *   addresses back to names and fails over between gateways (Deno's client cannot use a
 *   bracketed IPv6 proxy address, and takes one proxy only).
 * - `node:net`, `node:tls`, `node:http(s)`, `node:dns` (default export and `dns.promises`):
 *   see `node_patches.ts`.
 *
 * @module
 */

import { formatIp } from "../net/address.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply } from "../socks5/types.ts";
import { connectVia } from "./connect.ts";
import { installNodePatches } from "./node_patches.ts";
import { loadPreloadConfig, type PreloadConfig } from "./preload_config.ts";
import type { Route } from "./socks_lib.ts";
import { type SocksFront, startSocksFront, targetHost } from "./socks_front.ts";

const installed = Symbol.for("dualgate.denoPatches");

type Delegated = Extract<Route, { kind: "delegate" }>;

function overridePeer(conn: Deno.Conn, route: Delegated, port: number): void {
  const remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: formatIp(route.peer), port };
  Object.defineProperty(conn, "remoteAddr", { value: remoteAddr, configurable: true });
}

function releaseOnClose(
  conn: Deno.Conn,
  release: () => void,
  registry: FinalizationRegistry<() => void>,
): void {
  const close = conn.close.bind(conn);
  Object.defineProperty(conn, "close", {
    value: () => {
      release();
      close();
    },
    configurable: true,
    writable: true,
  });
  registry.register(conn, release);
}

function refusal(error: unknown): unknown {
  if (error instanceof SocksReplyError && error.reply === Reply.ConnectionRefused) {
    return new Deno.errors.ConnectionRefused(error.message, { cause: error });
  }
  return error;
}

/**
 * Patches `Deno.*`, `fetch` and the `node:` modules of this process. Idempotent.
 *
 * @example
 * ```ts ignore
 * // what the launcher generates as the --preload module
 * import { installDenoSocksify } from "./deno_preload.ts";
 * installDenoSocksify({ gateways: ["socks5://192.0.2.1:1080"], nativeFamilies: [4] });
 * ```
 */
export function installDenoSocksify(config: PreloadConfig): void {
  const global = globalThis as { [installed]?: boolean };
  if (global[installed]) return;
  global[installed] = true;
  const { gateways, policy, connectTimeoutMs } = loadPreloadConfig(config);
  const originalConnect = Deno.connect;
  const originalStartTls = Deno.startTls;
  const originalResolveDns = Deno.resolveDns;
  const registry = new FinalizationRegistry<() => void>((release) => release());
  const dial = (options: Deno.ConnectOptions) => originalConnect(options);

  async function delegatedConnect(route: Delegated, port: number, signal?: AbortSignal) {
    const release = policy.hold(route);
    try {
      const { conn } = await connectVia(gateways, { address: route.target, port }, {
        dial,
        connectTimeoutMs,
        ...(signal ? { signal } : {}),
      });
      return { conn, release };
    } catch (error) {
      release();
      throw refusal(error);
    }
  }

  const connect = async (options: Deno.ConnectOptions) => {
    if (options.transport !== undefined && options.transport !== "tcp") {
      return await originalConnect(options);
    }
    const route = policy.route(options.hostname ?? "127.0.0.1");
    if (route.kind === "direct") return await originalConnect(options);
    const { conn, release } = await delegatedConnect(route, options.port, options.signal);
    overridePeer(conn, route, options.port);
    releaseOnClose(conn, release, registry);
    return conn;
  };
  Object.defineProperty(Deno, "connect", { value: connect, writable: true, configurable: true });

  const originalConnectTls = Deno.connectTls;
  const connectTls = async (options: Deno.ConnectTlsOptions) => {
    const hostname = options.hostname ?? "127.0.0.1";
    const route = policy.route(hostname);
    if (route.kind === "direct") return await originalConnectTls(options);
    const { conn, release } = await delegatedConnect(route, options.port);
    let tls: Deno.TlsConn;
    try {
      tls = await originalStartTls(conn, {
        hostname: route.name ?? hostname,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        ...(options.alpnProtocols ? { alpnProtocols: options.alpnProtocols } : {}),
      });
    } catch (error) {
      release();
      conn.close();
      throw error;
    }
    overridePeer(tls, route, options.port);
    releaseOnClose(tls, release, registry);
    return tls;
  };
  Object.defineProperty(Deno, "connectTls", {
    value: connectTls,
    writable: true,
    configurable: true,
  });

  const resolveDns = (
    query: string,
    recordType: Deno.RecordType,
    options?: Deno.ResolveDnsOptions,
  ) => {
    if (recordType === "A" || recordType === "AAAA") {
      const fake = policy.lookup(query, recordType === "A" ? 4 : 6);
      if (fake) return Promise.resolve([formatIp(fake)]);
    }
    return (originalResolveDns as (...args: unknown[]) => Promise<unknown>)(
      query,
      recordType,
      options,
    );
  };
  Object.defineProperty(Deno, "resolveDns", {
    value: resolveDns,
    writable: true,
    configurable: true,
  });

  installNodePatches({ policy, gateways, connectTimeoutMs });

  // --- fetch / WebSocket: a loopback SOCKS5 front for Deno's own HTTP client ---------------------
  let front: SocksFront;
  try {
    front = startSocksFront({
      unref: true,
      connect: async (target) => {
        const host = targetHost(target);
        const route = policy.route(host);
        if (route.kind === "direct") {
          return await originalConnect({ hostname: host, port: target.port });
        }
        const { conn, release } = await delegatedConnect(route, target.port);
        releaseOnClose(conn, release, registry);
        return conn;
      },
    });
  } catch {
    return; // no permission to listen: fetch then escapes (documented)
  }
  const noProxy = ["localhost", "127.0.0.1", "::1", ...(config.bypass ?? [])]
    .map((entry) => entry.startsWith("*.") ? entry.slice(1) : entry).join(",");
  try {
    for (const name of ["ALL_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"]) {
      Deno.env.set(name, front.url);
    }
    Deno.env.set("NO_PROXY", noProxy);
  } catch {
    // no env permission: fetch escapes (documented)
  }
}
