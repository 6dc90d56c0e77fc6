/**
 * The status the admin listener serves, as JSON at `/api/status` and as the live page at `/`:
 * one builder ({@linkcode buildStatus}) over the merged metric snapshot, each isolate's live
 * state (hop alternatives, resolver cache, connections) and the main isolate's history ring.
 *
 * Everything here is plain data: a worker isolate sends its {@linkcode LiveStatus} with its
 * metric snapshot, and the main isolate merges them.
 *
 * @module
 */

import { Reply, REPLY_NAMES as SOCKS_REPLY_NAMES } from "../../socks5/types.ts";
import type { MetricSnapshot } from "./metrics.ts";

/** One alternative of a hop, as one isolate sees it. */
export interface LiveAlternative {
  /** Its label (URL without user info). */
  readonly label: string;
  /** True while marked down. */
  readonly down: boolean;
  /** Milliseconds in this state, or `null` for one up and never marked. */
  readonly forMs: number | null;
}

/** One hop of one route, as one isolate sees it. */
export interface LiveHop {
  /** The route's index in `routes`. */
  readonly route: number;
  /** The hop's index in the route's chain. */
  readonly hop: number;
  /** Its alternatives, in config order. */
  readonly alternatives: readonly LiveAlternative[];
}

/** What one isolate knows now and the metrics do not hold (structured-cloneable). */
export interface LiveStatus {
  /** Every hop of every route. */
  readonly hops: readonly LiveHop[];
  /** Names in the resolver cache. */
  readonly resolverCache: number;
  /** Resolver lookups in flight. */
  readonly resolverInflight: number;
  /** Bytes moved so far by relays still running (not yet in the metrics). @default 0 */
  readonly runningBytes?: { readonly up: number; readonly down: number };
}

/** One sample of the history ring: running totals at `at`. */
export interface HistorySample {
  /** Wall-clock time, ms since the epoch. */
  readonly at: number;
  /** Bytes relayed client to destination, total. */
  readonly bytesUp: number;
  /** Bytes relayed destination to client, total. */
  readonly bytesDown: number;
  /** Finished connections, total. */
  readonly connections: number;
  /** Client connections being served. */
  readonly active: number;
}

/** A bounded ring of {@linkcode HistorySample}s, oldest first. */
export class StatusHistory {
  readonly #capacity: number;
  readonly #samples: HistorySample[] = [];

  /** Keeps at most `capacity` samples (at least 2). */
  constructor(capacity: number) {
    this.#capacity = Math.max(2, Math.floor(capacity));
  }

  /** Adds a sample, dropping the oldest when full. */
  push(sample: HistorySample): void {
    this.#samples.push(sample);
    if (this.#samples.length > this.#capacity) this.#samples.shift();
  }

  /** The samples, oldest first. */
  samples(): readonly HistorySample[] {
    return [...this.#samples];
  }
}

/** A point of a chart: rates over the interval ending at `at`. */
export interface HistoryPoint {
  /** End of the interval, ms since the epoch. */
  readonly at: number;
  /** Bytes per second, client to destination. */
  readonly upPerSecond: number;
  /** Bytes per second, destination to client. */
  readonly downPerSecond: number;
  /** Finished connections per second. */
  readonly connectionsPerSecond: number;
  /** Client connections being served at `at`. */
  readonly active: number;
}

/** An alternative's merged state. */
export interface AlternativeStatus {
  /** Its label. */
  readonly label: string;
  /** `marked` when any isolate has it marked down. */
  readonly state: "up" | "marked";
  /** When it entered this state (ISO 8601), or `null`: up since start. */
  readonly since: string | null;
  /** Isolates that have it marked (of {@linkcode Status.workers}.answered). */
  readonly markedIn: number;
}

/** Everything `/api/status` serves; the page renders exactly this. */
export interface Status {
  /** When it was built (ISO 8601). */
  readonly generatedAt: string;
  /**
   * Worker isolates: configured, how many answered this time, and finished connections per
   * worker index (empty with one isolate).
   */
  readonly workers: {
    readonly count: number;
    readonly answered: number;
    readonly connections: Readonly<Record<string, number>>;
  };
  /** Connections now and finished. */
  readonly connections: {
    /** Client connections being served. */
    readonly active: number;
    /** The effective limit (`null`: unknown). */
    readonly max: number | null;
    /** Relays running, by family pair (`v4-v6`), all four pairs always present. */
    readonly activeByFamilies: Readonly<Record<string, number>>;
    /** Relays running by command (`connect`, `bind`, `udp`). */
    readonly activeByCommand: Readonly<Record<string, number>>;
    /** Relays running by command and family pair (`connect v4-v6`). */
    readonly activeByCommandAndFamilies: Readonly<Record<string, number>>;
    /** Finished connections by family pair. */
    readonly finishedByFamilies: Readonly<Record<string, number>>;
    /** Finished connections by command. */
    readonly finishedByCommand: Readonly<Record<string, number>>;
    /** Finished connections by outcome. */
    readonly finishedByOutcome: Readonly<Record<string, number>>;
  };
  /** Bytes relayed, totals. */
  readonly bytes: { readonly up: number; readonly down: number };
  /** SOCKS replies sent, by REP code. */
  readonly replies: readonly {
    readonly code: number;
    readonly name: string;
    readonly count: number;
  }[];
  /** Refusals by reason (limits, failed logins, dropped datagrams, rule denials). */
  readonly refusals: Readonly<Record<string, number>>;
  /** Hop alternatives with their state. */
  readonly hops: readonly {
    readonly route: number;
    readonly hop: number;
    readonly alternatives: readonly AlternativeStatus[];
  }[];
  /** Resolver cache and lookups. */
  readonly resolver: {
    readonly cacheEntries: number;
    readonly inflight: number;
    readonly hits: number;
    readonly misses: number;
    readonly queries: number;
  };
  /** Sessions handled by protocol translators. */
  readonly translators: { readonly sessions: number };
  /**
   * Per-user figures: every `dualgate_user_*` family with a `user` label, as columns (metric
   * name without the prefix, other labels appended), one row per user.
   */
  readonly users: {
    readonly columns: readonly string[];
    readonly rows: readonly { readonly user: string; readonly values: readonly number[] }[];
  };
  /** Chart points, oldest first, one per sampling interval. */
  readonly history: readonly HistoryPoint[];
}

/** What {@linkcode buildStatus} reads. */
export interface StatusSources {
  /** The metric snapshot (merged across workers). */
  readonly metrics: readonly MetricSnapshot[];
  /** Each answering isolate's live state. */
  readonly live: readonly LiveStatus[];
  /** The history ring's samples, oldest first. */
  readonly history: readonly HistorySample[];
  /** Configured workers. */
  readonly workers: number;
  /** Wall clock now, ms since the epoch. */
  readonly now: number;
}

/** RFC 1928 reply names as the page shows them: SOCKS5's, the two longest shortened. */
const REPLY_NAMES: Readonly<Record<number, string>> = {
  ...SOCKS_REPLY_NAMES,
  [Reply.GeneralFailure]: "general failure",
  [Reply.NotAllowedByRuleset]: "not allowed by ruleset",
};

/** The four family pairs, always shown. */
export const FAMILY_PAIRS: readonly string[] = ["v4-v4", "v4-v6", "v6-v4", "v6-v6"];

const USER_PREFIX = "dualgate_user_";

type Plain = MetricSnapshot & { type: "counter" | "gauge" };

function family(metrics: readonly MetricSnapshot[], name: string): Plain | undefined {
  const found = metrics.find((m) => m.name === name);
  return found && found.type !== "histogram" ? found : undefined;
}

/** Sums a family's series by the values of some labels, joined with a space. */
function sumBy(
  metrics: readonly MetricSnapshot[],
  name: string,
  labels: readonly string[],
  into: Record<string, number> = {},
): Record<string, number> {
  const found = family(metrics, name);
  if (!found) return into;
  const at = labels.map((label) => found.labelNames.indexOf(label));
  for (const series of found.series) {
    if (at.some((i) => i < 0)) continue;
    const key = at.map((i) => series.values[i]!).join(" ");
    into[key] = (into[key] ?? 0) + series.value;
  }
  return into;
}

function total(metrics: readonly MetricSnapshot[], name: string): number {
  return family(metrics, name)?.series.reduce((sum, s) => sum + s.value, 0) ?? 0;
}

function withPairs(counts: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of FAMILY_PAIRS) out[pair] = counts[pair] ?? 0;
  for (const [key, value] of Object.entries(counts)) if (!(key in out)) out[key] = value;
  return out;
}

function historyPoints(samples: readonly HistorySample[]): HistoryPoint[] {
  const points: HistoryPoint[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const seconds = (b.at - a.at) / 1000;
    if (!(seconds > 0)) continue;
    // A counter that went down (a worker restarted) gives no negative rate.
    const rate = (x: number, y: number) => Math.max(0, y - x) / seconds;
    points.push({
      at: b.at,
      upPerSecond: rate(a.bytesUp, b.bytesUp),
      downPerSecond: rate(a.bytesDown, b.bytesDown),
      connectionsPerSecond: rate(a.connections, b.connections),
      active: b.active,
    });
  }
  return points;
}

function mergeHops(live: readonly LiveStatus[], now: number): Status["hops"] {
  const first = live[0];
  if (!first) return [];
  return first.hops.map((hop, h) => ({
    route: hop.route,
    hop: hop.hop,
    alternatives: hop.alternatives.map((alternative, a) => {
      const seen = live.map((l) => l.hops[h]?.alternatives[a]).filter((x) => x !== undefined);
      const marked = seen.filter((x) => x.down);
      // Marked: since the earliest mark still standing; up: since the latest change.
      const spans = (marked.length > 0 ? marked : seen).map((x) => x.forMs)
        .filter((x): x is number => x !== null);
      const forMs = spans.length === 0
        ? null
        : marked.length > 0
        ? Math.max(...spans)
        : Math.min(...spans);
      return {
        label: alternative.label,
        state: marked.length > 0 ? "marked" : "up",
        since: forMs === null ? null : new Date(now - forMs).toISOString(),
        markedIn: marked.length,
      };
    }),
  }));
}

function userFigures(metrics: readonly MetricSnapshot[]): Status["users"] {
  const columns: string[] = [];
  const rows = new Map<string, Map<number, number>>();
  for (const m of metrics) {
    if (!m.name.startsWith(USER_PREFIX) || m.type === "histogram") continue;
    const userAt = m.labelNames.indexOf("user");
    if (userAt < 0) continue;
    const base = m.name.slice(USER_PREFIX.length);
    for (const series of m.series) {
      const rest = m.labelNames.flatMap((label, i) =>
        i === userAt ? [] : [`${label}=${series.values[i]}`]
      );
      const column = rest.length > 0 ? `${base} ${rest.join(",")}` : base;
      let index = columns.indexOf(column);
      if (index < 0) index = columns.push(column) - 1;
      const user = series.values[userAt]!;
      let row = rows.get(user);
      if (!row) rows.set(user, row = new Map());
      row.set(index, (row.get(index) ?? 0) + series.value);
    }
  }
  return {
    columns,
    rows: [...rows.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map((
      [user, row],
    ) => ({ user, values: columns.map((_, i) => row.get(i) ?? 0) })),
  };
}

/**
 * Builds the status from its sources. Pure: the same sources give the same status.
 *
 * @example
 * ```ts
 * import { buildStatus } from "./status.ts";
 * import { GatewayMetrics } from "./metrics.ts";
 *
 * const metrics = new GatewayMetrics();
 * metrics.activeFamilies.inc(["connect", "v4-v6"]);
 * const status = buildStatus({
 *   metrics: metrics.snapshot(),
 *   live: [{ hops: [], resolverCache: 0, resolverInflight: 0 }],
 *   history: [],
 *   workers: 1,
 *   now: 0,
 * });
 * if (status.connections.activeByFamilies["v4-v6"] !== 1) throw new Error();
 * ```
 */
export function buildStatus(sources: StatusSources): Status {
  const { metrics, live, now } = sources;
  const refusals = sumBy(metrics, "dualgate_limit_rejections_total", ["limit"]);
  const authFailures = total(metrics, "dualgate_auth_failures_total");
  if (authFailures > 0) refusals["auth_failed"] = authFailures;
  const denied = sumBy(metrics, "dualgate_replies_total", ["rep"])["2"] ?? 0;
  if (denied > 0) refusals["rules (REP 2)"] = denied;
  for (
    const [reason, count] of Object.entries(
      sumBy(metrics, "dualgate_udp_dropped_total", ["reason"]),
    )
  ) {
    refusals[`udp ${reason}`] = count;
  }
  const replies = Object.entries(sumBy(metrics, "dualgate_replies_total", ["rep"]))
    .map(([code, count]) => ({
      code: Number(code),
      name: REPLY_NAMES[Number(code)] ?? "unassigned",
      count,
    }))
    .sort((a, b) => a.code - b.code);
  const bytes = sumBy(metrics, "dualgate_bytes_total", ["direction"]);
  const max = family(metrics, "dualgate_max_connections");
  return {
    generatedAt: new Date(now).toISOString(),
    workers: {
      count: sources.workers,
      answered: live.length,
      connections: sumBy(metrics, "dualgate_worker_connections_total", ["worker"]),
    },
    connections: {
      active: total(metrics, "dualgate_active_connections"),
      max: max ? max.series.reduce((sum, s) => sum + s.value, 0) : null,
      activeByFamilies: withPairs(sumBy(metrics, "dualgate_active_families", ["families"])),
      activeByCommand: sumBy(metrics, "dualgate_active_relays", ["command"]),
      activeByCommandAndFamilies: sumBy(metrics, "dualgate_active_families", [
        "command",
        "families",
      ]),
      finishedByFamilies: withPairs(sumBy(metrics, "dualgate_connections_total", ["families"])),
      finishedByCommand: sumBy(metrics, "dualgate_connections_total", ["command"]),
      finishedByOutcome: sumBy(metrics, "dualgate_connections_total", ["outcome"]),
    },
    bytes: { up: bytes["up"] ?? 0, down: bytes["down"] ?? 0 },
    replies,
    refusals,
    hops: mergeHops(live, now),
    resolver: {
      cacheEntries: live.reduce((sum, l) => sum + l.resolverCache, 0),
      inflight: live.reduce((sum, l) => sum + l.resolverInflight, 0),
      hits: total(metrics, "dualgate_resolver_cache_hits_total"),
      misses: total(metrics, "dualgate_resolver_cache_misses_total"),
      queries: total(metrics, "dualgate_resolver_queries_total"),
    },
    translators: { sessions: total(metrics, "dualgate_translator_sessions_total") },
    users: userFigures(metrics),
    history: historyPoints(sources.history),
  };
}

/**
 * The history sample of a (merged) metric snapshot and the isolates' live states taken at `at`:
 * bytes of finished relays plus what running ones moved so far.
 */
export function sampleOf(
  metrics: readonly MetricSnapshot[],
  live: readonly LiveStatus[],
  at: number,
): HistorySample {
  const bytes = sumBy(metrics, "dualgate_bytes_total", ["direction"]);
  const running = (direction: "up" | "down") =>
    live.reduce((sum, l) => sum + (l.runningBytes?.[direction] ?? 0), 0);
  return {
    at,
    bytesUp: (bytes["up"] ?? 0) + running("up"),
    bytesDown: (bytes["down"] ?? 0) + running("down"),
    connections: total(metrics, "dualgate_connections_total"),
    active: total(metrics, "dualgate_active_connections"),
  };
}

/** Options of {@linkcode StatusBoard}. */
export interface StatusBoardOptions {
  /** Gathers the merged metrics and every isolate's live state (null: an isolate did not answer). */
  readonly gather: () => Promise<{ metrics: MetricSnapshot[]; live: LiveStatus[] }>;
  /** Configured workers. @default 1 */
  readonly workers?: number;
  /** Sampling interval of the history ring, in ms. @default 5000 */
  readonly intervalMs?: number;
  /** Samples kept (the charts span `capacity × intervalMs`). @default 120 (10 minutes) */
  readonly capacity?: number;
}

/**
 * The main isolate's status: samples the gathered metrics into the history ring every
 * `intervalMs` (the timer does not keep the process alive) and builds {@linkcode Status} on
 * request. {@linkcode StatusBoard.close} stops the sampling.
 */
export class StatusBoard {
  readonly #options: StatusBoardOptions;
  readonly #history: StatusHistory;
  readonly #timer: ReturnType<typeof setInterval>;
  #sampling = false;

  /** Starts sampling; the first sample is taken at once. */
  constructor(options: StatusBoardOptions) {
    this.#options = options;
    this.#history = new StatusHistory(options.capacity ?? 120);
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), options.intervalMs ?? 5000);
    Deno.unrefTimer(Number(this.#timer));
  }

  /** Takes one history sample now (skipped while one is being taken). */
  async sample(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const { metrics, live } = await this.#options.gather();
      this.#history.push(sampleOf(metrics, live, Date.now()));
    } catch {
      /* a failed gather leaves a gap */
    } finally {
      this.#sampling = false;
    }
  }

  /** The status now. */
  async status(): Promise<Status> {
    const { metrics, live } = await this.#options.gather();
    return buildStatus({
      metrics,
      live,
      history: this.#history.samples(),
      workers: this.#options.workers ?? 1,
      now: Date.now(),
    });
  }

  /** Stops sampling. */
  close(): void {
    clearInterval(this.#timer);
  }
}
