/**
 * The gateway: listeners, per-client sessions under one core relay, limits, graceful stop.
 *
 * @module
 */

import { endpointFromNetAddr, formatEndpoint, type IpEndpoint } from "../net/address.ts";
import { isLoopback } from "../net/cidr.ts";
import { Resolver } from "../resolver/mod.ts";
import {
  capConnections,
  DescriptorBudget,
  descriptorLimit,
  warmUpErrorStacks,
} from "./limits/fd_limit.ts";
import { type AdminServer, startAdminServer } from "./observe/admin.ts";
import { AuthFailureLimiter } from "./limits/auth_limiter.ts";
import { clientKey } from "./access/client_key.ts";
import type { Config, ListenConfig, UserConfig } from "./config/types.ts";
import { declaredAddresses } from "./config/own_addresses.ts";
import { configWarnings } from "./config/warnings.ts";
import { GatewayHost } from "./access/host_local.ts";
import { acceptLoop, listenOn } from "./listen/listener.ts";
import { checkLogin, type LoginGate } from "./access/login_gate.ts";
import { type ConnectionRecord, logConnection } from "./observe/connection_log.ts";
import { logger } from "./observe/log.ts";
import { GatewayMetrics, type LimitName } from "./observe/metrics.ts";
import { PasswordVerifier } from "./access/password_verifier.ts";
import { isTrustedProxy } from "./listen/proxy_trust.ts";
import { AccessRules } from "./access/rules.ts";
import { runSession } from "./session.ts";
import type { SessionServices } from "./session_types.ts";
import { StandIns } from "./commands/stand_ins.ts";
import { DirectDialer } from "./upstream/direct.ts";
import { NoLoopDialer } from "./upstream/no_loop.ts";
import { createRouter } from "./upstream/router.ts";
import { createTranslationService } from "./commands/translate.ts";
import { UserLimiter } from "./limits/user_limits.ts";
import { AuditLog } from "./observe/audit_log.ts";

/** Options of {@linkcode startGateway}. */
export interface StartGatewayOptions {
  /** Receives every connection record (tests, metrics); the log line is written regardless. */
  onRecord?: (record: ConnectionRecord) => void;
  /** Replaces the resolver (tests). */
  resolver?: Resolver;
  /**
   * Listens with SO_REUSEPORT, beside other gateways of the same process (workers).
   * @default false
   */
  reusePort?: boolean;
  /**
   * How many gateways share the process's open-files limit (workers are threads of one
   * process): each sizes its connection cap by its share. @default 1
   */
  descriptorShares?: number;
  /**
   * Logs the {@linkcode configWarnings} (open proxy, plain-text passwords, exposed admin).
   * Workers leave it to the pool, which logs them once. @default true
   */
  warnings?: boolean;
}

/** A running gateway. Disposing it stops it (with drain). */
export interface Gateway extends AsyncDisposable {
  /** The bound endpoints, in `listen` order (port 0 replaced by the real port). */
  readonly endpoints: readonly IpEndpoint[];
  /** Number of client connections being served. */
  readonly activeConnections: number;
  /** The admin listener's endpoint (metrics, health), or `null` when `admin` is not set. */
  readonly adminEndpoint: IpEndpoint | null;
  /** The gateway's metrics, as `/metrics` serves them. */
  readonly metrics: GatewayMetrics;
  /**
   * Stops accepting, lets live connections finish for up to `drainMs` (default: the
   * configured drain timeout), then closes whatever is left.
   */
  stop(drainMs?: number): Promise<void>;
}

const log = logger("gateway");

/** Logs each of the {@linkcode configWarnings} of `config` as a warning. */
export function logConfigWarnings(config: Config): void {
  for (const warning of configWarnings(config)) {
    log.warn("config {path}: {message}", { path: warning.path, message: warning.message });
  }
}

/** Starts listening on every configured address and serves clients until stopped. */
export function startGateway(config: Config, options: StartGatewayOptions = {}): Gateway {
  const resolver = options.resolver ?? new Resolver(config.resolver);
  const dialer = new DirectDialer(resolver, config.resolver.prefer);
  const users = new Map<string, UserConfig>(config.auth.users.map((u) => [u.name, u]));
  const host = new GatewayHost({ declared: declaredAddresses(config) });
  const shutdownController = new AbortController();
  const active = new Set<Deno.TcpConn>();
  const perClient = new Map<string, number>();
  const sessions = new Set<Promise<void>>();
  warmUpErrorStacks();
  const shares = Math.max(1, options.descriptorShares ?? 1);
  const processLimit = descriptorLimit();
  const descriptors = processLimit === null ? null : Math.floor(processLimit / shares);
  const maxConnections = capConnections(config.limits.maxConnections, descriptors);
  const budget = DescriptorBudget.forLimit(descriptors);
  if (maxConnections < config.limits.maxConnections) {
    log.warn(
      "max_connections lowered from {configured} to {effective}: the open files limit is " +
        "{descriptors} and a relayed connection holds two",
      { configured: config.limits.maxConnections, effective: maxConnections, descriptors },
    );
  }
  const passwords = new PasswordVerifier(config.auth.users);
  const metrics = new GatewayMetrics({
    resolverStats: resolver.stats,
    activeConnections: () => active.size,
    maxConnections,
    passwordStats: passwords,
    users: config.auth.users.map((user) => user.name),
  });
  const userLimiter = new UserLimiter(config.auth.users, config.limits.perUser);
  // Opened before the listeners: a gateway that cannot write its audit log does not start.
  const audit = config.log.auditFile === undefined ? null : new AuditLog(config.log.auditFile);
  const reopenAudit = () => {
    void audit?.reopen().then(() => log.info("audit log {path} reopened", { path: audit.path }));
  };
  if (audit) Deno.addSignalListener("SIGUSR1", reopenAudit);
  const authFailures = new AuthFailureLimiter(config.limits.authFailuresPerMinute);
  // One client for the per-client limits: an IPv4 address, or an IPv6 /64 (configurable).
  const clientKeyOf = (client: IpEndpoint) =>
    clientKey(client.address, config.limits.ipv6ClientPrefix);
  const loginGate: LoginGate = {
    limiter: authFailures,
    check: (username, password, key) => passwords.check(username, password, key),
    countRejection: (limit) => metrics.limitRejections.inc([limit]),
    countFailure: () => metrics.authFailures.inc(),
  };
  let draining = false;

  const services: SessionServices = {
    config,
    reserveDescriptors: (count) => budget.take(count, active.size),
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
    // Lazy: the translators' data channels use the gateway's own rules, route and records.
    translation: createTranslationService(config, {
      shutdown: shutdownController.signal,
      get rules() {
        return services.rules;
      },
      get route() {
        return services.route;
      },
      record: (record) => services.record(record),
    }),
    resolver,
    standIns: (config.resolver.standIns ?? "cross-family") === "cross-family"
      ? new StandIns({ ipv6ClientPrefix: config.limits.ipv6ClientPrefix })
      : null,
    users,
    shutdown: shutdownController.signal,
    // Only loopback: a client from one of the host's other addresses may be this gateway itself.
    isLocalAddress: (endpoint) => isLoopback(endpoint.address),
    record: (record) => {
      logConnection(record);
      metrics.recordConnection(record);
      audit?.write(record);
      options.onRecord?.(record);
    },
    metrics,
    authenticate: (client, username, password, signal) =>
      checkLogin(loginGate, clientKeyOf(client), username, password, signal),
    admitUser: (user) => userLimiter.admit(user),
    refuseAuth: (client) => {
      const refused = authFailures.isBlocked(clientKeyOf(client));
      if (refused) metrics.limitRejections.inc(["auth_failures"]);
      return refused;
    },
  };

  const listeners: Deno.TcpListener[] = [];
  let admin: AdminServer | null = null;
  try {
    const reusePort = options.reusePort ?? false;
    for (const { endpoint } of config.listen) listeners.push(listenOn(endpoint, { reusePort }));
    if (config.admin) {
      admin = startAdminServer(config.admin.endpoint, {
        metrics: () => metrics.render(),
        healthy: () => !draining,
      });
    }
  } catch (error) {
    for (const listener of listeners) listener.close();
    if (audit) {
      Deno.removeSignalListener("SIGUSR1", reopenAudit);
      void audit.close();
    }
    throw error;
  }
  const endpoints = listeners.map((l) => endpointFromNetAddr(l.addr));
  host.listeners = endpoints;
  for (const endpoint of endpoints) {
    log.info("listening on {endpoint}", { endpoint: formatEndpoint(endpoint) });
  }
  if (options.warnings ?? true) logConfigWarnings(config);
  if (admin) {
    log.info("admin endpoint on {endpoint} serves /metrics and /healthz", {
      endpoint: formatEndpoint(admin.endpoint),
    });
  }

  let lastRefusalLog = -Infinity;
  let refusalsUnlogged = 0;
  const onConnection = (conn: Deno.TcpConn, listen: ListenConfig | undefined) => {
    const proxyProtocol = listen?.proxyProtocol;
    let peer: IpEndpoint;
    try {
      peer = endpointFromNetAddr(conn.remoteAddr);
    } catch {
      conn.close();
      return;
    }
    const clientKey = clientKeyOf(peer);
    // Behind a PROXY-protocol balancer the peer is the balancer, shared by every client: the
    // per-client limit would cap them all together, so it is left to the balancer there, and
    // the failed-login limit is applied in the session to the client the header names.
    const clientCount = proxyProtocol ? 0 : perClient.get(clientKey) ?? 0;
    const refused: LimitName | null =
      proxyProtocol && !isTrustedProxy(peer.address, listen?.trustedProxies)
        ? "untrusted_proxy"
        : !proxyProtocol && authFailures.isBlocked(clientKey)
        ? "auth_failures"
        : active.size >= maxConnections || !budget.admitsConnection(active.size)
        ? "global"
        : clientCount >= config.limits.maxConnectionsPerClient
        ? "per_client"
        : null;
    if (refused !== null) {
      conn.close();
      metrics.limitRejections.inc([refused]);
      // At most one line a second: a flood must not turn into a flood of log lines.
      const now = performance.now();
      if (now - lastRefusalLog >= 1000) {
        log.warn(
          refused === "untrusted_proxy"
            ? "refused {client}: not a trusted proxy of this PROXY protocol listener " +
              "(and {more} more refusals since the last line)"
            : "{limit} limit reached; refused {client} (and {more} more since the last line)",
          { limit: refused, client: clientKey, more: refusalsUnlogged },
        );
        lastRefusalLog = now;
        refusalsUnlogged = 0;
      } else {
        refusalsUnlogged++;
      }
      return;
    }
    active.add(conn);
    perClient.set(clientKey, clientCount + 1);
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const session = runSession(conn, services, proxyProtocol ? { proxyProtocol } : {})
      .catch((error) => log.error("session failed: {error}", { error }))
      .finally(() => {
        active.delete(conn);
        const left = (perClient.get(clientKey) ?? 1) - 1;
        if (left === 0) perClient.delete(clientKey);
        else perClient.set(clientKey, left);
        sessions.delete(session);
      });
    sessions.add(session);
  };

  const loops = listeners.map((listener, index) =>
    acceptLoop(listener, {
      onConnection: (conn) => onConnection(conn, config.listen[index]),
      onAcceptError: (error, backoffMs) => {
        metrics.acceptErrors.inc();
        log.error("accept failed, backing off {backoffMs} ms: {error}", { error, backoffMs });
      },
    })
  );

  let stopping: Promise<void> | undefined;
  const stop = (drainMs = config.timeouts.drainMs): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      for (const listener of listeners) {
        try {
          listener.close();
        } catch { /* closed */ }
      }
      await Promise.all(loops);
      if (sessions.size > 0) {
        log.info("draining {count} connections for up to {drainMs} ms", {
          count: sessions.size,
          drainMs,
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          Promise.all([...sessions]),
          new Promise((resolve) => timer = setTimeout(resolve, drainMs)),
        ]);
        clearTimeout(timer);
      }
      shutdownController.abort();
      for (const conn of active) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await Promise.all([...sessions]);
      await admin?.close();
      // Every session has written its record: the last lines reach the file before exit.
      if (audit) {
        Deno.removeSignalListener("SIGUSR1", reopenAudit);
        await audit.close();
      }
    })();
    return stopping;
  };

  return {
    endpoints,
    get activeConnections() {
      return active.size;
    },
    adminEndpoint: admin?.endpoint ?? null,
    metrics,
    stop,
    [Symbol.asyncDispose]: () => stop(0),
  };
}
