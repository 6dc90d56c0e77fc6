/**
 * Service wiring: what one config becomes for the sessions that start under it (rules, users
 * and password checks, resolver, dialer, routes, translators, stand-ins). A
 * {@linkcode Generation} is built whole from a config and never changed afterwards, so that a
 * session reads one consistent set at accept; a reload builds the next one.
 *
 * What outlives a generation (metrics, the shutdown signal, the descriptor budget, the record
 * sink) comes in as {@linkcode GatewayCore}. A reload keeps the previous generation's resolver
 * (and its cache), password checks, failed-login limiter and stand-in table when the sections
 * they come from are unchanged, and each user's limiter state when its limits are.
 *
 * @module
 */

import type { IpEndpoint } from "../net/address.ts";
import { isLoopback } from "../net/cidr.ts";
import { Resolver } from "../resolver/mod.ts";
import { clientKey } from "./access/client_key.ts";
import { GatewayHost } from "./access/host_local.ts";
import { checkLogin, type LoginGate } from "./access/login_gate.ts";
import { PasswordVerifier } from "./access/password_verifier.ts";
import { AccessRules } from "./access/rules.ts";
import { StandIns } from "./commands/stand_ins.ts";
import { createTranslationService } from "./commands/translate.ts";
import { declaredAddresses } from "./config/own_addresses.ts";
import type { Config, UserConfig } from "./config/types.ts";
import { AuthFailureLimiter } from "./limits/auth_limiter.ts";
import { UserLimiter } from "./limits/user_limits.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import type { GatewayMetrics } from "./observe/metrics.ts";
import type { LiveSessionInfo, SessionServices } from "./session_types.ts";
import { DirectDialer } from "./upstream/direct.ts";
import { NoLoopDialer } from "./upstream/no_loop.ts";
import { createRouter } from "./upstream/router.ts";
import { userEgressPools } from "./upstream/egress.ts";

/** What lives as long as the gateway, whatever config it runs. */
export interface GatewayCore {
  /** The gateway's metrics. */
  readonly metrics: GatewayMetrics;
  /** Aborted when the gateway stops draining. */
  readonly shutdown: AbortSignal;
  /** Receives one record per finished connection (log line, metrics, the caller's hook). */
  readonly record: (record: ConnectionRecord) => void;
  /** Takes descriptors beyond a connection's two; see {@linkcode SessionServices}. */
  readonly reserveDescriptors: (count: number) => (() => void) | null;
  /** Tells the gateway what a live session is (see {@linkcode SessionServices.noteSession}). */
  readonly noteSession?: (conn: Deno.TcpConn, info: LiveSessionInfo) => void;
}

/** One config wired into the services its sessions use. Never changed once built. */
export interface Generation {
  /** 1 for the config the gateway started with, one more at each accepted reload. */
  readonly number: number;
  /** The config. */
  readonly config: Config;
  /** What sessions accepted under this generation use. */
  readonly services: SessionServices;
  /** The gateway host as the rules see it (its bound listeners are set by the gateway). */
  readonly host: GatewayHost;
  /** The resolver. */
  readonly resolver: Resolver;
  /** RFC 1929 password checks. */
  readonly passwords: PasswordVerifier;
  /** The failed-login limiter. */
  readonly authFailures: AuthFailureLimiter;
  /** Whose rules the translation service's data channels use (the newest generation's). */
  readonly translationUses: { services: SessionServices | undefined };
  /** The per-client key of a client: an IPv4 address, or the configured IPv6 prefix. */
  readonly clientKeyOf: (client: IpEndpoint) => string;
  /** The per-user limits (connections, buckets, quotas) of this config's users. */
  readonly userLimiter: UserLimiter;
}

/** Options of {@linkcode wireServices}. */
export interface WireServicesOptions {
  /** The generation number. @default 1 */
  number?: number;
  /** Replaces the resolver (tests): used whatever `resolver:` says. */
  resolver?: Resolver;
  /**
   * The generation before: its resolver, password verifier and stand-in table are kept when
   * the sections they come from are unchanged (their caches and queues survive a reload).
   * @default none
   */
  previous?: Generation;
}

/** True when two config sections are the same values (plain data, byte arrays included). */
export function sameSection(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, bytesAsText) === JSON.stringify(b, bytesAsText);
}

function bytesAsText(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? `bytes:${value.join(".")}` : value;
}

/** Builds the services of `config` on `core`. */
export function wireServices(
  config: Config,
  core: GatewayCore,
  options: WireServicesOptions = {},
): Generation {
  const previous = options.previous;
  const resolver = options.resolver ??
    (previous && sameSection(previous.config.resolver, config.resolver)
      ? previous.resolver
      : new Resolver(config.resolver));
  const passwords = previous && sameSection(previous.config.auth, config.auth)
    ? previous.passwords
    : new PasswordVerifier(config.auth.users);
  const standInMode = config.resolver.standIns ?? "cross-family";
  const standIns = previous && previous.services.standIns !== null &&
      (previous.config.resolver.standIns ?? "cross-family") === standInMode &&
      previous.config.limits.ipv6ClientPrefix === config.limits.ipv6ClientPrefix
    ? previous.services.standIns
    : standInMode === "cross-family"
    ? new StandIns({ ipv6ClientPrefix: config.limits.ipv6ClientPrefix })
    : null;
  const dialer = new DirectDialer(resolver, config.resolver.prefer);
  const users = new Map<string, UserConfig>(config.auth.users.map((u) => [u.name, u]));
  const host = new GatewayHost({ declared: declaredAddresses(config) });
  // Kept across a reload that leaves its limit: a reload must not forgive failed logins.
  const authFailures = previous &&
      previous.config.limits.authFailuresPerMinute === config.limits.authFailuresPerMinute
    ? previous.authFailures
    : new AuthFailureLimiter(config.limits.authFailuresPerMinute);
  // A user whose limits a reload leaves as they were keeps its state (open connections,
  // buckets, quota spent); a user with new limits starts afresh under them.
  const userLimiter = new UserLimiter(config.auth.users, config.limits.perUser, {
    ...(previous && { previous: previous.userLimiter }),
  });
  const { metrics } = core;
  // One client for the per-client limits: an IPv4 address, or an IPv6 /64 (configurable).
  const clientKeyOf = (client: IpEndpoint) =>
    clientKey(client.address, config.limits.ipv6ClientPrefix);
  const loginGate: LoginGate = {
    limiter: authFailures,
    check: (username, password, key) => passwords.check(username, password, key),
    countRejection: (limit) => metrics.limitRejections.inc([limit]),
    countFailure: () => metrics.authFailures.inc(),
  };

  // Kept across a reload that leaves `translators`: a live FTP session's data connection, opened
  // after the reload, must find what the session announced. Its data channels follow the rules
  // of the newest generation (`translationUses` moves on).
  const translationUses = previous && sameSection(previous.config.translators, config.translators)
    ? previous.translationUses
    : { services: undefined as SessionServices | undefined };
  const translation = translationUses === previous?.translationUses
    ? previous.services.translation
    : createTranslationService(config, {
      shutdown: core.shutdown,
      // Lazy: the translators' data channels use the gateway's own rules, route and records.
      get rules() {
        return translationUses.services!.rules;
      },
      record: (record) => translationUses.services!.record(record),
    });
  const services: SessionServices = {
    config,
    reserveDescriptors: core.reserveDescriptors,
    rules: new AccessRules(config.rules, host),
    dialer,
    route: createRouter(config.routes, dialer, {
      hopBase: new NoLoopDialer(dialer, (address, port) => host.isOwnListener(address, port)),
      sameHost: {
        isHostLocal: (address) => host.isHostLocal(address),
        resolve: async (name, signal) => {
          const { v4, v6 } = await resolver.resolve(name, { signal });
          return [...v4, ...v6];
        },
      },
    }),
    translation,
    resolver,
    standIns,
    users,
    userEgress: userEgressPools(config.auth.users),
    shutdown: core.shutdown,
    // Only loopback: a client from one of the host's other addresses may be this gateway itself.
    isLocalAddress: (endpoint) => isLoopback(endpoint.address),
    record: core.record,
    metrics,
    authenticate: (client, username, password, signal) =>
      checkLogin(loginGate, clientKeyOf(client), username, password, signal),
    admitUser: (user) => userLimiter.admit(user),
    refuseAuth: (client) => {
      const refused = authFailures.isBlocked(clientKeyOf(client));
      if (refused) metrics.limitRejections.inc(["auth_failures"]);
      return refused;
    },
    ...(core.noteSession && { noteSession: core.noteSession }),
  };
  translationUses.services = services;
  return {
    translationUses,
    number: options.number ?? 1,
    config,
    services,
    host,
    resolver,
    passwords,
    authFailures,
    clientKeyOf,
    userLimiter,
  };
}
