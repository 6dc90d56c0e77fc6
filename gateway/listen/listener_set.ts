/**
 * The SOCKS listeners of a gateway, one accept loop each, changed in place by a reload: a
 * `listen` entry whose address is unchanged keeps its socket (no connection is refused while
 * the config changes; its PROXY protocol settings apply from the next connection), new ones
 * are opened before anything else changes, removed ones are closed after. Connections already
 * accepted on a removed listener keep running.
 *
 * @module
 */

import { endpointFromNetAddr, formatEndpoint, type IpEndpoint } from "../../net/address.ts";
import { closeQuietly } from "../../net/io.ts";
import type { ListenConfig } from "../config/types.ts";
import { acceptLoop, listenOn } from "./listener.ts";

/** Options of {@linkcode ListenerSet}. */
export interface ListenerSetOptions {
  /** Sets SO_REUSEPORT on every listener (workers). @default false */
  readonly reusePort?: boolean;
  /** Called for every accepted connection with the listener's entry as it is now. */
  readonly onConnection: (conn: Deno.TcpConn, listen: ListenConfig) => void;
  /** Called when accept fails and the loop backs off. */
  readonly onAcceptError?: (error: unknown, backoffMs: number) => void;
}

interface Entry {
  readonly key: string;
  listen: ListenConfig;
  readonly listener: Deno.TcpListener;
  readonly endpoint: IpEndpoint;
  loop: Promise<void> | undefined;
}

/** A change of listeners, opened but not in force yet: commit or abandon it. */
export interface ListenerChange {
  /** Addresses opened by this change. */
  readonly added: readonly IpEndpoint[];
  /** Addresses the change will close. */
  readonly removed: readonly IpEndpoint[];
  /**
   * Starts accepting on the new listeners and closes the removed ones; resolves when their
   * accept loops have ended (the sockets are closed then, not merely closing).
   */
  commit(): Promise<void>;
  /** Closes the listeners this change opened; the set stays as it was. */
  abandon(): void;
}

/**
 * Keys of `listen` entries: the configured address, numbered when it repeats (port 0 twice is
 * two listeners).
 */
function keysOf(listen: readonly ListenConfig[]): string[] {
  const seen = new Map<string, number>();
  return listen.map((entry) => {
    const address = formatEndpoint(entry.endpoint);
    const n = seen.get(address) ?? 0;
    seen.set(address, n + 1);
    return `${address}#${n}`;
  });
}

/** The gateway's listeners. */
export class ListenerSet {
  readonly #options: ListenerSetOptions;
  #entries: Entry[] = [];
  readonly #loops: Promise<void>[] = [];

  /** Creates an empty set; {@linkcode ListenerSet.change} opens listeners. */
  constructor(options: ListenerSetOptions) {
    this.#options = options;
  }

  /** The bound endpoints, in `listen` order (port 0 replaced by the real port). */
  get endpoints(): IpEndpoint[] {
    return this.#entries.map((entry) => entry.endpoint);
  }

  /** The listeners in force. */
  get listeners(): Deno.TcpListener[] {
    return this.#entries.map((entry) => entry.listener);
  }

  /** Every accept loop started (those of closed listeners have ended or will). */
  get loops(): readonly Promise<void>[] {
    return this.#loops;
  }

  /**
   * Opens the listeners `listen` has and the set has not.
   *
   * @throws what `Deno.listen` throws (an address in use); those opened are closed first.
   */
  change(listen: readonly ListenConfig[]): ListenerChange {
    const keys = keysOf(listen);
    const byKey = new Map(this.#entries.map((entry) => [entry.key, entry]));
    const opened: Entry[] = [];
    const next: Entry[] = [];
    try {
      listen.forEach((entry, index) => {
        const key = keys[index]!;
        const kept = byKey.get(key);
        if (kept) {
          next.push(kept);
          return;
        }
        const listener = listenOn(entry.endpoint, { reusePort: this.#options.reusePort ?? false });
        const fresh: Entry = {
          key,
          listen: entry,
          listener,
          endpoint: endpointFromNetAddr(listener.addr),
          loop: undefined,
        };
        opened.push(fresh);
        next.push(fresh);
      });
    } catch (error) {
      for (const entry of opened) entry.listener.close();
      throw error;
    }
    const wanted = new Set(keys);
    const removed = this.#entries.filter((entry) => !wanted.has(entry.key));
    let done = false;
    return {
      added: opened.map((entry) => entry.endpoint),
      removed: removed.map((entry) => entry.endpoint),
      commit: async () => {
        if (done) return;
        done = true;
        listen.forEach((entry, index) => next[index]!.listen = entry);
        this.#entries = next;
        for (const entry of opened) this.#start(entry);
        for (const entry of removed) closeQuietly(entry.listener);
        await Promise.all(removed.map((entry) => entry.loop));
      },
      abandon: () => {
        if (done) return;
        done = true;
        for (const entry of opened) closeQuietly(entry.listener);
      },
    };
  }

  /** Closes every listener (the accept loops end). */
  close(): void {
    for (const entry of this.#entries) closeQuietly(entry.listener);
  }

  #start(entry: Entry): void {
    const loop = acceptLoop(entry.listener, {
      onConnection: (conn) => this.#options.onConnection(conn, entry.listen),
      ...(this.#options.onAcceptError && { onAcceptError: this.#options.onAcceptError }),
    });
    entry.loop = loop;
    this.#loops.push(loop);
  }
}
