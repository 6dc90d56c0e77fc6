/**
 * The gateway: listeners, per-client sessions under one core relay, limits, graceful stop.
 *
 * @module
 */

import { endpointFromNetAddr, formatEndpoint, type IpEndpoint } from "../net/address.ts";
import type { Resolver } from "../resolver/mod.ts";
import {
  capConnections,
  DescriptorBudget,
  descriptorLimit,
  warmUpErrorStacks,
} from "./limits/fd_limit.ts";
import { type AdminServer, startAdminServer } from "./observe/admin.ts";
import { AuthFailureLimiter } from "./limits/auth_limiter.ts";
import type { Config, ListenConfig } from "./config/types.ts";
import { configWarnings } from "./config/warnings.ts";
import { Admission } from "./listen/admission.ts";
import { acceptLoop, listenOn } from "./listen/listener.ts";
import { type ConnectionRecord, logConnection } from "./observe/connection_log.ts";
import { logger } from "./observe/log.ts";
import { GatewayMetrics } from "./observe/metrics.ts";
import { runSession } from "./session.ts";
import { drain } from "./drain.ts";
import { type GatewayCore, type Generation, wireServices } from "./wiring.ts";

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

/** The effective connection cap of `config` for a gateway holding `descriptors` open files. */
function effectiveMaxConnections(config: Config, descriptors: number | null): number {
  const maxConnections = capConnections(config.limits.maxConnections, descriptors);
  if (maxConnections < config.limits.maxConnections) {
    log.warn(
      "max_connections lowered from {configured} to {effective}: the open files limit is " +
        "{descriptors} and a relayed connection holds two",
      { configured: config.limits.maxConnections, effective: maxConnections, descriptors },
    );
  }
  return maxConnections;
}

/** Opens every `listen` address; on a failure closes those already open and throws. */
function openListeners(config: Config, reusePort: boolean): Deno.TcpListener[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (const { endpoint } of config.listen) listeners.push(listenOn(endpoint, { reusePort }));
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  return listeners;
}

/** Starts listening on every configured address and serves clients until stopped. */
export function startGateway(config: Config, options: StartGatewayOptions = {}): Gateway {
  const shutdownController = new AbortController();
  const sessions = new Set<Promise<void>>();
  warmUpErrorStacks();
  const shares = Math.max(1, options.descriptorShares ?? 1);
  const processLimit = descriptorLimit();
  const descriptors = processLimit === null ? null : Math.floor(processLimit / shares);
  const maxConnections = effectiveMaxConnections(config, descriptors);
  const budget = DescriptorBudget.forLimit(descriptors);
  const authFailures = new AuthFailureLimiter(config.limits.authFailuresPerMinute);
  // Read at scrape time: the generation's resolver and password checks.
  let generation: Generation | undefined;
  const metrics = new GatewayMetrics({
    resolverStats: {
      get hits() {
        return generation?.resolver.stats.hits ?? 0;
      },
      get misses() {
        return generation?.resolver.stats.misses ?? 0;
      },
      get queries() {
        return generation?.resolver.stats.queries ?? 0;
      },
    },
    activeConnections: () => admission.active.size,
    maxConnections,
    passwordStats: {
      get hashes() {
        return generation?.passwords.hashes ?? 0;
      },
      get peak() {
        return generation?.passwords.peak ?? 0;
      },
      get slots() {
        return generation?.passwords.slots ?? 0;
      },
    },
  });
  const admission: Admission = new Admission({
    metrics,
    budget,
    authFailures,
    limits: () => ({
      maxConnections,
      maxConnectionsPerClient: current.config.limits.maxConnectionsPerClient,
      clientKeyOf: current.clientKeyOf,
    }),
  });
  const core: GatewayCore = {
    metrics,
    shutdown: shutdownController.signal,
    authFailures,
    reserveDescriptors: (count) => budget.take(count, admission.active.size),
    record: (record) => {
      logConnection(record);
      metrics.recordConnection(record);
      options.onRecord?.(record);
    },
  };
  const current = generation = wireServices(config, core, {
    ...(options.resolver && { resolver: options.resolver }),
  });
  let draining = false;

  const listeners = openListeners(config, options.reusePort ?? false);
  let admin: AdminServer | null = null;
  try {
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
  current.host.listeners = endpoints;
  for (const endpoint of endpoints) {
    log.info("listening on {endpoint}", { endpoint: formatEndpoint(endpoint) });
  }
  if (options.warnings ?? true) logConfigWarnings(config);
  if (admin) {
    log.info("admin endpoint on {endpoint} serves /metrics and /healthz", {
      endpoint: formatEndpoint(admin.endpoint),
    });
  }

  const onConnection = (conn: Deno.TcpConn, listen: ListenConfig | undefined) => {
    const admitted = admission.admit(conn, listen);
    if (admitted === null) return;
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const proxyProtocol = listen?.proxyProtocol;
    const session = runSession(conn, current.services, proxyProtocol ? { proxyProtocol } : {})
      .catch((error) => log.error("session failed: {error}", { error }))
      .finally(() => {
        admitted.release();
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
      await drain({
        listeners,
        loops,
        sessions,
        connections: admission.active,
        abort: () => shutdownController.abort(),
      }, drainMs);
      await admin?.close();
    })();
    return stopping;
  };

  return {
    endpoints,
    get activeConnections() {
      return admission.active.size;
    },
    adminEndpoint: admin?.endpoint ?? null,
    metrics,
    stop,
    [Symbol.asyncDispose]: () => stop(0),
  };
}
