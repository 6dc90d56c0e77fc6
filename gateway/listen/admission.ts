/**
 * Admission: whether an accepted connection may have a session at all, before a byte is read.
 * A connection is closed at once when its peer is not a trusted proxy of a PROXY protocol
 * listener, is over the failed-login limit, or would pass the global, descriptor or per-client
 * connection limit; the refusal is counted and logged (at most one line a second). Admitted
 * connections are tracked until their session ends.
 *
 * @module
 */

import { endpointFromNetAddr, type IpEndpoint } from "../../net/address.ts";
import type { ListenConfig } from "../config/types.ts";
import type { AuthFailureLimiter } from "../limits/auth_limiter.ts";
import type { DescriptorBudget } from "../limits/fd_limit.ts";
import { logger } from "../observe/log.ts";
import type { GatewayMetrics, LimitName } from "../observe/metrics.ts";
import { isTrustedProxy } from "./proxy_trust.ts";

/** The limits in force for the next connection (they may change between connections). */
export interface AdmissionLimits {
  /** Effective maximum of simultaneous connections (after the open-files cap). */
  readonly maxConnections: number;
  /** Maximum simultaneous connections per client. */
  readonly maxConnectionsPerClient: number;
  /** The per-client key of a client. */
  readonly clientKeyOf: (client: IpEndpoint) => string;
  /** The failed-login limiter. */
  readonly authFailures: AuthFailureLimiter;
}

/** Options of {@linkcode Admission}. */
export interface AdmissionOptions {
  /** Counts refusals. */
  readonly metrics: GatewayMetrics;
  /** Extra descriptors (UDP) held beside the connections. */
  readonly budget: DescriptorBudget;
  /** The limits in force now: read once per connection. */
  readonly limits: () => AdmissionLimits;
}

/** An admitted connection. */
export interface Admitted {
  /** The TCP peer. */
  readonly peer: IpEndpoint;
  /** Gives its place back (its session ended). Idempotent. */
  readonly release: () => void;
}

const log = logger("gateway");

/** Admits or refuses accepted connections, and tracks the admitted ones. */
export class Admission {
  readonly #options: AdmissionOptions;
  readonly #active = new Set<Deno.TcpConn>();
  readonly #perClient = new Map<string, number>();
  #lastRefusalLog = -Infinity;
  #refusalsUnlogged = 0;

  /** Creates an admission with nothing admitted yet. */
  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** The admitted connections whose sessions have not ended. */
  get active(): ReadonlySet<Deno.TcpConn> {
    return this.#active;
  }

  /**
   * Admits `conn`, accepted on the listener `listen`, or closes it (counted, logged) and
   * returns `null`.
   */
  admit(conn: Deno.TcpConn, listen: ListenConfig | undefined): Admitted | null {
    const proxyProtocol = listen?.proxyProtocol;
    let peer: IpEndpoint;
    try {
      peer = endpointFromNetAddr(conn.remoteAddr);
    } catch {
      conn.close();
      return null;
    }
    const { metrics, budget } = this.#options;
    const limits = this.#options.limits();
    const { authFailures } = limits;
    const active = this.#active;
    const key = limits.clientKeyOf(peer);
    // Behind a PROXY-protocol balancer the peer is the balancer, shared by every client: the
    // per-client limit would cap them all together, so it is left to the balancer there, and
    // the failed-login limit is applied in the session to the client the header names.
    const clientCount = proxyProtocol ? 0 : this.#perClient.get(key) ?? 0;
    const refused: LimitName | null =
      proxyProtocol && !isTrustedProxy(peer.address, listen?.trustedProxies)
        ? "untrusted_proxy"
        : !proxyProtocol && authFailures.isBlocked(key)
        ? "auth_failures"
        : active.size >= limits.maxConnections || !budget.admitsConnection(active.size)
        ? "global"
        : clientCount >= limits.maxConnectionsPerClient
        ? "per_client"
        : null;
    if (refused !== null) {
      conn.close();
      metrics.limitRejections.inc([refused]);
      this.#logRefusal(refused, key);
      return null;
    }
    active.add(conn);
    this.#perClient.set(key, clientCount + 1);
    let released = false;
    return {
      peer,
      release: () => {
        if (released) return;
        released = true;
        active.delete(conn);
        const left = (this.#perClient.get(key) ?? 1) - 1;
        if (left <= 0) this.#perClient.delete(key);
        else this.#perClient.set(key, left);
      },
    };
  }

  /** At most one line a second: a flood must not turn into a flood of log lines. */
  #logRefusal(refused: LimitName, client: string): void {
    const now = performance.now();
    if (now - this.#lastRefusalLog < 1000) {
      this.#refusalsUnlogged++;
      return;
    }
    log.warn(
      refused === "untrusted_proxy"
        ? "refused {client}: not a trusted proxy of this PROXY protocol listener " +
          "(and {more} more refusals since the last line)"
        : "{limit} limit reached; refused {client} (and {more} more since the last line)",
      { limit: refused, client, more: this.#refusalsUnlogged },
    );
    this.#lastRefusalLog = now;
    this.#refusalsUnlogged = 0;
  }
}
