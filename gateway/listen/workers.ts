/**
 * `workers: N`: the gateway on N isolates (threads, so N cores). The main isolate validates the
 * config, starts N module workers that each run {@linkcode startGateway} with SO_REUSEPORT on
 * every `listen` address (the kernel spreads connections among them), and accepts no SOCKS
 * client itself. It runs the admin listener: a scrape asks every worker for a metric snapshot
 * and renders their sum once.
 *
 * What is divided or kept per worker: `max_connections` and `max_connections_per_client` are
 * divided among the workers (rounded up), as is the open-files limit; the failed-login limiter,
 * the hop failure marks and the resolver cache are per worker. Translators are refused at
 * config load (their data-connection table lives in one isolate).
 *
 * A worker that dies unexpectedly is logged and the pool reports it ({@linkcode
 * WorkerPool.failed}); `main.ts serve` then stops the others and exits non-zero, for a
 * supervisor to restart the whole process. No in-process restart: a crash that repeats (a bad
 * address, a bug) would loop.
 *
 * @module
 */

import { endpointFromNetAddr, formatEndpoint, type IpEndpoint } from "../../net/address.ts";
import { type AdminServer, startAdminServer } from "../observe/admin.ts";
import type { Config } from "../config/types.ts";
import { logConfigWarnings } from "../gateway.ts";
import { listenOn } from "./listener.ts";
import { logger, setupLogging, type SetupLoggingOptions } from "../observe/log.ts";
import {
  GatewayMetrics,
  mergeSnapshots,
  type MetricSnapshot,
  renderSnapshot,
} from "../observe/metrics.ts";
import { createReloader, type ReloadOutcome } from "../reload.ts";
import type { FromWorker, ToWorker } from "./_worker.ts";
import { type AdminAuth, loadAdminAuth } from "../observe/admin_auth.ts";
import { AuthFailureLimiter } from "../limits/auth_limiter.ts";
import { checkLogin, type LoginGate } from "../access/login_gate.ts";
import { clientKey } from "../access/client_key.ts";
import { type LiveStatus, StatusBoard } from "../observe/status.ts";
import { PasswordVerifier } from "../access/password_verifier.ts";

/**
 * The admin listener's own login checks, with their own failed-login limiter (the workers'
 * verifiers and limiters live in their isolates): guessing over HTTP is bounded as over SOCKS.
 */
function adminUsers(config: Config): NonNullable<AdminAuth["checkUser"]> {
  const verifier = new PasswordVerifier(config.auth.users);
  const gate: LoginGate = {
    limiter: new AuthFailureLimiter(config.limits.authFailuresPerMinute),
    check: (user, password, key) => verifier.check(user, password, key),
  };
  return (user, password, client, signal) =>
    checkLogin(
      gate,
      clientKey(client.address, config.limits.ipv6ClientPrefix),
      user,
      password,
      signal,
    );
}

/** Options of {@linkcode startWorkers}. */
export interface StartWorkersOptions {
  /** How long a scrape waits for each worker's snapshot, in ms. @default 2000 */
  snapshotTimeoutMs?: number;
  /** How long past the drain timeout `stop` waits before terminating a worker, in ms. @default 5000 */
  stopGraceMs?: number;
  /** Reads the config again: enables {@linkcode WorkerPool.reload}. @default none: refused */
  loadConfig?: () => Promise<Config>;
  /** How long a reload waits for each worker's answer, in ms. @default 10000 */
  reloadTimeoutMs?: number;
  /**
   * Set: a reload sets this isolate's logging up again with the new `log` section (the workers
   * do theirs). @default logging is left alone
   */
  logging?: SetupLoggingOptions;
}

/** A worker that ended without being told to. */
export interface WorkerFailure {
  /** Its index, 0-based. */
  readonly index: number;
  /** What it threw. */
  readonly message: string;
}

/** Running gateway workers. Disposing the pool stops it (without drain). */
export interface WorkerPool extends AsyncDisposable {
  /** The bound endpoints, in `listen` order (port 0 replaced by the real port). */
  readonly endpoints: readonly IpEndpoint[];
  /** The admin listener's endpoint, or `null` when `admin` is not set. */
  readonly adminEndpoint: IpEndpoint | null;
  /** Number of workers. */
  readonly count: number;
  /** Resolves when a worker dies unexpectedly; never rejects. */
  readonly failed: Promise<WorkerFailure>;
  /** Every worker's metrics, summed, in the exposition format (what `/metrics` serves). */
  metrics(): Promise<string>;
  /** The config generation the pool last put in force. */
  readonly generation: number;
  /** Each worker's config generation, by index (what `/healthz` shows). */
  readonly generations: readonly number[];
  /**
   * Re-reads the config with `loadConfig`, validates it here and has every worker apply it;
   * never rejects. A worker that cannot apply it keeps its generation (`failed`).
   */
  reload(): Promise<ReloadOutcome>;
  /**
   * Tells every worker to stop accepting and drain for up to `drainMs` (default: the
   * configured drain timeout), waits for them, then closes the admin listener.
   */
  stop(drainMs?: number): Promise<void>;
}

const log = logger("workers");

/** Families the pool reports itself instead of summing the workers'. */
const POOL_FAMILIES = new Set(["dualgate_config_generation", "dualgate_reloads_total"]);

/**
 * The config one of `count` workers runs: the connection limits divided among them (rounded
 * up) and no admin listener (the main isolate has it).
 */
export function workerConfig(config: Config, count: number): Config {
  const share = (value: number) => Math.max(1, Math.ceil(value / count));
  return {
    ...config,
    admin: null,
    limits: {
      ...config.limits,
      maxConnections: share(config.limits.maxConnections),
      maxConnectionsPerClient: share(config.limits.maxConnectionsPerClient),
    },
  };
}

/**
 * Replaces port 0 in `listen` by a port the kernel picks now, so that every worker binds the
 * same one (each would get its own otherwise). The probe listener is closed at once: one
 * that never accepts must not share the port with the workers.
 */
export function fixListenPorts(config: Config, before?: FixedPorts): Config {
  if (config.listen.every((entry) => entry.endpoint.port !== 0)) return config;
  const earlier = new Map<string, IpEndpoint>();
  if (before) {
    const keys = portZeroKeys(before.config);
    before.config.listen.forEach((_entry, index) => {
      const key = keys[index];
      const fixed = before.fixed.listen[index];
      if (key !== undefined && fixed) earlier.set(key, fixed.endpoint);
    });
  }
  const keys = portZeroKeys(config);
  return {
    ...config,
    listen: config.listen.map((entry, index) => {
      if (entry.endpoint.port !== 0) return entry;
      const kept = earlier.get(keys[index]!);
      if (kept) return { ...entry, endpoint: kept };
      using probe = listenOn(entry.endpoint, { reusePort: true });
      return { ...entry, endpoint: endpointFromNetAddr(probe.addr) };
    }),
  };
}

/** A config as given and as {@linkcode fixListenPorts} fixed it: a reload keeps its ports. */
export interface FixedPorts {
  /** The config as given (port 0 where the kernel picks). */
  readonly config: Config;
  /** The same with the ports picked. */
  readonly fixed: Config;
}

/** The listen entries' addresses as written, numbered when one repeats. */
function portZeroKeys(config: Config): string[] {
  const seen = new Map<string, number>();
  return config.listen.map((entry) => {
    const address = formatEndpoint(entry.endpoint);
    const n = seen.get(address) ?? 0;
    seen.set(address, n + 1);
    return `${address}#${n}`;
  });
}

/** A worker's answer to a snapshot request. */
interface WorkerAnswer {
  readonly metrics: MetricSnapshot[];
  readonly live: LiveStatus;
}

interface Member {
  readonly index: number;
  readonly worker: Worker;
  alive: boolean;
  generation: number;
  readonly reloads: Map<number, (answer: FromWorker | null) => void>;
  readonly stopped: PromiseWithResolvers<void>;
  readonly snapshots: Map<number, (answer: WorkerAnswer | null) => void>;
}

/** Per-worker connection totals, so that the spread over workers shows in `/metrics`. */
function workerFamilies(
  count: number,
  answers: readonly { index: number; metrics: MetricSnapshot[] }[],
): MetricSnapshot[] {
  return [
    {
      type: "gauge",
      name: "dualgate_workers",
      help: "Worker isolates configured.",
      labelNames: [],
      series: [{ values: [], value: count }],
    },
    {
      type: "gauge",
      name: "dualgate_workers_up",
      help: "Worker isolates that answered this scrape.",
      labelNames: [],
      series: [{ values: [], value: answers.length }],
    },
    {
      type: "counter",
      name: "dualgate_worker_connections_total",
      help: "Finished client connections per worker isolate.",
      labelNames: ["worker"],
      series: answers.map(({ index, metrics }) => {
        const family = metrics.find((m) => m.name === "dualgate_connections_total");
        const value = family && family.type !== "histogram"
          ? family.series.reduce((sum, s) => sum + s.value, 0)
          : 0;
        return { values: [String(index)], value };
      }),
    },
  ];
}

/**
 * Starts `config.workers` worker isolates serving `config` and, when configured, the admin
 * listener in this isolate. Resolves once every worker listens.
 *
 * @throws {Error} when a worker cannot start (for instance its address is in use); the
 *   others are terminated first.
 */
export async function startWorkers(
  config: Config,
  options: StartWorkersOptions = {},
): Promise<WorkerPool> {
  const count = config.workers;
  const snapshotTimeoutMs = options.snapshotTimeoutMs ?? 2000;
  const stopGraceMs = options.stopGraceMs ?? 5000;
  let running: FixedPorts = { config, fixed: fixListenPorts(config) };
  const fixed = running.fixed;
  const perWorker = workerConfig(fixed, count);
  const failure = Promise.withResolvers<WorkerFailure>();
  let stopping: Promise<void> | undefined;
  let nextId = 0;

  const members: Member[] = [];
  const starts: Promise<readonly IpEndpoint[]>[] = [];
  for (let index = 0; index < count; index++) {
    const started = Promise.withResolvers<readonly IpEndpoint[]>();
    const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
    const member: Member = {
      index,
      worker,
      alive: true,
      generation: 1,
      reloads: new Map(),
      stopped: Promise.withResolvers<void>(),
      snapshots: new Map(),
    };
    const died = (message: string) => {
      if (!member.alive) return;
      member.alive = false;
      member.stopped.resolve();
      for (const answer of member.snapshots.values()) answer(null);
      for (const answer of member.reloads.values()) answer(null);
      started.reject(new Error(`Cannot start worker ${index}: ${message}`));
      if (!stopping) {
        log.error("worker {index} died: {message}", { index, message });
        failure.resolve({ index, message });
      }
    };
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "started":
          started.resolve(message.endpoints);
          break;
        case "failed":
          member.alive = false;
          member.stopped.resolve();
          started.reject(new Error(`Cannot start worker ${index}: ${message.message}`));
          break;
        case "snapshot":
          member.snapshots.get(message.id)?.({ metrics: message.metrics, live: message.live });
          break;
        case "reloaded":
          member.generation = message.generation;
          member.reloads.get(message.generation)?.(message);
          break;
        case "reload-failed":
          member.reloads.get(message.generation)?.(message);
          break;
        case "stopped":
          member.alive = false;
          member.stopped.resolve();
          break;
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      died(event.message);
    };
    worker.onmessageerror = () => died("a message could not be read");
    worker.postMessage({ type: "start", index, count, config: perWorker } satisfies ToWorker);
    members.push(member);
    // Handled by Promise.all below; this keeps a later rejection from going unhandled.
    started.promise.catch(() => {});
    starts.push(started.promise);
  }

  let endpoints: readonly IpEndpoint[];
  let admin: AdminServer | null = null;
  let board: StatusBoard | null = null;
  try {
    const all = await Promise.all(starts);
    endpoints = all[0] ?? [];
    if (config.admin) {
      const auth = config.admin.auth && loadAdminAuth(config.admin.auth, adminUsers(config));
      board = new StatusBoard({ gather: () => gather(), workers: count });
      const status = board.status.bind(board);
      admin = startAdminServer(config.admin.endpoint, {
        metrics: () => metrics(),
        healthy: () => !stopping && members.every((m) => m.alive),
        details: () =>
          `generation ${generation}\n` +
          members.map((m) => `worker ${m.index} generation ${m.generation}\n`).join(""),
        reload: () => reload(),
        status,
        ...(auth && { auth }),
      });
      log.info(
        "admin endpoint on {endpoint} serves /, /api/status, /metrics and /healthz of {count} workers",
        { endpoint: formatEndpoint(admin.endpoint), count },
      );
    }
  } catch (error) {
    stopping = Promise.resolve();
    for (const member of members) member.worker.terminate();
    board?.close();
    await admin?.close();
    throw error;
  }
  log.info("{count} workers serve {endpoints}", {
    count,
    endpoints: endpoints.map(formatEndpoint).join(" "),
  });
  logConfigWarnings(config);

  let generation = 1;
  let lastNumber = 1;
  const poolOwn = new GatewayMetrics();
  const poolMetrics = {
    snapshot: () => poolOwn.snapshot().filter((family) => POOL_FAMILIES.has(family.name)),
  };

  const snapshotOf = (member: Member): Promise<WorkerAnswer | null> => {
    if (!member.alive) return Promise.resolve(null);
    const id = nextId++;
    const { promise, resolve } = Promise.withResolvers<WorkerAnswer | null>();
    const timer = setTimeout(() => resolve(null), snapshotTimeoutMs);
    member.snapshots.set(id, resolve);
    member.worker.postMessage({ type: "snapshot", id } satisfies ToWorker);
    return promise.finally(() => {
      clearTimeout(timer);
      member.snapshots.delete(id);
    });
  };

  async function gather(): Promise<{ metrics: MetricSnapshot[]; live: LiveStatus[] }> {
    const answers = (await Promise.all(
      members.map(async (member) => ({ index: member.index, answer: await snapshotOf(member) })),
    )).flatMap(({ index, answer }) =>
      answer ? [{ index, metrics: answer.metrics, live: answer.live }] : []
    );
    // The generation and the reload count are the pool's, not a sum over the workers.
    const merged = mergeSnapshots(answers.map((a) => a.metrics))
      .filter((family) => !POOL_FAMILIES.has(family.name));
    return {
      metrics: [...merged, ...workerFamilies(count, answers), ...poolMetrics.snapshot()],
      live: answers.map((a) => a.live),
    };
  }

  async function metrics(): Promise<string> {
    return renderSnapshot((await gather()).metrics);
  }

  const reloadTimeoutMs = options.reloadTimeoutMs ?? 10_000;
  const applyTo = (member: Member, config: Config, number: number): Promise<FromWorker | null> => {
    if (!member.alive) return Promise.resolve(null);
    const { promise, resolve } = Promise.withResolvers<FromWorker | null>();
    const timer = setTimeout(() => resolve(null), reloadTimeoutMs);
    member.reloads.set(number, resolve);
    member.worker.postMessage({ type: "reload", generation: number, config } satisfies ToWorker);
    return promise.finally(() => {
      clearTimeout(timer);
      member.reloads.delete(number);
    });
  };
  const reload = createReloader({
    load: options.loadConfig ??
      (() => Promise.reject(new Error("Cannot reload: this gateway has no config file"))),
    apply: async (next) => {
      if (stopping) throw new Error("Cannot reload: the gateway is stopping");
      if (JSON.stringify(next.admin) !== JSON.stringify(config.admin)) {
        log.warn("reload: admin changed; the admin listener keeps its address until a restart");
      }
      if (next.workers !== count) {
        log.warn("reload: workers changed; {count} stay until a restart", { count });
      }
      const fixedNext = fixListenPorts(next, running);
      const number = ++lastNumber;
      const perNext = workerConfig({ ...fixedNext, workers: count }, count);
      const answers = await Promise.all(members.map((m) => applyTo(m, perNext, number)));
      const logBefore = running.config.log;
      running = { config: next, fixed: fixedNext };
      if (options.logging && JSON.stringify(logBefore) !== JSON.stringify(next.log)) {
        await setupLogging(next.log, options.logging);
      }
      const failures = answers.flatMap((answer, index) =>
        answer?.type === "reloaded"
          ? []
          : [`worker ${index}: ${answer?.type === "reload-failed" ? answer.message : "no answer"}`]
      );
      if (failures.length === answers.length) throw new Error(failures.join("; "));
      generation = number;
      poolOwn.configGeneration = number;
      if (failures.length > 0) {
        throw new Error(`generation ${number} not in force everywhere: ${failures.join("; ")}`);
      }
      return {
        generation: number,
        closed: answers.reduce((sum, a) => sum + (a?.type === "reloaded" ? a.closed : 0), 0),
      };
    },
    generation: () => generation,
    count: (result) => poolOwn.reloads.inc([result]),
  });

  const stop = (drainMs = config.timeouts.drainMs): Promise<void> => {
    stopping ??= (async () => {
      for (const member of members) {
        if (member.alive) member.worker.postMessage({ type: "stop", drainMs } satisfies ToWorker);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = await Promise.race([
        Promise.all(members.map((m) => m.stopped.promise)).then(() => false),
        new Promise<boolean>((resolve) =>
          timer = setTimeout(() => resolve(true), drainMs + stopGraceMs)
        ),
      ]);
      clearTimeout(timer);
      if (late) {
        log.warn("workers did not stop within {ms} ms; terminated", { ms: drainMs + stopGraceMs });
      }
      for (const member of members) member.worker.terminate();
      board?.close();
      await admin?.close();
    })();
    return stopping;
  };

  return {
    endpoints,
    adminEndpoint: admin?.endpoint ?? null,
    count,
    failed: failure.promise,
    metrics,
    get generation() {
      return generation;
    },
    get generations() {
      return members.map((m) => m.generation);
    },
    reload,
    stop,
    [Symbol.asyncDispose]: () => stop(0),
  };
}
