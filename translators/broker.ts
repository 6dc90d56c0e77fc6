/**
 * The gateway's side of data channels, as a helper the gateway instantiates per session with
 * its own dial, relay and listen: translators get connections that obey the gateway's rules.
 *
 * @module
 */

import { endpointFromNetAddr, type IpEndpoint, sameIp, toHostname } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";
import { closeQuietly } from "../net/io.ts";
import { withTimeout } from "./_timeout.ts";
import type {
  BrokerDeps,
  DataChannelBroker,
  DataConnectOptions,
  DataListener,
  DataListenOptions,
  DataPermitOptions,
  DataRefuseOptions,
  DataRelayOptions,
  ExpectOptions,
  TranslatorContext,
} from "./types.ts";

/** Default connect timeout for {@linkcode DataChannelBroker.connect}, in milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const LISTEN_ATTEMPTS = 32;

function randomPort(from: number, to: number): number {
  const span = to - from + 1;
  const random = new Uint32Array(1);
  crypto.getRandomValues(random);
  return from + (random[0]! % span);
}

function openListener(
  listen: NonNullable<BrokerDeps["listen"]>,
  hostname: string,
  ports: DataListenOptions["ports"],
): Deno.TcpListener {
  if (ports.from > ports.to || ports.from < 0 || ports.to > 65535) {
    throw new RangeError(`Cannot listen: bad port range ${ports.from}-${ports.to}`);
  }
  let lastError: unknown;
  for (let attempt = 0; attempt < LISTEN_ATTEMPTS; attempt++) {
    // Random ports against port stealing (RFC 2577); AddrInUse happens even with port 0.
    const port = ports.to === 0 ? 0 : randomPort(ports.from, ports.to);
    try {
      return listen({ hostname, port });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      lastError = error;
    }
  }
  throw new Error(
    `Cannot listen: no free port in ${ports.from}-${ports.to} after ${LISTEN_ATTEMPTS} attempts`,
    { cause: lastError },
  );
}

function accepts(expected: DataListenOptions["peer"], peer: IpEndpoint): boolean {
  return typeof expected === "function" ? expected(peer) : sameIp(peer.address, expected);
}

class OneShotListener implements DataListener {
  readonly endpoint: IpEndpoint;
  #listener: Deno.TcpListener;
  #options: DataListenOptions;
  #closed = false;

  constructor(listener: Deno.TcpListener, endpoint: IpEndpoint, options: DataListenOptions) {
    this.#listener = listener;
    this.endpoint = endpoint;
    this.#options = options;
  }

  async accept(): Promise<Deno.Conn> {
    const options = this.#options;
    try {
      return await withTimeout(options.timeoutMs, options.signal, async (signal) => {
        const onAbort = () => this.#close();
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          while (true) {
            if (signal.aborted) throw signal.reason;
            let conn: Deno.Conn;
            try {
              conn = await this.#listener.accept();
            } catch (error) {
              throw signal.aborted ? signal.reason : error;
            }
            let peer: IpEndpoint | null = null;
            try {
              peer = endpointFromNetAddr(conn.remoteAddr);
            } catch {
              // Not an IP peer: refused below.
            }
            if (peer && accepts(options.peer, peer)) return conn;
            // Anyone else is refused, and the listener keeps waiting for the real peer.
            closeQuietly(conn);
          }
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
      });
    } catch (error) {
      throw new Error(`Cannot accept data connection: ${errorText(error)}`, { cause: error });
    } finally {
      this.#close();
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
  }

  [Symbol.dispose](): void {
    this.#close();
  }
}

/**
 * Builds the broker for one session from the gateway's dial, relay and listen.
 *
 * @example
 * ```ts ignore
 * const broker = createDataChannelBroker(ctx, {
 *   dial: (endpoint, { side, signal }) => dialUnderRules(endpoint, side, signal),
 *   check: (endpoint, { side }) => rulesRefusal(endpoint, side), // null when allowed
 *   refused: (endpoint, { side, reason, label }) => record(endpoint, side, reason, label),
 *   relay: (a, b, { label, signal }) => relay(a, b, { label, signal }),
 *   expectations, // the gateway's single ExpectationRegistry
 * });
 * ```
 */
export function createDataChannelBroker(
  ctx: TranslatorContext,
  deps: BrokerDeps,
): DataChannelBroker {
  const listen = deps.listen ??
    ((options: { hostname: string; port: number }) =>
      Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" }));
  return {
    // deno-lint-ignore require-await
    async listen(options: DataListenOptions): Promise<DataListener> {
      const local = options.side === "client" ? ctx.clientSideLocal : ctx.serverSideLocal;
      if (options.signal.aborted) throw options.signal.reason;
      const listener = openListener(listen, toHostname(local.address), options.ports);
      const port = (listener.addr as Deno.NetAddr).port;
      return new OneShotListener(listener, { address: local.address, port }, options);
    },
    connect(endpoint: IpEndpoint, options: DataConnectOptions): Promise<Deno.Conn> {
      return withTimeout(
        options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        options.signal,
        (signal) => deps.dial(endpoint, { side: options.side, signal }),
      );
    },
    permits(endpoint: IpEndpoint, options: DataPermitOptions): boolean {
      const refusal = deps.check(endpoint, { side: options.side });
      if (refusal === null) return true;
      deps.refused(endpoint, { ...options, reason: refusal });
      return false;
    },
    refuse(endpoint: IpEndpoint, options: DataRefuseOptions): void {
      deps.refused(endpoint, options);
    },
    async relay(a: Deno.Conn, b: Deno.Conn, options: DataRelayOptions): Promise<void> {
      await deps.relay(a, b, options);
    },
    expect(options: ExpectOptions): Disposable {
      return deps.expectations.register({ address: ctx.client.address, user: ctx.user }, options);
    },
  };
}
