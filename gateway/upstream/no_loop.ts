/**
 * The dialer beneath the first hop of a chain: it refuses to dial one of this gateway's own
 * listeners. A hop that is the gateway itself (by literal, by a name that resolves to it, or by
 * any of its addresses on a wildcard listener) would take the request again, match the same
 * route, and nest one more session per round, without end.
 *
 * @module
 */

import { formatEndpoint, type IpAddress } from "../../net/address.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply } from "../../socks5/types.ts";
import type { Dialed, Dialer, DialRequest } from "./types.ts";

/** Wraps `below` so that no address:port of the gateway's own listeners is ever dialed. */
export class NoLoopDialer implements Dialer {
  readonly #below: Dialer;
  readonly #isOwnListener: (address: IpAddress, port: number) => boolean;

  /** `isOwnListener` says whether a TCP connection to `address`:`port` reaches this gateway. */
  constructor(below: Dialer, isOwnListener: (address: IpAddress, port: number) => boolean) {
    this.#below = below;
    this.#isOwnListener = isOwnListener;
  }

  /**
   * Dials through the dialer beneath, leaving out the gateway's own listeners.
   *
   * @throws {SocksReplyError} REP 2 when every address of the target is one of them.
   */
  async dial(request: DialRequest): Promise<Dialed> {
    const port = request.target.port;
    let own: IpAddress | undefined;
    try {
      return await this.#below.dial({
        ...request,
        permit: (address) => {
          if (address !== undefined && this.#isOwnListener(address, port)) {
            own = address;
            return false;
          }
          return request.permit(address);
        },
      });
    } catch (error) {
      if (own && error instanceof SocksReplyError && error.reply === Reply.NotAllowedByRuleset) {
        throw new SocksReplyError(
          Reply.NotAllowedByRuleset,
          `Cannot dial hop ${formatEndpoint({ address: own, port })}: it is this gateway's own ` +
            "listener (a chain through itself would loop)",
          { cause: error },
        );
      }
      throw error;
    }
  }
}
