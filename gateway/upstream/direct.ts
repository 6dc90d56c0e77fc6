/**
 * The direct dialer: resolves names with the gateway's resolver and races connections across
 * families (RFC 8305 Happy Eyeballs, or the configured preference).
 *
 * @module
 */

import { endpointFromNetAddr, formatIp, type IpAddress } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
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

  /** Creates a dialer over `resolver` with a family preference. */
  constructor(resolver: Resolver, prefer: FamilyPreference, options: DirectDialerOptions = {}) {
    this.#resolver = resolver;
    this.#prefer = prefer;
    this.#attemptDelayMs = options.attemptDelayMs ?? 250;
    this.#connect = options.connect ?? Deno.connect;
  }

  /**
   * Resolves (if needed), filters by rules and preference, and connects.
   *
   * @throws {SocksReplyError} REP 2 when the rules deny every address, REP 4 when the name does
   *   not resolve, else the REP of the connection failures.
   */
  async dial(request: DialRequest): Promise<Dialed> {
    const { target, signal } = request;
    const { addresses, later, source: resolvedBy } = await stagedCandidateAddresses(target, {
      resolver: this.#resolver,
      prefer: this.#prefer,
      signal,
    });
    let denied = 0;
    const permitted = (list: readonly IpAddress[]) =>
      list.filter((address) => request.permit(address) || (denied++, false));
    const first = permitted(addresses);
    if (first.length === 0 && !later) throw deniedByRules();
    const more = later ? lateBatches(later, permitted) : undefined;
    try {
      const { value: conn } = await connectHappyEyeballs(
        first,
        (address, attemptSignal) =>
          this.#connect({ hostname: formatIp(address), port: target.port, signal: attemptSignal }),
        {
          attemptDelayMs: this.#attemptDelayMs,
          signal,
          close: (c) => c.close(),
          prefer: this.#prefer,
          ...(more ? { more } : {}),
        },
      );
      return {
        conn,
        remote: endpointFromNetAddr(conn.remoteAddr),
        local: endpointFromNetAddr(conn.localAddr),
        resolvedBy,
      };
    } catch (error) {
      if (error instanceof AllAttemptsFailedError) {
        // Nothing was tried: every address, early or late, was denied.
        if (error.addresses.length === 0 && denied > 0) throw deniedByRules();
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

function describe(errors: readonly unknown[]): string {
  const last = errors.at(-1);
  return `Cannot connect: ${errorText(last)}`;
}
