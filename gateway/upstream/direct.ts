/**
 * The direct dialer: resolves names with the gateway's resolver and races connections across
 * families (RFC 8305 Happy Eyeballs, or the configured preference).
 *
 * @module
 */

import {
  endpointFromNetAddr,
  formatIp,
  type IpAddress,
  type IpEndpoint,
} from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { connectFrom } from "../../net/node_tcp.ts";
import {
  AllAttemptsFailedError,
  connectHappyEyeballs,
  type FamilyPreference,
  type Resolver,
  stagedCandidateAddresses,
} from "../../resolver/mod.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply } from "../../socks5/types.ts";
import { replyForError, replyForErrors } from "../reply_codes.ts";
import type { Dialed, Dialer, DialRequest } from "./types.ts";

/** Options of {@linkcode DirectDialer}. */
export interface DirectDialerOptions {
  /** Delay between staggered attempts. @default 250 */
  attemptDelayMs?: number;
  /** Opens one TCP connection; a test hook. @default Deno.connect */
  connect?: (options: Deno.ConnectOptions & { signal: AbortSignal }) => Promise<Deno.TcpConn>;
  /**
   * Opens one TCP connection from a source address (for `DialRequest.egress`); a test hook.
   * @default connectFrom (node:net with localAddress)
   */
  connectFrom?: (
    local: IpAddress,
    remote: IpEndpoint,
    options: { signal: AbortSignal },
  ) => Promise<Deno.TcpConn>;
}

/**
 * Dials destinations from this host. A name answered by DNS is dialed as soon as its first
 * family answers (RFC 8305 §3); addresses of the other family that answer later join the
 * attempts still to come, filtered by the rules like the first ones.
 */
export class DirectDialer implements Dialer {
  readonly #resolver: Resolver;
  readonly #prefer: FamilyPreference;
  readonly #attemptDelayMs: number;
  readonly #connect: (
    options: Deno.ConnectOptions & { signal: AbortSignal },
  ) => Promise<Deno.TcpConn>;
  readonly #connectFrom: NonNullable<DirectDialerOptions["connectFrom"]>;

  /** Creates a dialer over `resolver` with a family preference. */
  constructor(resolver: Resolver, prefer: FamilyPreference, options: DirectDialerOptions = {}) {
    this.#resolver = resolver;
    this.#prefer = prefer;
    this.#attemptDelayMs = options.attemptDelayMs ?? 250;
    this.#connect = options.connect ?? Deno.connect;
    this.#connectFrom = options.connectFrom ?? connectFrom;
  }

  /**
   * Resolves (if needed), filters by rules and preference, and connects.
   *
   * @throws {SocksReplyError} REP 2 when the rules deny every address, REP 4 when the name does
   *   not resolve, REP 3 when the egress pool has no source of any permitted address's family,
   *   else the REP of the connection failures.
   */
  async dial(request: DialRequest): Promise<Dialed> {
    const { target, signal } = request;
    const { addresses, later, source: resolvedBy } = await stagedCandidateAddresses(target, {
      resolver: this.#resolver,
      prefer: this.#prefer,
      signal,
    });
    let denied = 0;
    // Families the egress pool has no source for are never dialed.
    const unsourced = new Set<4 | 6>();
    const egress = request.egress;
    const permitted = (list: readonly IpAddress[]) =>
      list.filter((address) => {
        if (!request.permit(address)) return (denied++, false);
        if (egress && egress(address.family) === null) {
          return (unsourced.add(address.family), false);
        }
        return true;
      });
    const first = permitted(addresses);
    if (first.length === 0 && !later) throw denied > 0 ? deniedByRules() : noSource(unsourced);
    const more = later ? lateBatches(later, permitted) : undefined;
    try {
      const { value: conn } = await connectHappyEyeballs(
        first,
        (address, attemptSignal) => {
          const source = egress?.(address.family);
          return source
            ? this.#connectFrom(source, { address, port: target.port }, { signal: attemptSignal })
            : this.#connect({
              hostname: formatIp(address),
              port: target.port,
              signal: attemptSignal,
            });
        },
        {
          attemptDelayMs: this.#attemptDelayMs,
          signal,
          close: (c) => c.close(),
          prefer: this.#prefer,
          ...(more ? { more } : {}),
        },
      );
      const remote = endpointFromNetAddr(conn.remoteAddr);
      const source = egress?.(remote.address.family);
      return {
        conn,
        remote,
        local: endpointFromNetAddr(conn.localAddr),
        resolvedBy,
        ...(source && { egress: source }),
      };
    } catch (error) {
      if (error instanceof AllAttemptsFailedError) {
        // Nothing was tried: every address, early or late, was denied or had no source.
        if (error.addresses.length === 0 && denied > 0) throw deniedByRules();
        if (error.addresses.length === 0 && unsourced.size > 0) throw noSource(unsourced);
        throw new SocksReplyError(replyForErrors(error.errors), describe(error.errors), {
          cause: error,
        });
      }
      throw new SocksReplyError(replyForError(error), describe([error]), { cause: error });
    }
  }
}

async function* lateBatches(
  later: Promise<IpAddress[]>,
  permitted: (list: readonly IpAddress[]) => IpAddress[],
): AsyncGenerator<IpAddress[]> {
  yield permitted(await later);
}

function deniedByRules(): SocksReplyError {
  return new SocksReplyError(Reply.NotAllowedByRuleset, "Cannot connect: denied by rules");
}

function noSource(families: ReadonlySet<4 | 6>): SocksReplyError {
  const which = [...families].sort().map((f) => `IPv${f}`).join(" or ");
  return new SocksReplyError(
    Reply.NetworkUnreachable,
    `Cannot connect: no ${which} egress address configured for this destination's addresses`,
  );
}

function describe(errors: readonly unknown[]): string {
  const last = errors.at(-1);
  return `Cannot connect: ${errorText(last)}`;
}
