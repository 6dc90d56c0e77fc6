/**
 * The gateway's side of protocol translators: which CONNECTs a translator handles, and the
 * expectation table that routes a SOCKS client's data connection to the right server port.
 *
 * @module
 */

import type { IpAddress } from "../net/address.ts";
import type { SocksTarget } from "../socks5/types.ts";
import type { Config } from "./config/types.ts";
import type { Dialed } from "./upstream/types.ts";
import type { Handshaken } from "./session.ts";

/** A connection the gateway opens instead of dialing, because a translator expects it. */
export interface ExpectedOpen {
  /** Opens the connection to use instead of dialing. */
  open(signal: AbortSignal): Promise<Deno.Conn>;
}

/** What sessions use of the translators. */
export interface TranslationService {
  /** A CONNECT a translator announced (a data connection), or `undefined`. */
  takeExpected(client: IpAddress, target: SocksTarget): ExpectedOpen | undefined;
  /**
   * Runs a translator on a CONNECT that succeeded and was answered; `true` when one handled
   * the session (both connections are closed then), `false` to relay as usual.
   */
  translate(session: Handshaken, dialed: Dialed): Promise<boolean>;
}

/** Builds the translation service from the config. */
export function createTranslationService(config: Config): TranslationService {
  if (config.translators.length > 0) {
    throw new RangeError("Cannot start translators: not wired into the gateway yet");
  }
  return {
    takeExpected: () => undefined,
    translate: () => Promise.resolve(false),
  };
}
