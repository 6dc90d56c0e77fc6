/**
 * One SOCKS5 hop of a chain: a dialer that wraps the dialer beneath it (RFC 3089 §4: the gateway
 * contains the Socks Lib's functions, so it relays through further gateways with the same client
 * code). A chain is a fold of hops over the direct dialer; nothing here knows its position.
 *
 * To dial a target, the hop asks the dialer beneath it for a connection to one of its
 * alternatives, then runs the SOCKS5 client handshake over that connection for the target.
 *
 * - A name is forwarded unresolved (only the last gateway resolves it), normalised (lower case,
 *   no trailing dot), so that the rules here judged the name the hop gets; a name that is not a
 *   valid host name is refused with REP 4 (host unreachable: no host has it) before rules or
 *   hops see it. A literal, also one sent as a name, is forwarded as an address. The hop's own
 *   address may be a name: whoever dials the hop resolves it (this gateway for the first hop,
 *   the previous hop for later ones).
 * - An alternative with `proxy_protocol` gets a PROXY v2 header naming the SOCKS client
 *   (`LOCAL` when the client is unknown) before the greeting, so that it judges the real client.
 * - The first hop of a chain, given a {@linkcode SameHostGuard}, refuses (REP 2) a request from
 *   a client that is not local when the alternative it reached is on this host and takes no
 *   PROXY header, and the destination is host-local as far as this gateway can tell (see
 *   {@linkcode SameHostGuard}): that hop would see this gateway, a loopback peer, as its client
 *   and let the request reach the host's loopback. A name on such a request is resolved here and
 *   forwarded as the checked address (the hop never looks it up again: no DNS rebinding); a name
 *   this gateway cannot resolve is refused with REP 4.
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

import { type IpAddress, type IpEndpoint, parseIp } from "../../net/address.ts";
import { isLoopback } from "../../net/cidr.ts";
import { errorText } from "../../net/error_text.ts";
import { closeQuietly, writeAll } from "../../net/io.ts";
import { isLocalhostName, literalAddress, normalizeName } from "../../resolver/mod.ts";
import { socksHandshake } from "../../socks5/client.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Command, Reply, type ReplyCode, type SocksTarget } from "../../socks5/types.ts";
import type { HopConfig, HopEndpoint } from "../config/types.ts";
import { logger } from "../observe/log.ts";
import { encodeProxyV2Header } from "../listen/proxy_protocol.ts";
import { replyForError } from "../reply_codes.ts";
import {
  AlternativesFailedError,
  AlternativeUnreachableError,
  attemptHandshakeOptions,
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

/**
 * What the first hop of a chain knows about this host, to tell when a hop on the same host
 * without a PROXY header would let a remote client reach the host's loopback.
 *
 * Without the header, such a hop sees this gateway (a loopback peer) as its client and applies
 * no host-local protection. The first hop then refuses, for a client that is not local: a
 * destination `localhost` / `*.localhost` (RFC 6761), a name this gateway's resolver answers
 * with a host-local address or cannot resolve (REP 4; other names go to the hop as the checked
 * address, never as the name, which the hop could resolve differently), and
 * every destination of a client that is this host by a non-loopback address (the hop nesting a
 * session back into this gateway). Literals are judged by the rules before.
 */
export interface SameHostGuard {
  /** True for an address on this host (loopback, "this host", its own addresses). */
  isHostLocal(address: IpAddress): boolean;
  /** This gateway's addresses for `name`; rejects when it has none. */
  resolve(name: string, signal: AbortSignal): Promise<readonly IpAddress[]>;
}

/**
 * The same-host check's outcome: refused with a reason and REP, or passed, with the checked
 * address to forward instead of the name when it resolved one.
 */
type SameHostCheck =
  | { readonly refused: string; readonly reply: ReplyCode }
  | { readonly refused?: undefined; readonly address?: IpAddress };

/** One alternative of a hop as the status page shows it. */
export interface AlternativeState {
  /** The alternative's label (its URL without user info). */
  readonly label: string;
  /** True while marked down. */
  readonly down: boolean;
  /** Milliseconds in this state, or `null` for one up and never marked. */
  readonly forMs: number | null;
}

/** Options of {@linkcode SocksHopDialer}. */
export interface SocksHopDialerOptions extends Pick<HopSelectorOptions, "now" | "random"> {
  /** Given to the first hop of each chain only (see {@linkcode SameHostGuard}). */
  readonly sameHost?: SameHostGuard;
}

/**
 * The target as forwarded: names normalised and unresolved, literals (also ones sent as names)
 * as addresses.
 *
 * @throws {SocksReplyError} REP 4 for a name that is not a valid host name.
 */
export function forwardedTarget(target: SocksTarget): SocksTarget {
  if (target.address.family !== "name") return target;
  const literal = literalAddress(target.address.name);
  if (literal) return { address: literal, port: target.port };
  const name = normalizeName(target.address.name);
  if (name === null) {
    throw new SocksReplyError(
      Reply.HostUnreachable,
      `Cannot connect to ${JSON.stringify(target.address.name)}: not a valid host name`,
    );
  }
  return name === target.address.name
    ? target
    : { address: { family: "name", name }, port: target.port };
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
  readonly #sameHost: SameHostGuard | undefined;

  /** Creates the hop over `below` (the direct dialer for the first hop). */
  constructor(hop: HopConfig, below: Dialer, options: SocksHopDialerOptions = {}) {
    this.#hop = hop;
    this.#below = below;
    const { sameHost, ...selection } = options;
    this.#sameHost = sameHost;
    this.#selector = new HopSelector(hop.alternatives.length, {
      strategy: hop.strategy,
      maxFails: hop.maxFails,
      failTimeoutMs: hop.failTimeoutMs,
      ...selection,
    });
    this.#targets = hop.alternatives.map(hopTarget);
  }

  /** Each alternative's label and state (up or marked, and for how long), in config order. */
  alternativeStates(): AlternativeState[] {
    return this.#hop.alternatives.map((alternative, index) => ({
      label: alternative.label,
      ...this.#selector.state(index),
    }));
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
    const destination = request.destination ?? target;
    let check: Promise<SameHostCheck> | undefined;
    try {
      return await tryAlternatives(this.#selector.attempts(), async ({ index }, signal) => {
        const endpoint = this.#hop.alternatives[index]!;
        // The hop itself is configuration, not the client's destination: rules do not apply.
        const below = await this.#below.dial({
          target: this.#targets[index]!,
          signal,
          permit: () => true,
          destination,
          ...(request.client ? { client: request.client } : {}),
          ...(request.egress ? { egress: request.egress } : {}),
        }).catch((error) => {
          // Not reaching the alternative is its failure, even as a REP from a lower hop.
          throw error instanceof HopUnavailableError
            ? error
            : new AlternativeUnreachableError(error);
        });
        let hopRequest = target;
        try {
          if (
            this.#sameHost && endpoint.proxyProtocol === undefined &&
            this.#sameHost.isHostLocal(below.remote.address)
          ) {
            check ??= this.#sameHostCheck(destination, request.client, request.signal);
            const checked = await check;
            if (checked.refused !== undefined) {
              throw new SocksReplyError(
                checked.reply,
                `Cannot connect through ${endpoint.label}: ${checked.refused}; the hop is on this ` +
                  "host and gets no PROXY header (set ?proxy_protocol=v2 on it)",
              );
            }
            // The hop must not look the name up again (DNS rebinding): it gets the address
            // checked here, which the rules judge as well.
            if (checked.address) {
              if (!request.permit(checked.address)) {
                throw new SocksReplyError(
                  Reply.NotAllowedByRuleset,
                  "Cannot connect: denied by rules",
                );
              }
              hopRequest = { address: checked.address, port: target.port };
            }
          }
          if (endpoint.proxyProtocol === "v2") {
            const client = request.client;
            await writeAll(
              below.conn,
              encodeProxyV2Header(
                client && { source: client.source, destination: client.destination },
              ),
            );
          }
          const { bound } = await socksHandshake(
            below.conn,
            { command: Command.Connect, target: hopRequest },
            attemptHandshakeOptions(endpoint, signal),
          );
          const local = boundEndpoint(bound) ?? below.local;
          return { conn: below.conn, remote: below.remote, local, resolvedBy: endpoint.label };
        } catch (error) {
          closeQuietly(below.conn);
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

  /**
   * Judges a request through a hop on this host without PROXY header: refused (with why and the
   * REP), passed as is, or passed with the checked address the hop must get instead of the name.
   */
  async #sameHostCheck(
    destination: SocksTarget,
    client: DialRequest["client"],
    signal: AbortSignal,
  ): Promise<SameHostCheck> {
    const guard = this.#sameHost!;
    if (client?.isLocal) return {};
    if (client && !isLoopback(client.source.address) && guard.isHostLocal(client.source.address)) {
      return {
        refused: "the client is this host by a non-loopback address (a session nested " +
          "through the hop)",
        reply: Reply.NotAllowedByRuleset,
      };
    }
    // Literals were judged by the rules; an invalid name was refused before.
    if (destination.address.family !== "name") return {};
    const name = destination.address.name;
    if (isLocalhostName(name)) {
      return { refused: `"${name}" is this host (RFC 6761)`, reply: Reply.NotAllowedByRuleset };
    }
    let addresses: readonly IpAddress[];
    try {
      addresses = await guard.resolve(name, signal);
    } catch {
      addresses = [];
    }
    // The hop would look the name up itself, with answers this gateway never checked.
    if (addresses.length === 0) {
      return { refused: `"${name}" does not resolve here`, reply: Reply.HostUnreachable };
    }
    if (addresses.some((address) => guard.isHostLocal(address))) {
      return {
        refused: `"${name}" resolves to an address of this host`,
        reply: Reply.NotAllowedByRuleset,
      };
    }
    return { address: addresses[0]! };
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
  return foldChainHops(chain, direct, options).dialer;
}

/** {@linkcode foldChain}, also returning the hop dialers, first to last (for their states). */
export function foldChainHops(
  chain: readonly HopConfig[],
  direct: Dialer,
  options: SocksHopDialerOptions = {},
): { readonly dialer: Dialer; readonly hops: readonly SocksHopDialer[] } {
  const { sameHost, ...rest } = options;
  const hops: SocksHopDialer[] = [];
  // Only the first hop is dialed from this host: later hops' loopback is another host's.
  const dialer = chain.reduce<Dialer>(
    (below, hop, index) => {
      const dialer = new SocksHopDialer(hop, below, index === 0 && sameHost ? options : rest);
      hops.push(dialer);
      return dialer;
    },
    direct,
  );
  return { dialer, hops };
}
