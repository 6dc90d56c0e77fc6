/**
 * One translated FTP control session: the state machine of the translation table (described in
 * `translators/README.md`, section "FTP across families": passive, active, EPSV ALL, policy and
 * data-channel checks; the wire forms are RFC 959, RFC 1639 and RFC 2428).
 *
 * Client commands are handled one at a time (the line loop waits for each hook); server
 * replies are correlated in order with a queue of what the gateway forwarded or asked.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type IpAddress, type IpEndpoint, isUnspecified, sameIp } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { withTimeout } from "../_timeout.ts";
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
  type ActiveParse,
  endsReply,
  eprtProtocol,
  format227,
  format228,
  format229,
  format522,
  formatEprt,
  formatHostPort,
  formatLongHostPort,
  parseCommand,
  parseEprt,
  parseLprt,
  parsePort,
  parseReplyLine,
  passivePort,
  sanitizeReplyLine,
} from "./codec.ts";
import type { FtpOptions } from "./options.ts";

const logger = getLogger(["dualgate", "translators", "ftp"]);

/** A whole server reply: its code and lines (without CRLF). */
export interface FtpReply {
  /** The code of the first line. */
  readonly code: number;
  /** All lines, first to last. */
  readonly lines: readonly string[];
}

/** How one server reply is handled, decided when its first line arrives. */
type Disposition =
  | { readonly kind: "forward"; readonly filterFeat: boolean }
  | { readonly kind: "drop" }
  /** A reply replaced by a 425 once it ends (a passive reply the gateway did not ask for). */
  | { readonly kind: "refuse" }
  | Ask;

interface Ask {
  readonly kind: "ask";
  readonly lines: string[];
  settled: boolean;
  resolve(reply: FtpReply): void;
  reject(error: unknown): void;
}

const MAX_ASK_LINES = 64;
/** The label of data channels in logs and connection records. */
const DATA_LABEL = "ftp-data";
const PASSIVE_VERBS = new Set(["PASV", "EPSV", "LPSV"]);
const ACTIVE_VERBS = new Set(["PORT", "EPRT", "LPRT"]);
const TLS_VERBS = new Set(["PBSZ", "PROT", "CCC", "ADAT"]);
/**
 * Extensions that carry or announce a data address the translator does not translate:
 * SPSV (single-port passive), pure-ftpd's ESTA/ESTP. Refused rather than passed on.
 */
const UNTRANSLATED_ADDRESS_VERBS = new Set(["SPSV", "ESTA", "ESTP"]);
/** A line inside a multi-line reply that a client could take for a reply's start. */
const REPLY_LIKE = /^\d{3}/;
/** Passive replies: only ever the gateway's own, never a server's passed through. */
const PASSIVE_REPLY_CODES = new Set([227, 228, 229]);
/** FEAT lines hidden: TLS cannot be translated; pure-ftpd's ESTA/ESTP/PRET carry addresses. */
const HIDDEN_FEATURES = /^\s*(AUTH|PBSZ|PROT|CCC|ADAT|ESTA|ESTP|PRET)(\s|$)/i;

/** The server did not answer a command the gateway sent, or went away. */
class ServerGoneError extends Error {
  /** True when the client was already sent a 421 for it. */
  readonly notified: boolean;
  constructor(message: string, notified = false) {
    super(message);
    this.notified = notified;
  }
}

/** The FTP session hooks; see the module doc. */
export class FtpSession extends DataChannelSession<FtpOptions> implements TranslatorSession {
  readonly #queue: Disposition[] = [];
  #current: { code: number; disposition: Disposition } | null = null;
  #epsvAll = false;
  #closed = new AbortController();
  /** The pending data setup (listener, expectation): at most one per session. */
  #setup = new AbortController();
  /** Running data relays: aborted by ABOR, REIN, QUIT and the session's end. */
  #transfers = new AbortController();

  /** Creates the hooks for one session. */
  constructor(ctx: TranslatorContext, broker: DataChannelBroker, options: FtpOptions) {
    super(ctx, broker, options, DATA_LABEL);
  }

  /** Handles one client command. */
  async onClientLine(line: Line, io: LineIo): Promise<LineVerdict> {
    const parsed = parseCommand(line.text);
    if (!parsed.ok) {
      logger.info("Refused FTP command line: {reason}", {
        id: this.ctx.id,
        reason: parsed.reason,
      });
      await io.sendToClient(`500 ${parsed.reason}`);
      return "consumed";
    }
    const { command } = parsed;
    const { verb } = command;
    try {
      if (verb === "EPSV" && command.argument.trim().toUpperCase() === "ALL") {
        // Answered and enforced here: servers disagree on it (200, 220, 500) and vsftpd still
        // accepts EPRT afterwards.
        this.#resetSetup();
        this.#epsvAll = true;
        await io.sendToClient("200 EPSV ALL command successful");
        return "consumed";
      }
      if (this.#epsvAll && verb !== "EPSV" && (PASSIVE_VERBS.has(verb) || ACTIVE_VERBS.has(verb))) {
        await io.sendToClient(`501 ${verb} not allowed after EPSV ALL`);
        return "consumed";
      }
      if (UNTRANSLATED_ADDRESS_VERBS.has(verb)) {
        await io.sendToClient(`502 ${verb} not implemented by this translating gateway`);
        return "consumed";
      }
      if (PASSIVE_VERBS.has(verb)) {
        await this.#passive(io, verb, command.argument.trim());
        return "consumed";
      }
      if (ACTIVE_VERBS.has(verb)) {
        await this.#active(io, verb, command.argument.trim());
        return "consumed";
      }
      if (this.options.refuseTls && verb === "AUTH") {
        await io.sendToClient("534 TLS cannot be used through this translating gateway");
        return "consumed";
      }
      if (this.options.refuseTls && TLS_VERBS.has(verb)) {
        await io.sendToClient("503 No security exchange through this translating gateway");
        return "consumed";
      }
      if (verb === "ABOR" || verb === "QUIT" || verb === "REIN") {
        this.#resetData();
        if (verb === "REIN") this.#epsvAll = false;
      }
      this.#queue.push({
        kind: "forward",
        filterFeat: verb === "FEAT" && this.options.refuseTls,
      });
      // The one normal form reaches the server (upper-case verb), or the exact bytes when
      // they already are that form.
      if (command.text === line.text) return "forward";
      await io.sendToServer(command.text);
      return "consumed";
    } catch (error) {
      if (!(error instanceof ServerGoneError)) throw error;
      if (!error.notified) {
        await io.sendToClient(`421 Service not available: ${error.message}`).catch(() => {});
      }
      io.close();
      return "consumed";
    }
  }

  /**
   * Handles one server line, as part of a whole reply. What reaches the client is one normal
   * form: control bytes inside a line become spaces, lines between replies are dropped, lines
   * inside a multi-line reply that start with digits are indented (RFC 959 §4.2), and a
   * passive reply (227/228/229) the gateway did not make is replaced by a 425: a client must
   * never read a data address the translator did not check.
   */
  async onServerLine(line: Line, io: LineIo): Promise<LineVerdict> {
    const text = sanitizeReplyLine(line.text);
    const out = this.#serverLine(text);
    if (out === line.text) return "forward";
    if (out !== null) await io.sendToClient(out);
    return "consumed";
  }

  /** The line to pass to the client for a (sanitised) server line, or `null` for none. */
  #serverLine(text: string): string | null {
    if (this.#current) {
      const current = this.#current;
      const last = endsReply(text, current.code);
      if (last) this.#current = null;
      return this.#dispatch(current.disposition, text, false, last, current.code);
    }
    const reply = parseReplyLine(text);
    if (!reply) {
      // Not a reply: a client might still read one into it (`227\t(…)`), so it is dropped.
      logger.debug("Dropped FTP server line outside a reply", { id: this.ctx.id });
      return null;
    }
    let disposition: Disposition;
    if (reply.code < 200) {
      // A preliminary reply belongs to a forwarded transfer command; never to a command the
      // gateway sent (those get no 1yz), so it is dropped then.
      disposition = this.#queue[0]?.kind === "ask" ? { kind: "drop" } : forward;
    } else {
      // Extra replies with nothing outstanding pass through.
      disposition = this.#queue.shift() ?? forward;
    }
    if (disposition.kind === "forward" && PASSIVE_REPLY_CODES.has(reply.code)) {
      // Passive commands never reach the server as they are, so this answers something else.
      logger.warn("Refused a passive reply the gateway did not ask for: {code}", {
        id: this.ctx.id,
        code: reply.code,
      });
      disposition = { kind: "refuse" };
    }
    if (reply.continues) this.#current = { code: reply.code, disposition };
    return this.#dispatch(disposition, text, true, !reply.continues, reply.code);
  }

  /** The server ended the control connection: commands the gateway sent will get no reply. */
  async onEnd(side: Side, io: LineIo): Promise<void> {
    if (side !== "server") return;
    const waiting = this.#queue.some((entry) => entry.kind === "ask" && !entry.settled);
    const message = "the server closed the connection";
    // Told here, before the client's stream is half-closed after this hook.
    if (waiting) await io.sendToClient(`421 Service not available: ${message}`).catch(() => {});
    this.#failAsks(new ServerGoneError(message, waiting));
  }

  /** Answers an over-long command before the session closes. */
  async onLineTooLong(side: Side, io: LineIo): Promise<void> {
    if (side === "client") await io.sendToClient("500 Command line too long").catch(() => {});
  }

  /** Ends every listener, expectation and data relay, and waits for their tasks. */
  async close(): Promise<void> {
    this.#closed.abort();
    this.#setup.abort();
    this.#transfers.abort();
    this.#failAsks(new ServerGoneError("the session ended"));
    await this.tasks.settled();
  }

  #dispatch(
    disposition: Disposition,
    text: string,
    first: boolean,
    last: boolean,
    code: number,
  ): string | null {
    switch (disposition.kind) {
      case "forward":
        if (first || last) return text;
        if (disposition.filterFeat && HIDDEN_FEATURES.test(text)) return null;
        // Inside a multi-line reply a line that starts like another reply is indented, as
        // RFC 959 asks servers to: a naive client would end the reply there. `xyz-text` with
        // the reply's own code is the common continuation style and stays.
        return REPLY_LIKE.test(text) && !text.startsWith(`${code}-`) ? ` ${text}` : text;
      case "drop":
        return null;
      case "refuse":
        return last ? "425 Cannot open data connection: unexpected passive reply refused" : null;
      case "ask":
        if (disposition.settled) return null;
        if (disposition.lines.length < MAX_ASK_LINES) disposition.lines.push(text);
        if (last) {
          disposition.settled = true;
          disposition.resolve({ code, lines: disposition.lines });
        }
        return null;
    }
  }

  #failAsks(error: Error): void {
    for (const disposition of this.#queue) {
      if (disposition.kind === "ask" && !disposition.settled) {
        disposition.settled = true;
        disposition.reject(error);
      }
    }
  }

  /** Sends a command of the gateway's own and waits for its whole final reply. */
  #ask(io: LineIo, command: string): Promise<FtpReply> {
    return withTimeout(
      this.options.replyTimeoutMs,
      this.#closed.signal,
      (signal) =>
        new Promise<FtpReply>((resolve, reject) => {
          const ask: Ask = {
            kind: "ask",
            lines: [],
            settled: false,
            resolve,
            reject,
          };
          const onAbort = () => {
            if (ask.settled) return;
            // The reply may still come: it is then dropped, keeping later replies in step.
            ask.settled = true;
            reject(new ServerGoneError(`no reply from the server to ${command.split(" ")[0]}`));
          };
          signal.addEventListener("abort", onAbort, { once: true });
          const settle = <T>(f: (value: T) => void) => (value: T) => {
            signal.removeEventListener("abort", onAbort);
            f(value);
          };
          ask.resolve = settle(resolve);
          ask.reject = settle(reject);
          this.#queue.push(ask);
          io.sendToServer(command).catch((error) => {
            if (ask.settled) return;
            ask.settled = true;
            ask.reject(new ServerGoneError(errorText(error)));
          });
        }),
    );
  }

  /**
   * Tries `commands` in order until one succeeds; any 5xx or 425 means "try the next form".
   * Returns the successful reply, or the last failure.
   */
  async #tryInOrder(
    io: LineIo,
    commands: readonly string[],
    succeeded: (reply: FtpReply) => boolean,
  ): Promise<{ ok: boolean; reply: FtpReply }> {
    let reply: FtpReply = { code: 425, lines: ["425 Cannot open data connection"] };
    for (const command of commands) {
      reply = await this.#ask(io, command);
      if (succeeded(reply)) return { ok: true, reply };
      // A transient failure other than 425 (421 closing, 450 busy) ends the attempt.
      if (reply.code >= 400 && reply.code < 500 && reply.code !== 425) break;
    }
    return { ok: false, reply };
  }

  async #relayFailure(io: LineIo, reply: FtpReply, fallback: string): Promise<void> {
    if (reply.code >= 400) {
      for (const line of reply.lines) await io.sendToClient(line);
    } else {
      await io.sendToClient(fallback);
    }
  }

  async #passive(io: LineIo, verb: string, argument: string): Promise<void> {
    const clientFamily = this.ctx.client.address.family;
    const serverFamily = this.ctx.server.address.family;
    if (verb !== "EPSV" && argument !== "") {
      await io.sendToClient(`501 Syntax error: ${verb} takes no argument`);
      return;
    }
    if (verb === "EPSV" && argument !== "") {
      if (!/^\d{1,5}$/.test(argument)) {
        await io.sendToClient("501 Syntax error in EPSV argument");
        return;
      }
      if (Number(argument) !== eprtProtocol(clientFamily)) {
        await io.sendToClient(format522([eprtProtocol(clientFamily)]));
        return;
      }
    }
    this.#resetSetup();
    const setup = this.#setup.signal;
    // Toward IPv6 never PASV: servers answer it with 0,0,0,0, 425, malformed 227s or a 228.
    const commands = serverFamily === 6 ? ["EPSV", "LPSV"] : ["EPSV", "PASV"];
    const portOf = (reply: FtpReply) => passivePort(reply.code, reply.lines.join("\n"));
    const { ok, reply } = await this.#tryInOrder(io, commands, (reply) => portOf(reply) !== null);
    const serverPort = ok ? portOf(reply) : null;
    if (serverPort === null) {
      await this.#relayFailure(io, reply, "425 Cannot open data connection: no passive port");
      return;
    }
    // Never the address of a 227/228: the control connection's peer.
    const serverData: IpEndpoint = { address: this.ctx.server.address, port: serverPort };
    const refusal = this.#refuseServerPort(serverData);
    if (refusal !== null) {
      await io.sendToClient(`425 Cannot open data connection: ${refusal}`);
      return;
    }
    const listener = await this.#listenForData("client", setup, io);
    if (!listener) return;
    const advertised = listener.endpoint;
    // A 227 holds IPv4 only: an IPv6-connected client gets a stand-in it reaches through SOCKS.
    const pasvAddress = verb === "PASV" && advertised.address.family === 6
      ? pasvStandIn(this.ctx.server.address)
      : advertised.address;
    // SOCKS clients CONNECT to the original destination (curl's skip-pasv-ip) or to the 227
    // address; clients without SOCKS connect to the listener itself. First one wins.
    serveDataListener(this.broker, this.tasks, listener, {
      ...this.#dataChannel("server", serverData),
      expectTargets: [
        { address: this.ctx.target.address, port: advertised.port },
        { address: advertised.address, port: advertised.port },
        ...(pasvAddress === advertised.address
          ? []
          : [{ address: pasvAddress, port: advertised.port }]),
      ],
      setupSignal: setup,
    });
    const gateway: IpEndpoint = { address: advertised.address, port: advertised.port };
    if (verb === "PASV") await io.sendToClient(format227({ ...gateway, address: pasvAddress }));
    else if (verb === "LPSV") await io.sendToClient(format228(gateway));
    else await io.sendToClient(format229(gateway.port));
  }

  async #active(io: LineIo, verb: string, argument: string): Promise<void> {
    const clientFamily = this.ctx.client.address.family;
    const serverFamily = this.ctx.server.address.family;
    let parsed: ActiveParse | null;
    if (verb === "PORT") {
      const endpoint = parsePort(argument);
      parsed = endpoint ? { kind: "endpoint", endpoint } : null;
    } else {
      parsed = verb === "EPRT" ? parseEprt(argument) : parseLprt(argument);
    }
    // PORT on an IPv6 control connection stays refused. It comes from a program with an IPv4
    // view (proxychains4), listening on an IPv4 socket that the gateway cannot reach on an
    // IPv6-only host, so connecting back to the client's IPv6 address would fail anyway; and
    // ignoring the address in PORT would weaken RFC 2577's check to "any address means the
    // client". The reply says what works instead (EPRT, or PASV/EPSV).
    const wrongFamily = verb === "PORT"
      ? `500 Illegal PORT command: this control connection is IPv6, use EPRT or passive mode`
      : verb === "EPRT"
      ? format522([eprtProtocol(clientFamily)])
      : `521 Supported address families are (${clientFamily})`;
    if (!parsed) {
      await io.sendToClient(`501 Syntax error in ${verb} arguments`);
      return;
    }
    if (parsed.kind === "unsupported-family" || parsed.endpoint.address.family !== clientFamily) {
      await io.sendToClient(wrongFamily);
      return;
    }
    const requested = parsed.endpoint;
    // RFC 2577: only the client's own control address (the unspecified one means the same),
    // never a port below 1024; a refused command never reaches the server.
    if (!isUnspecified(requested.address) && !sameIp(requested.address, this.ctx.client.address)) {
      await io.sendToClient(`501 Rejected data connection to a foreign address`);
      return;
    }
    if (requested.port < 1024) {
      await io.sendToClient(`504 Rejected data connection to a port below 1024`);
      return;
    }
    const clientData: IpEndpoint = { address: this.ctx.client.address, port: requested.port };
    if (!this.broker.permits(clientData, { side: "client", label: DATA_LABEL })) {
      await io.sendToClient("425 Cannot open data connection: refused by the gateway's rules");
      return;
    }
    this.#resetSetup();
    const setup = this.#setup.signal;
    const listener = await this.#listenForData("server", setup, io);
    if (!listener) return;
    // Accepting starts now: some servers connect before their 200 (pyftpdlib).
    serveDataListener(this.broker, this.tasks, listener, {
      ...this.#dataChannel("client", clientData),
      expectTargets: [],
      setupSignal: setup,
    });
    const local = listener.endpoint;
    const commands = serverFamily === 6
      ? [`EPRT ${formatEprt(local)}`, `LPRT ${formatLongHostPort(local)}`]
      : [`EPRT ${formatEprt(local)}`, `PORT ${formatHostPort(local)}`];
    const { ok, reply } = await this.#tryInOrder(
      io,
      commands,
      (candidate) => candidate.code >= 200 && candidate.code < 300,
    );
    if (!ok) {
      this.#resetSetup();
      await this.#relayFailure(io, reply, `500 ${verb} command failed`);
      return;
    }
    await io.sendToClient(`200 ${verb} command successful`);
  }

  /**
   * Why the gateway will not open a data channel to the server's passive port, or `null`:
   * RFC 2577 keeps ports below 1024 out (unless it is the control connection's own port, which
   * the client reaches already), and the gateway's rules judge the port itself. Refusals are
   * logged and recorded by the broker.
   */
  #refuseServerPort(serverData: IpEndpoint): string | null {
    if (serverData.port < 1024 && serverData.port !== this.ctx.server.port) {
      const reason = `the server's passive port ${serverData.port} is below 1024`;
      this.broker.refuse(serverData, {
        side: "server",
        label: DATA_LABEL,
        reason: `Cannot connect data channel: ${reason}`,
      });
      return reason;
    }
    if (!this.broker.permits(serverData, { side: "server", label: DATA_LABEL })) {
      return `the gateway's rules refuse the server's passive port ${serverData.port}`;
    }
    return null;
  }

  /** A data channel's other leg (`target` on `side`), relayed until ABOR, REIN, QUIT or the end. */
  #dataChannel(side: Side, target: IpEndpoint) {
    const common = { id: this.ctx.id, label: DATA_LABEL, ttlMs: this.options.dataTimeoutMs };
    return { ...common, side, target, signal: this.#transfers.signal };
  }

  /** Drops the pending data setup (listener, expectation): one per session. */
  /**
   * Listens for one data connection from the expected peer on `side` (the client in passive
   * mode, the server in active mode); answers 425 and returns `null` when it cannot.
   */
  async #listenForData(side: Side, signal: AbortSignal, io: LineIo): Promise<DataListener | null> {
    try {
      return await this.broker.listen({
        side,
        peer: side === "client" ? this.ctx.client.address : this.ctx.server.address,
        ports: side === "client" ? this.options.passivePorts : this.options.activePorts,
        timeoutMs: this.options.dataTimeoutMs,
        signal,
      });
    } catch (error) {
      logger.warn("Cannot listen for FTP data: {error}", {
        id: this.ctx.id,
        error: errorText(error),
      });
      await io.sendToClient("425 Cannot open data connection");
      return null;
    }
  }

  #resetSetup(): void {
    this.#setup.abort();
    this.#setup = new AbortController();
    if (this.#closed.signal.aborted) this.#setup.abort();
  }

  /** ABOR, REIN, QUIT: drops the pending setup and tears down running data relays. */
  #resetData(): void {
    this.#resetSetup();
    this.#transfers.abort();
    this.#transfers = new AbortController();
  }
}

const forward: Disposition = { kind: "forward", filterFeat: false };

/**
 * RFC 7600's IPv4 dummy address (192.0.0.8, in the IETF protocol assignments block
 * 192.0.0.0/24): never routed, so a CONNECT to it that misses its expectation goes nowhere.
 */
const IPV4_DUMMY: IpAddress = { family: 4, bytes: Uint8Array.of(192, 0, 0, 8) };

/**
 * The IPv4 address put in a 227 for a client whose control connection is IPv6. Such a client
 * is a SOCKS client with an IPv4 view of the server (proxychains4's fake addresses): it
 * CONNECTs through the gateway to this address (or to the original destination, or to the
 * control peer), never directly, and the expectation routes that CONNECT to the server's data
 * port. The server's own address when it is IPv4: true, and a CONNECT that misses its
 * expectation is an ordinary one to that server under the rules. Otherwise the never-routed
 * dummy address, as the gateway's own IPv4 address is not known on an IPv6 session and a
 * client could reach it directly, bypassing the expectation's single use.
 */
function pasvStandIn(server: IpAddress): IpAddress {
  return server.family === 4 ? server : IPV4_DUMMY;
}
