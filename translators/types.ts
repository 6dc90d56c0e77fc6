/**
 * The translator plugin contract, between the gateway and protocol translators (FTP and
 * others). Types only: implementations depend on these, never the reverse.
 *
 * The flow, for a SOCKS CONNECT that succeeded:
 *
 * 1. At config load, each `translators:` entry is validated by its factory's `optionsSchema`
 *    and becomes a {@linkcode Translator} (see `registry.ts`).
 * 2. The gateway builds a {@linkcode TranslatorContext} and a {@linkcode DataChannelBroker}
 *    (`createDataChannelBroker` in `broker.ts`) and calls `runTranslation` (`run.ts`): among
 *    the translators whose configured `ports` include the destination port
 *    ({@linkcode ConfiguredTranslator}), the first whose {@linkcode Translator.match} claims the
 *    session runs it; when none does, the gateway relays as usual.
 * 3. The session's line hooks see complete lines from either side; data connections are lent
 *    by the gateway through the broker, so rules, limits, logging and metrics apply to them.
 *    A hook can hand the rest of the session back to the gateway's core relay
 *    (`"passthrough"`, {@linkcode LineIo.detach}). The relay idle timeout and byte counts apply
 *    to the whole session.
 * 4. Before dialing any CONNECT, the gateway asks the {@linkcode ExpectationTable} whether a
 *    translator expects that connection (SOCKS-mode FTP passive data).
 *
 * @module
 */

import type { z } from "zod";
import type { IpAddress, IpEndpoint } from "../net/address.ts";
import type { DuplexStream } from "../net/stream.ts";
import type { SocksTarget } from "../socks5/types.ts";

/** Which connection of a relayed session: the SOCKS client's or the destination server's. */
export type Side = "client" | "server";

/** What a translator knows about the relayed session. All addresses are unmapped (`::ffff:`). */
export interface TranslatorContext {
  /** A short session id, for logs. */
  readonly id: string;
  /** The SOCKS client (remote end of the client connection). */
  readonly client: IpEndpoint;
  /** The gateway's own end of the client connection (the address the client reached). */
  readonly clientSideLocal: IpEndpoint;
  /** The server actually connected (remote end of the server connection). */
  readonly server: IpEndpoint;
  /** The gateway's own end of the server connection. */
  readonly serverSideLocal: IpEndpoint;
  /** The destination as the client requested it: a name or an address, and the port. */
  readonly target: SocksTarget;
  /** The RFC 1929 user, or `null` without authentication. */
  readonly user: string | null;
}

/** A line as received: text without its terminator, and the exact bytes including it. */
export interface Line {
  /**
   * The line without CRLF (or LF), decoded as Latin-1 so that every byte round-trips:
   * `io.sendToServer(line.text)` sends the same bytes back.
   */
  readonly text: string;
  /**
   * The bytes as received, terminator included (none for a last line that the end of the
   * stream cut short). Do not keep: the buffer is reused.
   */
  readonly raw: Uint8Array;
}

/** What a line hook did with a line. */
export type LineVerdict =
  /** Pass the line's raw bytes on to the other side, untouched. */
  | "forward"
  /** The hook handled it (rewrote, answered locally, swallowed): send nothing more. */
  | "consumed"
  /**
   * Pass the line on, then hand the rest of the session back to the gateway's core relay:
   * `io.detach()` and `"forward"` in one (a protocol switching to opaque data after this line:
   * STARTTLS's `220`, a CONNECT-style upgrade's `101`/`200`).
   */
  | "passthrough";

/** What a line hook can do. Writes to one side are serialised; each is a whole line. */
export interface LineIo {
  /** Sends a line (CRLF appended; Latin-1 encoded) to the server. */
  sendToServer(text: string): Promise<void>;
  /** Sends a line (CRLF appended; Latin-1 encoded) to the client. */
  sendToClient(text: string): Promise<void>;
  /** Ends the session: both connections are closed and `close` hooks run. */
  close(): void;
  /**
   * Hands the rest of the session back to the gateway's core relay (its idle timeout, byte
   * counts and speed): no line of either side reaches a hook any more, from the one being
   * read now on. Bytes the framework already holds (after the current line, a partial line,
   * a read in flight) are relayed first, in order, none lost; writes already queued by `io`
   * go out before them. The hook that calls it finishes normally (its verdict applies); then
   * `signal` aborts and `close` runs, and the session costs nothing more. Call it last: a hook
   * that waits for a later line after detaching waits forever.
   */
  detach(): void;
  /** Aborted when the session ends, for the session's own timers and tasks. */
  readonly signal: AbortSignal;
}

/**
 * Per-session hooks. A missing line hook means that direction is relayed byte for byte.
 * Hooks of one direction run one at a time, in order: while `onClientLine` awaits (say, a
 * command it sent to the server and that command's reply), later client lines wait, so a
 * hook can hold a command back. Server lines keep flowing meanwhile. A hook that throws
 * ends the session (logged), never the gateway.
 */
export interface TranslatorSession {
  /** A complete line from the client. */
  onClientLine?(line: Line, io: LineIo): LineVerdict | Promise<LineVerdict>;
  /** A complete line from the server. */
  onServerLine?(line: Line, io: LineIo): LineVerdict | Promise<LineVerdict>;
  /** That side ended its stream (EOF); the other direction continues. */
  onEnd?(side: Side, io: LineIo): void | Promise<void>;
  /** That side sent a line longer than the cap; the session closes after this hook. */
  onLineTooLong?(side: Side, io: LineIo): void | Promise<void>;
  /** Called exactly once when the session ends; must release every resource it holds. */
  close?(): void | Promise<void>;
}

/** How a translator answers {@linkcode Translator.match}. */
export type MatchResult =
  /** Run this translator. */
  | "claim"
  /** Not for this translator. */
  | "decline"
  /** Decide from the server's first bytes (server-speaks-first protocols): see `sniff`. */
  | "sniff";

/** A configured translator: created once at config load, shared by all sessions. */
export interface Translator {
  /** The factory type (`"ftp"`). */
  readonly type: string;
  /**
   * Cheap decision from the session facts alone (families, the destination's name). Called
   * only for sessions to one of the translator's configured `ports`: the framework applies
   * them (see {@linkcode ConfiguredTranslator}), so a plugin need not check the port.
   */
  match(ctx: TranslatorContext): MatchResult;
  /**
   * For `"sniff"`: decides from the server's first bytes (up to `sniffBytes`, within
   * `sniffTimeoutMs`); `true` claims the session.
   */
  sniff?(greeting: Uint8Array): boolean;
  /** Starts one session's hooks. Must not do I/O before returning. */
  startSession(ctx: TranslatorContext, broker: DataChannelBroker): TranslatorSession;
}

/** A byte stream as the gateway's core relay drives it (a `Deno.Conn` is one). */
export type RelayStream = DuplexStream;

/** What the gateway's core relay reports (its `RelayResult`). */
export interface RelayCounts {
  /** Bytes copied from the client to the server. */
  readonly clientToServer: number;
  /** Bytes copied from the server to the client. */
  readonly serverToClient: number;
  /** How it ended (`"closed"`, `"idle"`, `"aborted"`, `"error"`). */
  readonly end: string;
  /** The first error, when `end` is `"error"`. */
  readonly error?: unknown;
}

/**
 * The gateway's core relay for a whole session (not a data channel): relays `client` and
 * `server` with the relay idle timeout until both ended or `signal` aborts, closes both.
 */
export type SessionRelay = (
  client: RelayStream,
  server: RelayStream,
  options: { readonly signal: AbortSignal },
) => Promise<RelayCounts>;

/**
 * A translator with the common options of its `translators:` entry, which the framework
 * applies (`createTranslators` in `registry.ts` builds these; `runTranslation` runs them):
 * `match` is asked only for sessions to one of `ports`, and the line loop caps lines at
 * `maxLineBytes`.
 */
export interface ConfiguredTranslator {
  /** The plugin's translator. */
  readonly translator: Translator;
  /** Destination ports it applies to. */
  readonly ports: ReadonlySet<number>;
  /** Longest line accepted by the line loop, terminator included. */
  readonly maxLineBytes: number;
}

/** Options common to every `translators:` entry (besides the plugin's own). */
export interface TranslatorCommonOptions {
  /** Destination ports this translator applies to (applied by the framework, not the plugin). */
  readonly ports: readonly number[];
  /**
   * Longest control line accepted, in bytes (terminator included). @default the factory's
   * `defaultMaxLineBytes`, else 4096
   */
  readonly maxLineBytes: number;
}

/** A plugin: a type name, its options schema, and a constructor for configured translators. */
export interface TranslatorFactory<Options = Record<string, unknown>> {
  /** The `type:` value in config (`"ftp"`). Lower case, unique in the registry. */
  readonly type: string;
  /** One line for `check` output and docs. */
  readonly description: string;
  /** Ports used when the entry has no `ports:`. */
  readonly defaultPorts: readonly number[];
  /**
   * `max_line_bytes` when the entry has none: the protocol's own longest line (terminator
   * included), if the framework's default (4096) is too short for it. @default 4096
   */
  readonly defaultMaxLineBytes?: number;
  /**
   * The plugin's own options (without `type`, `ports` and `max_line_bytes`) in their YAML
   * form: snake_case keys, durations in seconds, unknown keys rejected (`z.strictObject`),
   * defaults filled in here. Its output is the typed `Options` (camelCase, milliseconds),
   * usually through a `.transform()`; issue paths name the YAML keys.
   */
  readonly optionsSchema: z.ZodType<Options>;
  /**
   * The YAML form of validated options, for `main.ts check`; it must parse back to the same
   * options. @default the options as they are (when the YAML keys are the typed keys)
   */
  formatOptions?(options: Options): Record<string, unknown>;
  /** Builds a translator from validated options; called once at config load. */
  create(options: Options & TranslatorCommonOptions): Translator;
}

/** A validated `translators:` entry: the type, the common options and the plugin's options. */
export type TranslatorConfig = TranslatorCommonOptions & {
  /** The factory type. */
  readonly type: string;
  /** Any plugin options, already validated by the factory's schema. */
  readonly [option: string]: unknown;
};

/** Options for {@linkcode DataChannelBroker.listen}. */
export interface DataListenOptions {
  /** Listen on the gateway's address facing the client or facing the server. */
  readonly side: Side;
  /**
   * Accept only a connection from this address (any port), or, for a peer not known in
   * advance (an IRC DCC offer's taker), from an endpoint this function accepts; others are
   * closed at once and the listener keeps waiting.
   */
  readonly peer: IpAddress | ((peer: IpEndpoint) => boolean);
  /** Ports to choose from at random, inclusive; `{from: 0, to: 0}` for the kernel's choice. */
  readonly ports: { readonly from: number; readonly to: number };
  /** How long to wait for the peer; after that, `accept` rejects and the listener closes. */
  readonly timeoutMs: number;
  /** Aborting closes the listener. */
  readonly signal: AbortSignal;
}

/** A listener lent by the gateway for exactly one expected connection. */
export interface DataListener extends Disposable {
  /** The address and port to advertise (the gateway's address on that side). */
  readonly endpoint: IpEndpoint;
  /**
   * Resolves with the first connection from the expected peer; the listener is then closed.
   * Rejects on timeout, abort, or close. Call at most once.
   */
  accept(): Promise<Deno.Conn>;
}

/** Options for {@linkcode DataChannelBroker.connect}. */
export interface DataConnectOptions {
  /** Which side the endpoint is on (the gateway's rules may differ per side). */
  readonly side: Side;
  /** Connect timeout. @default 30000 */
  readonly timeoutMs?: number;
  /** Aborts the attempt. */
  readonly signal: AbortSignal;
}

/** Options for {@linkcode DataChannelBroker.permits}. */
export interface DataPermitOptions {
  /** Which side the endpoint is on, as for {@linkcode DataChannelBroker.connect}. */
  readonly side: Side;
  /** A label for the record of a refusal (`"ftp-data"`). */
  readonly label: string;
}

/** Options for {@linkcode DataChannelBroker.refuse}. */
export interface DataRefuseOptions {
  /** Which side the endpoint is on. */
  readonly side: Side;
  /** Why the translator refused it, for the log and the connection record. */
  readonly reason: string;
  /** A label for the record (`"ftp-data"`). */
  readonly label: string;
}

/** Options for {@linkcode DataChannelBroker.relay}. */
export interface DataRelayOptions {
  /** A label for logs and metrics (`"ftp-data"`). */
  readonly label: string;
  /** Aborting tears the relay down (both connections closed). */
  readonly signal: AbortSignal;
}

/** Registers a redirect for a later SOCKS CONNECT from this session's client. */
export interface ExpectOptions {
  /** The destinations (name or address, and port) the client may CONNECT to. */
  readonly targets: readonly SocksTarget[];
  /** How long the expectation lives. */
  readonly ttlMs: number;
  /**
   * Opens the connection the gateway relays the CONNECT to, instead of dialing the requested
   * destination. Called at most once, when the expected CONNECT arrives.
   */
  open(signal: AbortSignal): Promise<Deno.Conn>;
  /** Aborting removes the expectation (a new data setup, the session's end). */
  readonly signal: AbortSignal;
  /** Aborting tears down the relay started for the expected CONNECT (ABOR, session end). */
  readonly relaySignal: AbortSignal;
  /** Called once when the relay of the expected CONNECT has ended (or `open` failed). */
  ended?(): void;
}

/** A CONNECT that a translator expected: what the gateway does instead of dialing. */
export interface ExpectedConnection {
  /**
   * Opens the connection to relay to. Errors carry their meaning as for a dial
   * (`SocksReplyError` and friends), so the gateway answers with the right REP code.
   */
  open(signal: AbortSignal): Promise<Deno.Conn>;
  /** Aborted when the translator wants the relay torn down (ABOR, session end). */
  readonly signal: AbortSignal;
  /** The gateway calls it once its relay of this connection ended (or `open` failed). */
  ended(): void;
}

/**
 * Who an expectation belongs to: the SOCKS client's address and its RFC 1929 user. Only a
 * CONNECT from the same address *and* the same user (or, without authentication, the same
 * address with no user) takes it. Without authentication, every client sharing one source
 * address (NAT, a multi-user host) is one principal.
 */
export interface ExpectationPrincipal {
  /** The client's address (unmapped). */
  readonly address: IpAddress;
  /** The RFC 1929 user, or `null` without authentication. */
  readonly user: string | null;
}

/** The gateway-wide table of expected CONNECTs (one instance, shared by all sessions). */
export interface ExpectationTable {
  /**
   * Removes and returns the expectation for a CONNECT by `principal` to `target`, if any
   * (names compare case-insensitively; expired entries never match; another user of the same
   * address never matches).
   */
  take(principal: ExpectationPrincipal, target: SocksTarget): ExpectedConnection | undefined;
}

/**
 * Data connections lent by the gateway to one session. Everything goes through the gateway's
 * rules, relay, limits, logs and metrics, so a translator cannot bypass policy.
 */
export interface DataChannelBroker {
  /** Listens on the gateway's address of one side for exactly one expected peer. */
  listen(options: DataListenOptions): Promise<DataListener>;
  /** Connects from the gateway to an endpoint on one side, under the gateway's rules. */
  connect(endpoint: IpEndpoint, options: DataConnectOptions): Promise<Deno.Conn>;
  /**
   * Whether {@linkcode connect} would be allowed to dial `endpoint` (its own address and port)
   * by the gateway's rules, asked before a translator announces a data channel. A refusal is
   * logged and recorded.
   */
  permits(endpoint: IpEndpoint, options: DataPermitOptions): boolean;
  /** Logs and records a data channel the translator refused by a rule of its own protocol. */
  refuse(endpoint: IpEndpoint, options: DataRefuseOptions): void;
  /** Relays two connections with the gateway's relay; closes both when done. */
  relay(a: Deno.Conn, b: Deno.Conn, options: DataRelayOptions): Promise<void>;
  /**
   * Routes a later SOCKS CONNECT from this client (same address and same user) to `targets` to
   * `open` instead.
   */
  expect(options: ExpectOptions): Disposable;
}

/** What the gateway injects into `createDataChannelBroker` (its own dial, relay, listen). */
export interface BrokerDeps {
  /** Dials under the gateway's rules; errors carry REP meaning (`SocksReplyError`). */
  dial(
    endpoint: IpEndpoint,
    options: { readonly side: Side; readonly signal: AbortSignal },
  ): Promise<
    Deno.Conn
  >;
  /**
   * The gateway's rules for a data connection to `endpoint` (its own address and port) on
   * `side`: `null` when allowed, else why not. `dial` applies the same check.
   */
  check(endpoint: IpEndpoint, options: { readonly side: Side }): string | null;
  /** Logs and records a data connection refused before any dial (`reason`: why). */
  refused(
    endpoint: IpEndpoint,
    options: { readonly side: Side; readonly reason: string; readonly label: string },
  ): void;
  /** The gateway's core relay; must close both connections when done or aborted. */
  relay(a: Deno.Conn, b: Deno.Conn, options: DataRelayOptions): Promise<unknown>;
  /** Opens a TCP listener. @default Deno.listen */
  listen?(options: { readonly hostname: string; readonly port: number }): Deno.TcpListener;
  /** The gateway-wide expectation table (an `ExpectationRegistry` from `expectations.ts`). */
  readonly expectations: ExpectationRegistrar;
}

/** The registering half of the expectation table, used by brokers. */
export interface ExpectationRegistrar {
  /** Adds an expectation for CONNECTs by `principal`; disposing removes it. */
  register(principal: ExpectationPrincipal, options: ExpectOptions): Disposable;
}
