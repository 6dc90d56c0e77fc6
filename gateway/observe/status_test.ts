import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { GatewayMetrics, Registry } from "./metrics.ts";
import { buildStatus, type LiveStatus, sampleOf, StatusHistory } from "./status.ts";

const NO_LIVE: LiveStatus = { hops: [], resolverCache: 0, resolverInflight: 0 };

function client(text: string) {
  return { address: parseIp(text)!, port: 40000 };
}

Deno.test("buildStatus() counts relays now by family pair and command, all four pairs shown", () => {
  const metrics = new GatewayMetrics({ activeConnections: () => 3, maxConnections: 100 });
  metrics.activeRelays.inc(["connect"], 2);
  metrics.activeRelays.inc(["udp"]);
  metrics.activeFamilies.inc(["connect", "v4-v6"]);
  metrics.activeFamilies.inc(["connect", "v6-v4"]);
  metrics.recordConnection({
    client: client("192.0.2.1"),
    used: client("2001:db8::1"),
    command: "connect",
    outcome: "relayed",
    reply: 0,
    bytesUp: 10,
    bytesDown: 20,
    startedAt: 0,
  });
  const status = buildStatus({
    metrics: metrics.snapshot(),
    live: [NO_LIVE],
    history: [],
    workers: 1,
    now: Date.UTC(2026, 0, 1),
  });
  assert.equal(status.generatedAt, "2026-01-01T00:00:00.000Z");
  assert.deepEqual(status.connections.activeByFamilies, {
    "v4-v4": 0,
    "v4-v6": 1,
    "v6-v4": 1,
    "v6-v6": 0,
  });
  assert.deepEqual(status.connections.activeByCommand, { connect: 2, udp: 1 });
  assert.deepEqual(status.connections.activeByCommandAndFamilies, {
    "connect v4-v6": 1,
    "connect v6-v4": 1,
  });
  assert.equal(status.connections.finishedByFamilies["v4-v6"], 1);
  assert.deepEqual(status.connections.finishedByCommand, { connect: 1 });
  assert.equal(status.connections.active, 3);
  assert.equal(status.connections.max, 100);
  assert.deepEqual(status.bytes, { up: 10, down: 20 });
  assert.deepEqual(status.replies, [{ code: 0, name: "succeeded", count: 1 }]);
});

Deno.test("buildStatus() lists refusals by reason: limits, failed logins, rule denials, UDP drops", () => {
  const metrics = new GatewayMetrics();
  metrics.limitRejections.inc(["per_client"], 4);
  metrics.authFailures.inc();
  metrics.udpDropped.inc(["foreign"], 2);
  metrics.recordConnection({
    client: client("192.0.2.1"),
    command: "connect",
    outcome: "rejected",
    reply: 2,
    startedAt: 0,
  });
  const status = buildStatus({
    metrics: metrics.snapshot(),
    live: [NO_LIVE],
    history: [],
    workers: 1,
    now: 0,
  });
  assert.equal(status.refusals["per_client"], 4);
  assert.equal(status.refusals["global"], 0);
  assert.equal(status.refusals["auth_failed"], 1);
  assert.equal(status.refusals["rules (REP 2)"], 1);
  assert.equal(status.refusals["udp foreign"], 2);
  assert.deepEqual(status.replies, [{ code: 2, name: "not allowed by ruleset", count: 1 }]);
});

Deno.test("buildStatus() merges hop states across isolates: marked in any, since the earliest mark", () => {
  const now = Date.UTC(2026, 0, 1, 12);
  const hop = (down: boolean, forMs: number | null): LiveStatus => ({
    hops: [{
      route: 0,
      hop: 0,
      alternatives: [
        { label: "socks5://192.0.2.1:1080", down, forMs },
        { label: "socks5://192.0.2.2:1080", down: false, forMs: null },
      ],
    }],
    resolverCache: 5,
    resolverInflight: 1,
  });
  const status = buildStatus({
    metrics: [],
    live: [hop(true, 2000), hop(true, 5000), hop(false, 100)],
    history: [],
    workers: 3,
    now,
  });
  const [first, second] = status.hops[0]!.alternatives;
  assert.deepEqual(first, {
    label: "socks5://192.0.2.1:1080",
    state: "marked",
    since: new Date(now - 5000).toISOString(),
    markedIn: 2,
  });
  assert.deepEqual(second, {
    label: "socks5://192.0.2.2:1080",
    state: "up",
    since: null,
    markedIn: 0,
  });
  assert.equal(status.resolver.cacheEntries, 15);
  assert.equal(status.resolver.inflight, 3);
  assert.deepEqual(status.workers, { count: 3, answered: 3, connections: {} });
});

Deno.test("buildStatus() shows every dualgate_user_* family with a user label, generically", () => {
  const registry = new Registry();
  registry.counter("dualgate_user_bytes_total", "", ["user", "direction"]).inc(
    ["alice", "up"],
    7,
  );
  const connections = registry.counter("dualgate_user_connections_total", "", ["user"]);
  connections.inc(["bob"], 2);
  connections.inc(["alice"], 1);
  registry.counter("dualgate_user_unlabelled_total", "").inc();
  const status = buildStatus({
    metrics: registry.snapshot(),
    live: [NO_LIVE],
    history: [],
    workers: 1,
    now: 0,
  });
  assert.deepEqual(status.users, {
    columns: ["bytes_total direction=up", "connections_total"],
    rows: [{ user: "alice", values: [7, 1] }, { user: "bob", values: [0, 2] }],
  });
});

Deno.test("buildStatus() turns the history ring into rates; StatusHistory stays bounded", () => {
  const history = new StatusHistory(3);
  const metrics = new GatewayMetrics({ activeConnections: () => 1 });
  for (let i = 0; i < 5; i++) {
    metrics.bytes.inc(["up"], 1000);
    metrics.bytes.inc(["down"], 5000);
    metrics.connections.inc(["connect", "v4-v4", "relayed"], 10);
    history.push(sampleOf(metrics.snapshot(), [NO_LIVE], i * 5000));
  }
  assert.equal(history.samples().length, 3);
  const status = buildStatus({
    metrics: metrics.snapshot(),
    live: [NO_LIVE],
    history: history.samples(),
    workers: 1,
    now: 0,
  });
  assert.deepEqual(status.history, [
    { at: 15000, upPerSecond: 200, downPerSecond: 1000, connectionsPerSecond: 2, active: 1 },
    { at: 20000, upPerSecond: 200, downPerSecond: 1000, connectionsPerSecond: 2, active: 1 },
  ]);
});

Deno.test("sampleOf() adds the bytes running relays moved so far to the finished ones", () => {
  const metrics = new GatewayMetrics();
  metrics.bytes.inc(["up"], 100);
  const live = (up: number, down: number): LiveStatus => ({
    ...NO_LIVE,
    runningBytes: { up, down },
  });
  assert.deepEqual(sampleOf(metrics.snapshot(), [live(10, 20), live(1, 2)], 7), {
    at: 7,
    bytesUp: 111,
    bytesDown: 22,
    connections: 0,
    active: 0,
  });
});
