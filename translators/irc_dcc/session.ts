/**
 * One translated IRC session: DCC offers in PRIVMSG/NOTICE lines are rewritten in both
 * directions so that each peer reaches the other through the gateway, with an address of its
 * own family (README, "IRC DCC across families").
 *
 * - **The client offers** (client → server `DCC SEND/CHAT`): the address must be the client's
 *   own (or unspecified: the client's is used) and the port 1024 or more. The gateway listens on
 *   its address facing the server, the offer names that listener, and the first peer the rules
 *   allow is connected to the client's port.
 * - **A peer offers** (server → client): the address must not be the gateway's own, loopback,
 *   unspecified or multicast, the port 1024 or more, and the rules must allow it as a CONNECT
 *   from this client. The gateway listens on its address facing the client (for the client's
 *   address only; a SOCKS CONNECT to it from the client is expected too), and connects to the
 *   offerer when the client comes.
 * - **Passive DCC** (port 0 and a token): the address becomes the gateway's of the receiving
 *   side, nothing is opened; the answer (the same token with a real port) is an offer like any.
 * - **RESUME/ACCEPT** name an offer by its port: the ports are mapped between the two sides.
 *
 * A line that mentions DCC (`\x01DCC` in any case) is translated or dropped, never passed on as
 * it is; refusals are logged (and recorded when an address was refused).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type IpAddress, type IpEndpoint, isUnspecified, sameIp } from "../../net/address.ts";
import { isHostLocal, isMulticastOrBroadcast } from "../../net/cidr.ts";
import { errorText } from "../../net/error_text.ts";
import { DataChannelSession, serveDataListener } from "../data_channel.ts";
import type {
  DataChannelBroker,
  DataListener,
  Line,
  LineIo,
  LineVerdict,
  Side,
  TranslatorContext,
  TranslatorSession,
} from "../types.ts";
import {
  type DccOffer,
  type DccRequest,
  formatDcc,
  isDccBody,
  isOffer,
  joinCtcp,
  mentionsDcc,
  parseDcc,
  parseTextMessage,
  splitCtcp,
  type TextPart,
} from "./codec.ts";
import type { IrcDccOptions } from "./options.ts";

const logger = getLogger(["dualgate", "translators", "irc-dcc"]);

/** The label of DCC connections in logs and connection records. */
export const DCC_LABEL = "irc-dcc";

/** Refused peers after which a listener facing the server closes. */
const MAX_REFUSED_PEERS = 8;

/** An offer the gateway listens for. */
interface OpenOffer {
  /** Who made the offer. */
  readonly from: Side;
  /** The offerer's port. */
  readonly originalPort: number;
  /** The gateway's port named in the rewritten offer. */
  readonly advertisedPort: number;
  /** Aborting closes the listener (not a running relay). */
  readonly setup: AbortController;
}

type Translation = { readonly ok: true; readonly request: DccRequest } | {
  readonly ok: false;
  readonly reason: string;
};

/** The IRC DCC session hooks; see the module doc. */
export class IrcDccSession extends DataChannelSession<IrcDccOptions> implements TranslatorSession {
  readonly #offers = new Set<OpenOffer>();
  readonly #closed = new AbortController();

  /** Creates the hooks for one session. */
  constructor(ctx: TranslatorContext, broker: DataChannelBroker, options: IrcDccOptions) {
    super(ctx, broker, options, DCC_LABEL);
  }

  /** A line from the client: its DCC requests are translated toward the server. */
  onClientLine(line: Line, io: LineIo): Promise<LineVerdict> {
    return this.#line(line, io, "client");
  }

  /** A line from the server: DCC requests of other peers are translated toward the client. */
  onServerLine(line: Line, io: LineIo): Promise<LineVerdict> {
    return this.#line(line, io, "server");
  }

  /** Closes every listener and DCC relay, and waits for their tasks. */
  async close(): Promise<void> {
    this.#closed.abort();
    await this.tasks.settled();
  }

  async #line(line: Line, io: LineIo, from: Side): Promise<LineVerdict> {
    if (!mentionsDcc(line.text)) return "forward";
    const refuse = (reason: string): LineVerdict => {
      logger.info("Dropped a DCC line from the {from}: {reason}", {
        id: this.ctx.id,
        from,
        reason,
      });
      return "consumed";
    };
    // A bare CR, LF or NUL ends a line for some servers and clients: what follows would be a
    // line the translator never saw.
    if (/[\r\n\0]/.test(line.text)) return refuse("control byte in a line with a DCC request");
    const message = parseTextMessage(line.text);
    if (!message) return refuse("a DCC request outside a PRIVMSG or NOTICE text");
    const split = splitCtcp(message.text);
    const requests = split.filter((part) => part.kind === "ctcp" && isDccBody(part.segment.body));
    // No client sends two in one message; one line opens one listener at most.
    if (requests.length > 1) return refuse("more than one DCC request in a line");
    const parts: TextPart[] = [];
    for (const part of split) {
      if (part.kind === "text" || !isDccBody(part.segment.body)) {
        parts.push(part);
        continue;
      }
      const parsed = parseDcc(part.segment.body);
      if (!parsed.ok) return refuse(parsed.reason);
      const translated = await this.#translate(parsed.request, from);
      if (!translated.ok) return refuse(translated.reason);
      parts.push({ kind: "ctcp", segment: { body: formatDcc(translated.request), closed: true } });
    }
    const text = message.head + joinCtcp(parts);
    if (from === "client") await io.sendToServer(text);
    else await io.sendToClient(text);
    return "consumed";
  }

  #translate(request: DccRequest, from: Side): Promise<Translation> | Translation {
    if (!isOffer(request)) {
      // RESUME names the offer's port as its receiver saw it, ACCEPT as its sender wrote it.
      const offer = [...this.#offers].find((candidate) =>
        request.type === "RESUME"
          ? candidate.from !== from && candidate.advertisedPort === request.port
          : candidate.from === from && candidate.originalPort === request.port
      );
      if (!offer || request.port === 0) return { ok: true, request };
      const port = request.type === "RESUME" ? offer.originalPort : offer.advertisedPort;
      return { ok: true, request: { ...request, port } };
    }
    if (request.port === 0) {
      // Passive DCC: the receiver answers with its own listener; this address is not used to
      // connect, but it must not name the other side's family or the client's own address.
      const local = from === "client" ? this.ctx.serverSideLocal : this.ctx.clientSideLocal;
      return { ok: true, request: { ...request, address: local.address } };
    }
    return from === "client" ? this.#clientOffer(request) : this.#peerOffer(request);
  }

  /** The client offers: the gateway listens facing the server, for any peer the rules allow. */
  async #clientOffer(offer: DccOffer): Promise<Translation> {
    const client = this.ctx.client.address;
    const clientData: IpEndpoint = { address: client, port: offer.port };
    if (!isUnspecified(offer.address) && !sameIp(offer.address, client)) {
      return this.#refused(
        { address: offer.address, port: offer.port },
        "client",
        "not the client's own address",
      );
    }
    if (offer.port < 1024) return this.#refused(clientData, "client", "a port below 1024");
    if (this.#offers.size >= this.options.maxOffers) {
      return this.#refused(
        clientData,
        "client",
        `more than ${this.options.maxOffers} open offers`,
      );
    }
    if (!this.broker.permits(clientData, { side: "client", label: DCC_LABEL })) {
      return { ok: false, reason: "the gateway's rules refuse the client's port" };
    }
    let advertisedPort = 0;
    let refusedPeers = 0;
    let stop = () => {};
    const listener = await this.#listen(offer, "server", (peer) => {
      const permitted = this.#acceptablePeer(peer.address) &&
        this.broker.permits(
          { address: peer.address, port: advertisedPort },
          { side: "server", label: DCC_LABEL },
        );
      // Anyone may knock on a listener facing the server: after a few refusals it closes,
      // rather than log and record every knock until the offer times out.
      if (!permitted && ++refusedPeers >= MAX_REFUSED_PEERS) stop();
      return permitted;
    });
    if (!listener) return { ok: false, reason: "cannot listen for the offer" };
    advertisedPort = listener.endpoint.port;
    stop = () => listener.setup.abort();
    this.#serve(listener, offer, clientData, "client");
    return {
      ok: true,
      request: { ...offer, address: listener.endpoint.address, port: advertisedPort },
    };
  }

  /** A peer offers: the gateway listens facing the client, and connects to the offerer. */
  async #peerOffer(offer: DccOffer): Promise<Translation> {
    const peerData: IpEndpoint = { address: offer.address, port: offer.port };
    if (!this.#acceptablePeer(offer.address)) {
      return this.#refused(
        peerData,
        "server",
        "the gateway's own, loopback, unspecified or multicast address",
      );
    }
    if (offer.port < 1024) return this.#refused(peerData, "server", "a port below 1024");
    if (this.#offers.size >= this.options.maxOffers) {
      return this.#refused(peerData, "server", `more than ${this.options.maxOffers} open offers`);
    }
    if (!this.broker.permits(peerData, { side: "server", label: DCC_LABEL })) {
      return { ok: false, reason: "the gateway's rules refuse the offerer's address or port" };
    }
    const listener = await this.#listen(offer, "client", this.ctx.client.address);
    if (!listener) return { ok: false, reason: "cannot listen for the offer" };
    this.#serve(listener, offer, peerData, "server");
    return {
      ok: true,
      request: { ...offer, address: listener.endpoint.address, port: listener.endpoint.port },
    };
  }

  /** Not the gateway's own address, loopback, unspecified, multicast or broadcast. */
  #acceptablePeer(address: IpAddress): boolean {
    return !isHostLocal(address) && !isUnspecified(address) && !isMulticastOrBroadcast(address) &&
      !sameIp(address, this.ctx.clientSideLocal.address) &&
      !sameIp(address, this.ctx.serverSideLocal.address);
  }

  #refused(endpoint: IpEndpoint, side: Side, why: string): Translation {
    const reason = `Cannot open DCC channel: ${why}`;
    this.broker.refuse(endpoint, { side, label: DCC_LABEL, reason });
    return { ok: false, reason };
  }

  async #listen(
    offer: DccOffer,
    side: Side,
    peer: IpAddress | ((peer: IpEndpoint) => boolean),
  ): Promise<(DataListener & { readonly setup: AbortController }) | null> {
    const setup = new AbortController();
    try {
      const listener = await this.broker.listen({
        side,
        peer,
        ports: this.options.listenPorts,
        timeoutMs: this.options.offerTimeoutMs,
        signal: AbortSignal.any([setup.signal, this.#closed.signal]),
      });
      return Object.assign(listener, { setup });
    } catch (error) {
      logger.warn("Cannot listen for a DCC {type}: {error}", {
        id: this.ctx.id,
        type: offer.type,
        error: errorText(error),
      });
      return null;
    }
  }

  /**
   * Waits for the peer on `listener` and bridges it to `target` (on `targetSide`). An offer
   * from the server side is also expected as a SOCKS CONNECT from the client.
   */
  #serve(
    listener: DataListener & { readonly setup: AbortController },
    offer: DccOffer,
    target: IpEndpoint,
    targetSide: Side,
  ): void {
    const open: OpenOffer = {
      from: targetSide,
      originalPort: offer.port,
      advertisedPort: listener.endpoint.port,
      setup: listener.setup,
    };
    this.#offers.add(open);
    serveDataListener(this.broker, this.tasks, listener, {
      id: this.ctx.id,
      side: targetSide,
      label: DCC_LABEL,
      target,
      // A peer's offer reaches the client, which may CONNECT to it through SOCKS.
      expectTargets: targetSide === "server"
        ? [{ address: listener.endpoint.address, port: listener.endpoint.port }]
        : [],
      ttlMs: this.options.offerTimeoutMs,
      setupSignal: AbortSignal.any([listener.setup.signal, this.#closed.signal]),
      signal: this.#closed.signal,
      settled: () => this.#offers.delete(open),
    });
  }
}
