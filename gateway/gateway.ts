/**
 * The gateway: listeners, per-client sessions under one core relay, limits, graceful stop.
 *
 * @module
 */

import {
  endpointFromNetAddr,
  formatEndpoint,
  type IpAddress,
  type IpEndpoint,
  parseIp,
  sameIp,
  unmapIpv4,
} from "../net/address.ts";
import { cidrContains, HOST_LOCAL_CIDRS } from "../net/cidr.ts";
import { Resolver } from "../resolver/mod.ts";
import {
  capConnections,
  DescriptorBudget,
  descriptorLimit,
  warmUpErrorStacks,
} from "./_fd_limit.ts";
import { type AdminServer, startAdminServer } from "./admin.ts";
import { AuthFailureLimiter } from "./auth_limiter.ts";
import type { Config, ProxyProtocolMode, UserConfig } from "./config/types.ts";
import { configWarnings } from "./config/warnings.ts";
import { acceptLoop, listenOn } from "./listener.ts";
import { type ConnectionRecord, logConnection } from "./observe/connection_log.ts";
import { logger } from "./observe/log.ts";
import { GatewayMetrics, type LimitName } from "./observe/metrics.ts";
import { AccessRules } from "./rules.ts";
import { runSession, type SessionServices } from "./session.ts";
import { StandIns } from "./stand_ins.ts";
import { DirectDialer } from "./upstream/direct.ts";
import { createRouter } from "./upstream/router.ts";
import { createTranslationService } from "./translate.ts";

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

function hostAddresses(): IpAddress[] {
  const addresses: IpAddress[] = [];
  try {
    for (const nic of Deno.networkInterfaces()) {
      const parsed = parseIp(nic.address.split("%")[0]!);
      if (parsed) addresses.push(unmapIpv4(parsed));
    }
  } catch { /* no --allow-sys: loopback still counts as local */ }
  return addresses;
}

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
  const local = hostAddresses();
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
  const metrics = new GatewayMetrics({
    resolverStats: resolver.stats,
    activeConnections: () => active.size,
    maxConnections,
  });
  const authFailures = new AuthFailureLimiter(config.limits.authFailuresPerMinute);
  const clientKeyOf = (client: IpEndpoint) => formatEndpoint({ ...client, port: 0 });
  let draining = false;

  const services: SessionServices = {
    config,
    reserveDescriptors: (count) => budget.take(count, active.size),
    rules: new AccessRules(config.rules),
    dialer,
    route: createRouter(config.routes, dialer),
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
      ? new StandIns()
      : null,
    users,
    shutdown: shutdownController.signal,
    isLocalAddress: (endpoint) =>
      HOST_LOCAL_CIDRS.some((cidr) => cidrContains(cidr, endpoint.address)) ||
      local.some((address) => sameIp(address, endpoint.address)),
    record: (record) => {
      logConnection(record);
      metrics.recordConnection(record);
      options.onRecord?.(record);
    },
    metrics,
    onAuthFailure: (client) => {
      metrics.authFailures.inc();
      authFailures.recordFailure(clientKeyOf(client));
    },
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
    throw error;
  }
  const endpoints = listeners.map((l) => endpointFromNetAddr(l.addr));
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
  const onConnection = (conn: Deno.TcpConn, proxyProtocol?: ProxyProtocolMode) => {
    let clientKey: string;
    try {
      clientKey = clientKeyOf(endpointFromNetAddr(conn.remoteAddr));
    } catch {
      conn.close();
      return;
    }
    // Behind a PROXY-protocol balancer the peer is the balancer, shared by every client: the
    // per-client limit would cap them all together, so it is left to the balancer there.
    const clientCount = proxyProtocol ? 0 : perClient.get(clientKey) ?? 0;
    const refused: LimitName | null = authFailures.isBlocked(clientKey)
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
        log.warn("{limit} limit reached; refused {client} (and {more} more since the last line)", {
          limit: refused,
          client: clientKey,
          more: refusalsUnlogged,
        });
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
      onConnection: (conn) => onConnection(conn, config.listen[index]?.proxyProtocol),
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
