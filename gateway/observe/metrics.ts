/**
 * Prometheus metrics: counters, gauges and histograms rendered in the text exposition format
 * (version 0.0.4), and the gateway's own metric set.
 *
 * Nothing here runs per relayed chunk: connections are counted from their finished
 * {@linkcode ConnectionRecord} (bytes included), active relays by increment and decrement, and
 * resolver and connection-table figures are read at scrape time.
 *
 * @module
 */

import type { ConnectionRecord } from "./connection_log.ts";

/** Content type of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Histogram bucket upper bounds for handshake and connect latency, in seconds. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** Escapes a label value: backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/** Formats a sample value as the exposition format expects (`+Inf`, `-Inf`, `NaN`). */
export function formatSampleValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return "{" + names.map((name, i) => `${name}="${escapeLabelValue(values[i] ?? "")}"`).join(",") +
    "}";
}

/** Something the registry renders. */
interface Rendered {
  readonly name: string;
  render(out: string[]): void;
  snapshot(): MetricSnapshot;
}

/** One series of a counter or gauge in a {@linkcode MetricSnapshot}. */
export interface SampleSnapshot {
  /** Label values, in the family's label-name order. */
  readonly values: readonly string[];
  /** The value. */
  readonly value: number;
}

/** One series of a histogram in a {@linkcode MetricSnapshot}. */
export interface HistogramSampleSnapshot {
  /** Label values, in the family's label-name order (without `le`). */
  readonly values: readonly string[];
  /** Per-bucket (non-cumulative) counts, one per bound. */
  readonly counts: readonly number[];
  /** Sum of the observations. */
  readonly sum: number;
  /** Number of observations. */
  readonly count: number;
}

/**
 * One metric family as plain, structured-cloneable data: what a worker isolate sends to the
 * main isolate, which merges them ({@linkcode mergeSnapshots}) and renders once
 * ({@linkcode renderSnapshot}).
 */
export type MetricSnapshot =
  | {
    readonly type: "counter" | "gauge";
    readonly name: string;
    readonly help: string;
    readonly labelNames: readonly string[];
    readonly series: readonly SampleSnapshot[];
  }
  | {
    readonly type: "histogram";
    readonly name: string;
    readonly help: string;
    readonly labelNames: readonly string[];
    /** Bucket upper bounds, ascending. */
    readonly bounds: readonly number[];
    readonly series: readonly HistogramSampleSnapshot[];
  };

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}

/** One series of a labelled family: its rendered label set and value. */
interface Series {
  readonly labels: string;
  readonly values: readonly string[];
  value: number;
}

/**
 * The key of a series in its family's map.
 *
 * @throws {RangeError} `Cannot <action>` when `values` do not match the family's label names.
 */
function seriesKey(
  action: string,
  labelNames: readonly string[],
  values: readonly string[],
): string {
  if (values.length !== labelNames.length) {
    throw new RangeError(
      `Cannot ${action}: expected ${labelNames.length} label values, got ${values.length}`,
    );
  }
  return values.join("\u0000");
}

abstract class LabelledFamily implements Rendered {
  readonly #series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected series(values: readonly string[]): Series {
    const key = seriesKey(`update ${this.name}`, this.labelNames, values);
    let found = this.#series.get(key);
    if (!found) {
      found = { labels: labelText(this.labelNames, values), values: [...values], value: 0 };
      this.#series.set(key, found);
    }
    return found;
  }

  /** The current value of one series (0 when never touched). */
  value(...values: string[]): number {
    return this.#series.get(values.join("\u0000"))?.value ?? 0;
  }

  protected abstract readonly type: "counter" | "gauge";

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    if (this.labelNames.length === 0 && this.#series.size === 0) {
      out.push(`${this.name} 0`);
    }
    for (const series of this.#series.values()) {
      out.push(`${this.name}${series.labels} ${formatSampleValue(series.value)}`);
    }
  }

  snapshot(): MetricSnapshot {
    const series = [...this.#series.values()].map(({ values, value }) => ({ values, value }));
    if (this.labelNames.length === 0 && series.length === 0) series.push({ values: [], value: 0 });
    return {
      type: this.type,
      name: this.name,
      help: this.help,
      labelNames: this.labelNames,
      series,
    };
  }
}

/** A counter family; series appear on first increment (an unlabelled counter starts at 0). */
export class Counter extends LabelledFamily {
  protected readonly type = "counter";

  /** Adds `by` (default 1, never negative) to the series with these label values. */
  inc(values: readonly string[] = [], by = 1): void {
    if (!(by >= 0)) throw new RangeError(`Cannot increment ${this.name}: ${by} is negative`);
    this.series(values).value += by;
  }
}

/** A gauge family, moved by increments and decrements. */
export class Gauge extends LabelledFamily {
  protected readonly type = "gauge";

  /** Adds `by` (default 1) to the series with these label values. */
  inc(values: readonly string[] = [], by = 1): void {
    this.series(values).value += by;
  }

  /** Subtracts `by` (default 1) from the series with these label values. */
  dec(values: readonly string[] = [], by = 1): void {
    this.series(values).value -= by;
  }
}

/** A histogram series: per-bucket (non-cumulative) counts, sum and count. */
interface HistogramSeries {
  readonly labels: readonly string[];
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A histogram family with fixed bucket upper bounds. */
export class Histogram implements Rendered {
  readonly #series = new Map<string, HistogramSeries>();
  readonly #bounds: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    this.#bounds = [...buckets].sort((a, b) => a - b);
  }

  /** Records one observation. */
  observe(values: readonly string[], value: number): void {
    const key = seriesKey(`observe ${this.name}`, this.labelNames, values);
    let series = this.#series.get(key);
    if (!series) {
      series = {
        labels: [...values],
        counts: new Array(this.#bounds.length).fill(0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, series);
    }
    let i = 0;
    while (i < this.#bounds.length && value > this.#bounds[i]!) i++;
    if (i < this.#bounds.length) series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  /** Observations so far in the series with these label values. */
  count(...values: string[]): number {
    return this.#series.get(values.join("\u0000"))?.count ?? 0;
  }

  render(out: string[]): void {
    renderHistogram(out, this.snapshot() as MetricSnapshot & { type: "histogram" });
  }

  snapshot(): MetricSnapshot {
    return {
      type: "histogram",
      name: this.name,
      help: this.help,
      labelNames: this.labelNames,
      bounds: this.#bounds,
      series: [...this.#series.values()].map((series) => ({
        values: series.labels,
        counts: [...series.counts],
        sum: series.sum,
        count: series.count,
      })),
    };
  }
}

function renderHistogram(out: string[], family: MetricSnapshot & { type: "histogram" }): void {
  const { name, labelNames, bounds } = family;
  header(out, name, family.help, "histogram");
  const names = [...labelNames, "le"];
  for (const series of family.series) {
    let cumulative = 0;
    bounds.forEach((bound, i) => {
      cumulative += series.counts[i] ?? 0;
      out.push(
        `${name}_bucket${
          labelText(names, [...series.values, formatSampleValue(bound)])
        } ${cumulative}`,
      );
    });
    out.push(`${name}_bucket${labelText(names, [...series.values, "+Inf"])} ${series.count}`);
    const plain = labelText(labelNames, series.values);
    out.push(`${name}_sum${plain} ${formatSampleValue(series.sum)}`);
    out.push(`${name}_count${plain} ${series.count}`);
  }
}

/** A value read at scrape time (a counter or gauge kept elsewhere). */
class Collected implements Rendered {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    readonly read: () => number,
  ) {}

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    out.push(`${this.name} ${formatSampleValue(this.read())}`);
  }

  snapshot(): MetricSnapshot {
    return {
      type: this.type,
      name: this.name,
      help: this.help,
      labelNames: [],
      series: [{ values: [], value: this.read() }],
    };
  }
}

/** A set of metrics rendered together. Names must be unique. */
export class Registry {
  readonly #metrics = new Map<string, Rendered>();

  #add<T extends Rendered>(metric: T, labelNames: readonly string[] = []): T {
    if (!NAME.test(metric.name)) {
      throw new RangeError(`Cannot register metric: "${metric.name}" is not a valid name`);
    }
    for (const label of labelNames) {
      if (!LABEL.test(label) || label.startsWith("__") || label === "le") {
        throw new RangeError(`Cannot register ${metric.name}: "${label}" is not a valid label`);
      }
    }
    if (this.#metrics.has(metric.name)) {
      throw new RangeError(`Cannot register metric: "${metric.name}" is registered already`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** Registers a counter. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames), labelNames);
  }

  /** Registers a gauge. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames), labelNames);
  }

  /** Registers a histogram with the given bucket upper bounds. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets), labelNames);
  }

  /** Registers an unlabelled value read at scrape time. */
  collect(name: string, help: string, type: "counter" | "gauge", read: () => number): void {
    this.#add(new Collected(name, help, type, read));
  }

  /** Renders every metric in registration order, in the text exposition format. */
  render(): string {
    const out: string[] = [];
    for (const metric of this.#metrics.values()) metric.render(out);
    return out.join("\n") + "\n";
  }

  /** Every metric in registration order as plain data (values read now). */
  snapshot(): MetricSnapshot[] {
    return [...this.#metrics.values()].map((metric) => metric.snapshot());
  }
}

/**
 * Merges snapshots of registries with the same metrics (one per worker isolate): series with
 * the same label values are summed, counters, gauges and histograms alike (a gauge such as
 * active connections is a total over the isolates). Families keep their first-seen order.
 *
 * @throws {RangeError} when one name has different types, label names or bucket bounds.
 */
export function mergeSnapshots(
  snapshots: readonly (readonly MetricSnapshot[])[],
): MetricSnapshot[] {
  type Merged = {
    family: MetricSnapshot;
    samples: Map<string, { values: readonly string[]; value: number }>;
    histograms: Map<
      string,
      { values: readonly string[]; counts: number[]; sum: number; count: number }
    >;
  };
  const merged = new Map<string, Merged>();
  for (const snapshot of snapshots) {
    for (const family of snapshot) {
      let entry = merged.get(family.name);
      if (!entry) {
        entry = { family, samples: new Map(), histograms: new Map() };
        merged.set(family.name, entry);
      } else if (
        entry.family.type !== family.type ||
        entry.family.labelNames.join(",") !== family.labelNames.join(",") ||
        (family.type === "histogram" && entry.family.type === "histogram" &&
          entry.family.bounds.join(",") !== family.bounds.join(","))
      ) {
        throw new RangeError(`Cannot merge ${family.name}: the snapshots define it differently`);
      }
      if (family.type === "histogram") {
        for (const series of family.series) {
          const key = series.values.join("\u0000");
          const found = entry.histograms.get(key);
          if (!found) {
            entry.histograms.set(key, { ...series, counts: [...series.counts] });
            continue;
          }
          series.counts.forEach((count, i) => found.counts[i] = (found.counts[i] ?? 0) + count);
          found.sum += series.sum;
          found.count += series.count;
        }
      } else {
        for (const series of family.series) {
          const key = series.values.join("\u0000");
          const found = entry.samples.get(key);
          if (found) found.value += series.value;
          else entry.samples.set(key, { ...series });
        }
      }
    }
  }
  return [...merged.values()].map(({ family, samples, histograms }) =>
    family.type === "histogram"
      ? { ...family, series: [...histograms.values()] }
      : { ...family, series: [...samples.values()] }
  );
}

/** Renders snapshots (merged or not) in the text exposition format, as a registry would. */
export function renderSnapshot(snapshot: readonly MetricSnapshot[]): string {
  const out: string[] = [];
  for (const family of snapshot) {
    if (family.type === "histogram") {
      renderHistogram(out, family);
      continue;
    }
    header(out, family.name, family.help, family.type);
    for (const series of family.series) {
      out.push(
        `${family.name}${labelText(family.labelNames, series.values)} ${
          formatSampleValue(series.value)
        }`,
      );
    }
  }
  return out.join("\n") + "\n";
}

/** Which connection limit refused a client. */
export type LimitName =
  | "global"
  | "per_client"
  | "auth_failures"
  | "auth_busy"
  | "untrusted_proxy";

const LIMIT_NAMES = [
  "global",
  "per_client",
  "auth_failures",
  "auth_busy",
  "untrusted_proxy",
] as const satisfies readonly LimitName[];

/** What the gateway's metrics read at scrape time. */
export interface GatewayMetricsOptions {
  /** Resolver counters (`Resolver.stats`). @default none: the resolver metrics are left out */
  resolverStats?: ResolverStats;
  /** Client connections being served. @default none: the gauge is left out */
  activeConnections?: () => number;
  /** The effective connection limit (read at scrape time when a function). @default none: the gauge is left out */
  maxConnections?: number | (() => number);
  /** scrypt password checks (`PasswordVerifier`). @default none: the metrics are left out */
  passwordStats?: PasswordStats;
  /**
   * The configured users: the per-user series start at 0 for each, plus the anonymous `-`.
   * @default none (series appear as records arrive)
   */
  users?: readonly string[];
}

/** The `user` label of records without an authenticated user. */
export const ANONYMOUS_USER_LABEL = "-";

/** Why a user's connection was refused, as the `reason` label says. */
const USER_REFUSALS = ["max_connections", "quota", "rules", "login"] as const;

/**
 * The per-user refusal reason of a record, or `undefined`: a per-user limit (`refusal`), a
 * failed login of a configured user (`login`), or a REP 2 from the rules (`rules`).
 */
export function userRefusalOf(
  record: ConnectionRecord,
): (typeof USER_REFUSALS)[number] | undefined {
  if (record.refusal !== undefined) return record.refusal;
  if (record.outcome !== "rejected") return undefined;
  if (record.user !== undefined && record.command === undefined && record.target === undefined) {
    return "login";
  }
  return record.reply === 2 ? "rules" : undefined;
}

/** The resolver's counts, read at scrape time. */
export interface ResolverStats {
  /** Lookups answered from the cache. */
  readonly hits: number;
  /** Lookups not in the cache. */
  readonly misses: number;
  /** DNS queries sent. */
  readonly queries: number;
}

/** The scrypt queue's counts, read at scrape time. */
export interface PasswordStats {
  /** Checks run. */
  readonly hashes: number;
  /** Most checks that ran at once. */
  readonly peak: number;
  /** Checks allowed at once. */
  readonly slots: number;
}

/** A figure read at scrape time from a stats object: name, help, type (counter unless given). */
type ScrapedFigure = readonly [name: string, help: string, type?: "gauge"];

/** The resolver's cache and query counts, by field of `resolverStats`. */
const RESOLVER_FIGURES: Record<keyof ResolverStats, ScrapedFigure> = {
  hits: ["dualgate_resolver_cache_hits_total", "Resolver lookups answered from the cache."],
  misses: ["dualgate_resolver_cache_misses_total", "Resolver lookups not in the cache."],
  queries: ["dualgate_resolver_queries_total", "DNS queries sent by the resolver."],
};

/** The scrypt queue's figures, by field of `passwordStats`. */
const PASSWORD_FIGURES: Record<keyof PasswordStats, ScrapedFigure> = {
  hashes: [
    "dualgate_password_hashes_total",
    "scrypt password checks run (an unknown user's check against the dummy included).",
  ],
  peak: ["dualgate_password_hashes_peak", "Most scrypt password checks that ran at once.", "gauge"],
  slots: ["dualgate_password_hash_slots", "scrypt password checks allowed at once.", "gauge"],
};

/** Registers one figure per field of `stats`, read at scrape time, in `figures`' order. */
function collectFields<K extends string>(
  r: Registry,
  stats: Readonly<Record<K, number>>,
  figures: Record<K, ScrapedFigure>,
): void {
  for (const field of Object.keys(figures) as K[]) {
    const [name, help, type = "counter"] = figures[field];
    r.collect(name, help, type, () => stats[field]);
  }
}

/** The `v4-v6` family pair label of a record (`none` for a destination never reached). */
export function familiesLabel(record: ConnectionRecord): string {
  return familyPair(record.client, record.used);
}

/**
 * The `v4-v6` family pair of a client and the destination it reached (`v4-none` when it reached
 * none).
 */
export function familyPair(
  client: { readonly address: { readonly family: 4 | 6 } },
  used: { readonly address: { readonly family: 4 | 6 } } | undefined,
): string {
  return `v${client.address.family}-${used ? `v${used.address.family}` : "none"}`;
}

/**
 * The gateway's metric set: see the README's "Metrics" section for the names.
 *
 * @example Count a finished connection and render the exposition
 * ```ts
 * import { GatewayMetrics } from "./metrics.ts";
 *
 * const metrics = new GatewayMetrics();
 * metrics.recordConnection({
 *   client: { address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) }, port: 40000 },
 *   command: "connect",
 *   outcome: "rejected",
 *   reply: 5,
 *   startedAt: 0,
 * });
 * if (!metrics.render().includes('dualgate_replies_total{rep="5"} 1')) throw new Error();
 * ```
 */
export class GatewayMetrics {
  /** The registry behind {@linkcode GatewayMetrics.render}. */
  readonly registry: Registry = new Registry();
  /** Finished connections by command (`none`: no request read), family pair and outcome. */
  readonly connections: Counter;
  /** Relays (CONNECT, BIND) and UDP associations in progress, by command. */
  readonly activeRelays: Gauge;
  /** Relays in progress by command and family pair (`v4-v6`: IPv4 client, IPv6 destination). */
  readonly activeFamilies: Gauge;
  /** Bytes relayed, `up` (client to destination) and `down`. */
  readonly bytes: Counter;
  /** Replies sent, by REP code. */
  readonly replies: Counter;
  /** Accept to request read, for clients whose handshake succeeded. */
  readonly handshakeSeconds: Histogram;
  /** Outbound dial time of CONNECTs, by result (`succeeded`, `failed`). */
  readonly connectSeconds: Histogram;
  /**
   * Sessions handled by a protocol translator. Counted from connection records that name a
   * `translator` (what `connect.ts` writes); translators need not increment it themselves.
   */
  readonly translatorSessions: Counter;
  /** Clients closed right after accept by a limit. */
  readonly limitRejections: Counter;
  /** Failed RFC 1929 logins. */
  readonly authFailures: Counter;
  /** Failed `accept` calls (for instance out of file descriptors). */
  readonly acceptErrors: Counter;
  /** UDP datagrams not relayed, by reason (`foreign`: not from the association's owner). */
  readonly udpDropped: Counter;
  /** Bytes relayed per user (`-`: anonymous) and direction. */
  readonly userBytes: Counter;
  /** Sessions past the handshake per user. */
  readonly userConnections: Counter;
  /** Refusals per user and reason (`max_connections`, `quota`, `rules`, `login`). */
  readonly userRefusals: Counter;
  /** The config generation in force: 1 at start, one more per accepted reload. */
  configGeneration = 1;
  /** Config reloads by result (`accepted`, `refused`: invalid config, `failed`: not applied). */
  readonly reloads: Counter;
  /** Live sessions a reload closed, by reason (`user_removed`, `password_changed`, `recheck`). */
  readonly reloadClosed: Counter;

  /** Creates the metric set; `options` add the figures read at scrape time. */
  constructor(options: GatewayMetricsOptions = {}) {
    const r = this.registry;
    this.connections = r.counter(
      "dualgate_connections_total",
      "Finished client connections by command, family pair (client-destination) and outcome.",
      ["command", "families", "outcome"],
    );
    if (options.activeConnections) {
      r.collect(
        "dualgate_active_connections",
        "Client connections being served.",
        "gauge",
        options.activeConnections,
      );
    }
    if (options.maxConnections !== undefined) {
      const max = options.maxConnections;
      r.collect(
        "dualgate_max_connections",
        "Effective limit of simultaneous client connections.",
        "gauge",
        typeof max === "function" ? max : () => max,
      );
    }
    this.activeRelays = r.gauge(
      "dualgate_active_relays",
      "Core relays (CONNECT, BIND) and UDP associations in progress, by command.",
      ["command"],
    );
    this.activeFamilies = r.gauge(
      "dualgate_active_families",
      "CONNECT and BIND relays in progress, by command and family pair (client-destination).",
      ["command", "families"],
    );
    this.bytes = r.counter(
      "dualgate_bytes_total",
      "Bytes relayed: up is client to destination, down is destination to client.",
      ["direction"],
    );
    this.bytes.inc(["up"], 0);
    this.bytes.inc(["down"], 0);
    this.replies = r.counter("dualgate_replies_total", "SOCKS replies sent, by REP code.", ["rep"]);
    this.handshakeSeconds = r.histogram(
      "dualgate_handshake_duration_seconds",
      "Time from accept to a complete request, for successful handshakes.",
      [],
      LATENCY_BUCKETS,
    );
    this.connectSeconds = r.histogram(
      "dualgate_connect_duration_seconds",
      "Outbound dial time of CONNECT requests, by result.",
      ["result"],
      LATENCY_BUCKETS,
    );
    if (options.resolverStats) collectFields(r, options.resolverStats, RESOLVER_FIGURES);
    this.translatorSessions = r.counter(
      "dualgate_translator_sessions_total",
      "Sessions handled by a protocol translator.",
    );
    this.limitRejections = r.counter(
      "dualgate_limit_rejections_total",
      "Clients refused by a limit: closed at accept (global, per_client, auth_failures, " +
        "untrusted_proxy) or refused a login (auth_failures, auth_busy).",
      ["limit"],
    );
    for (const limit of LIMIT_NAMES) {
      this.limitRejections.inc([limit], 0);
    }
    this.authFailures = r.counter("dualgate_auth_failures_total", "Failed RFC 1929 logins.");
    if (options.passwordStats) collectFields(r, options.passwordStats, PASSWORD_FIGURES);
    this.acceptErrors = r.counter(
      "dualgate_accept_errors_total",
      "Failed accept calls (the listener backs off and retries).",
    );
    this.udpDropped = r.counter(
      "dualgate_udp_dropped_total",
      "UDP ASSOCIATE datagrams not relayed, by reason (foreign: not from the association's owner).",
      ["reason"],
    );
    this.userBytes = r.counter(
      "dualgate_user_bytes_total",
      "Bytes relayed per RFC 1929 user (- for anonymous clients): up is client to destination.",
      ["user", "direction"],
    );
    this.userConnections = r.counter(
      "dualgate_user_connections_total",
      "Finished sessions per RFC 1929 user (- for anonymous clients) whose request was read.",
      ["user"],
    );
    this.userRefusals = r.counter(
      "dualgate_user_refusals_total",
      "Refusals per RFC 1929 user by reason: max_connections and quota (per-user limits, " +
        "REP 2), rules (REP 2), login (a failed login).",
      ["user", "reason"],
    );
    this.seedUsers(options.users ?? []);
    r.collect(
      "dualgate_config_generation",
      "Config generation in force: 1 at start, one more per accepted reload.",
      "gauge",
      () => this.configGeneration,
    );
    this.reloads = r.counter(
      "dualgate_reloads_total",
      "Config reloads (SIGHUP, POST /reload) by result: accepted, refused (invalid), failed.",
      ["result"],
    );
    for (const result of ["accepted", "refused", "failed"]) this.reloads.inc([result], 0);
    this.reloadClosed = r.counter(
      "dualgate_reload_closed_total",
      "Live sessions a reload closed, by reason: user_removed, password_changed, recheck.",
      ["reason"],
    );
    for (const reason of ["user_removed", "password_changed", "recheck"]) {
      this.reloadClosed.inc([reason], 0);
    }
  }

  /**
   * Starts the per-user series of `users` and of the anonymous `-` at 0 (at start, and for the
   * users a reload adds; series already there keep their counts). Bounded by the configured users.
   */
  seedUsers(users: readonly string[]): void {
    for (const user of [...users, ANONYMOUS_USER_LABEL]) {
      this.userBytes.inc([user, "up"], 0);
      this.userBytes.inc([user, "down"], 0);
      this.userConnections.inc([user], 0);
    }
  }

  /** Counts one finished connection from its record. */
  recordConnection(record: ConnectionRecord): void {
    this.connections.inc([record.command ?? "none", familiesLabel(record), record.outcome]);
    if (record.reply !== undefined) this.replies.inc([String(record.reply)]);
    if (record.bytesUp) this.bytes.inc(["up"], record.bytesUp);
    if (record.bytesDown) this.bytes.inc(["down"], record.bytesDown);
    if (record.handshakeMs !== undefined) {
      this.handshakeSeconds.observe([], record.handshakeMs / 1000);
    }
    if (record.connectMs !== undefined) {
      this.connectSeconds.observe(
        [record.used !== undefined ? "succeeded" : "failed"],
        record.connectMs / 1000,
      );
    }
    if (record.translator !== undefined) this.translatorSessions.inc();
    const user = record.user ?? ANONYMOUS_USER_LABEL;
    if (record.bytesUp) this.userBytes.inc([user, "up"], record.bytesUp);
    if (record.bytesDown) this.userBytes.inc([user, "down"], record.bytesDown);
    if (record.command !== undefined || record.target !== undefined) {
      this.userConnections.inc([user]);
    }
    const refusal = userRefusalOf(record);
    if (refusal !== undefined) this.userRefusals.inc([user, refusal]);
  }

  /** Renders the exposition text. */
  render(): string {
    return this.registry.render();
  }

  /** The metrics as plain data, for {@linkcode mergeSnapshots} across worker isolates. */
  snapshot(): MetricSnapshot[] {
    return this.registry.snapshot();
  }
}
