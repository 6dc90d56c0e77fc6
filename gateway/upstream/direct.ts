/**
 * The direct dialer: resolves names with the gateway's resolver and races connections across
 * families (RFC 8305 Happy Eyeballs, or the configured preference).
 *
 * @module
 */

import { endpointFromNetAddr, formatIp } from "../../net/address.ts";
import { candidateAddresses } from "../_request_context.ts";
import { AllAttemptsFailedError, connectHappyEyeballs, type Resolver } from "../../resolver/mod.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply } from "../../socks5/types.ts";
import type { FamilyPreference } from "../config/types.ts";
import { replyForError, replyForErrors } from "../reply_codes.ts";
import type { Dialed, Dialer, DialRequest } from "./types.ts";

/** Options of {@linkcode DirectDialer}. */
export interface DirectDialerOptions {
  /** Delay between staggered attempts. @default 250 */
  attemptDelayMs?: number;
}

/** Dials destinations from this host. */
export class DirectDialer implements Dialer {
  readonly #resolver: Resolver;
  readonly #prefer: FamilyPreference;
  readonly #attemptDelayMs: number;

  /** Creates a dialer over `resolver` with a family preference. */
  constructor(resolver: Resolver, prefer: FamilyPreference, options: DirectDialerOptions = {}) {
    this.#resolver = resolver;
    this.#prefer = prefer;
    this.#attemptDelayMs = options.attemptDelayMs ?? 250;
  }

  /** Resolves (if needed), filters by rules and preference, and connects. */
  async dial(request: DialRequest): Promise<Dialed> {
    const { target, signal } = request;
    const { addresses: candidates, source: resolvedBy } = await candidateAddresses(
      target,
      this.#resolver,
      this.#prefer,
      signal,
    );
    const permitted = candidates.filter(request.permit);
    if (permitted.length === 0) {
      throw new SocksReplyError(Reply.NotAllowedByRuleset, "Cannot connect: denied by rules");
    }
    try {
      const { value: conn } = await connectHappyEyeballs(
        permitted,
        (address, attemptSignal) =>
          Deno.connect({ hostname: formatIp(address), port: target.port, signal: attemptSignal }),
        { attemptDelayMs: this.#attemptDelayMs, signal, close: (c) => c.close() },
      );
      return {
        conn,
        remote: endpointFromNetAddr(conn.remoteAddr),
        local: endpointFromNetAddr(conn.localAddr),
        resolvedBy,
      };
    } catch (error) {
      if (error instanceof AllAttemptsFailedError) {
        throw new SocksReplyError(replyForErrors(error.errors), describe(error.errors), {
          cause: error,
        });
      }
      throw new SocksReplyError(replyForError(error), describe([error]), { cause: error });
    }
  }
}

function describe(errors: readonly unknown[]): string {
  const last = errors.at(-1);
  const text = last instanceof Error ? last.message : String(last);
  return `Cannot connect: ${text}`;
}
