import assert from "node:assert/strict";
import type { ConnectionRecord } from "./connection_log.ts";
import {
  escapeLabelValue,
  formatSampleValue,
  GatewayMetrics,
  LATENCY_BUCKETS,
  mergeSnapshots,
  Registry,
  renderSnapshot,
} from "./metrics.ts";

const V4 = { family: 4 as const, bytes: Uint8Array.of(127, 0, 0, 1) };
const V6 = { family: 6 as const, bytes: Uint8Array.of(...new Array(15).fill(0), 1) };

/** A sample line: name, optional labels, value. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? \S+$/;

function assertWellFormed(text: string): void {
  assert.ok(text.endsWith("\n"));
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    assert.match(line, SAMPLE);
  }
}

Deno.test("escapeLabelValue() escapes backslash, double quote and line feed", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeLabelValue("v4-v6 ✓"), "v4-v6 ✓");
});

Deno.test("formatSampleValue() writes infinities as the exposition format does", () => {
  assert.equal(formatSampleValue(Infinity), "+Inf");
  assert.equal(formatSampleValue(-Infinity), "-Inf");
  assert.equal(formatSampleValue(NaN), "NaN");
  assert.equal(formatSampleValue(0.25), "0.25");
});

Deno.test("Registry.render() writes HELP, TYPE and escaped labelled samples", () => {
  const registry = new Registry();
  const counter = registry.counter("t_total", "A test\ncounter \\ here.", ["k"]);
  counter.inc(['a"b']);
  counter.inc(['a"b'], 2);
  registry.counter("t_empty_total", "Never touched.");
  const gauge = registry.gauge("t_gauge", "A gauge.", ["k"]);
  gauge.inc(["x"]);
  gauge.inc(["x"]);
  gauge.dec(["x"]);
  registry.collect("t_read", "Read at scrape.", "gauge", () => 7);
  const text = registry.render();
  assert.equal(
    text,
    [
      "# HELP t_total A test\\ncounter \\\\ here.",
      "# TYPE t_total counter",
      't_total{k="a\\"b"} 3',
      "# HELP t_empty_total Never touched.",
      "# TYPE t_empty_total counter",
      "t_empty_total 0",
      "# HELP t_gauge A gauge.",
      "# TYPE t_gauge gauge",
      't_gauge{k="x"} 1',
      "# HELP t_read Read at scrape.",
      "# TYPE t_read gauge",
      "t_read 7",
      "",
    ].join("\n"),
  );
  assertWellFormed(text);
  assert.equal(counter.value('a"b'), 3);
});

Deno.test("Histogram.render() writes cumulative buckets, +Inf, sum and count", () => {
  const registry = new Registry();
  const histogram = registry.histogram("t_seconds", "Latency.", ["r"], [0.1, 1]);
  histogram.observe(["ok"], 0.05);
  histogram.observe(["ok"], 0.1);
  histogram.observe(["ok"], 0.5);
  histogram.observe(["ok"], 3);
  const lines = registry.render().trimEnd().split("\n");
  assert.deepEqual(lines.slice(2), [
    't_seconds_bucket{r="ok",le="0.1"} 2',
    't_seconds_bucket{r="ok",le="1"} 3',
    't_seconds_bucket{r="ok",le="+Inf"} 4',
    't_seconds_sum{r="ok"} 3.65',
    't_seconds_count{r="ok"} 4',
  ]);
  assert.equal(histogram.count("ok"), 4);
});

Deno.test("Registry rejects duplicate names, invalid names and reserved labels", () => {
  const registry = new Registry();
  registry.counter("a_total", "A.");
  assert.throws(() => registry.counter("a_total", "Again."), RangeError);
  assert.throws(() => registry.counter("1bad", "Bad."), RangeError);
  assert.throws(() => registry.histogram("h", "H.", ["le"], [1]), RangeError);
  assert.throws(() => registry.counter("b_total", "B.", ["__x"]), RangeError);
  const counter = registry.counter("c_total", "C.", ["k"]);
  assert.throws(() => counter.inc([]), RangeError);
  assert.throws(() => counter.inc(["x"], -1), RangeError);
});

Deno.test("GatewayMetrics.recordConnection() counts connections, replies, bytes and latency", () => {
  const stats = { hits: 0, misses: 0, queries: 0 };
  const metrics = new GatewayMetrics({
    resolverStats: stats,
    activeConnections: () => 3,
    maxConnections: 100,
  });
  const relayed: ConnectionRecord = {
    client: { address: V4, port: 40000 },
    command: "connect",
    used: { address: V6, port: 80 },
    outcome: "relayed",
    reply: 0,
    bytesUp: 10,
    bytesDown: 2000,
    startedAt: 0,
    handshakeMs: 2,
    connectMs: 30,
  };
  metrics.recordConnection(relayed);
  metrics.recordConnection({ ...relayed, bytesUp: 5, bytesDown: 0 });
  metrics.recordConnection({
    client: { address: V6, port: 40001 },
    command: "connect",
    outcome: "rejected",
    reply: 5,
    startedAt: 0,
    handshakeMs: 1,
    connectMs: 1,
  });
  metrics.recordConnection({
    client: { address: V4, port: 40002 },
    outcome: "rejected",
    reason: "authentication failed",
    startedAt: 0,
  });
  metrics.recordConnection({
    ...relayed,
    translator: "ftp",
    reason: "eof",
    bytesUp: 0,
    bytesDown: 0,
  });
  stats.hits = 4;
  stats.queries = 2;

  assert.equal(metrics.connections.value("connect", "v4-v6", "relayed"), 3);
  assert.equal(metrics.connections.value("connect", "v6-none", "rejected"), 1);
  assert.equal(metrics.connections.value("none", "v4-none", "rejected"), 1);
  assert.equal(metrics.replies.value("0"), 3);
  assert.equal(metrics.replies.value("5"), 1);
  assert.equal(metrics.bytes.value("up"), 15);
  assert.equal(metrics.bytes.value("down"), 2000);
  assert.equal(metrics.handshakeSeconds.count(), 4);
  assert.equal(metrics.connectSeconds.count("succeeded"), 3);
  assert.equal(metrics.connectSeconds.count("failed"), 1);
  assert.equal(metrics.translatorSessions.value(), 1);

  const text = metrics.render();
  assertWellFormed(text);
  for (
    const line of [
      'dualgate_connections_total{command="connect",families="v4-v6",outcome="relayed"} 3',
      'dualgate_bytes_total{direction="up"} 15',
      'dualgate_replies_total{rep="5"} 1',
      "dualgate_resolver_cache_hits_total 4",
      "dualgate_resolver_cache_misses_total 0",
      "dualgate_resolver_queries_total 2",
      "dualgate_active_connections 3",
      "dualgate_max_connections 100",
      "dualgate_translator_sessions_total 1",
      'dualgate_limit_rejections_total{limit="auth_failures"} 0',
      "dualgate_accept_errors_total 0",
      'dualgate_handshake_duration_seconds_bucket{le="0.0025"} 4',
      'dualgate_connect_duration_seconds_bucket{result="failed",le="0.001"} 1',
      'dualgate_connect_duration_seconds_bucket{result="succeeded",le="0.05"} 3',
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing line: ${line}\n${text}`);
  }
});

Deno.test("GatewayMetrics latency buckets are increasing and end at 30 s", () => {
  for (let i = 1; i < LATENCY_BUCKETS.length; i++) {
    assert.ok(LATENCY_BUCKETS[i]! > LATENCY_BUCKETS[i - 1]!);
  }
  assert.equal(LATENCY_BUCKETS.at(-1), 30);
});

Deno.test("GatewayMetrics active relays move by increment and decrement", () => {
  const metrics = new GatewayMetrics();
  metrics.activeRelays.inc(["connect"]);
  metrics.activeRelays.inc(["connect"]);
  metrics.activeRelays.dec(["connect"]);
  assert.equal(metrics.activeRelays.value("connect"), 1);
  assert.ok(metrics.render().includes('dualgate_active_relays{command="connect"} 1\n'));
});

Deno.test("renderSnapshot() of a registry's snapshot() renders what render() does", () => {
  const metrics = new GatewayMetrics({
    resolverStats: { hits: 2, misses: 1, queries: 1 },
    activeConnections: () => 3,
    maxConnections: 10,
  });
  metrics.connections.inc(["connect", "v4-v6", "relayed"]);
  metrics.activeRelays.inc(["connect"]);
  metrics.handshakeSeconds.observe([], 0.002);
  metrics.connectSeconds.observe(["failed"], 40);
  assert.equal(renderSnapshot(metrics.snapshot()), metrics.render());
  assert.equal(renderSnapshot(new GatewayMetrics().snapshot()), new GatewayMetrics().render());
});

Deno.test("mergeSnapshots() sums counters, gauges and histograms across registries", () => {
  const make = (active: number) => {
    const metrics = new GatewayMetrics({ activeConnections: () => active, maxConnections: 5 });
    metrics.handshakeSeconds.observe([], 0.002);
    return metrics;
  };
  const a = make(1), b = make(2);
  a.connections.inc(["connect", "v4-v4", "relayed"], 2);
  b.connections.inc(["connect", "v4-v4", "relayed"], 3);
  b.connections.inc(["bind", "v6-v6", "relayed"]);
  a.bytes.inc(["up"], 100);
  b.bytes.inc(["up"], 50);
  b.handshakeSeconds.observe([], 20);
  b.authFailures.inc();
  // Through structured clone, as a worker's snapshot travels.
  const text = renderSnapshot(mergeSnapshots([structuredClone(a.snapshot()), b.snapshot()]));
  assert.match(
    text,
    /^dualgate_connections_total\{command="connect",families="v4-v4",outcome="relayed"\} 5$/m,
  );
  assert.match(
    text,
    /^dualgate_connections_total\{command="bind",families="v6-v6",outcome="relayed"\} 1$/m,
  );
  assert.match(text, /^dualgate_active_connections 3$/m);
  assert.match(text, /^dualgate_max_connections 10$/m);
  assert.match(text, /^dualgate_bytes_total\{direction="up"\} 150$/m);
  assert.match(text, /^dualgate_auth_failures_total 1$/m);
  assert.match(text, /^dualgate_handshake_duration_seconds_bucket\{le="0.0025"\} 2$/m);
  assert.match(text, /^dualgate_handshake_duration_seconds_bucket\{le="10"\} 2$/m);
  assert.match(text, /^dualgate_handshake_duration_seconds_bucket\{le="30"\} 3$/m);
  assert.match(text, /^dualgate_handshake_duration_seconds_count 3$/m);
  assert.match(text, /^dualgate_handshake_duration_seconds_sum 20.00[34]\d*$/m);
  // The inputs are left alone.
  assert.equal(a.connections.value("connect", "v4-v4", "relayed"), 2);
  assert.equal(a.handshakeSeconds.count(), 1);
});

Deno.test("mergeSnapshots() refuses one name defined two ways", () => {
  const a = new Registry(), b = new Registry();
  a.counter("x_total", "x");
  b.gauge("x_total", "x");
  assert.throws(() => mergeSnapshots([a.snapshot(), b.snapshot()]), RangeError);
});
