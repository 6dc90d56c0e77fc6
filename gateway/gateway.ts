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
import type { Config, UserConfig } from "./config/types.ts";
import { acceptLoop, listenOn } from "./listener.ts";
import { type ConnectionRecord, logConnection } from "./observe/connection_log.ts";
import { logger } from "./observe/log.ts";
import { AccessRules } from "./rules.ts";
import { runSession, type SessionServices } from "./session.ts";
import { DirectDialer } from "./upstream/direct.ts";
import { createRouter } from "./upstream/router.ts";
import { createTranslationService } from "./translate.ts";

/** Options of {@linkcode startGateway}. */
export interface StartGatewayOptions {
  /** Receives every connection record (tests, metrics); the log line is written regardless. */
  onRecord?: (record: ConnectionRecord) => void;
  /** Replaces the resolver (tests). */
  resolver?: Resolver;
}

/** A running gateway. Disposing it stops it (with drain). */
export interface Gateway extends AsyncDisposable {
  /** The bound endpoints, in `listen` order (port 0 replaced by the real port). */
  readonly endpoints: readonly IpEndpoint[];
  /** Number of client connections being served. */
  readonly activeConnections: number;
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

function isOpenProxy(config: Config, endpoint: IpEndpoint): boolean {
  return config.auth.users.length === 0 && config.rules === null &&
    !HOST_LOCAL_CIDRS.some((cidr) =>
      cidrContains(cidr, endpoint.address) &&
      endpoint.address.bytes.some((b) => b !== 0)
    );
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

  const services: SessionServices = {
    config,
    rules: new AccessRules(config.rules),
    dialer,
    route: createRouter(config.routes, dialer),
    translation: createTranslationService(config),
    resolver,
    users,
    shutdown: shutdownController.signal,
    isLocalAddress: (endpoint) =>
      HOST_LOCAL_CIDRS.some((cidr) => cidrContains(cidr, endpoint.address)) ||
      local.some((address) => sameIp(address, endpoint.address)),
    record: (record) => {
      logConnection(record);
      options.onRecord?.(record);
    },
  };

  const listeners: Deno.TcpListener[] = [];
  try {
    for (const { endpoint } of config.listen) listeners.push(listenOn(endpoint));
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  const endpoints = listeners.map((l) => endpointFromNetAddr(l.addr));
  for (const endpoint of endpoints) {
    log.info("listening on {endpoint}", { endpoint: formatEndpoint(endpoint) });
    if (isOpenProxy(config, endpoint)) {
      log.warn(
        "{endpoint} is an open proxy: a non-loopback listener without auth and without rules",
        { endpoint: formatEndpoint(endpoint) },
      );
    }
  }

  const onConnection = (conn: Deno.TcpConn) => {
    let clientKey: string;
    try {
      clientKey = formatEndpoint({ ...endpointFromNetAddr(conn.remoteAddr), port: 0 });
    } catch {
      conn.close();
      return;
    }
    const clientCount = perClient.get(clientKey) ?? 0;
    if (
      active.size >= config.limits.maxConnections ||
      clientCount >= config.limits.maxConnectionsPerClient
    ) {
      conn.close();
      log.warn("connection limit reached; refused {client}", { client: clientKey });
      return;
    }
    active.add(conn);
    perClient.set(clientKey, clientCount + 1);
    try {
      conn.setNoDelay(true);
    } catch { /* not fatal */ }
    const session = runSession(conn, services)
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

  const loops = listeners.map((listener) =>
    acceptLoop(listener, {
      onConnection,
      onAcceptError: (error, backoffMs) =>
        log.error("accept failed, backing off {backoffMs} ms: {error}", { error, backoffMs }),
    })
  );

  let stopping: Promise<void> | undefined;
  const stop = (drainMs = config.timeouts.drainMs): Promise<void> => {
    stopping ??= (async () => {
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
    })();
    return stopping;
  };

  return {
    endpoints,
    get activeConnections() {
      return active.size;
    },
    stop,
    [Symbol.asyncDispose]: () => stop(0),
  };
}
