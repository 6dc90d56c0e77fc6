// deno-lint-ignore-file no-console -- run as a program by tests, it reports on stdout
/**
 * A tiny logging SOCKS5 server for the Socks Lib's tests: it records each request's command and
 * address type (so a test can prove that a NAME, not an address, reached the server), resolves
 * names only from its own static table, and relays CONNECT and BIND. Test code only.
 *
 * Run as a program (for namespaces): `deno run -A tests/helpers/test_socks_server.ts PORT NAME=IP...`
 * prints `listening` and then one JSON line per request.
 *
 * @module
 */

import { encodeReply } from "../../socks5/codec.ts";
import { acceptRequest } from "../../socks5/server.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import { Command, Reply, type SocksTarget } from "../../socks5/types.ts";
import { formatIp, type IpAddress, parseIp } from "../../net/address.ts";
import { closeQuietly, writeAll } from "../../net/io.ts";

/** One request as the server saw it. */
export interface LoggedRequest {
  /** CMD. */
  command: number;
  /** "ipv4", "name" or "ipv6". */
  atyp: "ipv4" | "ipv6" | "name";
  /** The name or the formatted address. */
  host: string;
  /** DST.PORT. */
  port: number;
}

/** Options of {@linkcode startTestSocksServer}. */
export interface TestSocksServerOptions {
  /** Names this server resolves (only these). @default {} */
  hosts?: Record<string, string>;
  /** Require RFC 1929 with these credentials. @default {undefined} */
  credentials?: { username: string; password: string };
  /** Listen address. @default "127.0.0.1" */
  hostname?: string;
  /** Listen port. @default 0 */
  port?: number;
  /** Answer this REP for a given host instead of connecting. @default {} */
  forceReply?: Record<string, number>;
  /** Called for each request. */
  onRequest?: (request: LoggedRequest) => void;
}

/** A running test server. */
export interface TestSocksServer extends AsyncDisposable {
  /** The port it listens on. */
  port: number;
  /** The listen hostname. */
  hostname: string;
  /** Requests seen so far. */
  requests: LoggedRequest[];
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

function describe(target: SocksTarget): { atyp: LoggedRequest["atyp"]; host: string } {
  const a = target.address;
  if (a.family === "name") return { atyp: "name", host: a.name };
  return { atyp: a.family === 4 ? "ipv4" : "ipv6", host: formatIp(a) };
}

function errorReply(error: unknown): number {
  if (error instanceof Deno.errors.ConnectionRefused) return Reply.ConnectionRefused;
  if (error instanceof Deno.errors.NotFound) return Reply.HostUnreachable;
  return Reply.GeneralFailure;
}

async function relay(a: Deno.Conn, b: Deno.Conn, first: Uint8Array): Promise<void> {
  if (first.length > 0) await writeAll(b, first);
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buffer = new Uint8Array(16384);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        await writeAll(to, buffer.subarray(0, n));
      }
      await to.closeWrite().catch(() => {});
    } catch {
      // either side closed
    }
  };
  await Promise.all([pump(a, b), pump(b, a)]);
}

/** Starts the server; close it with `await using` or `close()`. */
export function startTestSocksServer(options: TestSocksServerOptions = {}): TestSocksServer {
  const listener = Deno.listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
  });
  const open = new Set<Deno.Conn | Deno.Listener>();
  const tasks = new Set<Promise<void>>();
  const requests: LoggedRequest[] = [];
  const hosts = new Map<string, IpAddress>();
  for (const [name, ip] of Object.entries(options.hosts ?? {})) hosts.set(name, parseIp(ip)!);

  const track = <T extends Deno.Conn | Deno.Listener>(c: T): T => (open.add(c), c);
  const drop = (c: Deno.Conn | Deno.Listener) => {
    if (open.delete(c)) closeQuietly(c);
  };

  async function session(conn: Deno.Conn): Promise<void> {
    const reader = new ExactReader(conn);
    const request = await acceptRequest(conn, reader, { credentials: options.credentials });
    if (request === null) return;
    const logged: LoggedRequest = {
      command: request.command,
      ...describe(request.target),
      port: request.target.port,
    };
    requests.push(logged);
    options.onRequest?.(logged);
    const fail = (rep: number) =>
      writeAll(
        conn,
        encodeReply({
          reply: rep,
          bound: { address: { family: 4, bytes: new Uint8Array(4) }, port: 0 },
        }),
      );
    const forced = options.forceReply?.[logged.host];
    if (forced !== undefined) return await fail(forced);
    let address: IpAddress | undefined;
    const a = request.target.address;
    if (a.family === "name") {
      address = hosts.get(a.name.toLowerCase()) ?? parseIp(a.name) ?? undefined;
      if (!address) return await fail(Reply.HostUnreachable);
    } else {
      address = a;
    }
    if (request.command === Command.Connect) {
      let upstream: Deno.TcpConn;
      try {
        upstream = track(
          await Deno.connect({ hostname: formatIp(address), port: request.target.port }),
        );
      } catch (error) {
        return await fail(errorReply(error));
      }
      const local = upstream.localAddr;
      await writeAll(
        conn,
        encodeReply({ reply: 0, bound: { address: parseIp(local.hostname)!, port: local.port } }),
      );
      try {
        await relay(conn, upstream, reader.takeBuffered());
      } finally {
        drop(upstream);
      }
    } else if (request.command === Command.Bind) {
      const bindListener = track(Deno.listen({ hostname: listener.addr.hostname, port: 0 }));
      const addr = bindListener.addr as Deno.NetAddr;
      await writeAll(
        conn,
        encodeReply({ reply: 0, bound: { address: parseIp(addr.hostname)!, port: addr.port } }),
      );
      const peer = track(await bindListener.accept());
      drop(bindListener);
      const remote = peer.remoteAddr;
      await writeAll(
        conn,
        encodeReply({ reply: 0, bound: { address: parseIp(remote.hostname)!, port: remote.port } }),
      );
      try {
        await relay(conn, peer, reader.takeBuffered());
      } finally {
        drop(peer);
      }
    } else if (request.command === Command.UdpAssociate) {
      // Only the reply is exercised: a fixed relay endpoint, then wait for the client to close.
      await writeAll(
        conn,
        encodeReply({ reply: 0, bound: { address: parseIp("127.0.0.1")!, port: 9 } }),
      );
      await conn.read(new Uint8Array(1)).catch(() => null);
    } else {
      await fail(Reply.CommandNotSupported);
    }
  }

  const accepting = (async () => {
    track(listener);
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = track(await listener.accept());
      } catch {
        return;
      }
      const task = session(conn).catch(() => {}).finally(() => {
        drop(conn);
        tasks.delete(task);
      });
      tasks.add(task);
    }
  })();

  const addr = listener.addr as Deno.NetAddr;
  const close = async () => {
    for (const c of [...open]) drop(c);
    await accepting;
    await Promise.allSettled([...tasks]);
  };
  return {
    port: addr.port,
    hostname: addr.hostname,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

if (import.meta.main) {
  const [port, ...pairs] = Deno.args;
  const hosts: Record<string, string> = {};
  for (const pair of pairs) {
    const [name, ip] = pair.split("=");
    if (name && ip) hosts[name] = ip;
  }
  const server = startTestSocksServer({
    hostname: "::",
    port: Number(port ?? 1080),
    hosts,
    onRequest: (request) => console.log(JSON.stringify(request)),
  });
  console.log(`listening ${server.port}`);
}
