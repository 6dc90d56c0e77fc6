/**
 * The gateway: listeners, per-client sessions under one core relay, limits, graceful stop.
 *
 * @module
 */

import { formatEndpoint, type IpEndpoint } from "../net/address.ts";
import type { Resolver } from "../resolver/mod.ts";
import {
  capConnections,
  DescriptorBudget,
  descriptorLimit,
  warmUpErrorStacks,
} from "./limits/fd_limit.ts";
import { type AdminServer, startAdminServer } from "./observe/admin.ts";
import type { Config, ListenConfig } from "./config/types.ts";
import { configWarnings } from "./config/warnings.ts";
import { egressHostWarnings } from "./upstream/egress_host.ts";
import { Admission } from "./listen/admission.ts";
import { ListenerSet } from "./listen/listener_set.ts";
import { type ConnectionRecord, logConnection } from "./observe/connection_log.ts";
import { logger, setupLogging, type SetupLoggingOptions } from "./observe/log.ts";
import { GatewayMetrics } from "./observe/metrics.ts";
import { runSession } from "./session.ts";
import { runHttpSession } from "./http/front.ts";
import { runMixedSession } from "./http/mixed.ts";
import { drain } from "./drain.ts";
import { type GatewayCore, type Generation, sameSection, wireServices } from "./wiring.ts";
import { LiveSessions } from "./live_sessions.ts";
import { type Applied, createReloader, type ReloadOutcome } from "./reload.ts";
import { hopStatesOf } from "./upstream/router.ts";
import { loadAdminAuth } from "./observe/admin_auth.ts";
import { runningRelayBytes } from "./relay/relay.ts";
import { type LiveStatus, StatusBoard } from "./observe/status.ts";
import { AuditLog } from "./observe/audit_log.ts";

/** Options of {@linkcode startGateway}. */
export interface StartGatewayOptions {
  /** Receives every connection record (tests, metrics); the log line is written regardless. */
  onRecord?: (record: ConnectionRecord) => void;
  /** Replaces the resolver (tests); kept across reloads. */
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
  /**
   * Reads the config again (the file and CLI flags): enables {@linkcode Gateway.reload},
   * SIGHUP in `main.ts serve` and `POST /reload` on the admin listener. @default none: reload
   * is refused
   */
  loadConfig?: () => Promise<Config>;
  /**
   * Set: a reload sets logging up again with the new `log` section and these options.
   * @default logging is left alone
   */
  logging?: SetupLoggingOptions;
  /** Sampling interval of the status page's history ring, in ms (tests). @default 5000 */
  statusIntervalMs?: number;
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
  /** What the status page shows beside the metrics: hop states, resolver cache. */
  liveStatus(): LiveStatus;
  /** The config generation in force: 1 at start, one more per accepted reload. */
  readonly generation: number;
  /**
   * Puts a validated config in force for new connections, atomically (see "Hot reload" in
   * the README); `generation` numbers it (default: one more).
   *
   * @throws when a new listen address cannot be opened; nothing has changed then.
   */
  apply(config: Config, generation?: number): Promise<Applied>;
  /** Re-reads the config with `loadConfig` and applies it; never rejects. */
  reload(): Promise<ReloadOutcome>;
  /**
   * Stops accepting, lets live connections finish for up to `drainMs` (default: the
   * configured drain timeout), then closes whatever is left.
   */
  stop(drainMs?: number): Promise<void>;
}

const log = logger("gateway");

/** Logs each of the {@linkcode configWarnings} of `config` as a warning. */
export function logConfigWarnings(config: Config): void {
  for (const warning of [...configWarnings(config), ...egressHostWarnings(config)]) {
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

/** Warns of changes a reload cannot make to a running gateway. */
function warnFixedChanges(running: Config, next: Config): void {
  if (!sameSection(running.admin, next.admin)) {
    log.warn("reload: admin changed; the admin listener keeps its address until a restart");
  }
  if (running.workers !== next.workers) {
    log.warn("reload: workers changed; {workers} stay until a restart", {
      workers: running.workers,
    });
  }
}

/** Counters of the resolvers and password verifiers a reload replaced, for the totals. */
interface Retired {
  hits: number;
  misses: number;
  queries: number;
  hashes: number;
}

/** Starts listening on every configured address and serves clients until stopped. */
export function startGateway(config: Config, options: StartGatewayOptions = {}): Gateway {
  const shutdownController = new AbortController();
  const sessions = new Set<Promise<void>>();
  warmUpErrorStacks();
  const shares = Math.max(1, options.descriptorShares ?? 1);
  const processLimit = descriptorLimit();
  const descriptors = processLimit === null ? null : Math.floor(processLimit / shares);
  let maxConnections = effectiveMaxConnections(config, descriptors);
  const budget = DescriptorBudget.forLimit(descriptors);
  const retired: Retired = { hits: 0, misses: 0, queries: 0, hashes: 0 };
  const metrics = new GatewayMetrics({
    // Read at scrape time: the current generation's resolver and password checks.
    resolverStats: {
      get hits() {
        return retired.hits + current.resolver.stats.hits;
      },
      get misses() {
        return retired.misses + current.resolver.stats.misses;
      },
      get queries() {
        return retired.queries + current.resolver.stats.queries;
      },
    },
    activeConnections: () => admission.active.size,
    maxConnections: () => maxConnections,
    passwordStats: {
      get hashes() {
        return retired.hashes + current.passwords.hashes;
      },
      get peak() {
        return current.passwords.peak;
      },
      get slots() {
        return current.passwords.slots;
      },
    },
    users: config.auth.users.map((user) => user.name),
  });
  // Opened before the listeners: a gateway that cannot write its audit log does not start. A
  // reload that names another file opens it before the swap (a failure refuses the reload).
  let audit = config.log.auditFile === undefined ? null : new AuditLog(config.log.auditFile);
  let reopenListening = false;
  const reopenAudit = () => {
    const file = audit;
    void file?.reopen().then(() => log.info("audit log {path} reopened", { path: file.path }));
  };
  const listenForReopen = () => {
    if (audit === null || reopenListening) return;
    Deno.addSignalListener("SIGUSR1", reopenAudit);
    reopenListening = true;
  };
  /** Writes the audit log's last lines and closes it (stop, or a start that failed). */
  const closeAudit = (): Promise<void> => {
    if (reopenListening) Deno.removeSignalListener("SIGUSR1", reopenAudit);
    reopenListening = false;
    return audit?.close() ?? Promise.resolve();
  };
  listenForReopen();
  const admission: Admission = new Admission({
    metrics,
    budget,
    limits: () => ({
      maxConnections,
      maxConnectionsPerClient: current.config.limits.maxConnectionsPerClient,
      clientKeyOf: current.clientKeyOf,
      authFailures: current.authFailures,
    }),
  });
  const live = new LiveSessions({
    current: () => current,
    onClose: (reason, info) => {
      metrics.reloadClosed.inc([reason]);
      log.info("reload closed a session ({reason}){user}", {
        reason,
        user: info.user === undefined ? "" : ` of user ${info.user}`,
      });
    },
  });
  const core: GatewayCore = {
    metrics,
    shutdown: shutdownController.signal,
    reserveDescriptors: (count) => budget.take(count, admission.active.size),
    record: (record) => {
      logConnection(record);
      metrics.recordConnection(record);
      audit?.write(record);
      options.onRecord?.(record);
    },
    noteSession: (conn, info) => live.note(conn, info),
  };
  /** The runtime config: one reference, swapped whole by a reload, read once per session. */
  let current: Generation = wireServices(config, core, {
    ...(options.resolver && { resolver: options.resolver }),
  });
  let draining = false;

  const onConnection = (conn: Deno.TcpConn, listen: ListenConfig) => {
    const admitted = admission.admit(conn, listen);
    if (admitted === null) return;
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const generation = current;
    // Its own end, for a reload that closes it; the gateway's shutdown ends it too.
    const ended = new AbortController();
    const untrack = live.add(conn, generation, () => {
      ended.abort();
      try {
        conn.close(); // a translated session has no core relay to abort
      } catch { /* closed by the relay */ }
    });
    const services = {
      ...generation.services,
      shutdown: AbortSignal.any([shutdownController.signal, ended.signal]),
    };
    const proxyProtocol = listen.proxyProtocol;
    const session =
      (listen.protocol === "http"
        ? runHttpSession(conn, services)
        : listen.protocol === "mixed"
        ? runMixedSession(conn, services)
        : runSession(conn, services, proxyProtocol ? { proxyProtocol } : {}))
        .catch((error) => log.error("session failed: {error}", { error }))
        .finally(() => {
          untrack();
          admitted.release();
          sessions.delete(session);
        });
    sessions.add(session);
  };

  const listeners = new ListenerSet({
    reusePort: options.reusePort ?? false,
    onConnection,
    onAcceptError: (error, backoffMs) => {
      metrics.acceptErrors.inc();
      log.error("accept failed, backing off {backoffMs} ms: {error}", { error, backoffMs });
    },
  });
  const liveStatus = (): LiveStatus => ({
    hops: hopStatesOf(current.services.route),
    resolverCache: current.resolver.cacheSize,
    resolverInflight: current.resolver.inflightLookups,
    runningBytes: runningRelayBytes(),
  });
  const opening = listeners.change(config.listen);
  let admin: AdminServer | null = null;
  let board: StatusBoard | null = null;
  try {
    if (config.admin) {
      // The admin's auth settings are those of the config at start (a reload does not reach
      // the admin listener: see warnFixedChanges); a users' login is checked as a SOCKS login of
      // the current generation, through its failed-login limiter, counters included.
      const auth = config.admin.auth &&
        loadAdminAuth(
          config.admin.auth,
          (user, password, client, signal) =>
            current.services.authenticate(client, user, password, signal),
        );
      board = new StatusBoard({
        gather: () => Promise.resolve({ metrics: metrics.snapshot(), live: [liveStatus()] }),
        ...(options.statusIntervalMs !== undefined && { intervalMs: options.statusIntervalMs }),
      });
      const status = board.status.bind(board);
      admin = startAdminServer(config.admin.endpoint, {
        metrics: () => metrics.render(),
        healthy: () => !draining,
        details: () => `generation ${current.number}\n`,
        reload: () => reload(),
        status,
        ...(auth && { auth }),
      });
    }
  } catch (error) {
    opening.abandon();
    board?.close();
    void closeAudit();
    throw error;
  }
  void opening.commit(); // nothing to close: its promise is already settled
  const endpoints = listeners.endpoints;
  current.host.listeners = endpoints;
  for (const endpoint of endpoints) {
    log.info("listening on {endpoint}", { endpoint: formatEndpoint(endpoint) });
  }
  if (options.warnings ?? true) logConfigWarnings(config);
  if (admin) {
    log.info(
      "admin endpoint on {endpoint} serves /, /api/status, /metrics, /healthz and POST /reload",
      {
        endpoint: formatEndpoint(admin.endpoint),
      },
    );
  }

  const apply = async (next: Config, number = current.number + 1): Promise<Applied> => {
    if (draining) throw new Error("Cannot reload: the gateway is stopping");
    warnFixedChanges(current.config, next);
    const change = listeners.change(next.listen);
    let wired: Generation;
    let nextAudit = audit;
    try {
      if (next.log.auditFile !== audit?.path) {
        nextAudit = next.log.auditFile === undefined ? null : new AuditLog(next.log.auditFile);
      }
      wired = wireServices(next, core, {
        number,
        previous: current,
        ...(options.resolver && { resolver: options.resolver }),
      });
    } catch (error) {
      change.abandon();
      if (nextAudit !== audit) void nextAudit?.close();
      throw error;
    }
    // From here to the swap nothing awaits: no connection sees half of the change.
    const before = current;
    const closing = change.commit(); // its synchronous part: new loops run, removed closing
    wired.host.listeners = listeners.endpoints;
    maxConnections = effectiveMaxConnections(next, descriptors);
    if (wired.resolver !== before.resolver) {
      retired.hits += before.resolver.stats.hits;
      retired.misses += before.resolver.stats.misses;
      retired.queries += before.resolver.stats.queries;
    }
    if (wired.passwords !== before.passwords) retired.hashes += before.passwords.hashes;
    current = wired;
    metrics.configGeneration = number;
    metrics.seedUsers(next.auth.users.map((user) => user.name));
    if (nextAudit !== audit) {
      const before = audit;
      if (reopenListening && nextAudit === null) {
        Deno.removeSignalListener("SIGUSR1", reopenAudit);
        reopenListening = false;
      }
      audit = nextAudit;
      listenForReopen();
      void before?.close(); // its pending lines first
    }
    for (const endpoint of change.added) {
      log.info("listening on {endpoint}", { endpoint: formatEndpoint(endpoint) });
    }
    for (const endpoint of change.removed) {
      log.info("stopped listening on {endpoint}", { endpoint: formatEndpoint(endpoint) });
    }
    const closed = live.sweep(wired);
    await closing;
    if (options.logging && !sameSection(before.config.log, next.log)) {
      await setupLogging(next.log, options.logging);
    }
    return { generation: number, closed };
  };
  const reload = createReloader({
    load: options.loadConfig ??
      (() => Promise.reject(new Error("Cannot reload: this gateway has no config file"))),
    apply: (next) => apply(next),
    generation: () => current.number,
    count: (result) => metrics.reloads.inc([result]),
  });

  let stopping: Promise<void> | undefined;
  const stop = (drainMs = current.config.timeouts.drainMs): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      await drain({
        listeners: listeners.listeners,
        loops: listeners.loops,
        sessions,
        connections: admission.active,
        abort: () => shutdownController.abort(),
      }, drainMs);
      board?.close();
      await admin?.close();
      // Every session has written its record: the last lines reach the file before exit.
      await closeAudit();
    })();
    return stopping;
  };

  return {
    get endpoints() {
      return listeners.endpoints;
    },
    get activeConnections() {
      return admission.active.size;
    },
    adminEndpoint: admin?.endpoint ?? null,
    metrics,
    liveStatus,
    get generation() {
      return current.number;
    },
    apply,
    reload,
    stop,
    [Symbol.asyncDispose]: () => stop(0),
  };
}
