/**
 * The types a session and its command handlers share: the gateway's services, the session after
 * its handshake, and what sessions use of the translators. Types only, so that handlers,
 * translation and the session import them without importing one another.
 *
 * @module
 */

import type { IpEndpoint } from "../net/address.ts";
import type { Resolver } from "../resolver/mod.ts";
import type { ExactReader } from "../socks5/exact_reader.ts";
import type { SocksRequest, SocksTarget } from "../socks5/types.ts";
import type { TranslationResult } from "../translators/run.ts";
import type { ExpectationPrincipal, ExpectedConnection } from "../translators/types.ts";
import type { Config, UserConfig } from "./config/types.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import type { GatewayMetrics } from "./observe/metrics.ts";
import type { AccessRules, RuleSubject } from "./access/rules.ts";
import type { StandIns } from "./commands/stand_ins.ts";
import type { RouteChoice, Router } from "./upstream/router.ts";
import type { Dialed, Dialer } from "./upstream/types.ts";
import type { UserAdmission, UserRefusal } from "./limits/user_limits.ts";
import type { EgressPool } from "./upstream/egress.ts";

/** What every session shares: configuration and the gateway's services. */
export interface SessionServices {
  /** The validated configuration. */
  readonly config: Config;
  /** Compiled access rules. */
  readonly rules: AccessRules;
  /** Direct outbound connections (BIND and UDP peers, unrouted CONNECTs). */
  readonly dialer: Dialer;
  /** Picks the dialer for a CONNECT: direct, or a chain of upstream gateways. */
  readonly route: Router;
  /** Protocol translators (FTP, ...). */
  readonly translation: TranslationService;
  /** The gateway's resolver (BIND peers and UDP destinations given by name). */
  readonly resolver: Resolver;
  /** RESOLVE's stand-in addresses, or `null` when `resolver.stand_ins` is `never`. */
  readonly standIns: StandIns | null;
  /** Users by name. */
  readonly users: ReadonlyMap<string, UserConfig>;
  /** Egress pools of the users that have one (over the route's), by user name. */
  readonly userEgress?: ReadonlyMap<string, EgressPool>;
  /** True when a client at this address is on the gateway host (loopback only). */
  readonly isLocalAddress: (endpoint: IpEndpoint) => boolean;
  /** Aborted when the gateway stops draining: relays close at once. */
  readonly shutdown: AbortSignal;
  /** Receives one record per finished connection. */
  readonly record: (record: ConnectionRecord) => void;
  /**
   * Takes descriptors beyond a connection's two (UDP relay sockets) from the budget the open
   * files limit leaves; returns their release, or `null` when they do not fit.
   */
  readonly reserveDescriptors: (count: number) => (() => void) | null;
  /** Metrics that are not in the record (active relays). */
  readonly metrics?: GatewayMetrics;
  /**
   * Checks RFC 1929 credentials of `client` under the failed-login limit (counting the attempt
   * in flight, the failure afterwards). Resolves `"blocked"` without checking the password when
   * the client is over the limit, `"busy"` when password checks are saturated.
   */
  readonly authenticate: (
    client: IpEndpoint,
    username: string,
    password: string,
    signal: AbortSignal,
  ) => Promise<LoginVerdict>;
  /**
   * True (and counted) when the client is over the auth failure limit: it gets `05 FF`. The
   * gateway checks at accept too; this covers clients known from a PROXY protocol header.
   */
  readonly refuseAuth?: (client: IpEndpoint) => boolean;
  /**
   * Admits a session of `user` (`undefined`: anonymous) under its per-user limits, or says why
   * not (REP 2). @default every session admitted, unthrottled
   */
  readonly admitUser?: (user: string | undefined) => UserAdmission | UserRefusal;
  /**
   * Tells the gateway what a live session is (its user once authenticated, the rule subject
   * its relay was allowed under), so that a config reload can close it when its user goes or
   * the new rules refuse it. @default not tracked
   */
  readonly noteSession?: (conn: Deno.TcpConn, info: LiveSessionInfo) => void;
}

/** What {@linkcode SessionServices.noteSession} tells the gateway; each call adds to it. */
export interface LiveSessionInfo {
  /** The RFC 1929 user the session logged in as. */
  readonly user?: string;
  /** The rule subject its relay was allowed under (destination address and name). */
  readonly subject?: RuleSubject;
}

/** What {@linkcode SessionServices.authenticate} says of a login. */
export type LoginVerdict = "accepted" | "rejected" | "blocked" | "busy";

/** A session after the handshake: what command handlers get. */
export interface Handshaken {
  /** The client connection. */
  readonly conn: Deno.TcpConn;
  /** Buffered reader over `conn` (holds bytes pipelined after the request). */
  readonly reader: ExactReader;
  /** The client's address and port. */
  readonly client: IpEndpoint;
  /** The gateway address the client reached. */
  readonly local: IpEndpoint;
  /**
   * True when the client is on the gateway host: it connected over loopback (and, behind a
   * PROXY protocol header, the header's source is loopback too).
   */
  readonly clientIsLocal: boolean;
  /**
   * True when a PROXY header named no client (v1 `UNKNOWN`, v2 `LOCAL`, UDP/UNIX): `client` is
   * then the balancer, not the client, and is not passed on as the client (hops get `LOCAL`).
   */
  readonly clientUnknown?: true;
  /** RFC 1929 user, if authenticated. */
  readonly user?: string;
  /** The request. */
  readonly request: SocksRequest;
  /** When the client was accepted (ms, performance clock). */
  readonly startedAt: number;
  /** Accept to complete request, in ms. */
  readonly handshakeMs?: number;
  /** The user's rate caps and quota, for the session's relay. */
  readonly throttle?: UserAdmission["throttle"];
}

/** What sessions use of the translators. */
export interface TranslationService {
  /**
   * A CONNECT a translator announced (a data connection) to the same principal (client address
   * and user, `null` without authentication), or `undefined`.
   */
  takeExpected(
    principal: ExpectationPrincipal,
    target: SocksTarget,
  ): ExpectedConnection | undefined;
  /**
   * Runs a translator on a CONNECT that succeeded and was answered: how the session ended
   * when one took it (both connections are closed then, bytes counted, the relay idle timeout
   * applied), `null` to relay as usual. `route` is the route the CONNECT was dialed on (looked
   * up once, by the CONNECT): translation runs on direct routes only. Never rejects.
   */
  translate(
    session: Handshaken,
    dialed: Dialed,
    route: Pick<RouteChoice, "chained">,
  ): Promise<TranslationResult | null>;
}
