/**
 * One SOCKS5 hop of a chain: a dialer that wraps the dialer beneath it (RFC 3089 §4: the gateway
 * contains the Socks Lib's functions, so it relays through further gateways with the same client
 * code). A chain is a fold of hops over the direct dialer; nothing here knows its position.
 *
 * To dial a target, the hop asks the dialer beneath it for a connection to one of its
 * alternatives, then runs the SOCKS5 client handshake over that connection for the target.
 *
 * - A name is forwarded unresolved (only the last gateway resolves it); a literal, also one sent
 *   as a name, is forwarded as an address. The hop's own address may be a name: whoever dials the
 *   hop resolves it (this gateway for the first hop, the previous hop for later ones).
 * - Failing to reach an alternative (refused, unreachable, timeout, closed, malformed answer, no
 *   answer to the greeting within 3 s, or the alternative refusing our credentials) marks it in
 *   the selector, and the next alternative is tried before any reply reaches the client, within
 *   the request's signal. The loop is the Socks Lib's `tryAlternatives` (`client/alternatives.ts`),
 *   shared with `socksify` and the library's gateway lists.
 * - A reply code from a reachable alternative about the target (REP 2, 4, 5, ...) is the
 *   destination's answer: passed through with its code, no retry, no mark.
 * - When every alternative fails, the hop throws {@linkcode HopUnavailableError}; hops above
 *   pass it through unmarked, since their own alternatives were never tried.
 *
 * @module
 */

import { type IpEndpoint, parseIp } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { literalAddress } from "../../resolver/mod.ts";
import { socksHandshake } from "../../socks5/client.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Command, Reply, type ReplyCode, type SocksTarget } from "../../socks5/types.ts";
import type { HopConfig, HopEndpoint } from "../config/types.ts";
import { logger } from "../observe/log.ts";
import { replyForError } from "../reply_codes.ts";
import {
  AlternativesFailedError,
  AlternativeUnreachableError,
  NEGOTIATION_TIMEOUT_MS,
  tryAlternatives,
} from "../../client/alternatives.ts";
import { HopSelector, type HopSelectorOptions } from "../../client/selector.ts";
import type { Dialed, Dialer, DialRequest } from "./types.ts";

const log = logger("upstream");

/**
 * Every alternative of a hop failed. Carries the REP of the last failure (5 when the last
 * alternative refused, 4 on timeout, 1 for a refused login or a malformed answer).
 */
export class HopUnavailableError extends SocksReplyError {
  /** Creates the error for a hop whose alternatives all failed. */
  constructor(reply: ReplyCode, message: string, options?: ErrorOptions) {
    super(reply, message, options);
    this.name = "HopUnavailableError";
  }
}

/** Options of {@linkcode SocksHopDialer}. */
export type SocksHopDialerOptions = Pick<HopSelectorOptions, "now" | "random">;

/** The target as forwarded: names unresolved, literals (also ones sent as names) as addresses. */
export function forwardedTarget(target: SocksTarget): SocksTarget {
  if (target.address.family !== "name") return target;
  const literal = literalAddress(target.address.name);
  return literal ? { address: literal, port: target.port } : target;
}

function hopTarget(endpoint: HopEndpoint): SocksTarget {
  const address = parseIp(endpoint.host);
  return {
    address: address ?? { family: "name", name: endpoint.host },
    port: endpoint.port,
  };
}

/** A dialer through one SOCKS5 hop (with alternatives) over the dialer beneath it. */
export class SocksHopDialer implements Dialer {
  readonly #hop: HopConfig;
  readonly #below: Dialer;
  readonly #selector: HopSelector;
  readonly #targets: readonly SocksTarget[];

  /** Creates the hop over `below` (the direct dialer for the first hop). */
  constructor(hop: HopConfig, below: Dialer, options: SocksHopDialerOptions = {}) {
    this.#hop = hop;
    this.#below = below;
    this.#selector = new HopSelector(hop.alternatives.length, {
      strategy: hop.strategy,
      maxFails: hop.maxFails,
      failTimeoutMs: hop.failTimeoutMs,
      ...options,
    });
    this.#targets = hop.alternatives.map(hopTarget);
  }

  /** The selector (its marks are shared by every connection through this hop). */
  get selector(): HopSelector {
    return this.#selector;
  }

  /**
   * Connects through one alternative of this hop to `request.target`.
   *
   * @throws {SocksReplyError} with the REP of the alternative that answered about the target.
   * @throws {HopUnavailableError} when no alternative could be used.
   */
  async dial(request: DialRequest): Promise<Dialed> {
    const { signal } = request;
    const target = forwardedTarget(request.target);
    // Only literals can meet address rules here; a name is judged by name patterns alone.
    const allowed = target.address.family === "name"
      ? request.permit()
      : request.permit(target.address);
    if (!allowed) {
      throw new SocksReplyError(Reply.NotAllowedByRuleset, "Cannot connect: denied by rules");
    }
    try {
      return await tryAlternatives(this.#selector.attempts(), async ({ index }, signal) => {
        const endpoint = this.#hop.alternatives[index]!;
        // The hop itself is configuration, not the client's destination: rules do not apply.
        const below = await this.#below.dial({
          target: this.#targets[index]!,
          signal,
          permit: () => true,
        }).catch((error) => {
          // Not reaching the alternative is its failure, even as a REP from a lower hop.
          throw error instanceof HopUnavailableError
            ? error
            : new AlternativeUnreachableError(error);
        });
        try {
          const { bound } = await socksHandshake(
            below.conn,
            { command: Command.Connect, target },
            {
              signal,
              negotiationTimeoutMs: NEGOTIATION_TIMEOUT_MS,
              ...(endpoint.credentials ? { credentials: endpoint.credentials } : {}),
            },
          );
          const local = boundEndpoint(bound) ?? below.local;
          return { conn: below.conn, remote: below.remote, local, resolvedBy: endpoint.label };
        } catch (error) {
          try {
            below.conn.close();
          } catch { /* closed */ }
          throw error;
        }
      }, {
        signal,
        describe: ({ index }) => `Cannot connect through ${this.#hop.alternatives[index]!.label}`,
        failure: `Cannot reach any gateway of hop ${this.#labels()}`,
        // A lower hop whose alternatives all failed: ours were never tried.
        passThrough: (error) => error instanceof HopUnavailableError,
        onFailed: ({ index }, error) => this.#failed(index, error),
      });
    } catch (error) {
      if (!(error instanceof AlternativesFailedError)) throw error;
      // A refused login or a malformed answer maps to REP 1; a refused connect stays 5.
      const last = error.lastError;
      const reply = last === undefined ? Reply.GeneralFailure : replyForError(last);
      throw new HopUnavailableError(
        reply,
        `Cannot reach any gateway of hop ${this.#labels()}: ${errorText(last)}`,
        { cause: last },
      );
    }
  }

  #failed(index: number, error: unknown): void {
    const endpoint = this.#hop.alternatives[index]!;
    log.warn("hop {hop} failed: {reason}{marked}", {
      hop: endpoint.label,
      reason: errorText(error),
      marked: this.#selector.isDown(index) ? ` (skipped for ${this.#hop.failTimeoutMs} ms)` : "",
    });
  }

  #labels(): string {
    return this.#hop.alternatives.map((a) => a.label).join(" | ");
  }
}

function boundEndpoint(bound: SocksTarget): IpEndpoint | undefined {
  return bound.address.family === "name" ? undefined : { address: bound.address, port: bound.port };
}

/**
 * Folds `chain` over `direct`: each hop wraps the dialer beneath it, the last hop outermost.
 * Returns the chain's dialer.
 */
export function foldChain(
  chain: readonly HopConfig[],
  direct: Dialer,
  options: SocksHopDialerOptions = {},
): Dialer {
  return chain.reduce<Dialer>((below, hop) => new SocksHopDialer(hop, below, options), direct);
}
