/**
 * A SOCKS5 front on the loopback interface: programs with SOCKS support of their own (curl, Deno's
 * `fetch`, Go) reach the gateways through `socks5h://127.0.0.1:PORT`, an address every client
 * understands. Many clients mishandle a bracketed IPv6 proxy address (Deno's `ALL_PROXY`, Node's
 * socks-proxy-agent and undici, connect-proxy, Dante) or take a single proxy; the front takes the
 * CONNECT and opens it through the gateway list (failover, negotiation bound) with
 * {@linkcode connectVia}, then copies bytes. `127.0.0.1` exists in every Linux network namespace,
 * IPv6-only ones included.
 *
 * Only CONNECT is served (REP 7 otherwise). With `credentials`, clients must log in with RFC 1929
 * (so gateway credentials are not lent to every local user).
 *
 * @module
 */

import { formatIp, parseIp } from "../net/address.ts";
import { encodeReply, ZERO_TARGET } from "../socks5/codec.ts";
import { acceptRequest } from "../socks5/server.ts";
import type { SocksCredentials } from "../socks5/client.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { ExactReader } from "../socks5/exact_reader.ts";
import { Command, Reply, type SocksTarget } from "../socks5/types.ts";
import { closeQuietly, writeAll } from "../net/io.ts";

/** Options of {@linkcode startSocksFront}. */
export interface SocksFrontOptions {
  /** Opens the connection a client asked for (through the gateways, or directly). */
  readonly connect: (target: SocksTarget) => Promise<Deno.TcpConn>;
  /** Require RFC 1929 with these credentials. @default {undefined} (no authentication) */
  readonly credentials?: SocksCredentials;
  /** Do not keep the process alive for the front and its connections. @default {false} */
  readonly unref?: boolean;
}

/** A running front. */
export interface SocksFront extends AsyncDisposable {
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** `socks5h://[USER:PASS@]127.0.0.1:PORT`, for `ALL_PROXY`. */
  readonly url: string;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** The REP for a failed connect: the gateway's own REP when it answered. */
function replyFor(error: unknown): number {
  if (error instanceof SocksReplyError) return error.reply;
  if (error instanceof Deno.errors.ConnectionRefused) return Reply.ConnectionRefused;
  if (error instanceof Deno.errors.TimedOut) return Reply.TtlExpired;
  return Reply.GeneralFailure;
}

/**
 * Starts a front on `127.0.0.1` (an ephemeral port).
 *
 * @example
 * ```ts ignore
 * import { connectVia } from "./connect.ts";
 * import { parseGatewayUrl } from "./gateway_url.ts";
 * import { startSocksFront } from "./socks_front.ts";
 *
 * const gateways = [parseGatewayUrl("socks5://[2001:db8:1::1]:1080")];
 * await using front = startSocksFront({
 *   connect: async (target) => (await connectVia(gateways, target)).conn,
 * });
 * // curl --proxy front.url http://v4.dualgate.example/
 * ```
 *
 * @throws {Deno.errors.PermissionDenied} without `--allow-net=127.0.0.1`.
 */
export function startSocksFront(options: SocksFrontOptions): SocksFront {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  if (options.unref) listener.unref();
  const open = new Set<Deno.Conn>();
  const sessions = new Set<Promise<void>>();
  const { credentials } = options;

  async function serve(client: Deno.TcpConn): Promise<void> {
    const reader = new ExactReader(client);
    const request = await acceptRequest(client, reader, { credentials });
    if (request === null) return;
    const fail = (reply: number) => writeAll(client, encodeReply({ reply, bound: ZERO_TARGET }));
    if (request.command !== Command.Connect) return void await fail(Reply.CommandNotSupported);
    let upstream: Deno.TcpConn;
    try {
      upstream = await options.connect(request.target);
    } catch (error) {
      await fail(replyFor(error));
      return;
    }
    open.add(upstream);
    try {
      if (options.unref) upstream.unref();
      const local = upstream.localAddr;
      const address = parseIp(local.hostname);
      await writeAll(
        client,
        encodeReply({ reply: 0, bound: address ? { address, port: local.port } : ZERO_TARGET }),
      );
      const early = reader.takeBuffered();
      if (early.length > 0) await writeAll(upstream, early);
      await Promise.allSettled([
        client.readable.pipeTo(upstream.writable),
        upstream.readable.pipeTo(client.writable),
      ]);
    } finally {
      open.delete(upstream);
      closeQuietly(upstream);
    }
  }

  const accepting = (async () => {
    for await (const client of listener) {
      if (options.unref) client.unref();
      open.add(client);
      const session = serve(client).catch(() => {}).finally(() => {
        open.delete(client);
        closeQuietly(client);
        sessions.delete(session);
      });
      sessions.add(session);
    }
  })().catch(() => {});

  const port = listener.addr.port;
  const auth = credentials
    ? `${encodeURIComponent(credentials.username)}:${encodeURIComponent(credentials.password)}@`
    : "";
  const close = async () => {
    closeQuietly(listener);
    for (const conn of open) closeQuietly(conn);
    await accepting;
    await Promise.allSettled([...sessions]);
  };
  return {
    port,
    url: `socks5h://${auth}127.0.0.1:${port}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The host of a target as text: a name, or an IP literal without brackets. */
export function targetHost(target: SocksTarget): string {
  const a = target.address;
  return a.family === "name" ? a.name : formatIp(a);
}
