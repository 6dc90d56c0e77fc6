/**
 * In-process fixtures for integration tests: a gateway on loopback, loopback servers, and a
 * raw SOCKS5 client that speaks bytes exactly as the test writes them.
 *
 * @module
 */

import { parseConfig } from "../../gateway/config/load.ts";
import type { Config } from "../../gateway/config/types.ts";
import { type ConnectionRecord, type Gateway, startGateway } from "../../gateway/mod.ts";
import type { StartGatewayOptions } from "../../gateway/gateway.ts";
import { formatIp, type IpEndpoint } from "../../net/address.ts";
import { Resolver } from "../../resolver/mod.ts";
import { readReply } from "../../socks5/codec.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import type { SocksReply } from "../../socks5/types.ts";
export { randomBytes, readAll, sha256, writeAll } from "../helpers/streams.ts";
import { writeAll } from "../helpers/streams.ts";

/** A `resolver.hosts` config: `v4.`, `v6.` and `both.test.example` on loopback. */
export const TEST_HOSTS = `resolver:
  hosts:
    v4.test.example: ["127.0.0.1"]
    v6.test.example: ["::1"]
    both.test.example: ["127.0.0.1", "::1"]
`;

/** A gateway started from YAML, with every connection record collected. */
export interface TestGateway extends AsyncDisposable {
  /** The gateway. */
  readonly gateway: Gateway;
  /** Records of finished connections. */
  readonly records: ConnectionRecord[];
  /** The validated config. */
  readonly config: Config;
  /** The first endpoint of the given family. */
  endpoint(family: 4 | 6): IpEndpoint;
}

/**
 * Starts a gateway on `127.0.0.1:0` and `[::1]:0` (unless the YAML sets `listen`), with a
 * resolver that never leaves the process: static hosts and an empty DNS answer.
 */
export function startTestGateway(
  yaml = "",
  options: Omit<StartGatewayOptions, "resolver" | "onRecord"> = {},
): TestGateway {
  const text = /^listen:/m.test(yaml) ? yaml : `listen: ["127.0.0.1:0", "[::1]:0"]\n${yaml}`;
  const config = parseConfig(text);
  const records: ConnectionRecord[] = [];
  const resolver = new Resolver({ ...config.resolver, hostsFile: "" }, {
    query: () => Promise.resolve([]),
    queryPtr: () => Promise.resolve([]),
  });
  const gateway = startGateway(config, {
    ...options,
    resolver,
    onRecord: (r) => records.push(r),
  });
  return {
    gateway,
    records,
    config,
    endpoint(family) {
      const found = gateway.endpoints.find((e) => e.address.family === family);
      if (!found) throw new Error(`no IPv${family} listener`);
      return found;
    },
    [Symbol.asyncDispose]: () => gateway.stop(0),
  };
}

/** A loopback TCP server running `handler` per connection, closed on dispose. */
export interface TestServer extends AsyncDisposable {
  /** Bound port. */
  readonly port: number;
  /** The listener's address. */
  readonly hostname: string;
}

/** Starts a TCP server on `hostname` (port 0) that runs `handler` for each connection. */
export function startServer(
  hostname: string,
  handler: (conn: Deno.TcpConn) => Promise<void>,
): TestServer {
  const listener = Deno.listen({ hostname, port: 0 });
  const handlers = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const p = handler(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed by handler */ }
        handlers.delete(p);
      });
      handlers.add(p);
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    hostname,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await loop;
      await Promise.all([...handlers]);
    },
  };
}

/** Echo server handler: returns every byte, half-closes after the client's EOF. */
export async function echo(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    await writeAll(conn, buffer.subarray(0, n));
  }
  await conn.closeWrite();
}

/** Connects to a gateway endpoint. */
export function connectTo(endpoint: IpEndpoint): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: formatIp(endpoint.address), port: endpoint.port });
}

/** Reads a SOCKS reply. */
export function readSocksReply(reader: ExactReader): Promise<SocksReply> {
  return readReply(reader);
}

/** An ExactReader over a connection. */
export function readerOf(conn: Deno.Conn): ExactReader {
  return new ExactReader(conn);
}
