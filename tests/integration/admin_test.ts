/**
 * The admin listener, metrics and limits, end to end: counters move by exactly what the
 * clients did, limits refuse at once and are counted, `/healthz` turns 503 while draining, and
 * no password reaches the log.
 */
import assert from "node:assert/strict";
import { formatIp, type IpEndpoint, parseIp } from "../../net/address.ts";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import type { SocksReply, SocksTarget } from "../../socks5/types.ts";
import { spawnLocalGateway } from "../helpers/dualgate.ts";
import { httpGet, sampleValue } from "../helpers/http_get.ts";
import {
  connectTo,
  echo,
  readAll,
  readerOf,
  readSocksReply,
  startServer,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const ADMIN = 'admin: { listen: "127.0.0.1:0" }\n';
const HOSTS = `resolver:
  hosts:
    v4.test.example: ["127.0.0.1"]
`;

function target(text: string, port: number): SocksTarget {
  const address = parseIp(text);
  return { address: address ?? { family: "name", name: text }, port };
}

async function scrape(gw: TestGateway): Promise<string> {
  const admin = gw.gateway.adminEndpoint;
  assert.ok(admin, "admin endpoint");
  const response = await httpGet(
    { hostname: formatIp(admin.address), port: admin.port },
    "/metrics",
  );
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return response.body;
}

async function health(endpoint: IpEndpoint): Promise<number> {
  return (await httpGet({ hostname: formatIp(endpoint.address), port: endpoint.port }, "/healthz"))
    .status;
}

/** Greeting (no auth) and request in one write; returns the reply. */
async function socksConnect(
  conn: Deno.TcpConn,
  to: SocksTarget,
): Promise<{ reply: SocksReply; reader: ReturnType<typeof readerOf> }> {
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(conn, encodeRequest({ command: 1, target: to }));
  return { reply: await readSocksReply(reader), reader };
}

/** RFC 1929 login; returns the auth status (0 = success). */
async function login(conn: Deno.TcpConn, username: string, password: string): Promise<number> {
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [2] }));
  assert.equal(await readMethodSelection(reader), 2);
  await writeAll(conn, encodePasswordAuthRequest({ username, password }));
  return await readPasswordAuthReply(reader);
}

/** True when the gateway closes the connection within `ms` without sending anything. */
async function closedAtOnce(conn: Deno.TcpConn, ms = 1000): Promise<boolean> {
  const timer = setTimeout(() => conn.close(), ms);
  try {
    return (await conn.read(new Uint8Array(16))) === null;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionReset;
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Cannot wait: ${what} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function closedPort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

Deno.test("GET /metrics: counters move by exactly a relay, a REP 5 and two REP 4", async () => {
  await using gw = startTestGateway(ADMIN + HOSTS);
  await using server = startServer("127.0.0.1", echo);
  const before = await scrape(gw);
  const delta = (after: string, series: string) =>
    sampleValue(after, series) - sampleValue(before, series);

  {
    using conn = await connectTo(gw.endpoint(4));
    const { reply } = await socksConnect(conn, target("v4.test.example", server.port));
    assert.equal(reply.reply, 0);
    await writeAll(conn, new Uint8Array(100).fill(7));
    await conn.closeWrite();
    assert.equal((await readAll(conn)).length, 100);
  }
  {
    using conn = await connectTo(gw.endpoint(4));
    assert.equal((await socksConnect(conn, target("127.0.0.1", closedPort()))).reply.reply, 5);
  }
  for (let i = 0; i < 2; i++) {
    using conn = await connectTo(gw.endpoint(4));
    assert.equal((await socksConnect(conn, target("nowhere.test.example", 80))).reply.reply, 4);
  }
  await until("4 records", () => gw.records.length === 4);

  const after = await scrape(gw);
  const expected: [string, number][] = [
    ['dualgate_connections_total{command="connect",families="v4-v4",outcome="relayed"}', 1],
    ['dualgate_connections_total{command="connect",families="v4-none",outcome="rejected"}', 3],
    ['dualgate_replies_total{rep="0"}', 1],
    ['dualgate_replies_total{rep="5"}', 1],
    ['dualgate_replies_total{rep="4"}', 2],
    ['dualgate_bytes_total{direction="up"}', 100],
    ['dualgate_bytes_total{direction="down"}', 100],
    ["dualgate_handshake_duration_seconds_count", 4],
    ['dualgate_connect_duration_seconds_count{result="succeeded"}', 1],
    ['dualgate_connect_duration_seconds_count{result="failed"}', 3],
    ["dualgate_resolver_cache_misses_total", 1],
    ["dualgate_resolver_cache_hits_total", 1],
    ['dualgate_limit_rejections_total{limit="global"}', 0],
    ["dualgate_accept_errors_total", 0],
    ["dualgate_translator_sessions_total", 0],
  ];
  for (const [series, moved] of expected) {
    assert.equal(delta(after, series), moved, series);
  }
  assert.ok(delta(after, "dualgate_resolver_queries_total") >= 1);
  assert.equal(sampleValue(after, 'dualgate_active_relays{command="connect"}'), 0);
  assert.equal(sampleValue(after, "dualgate_active_connections"), 0);
  assert.equal(await health(gw.gateway.adminEndpoint!), 200);
});

Deno.test("GET /metrics: an open relay shows in the active gauges", async () => {
  await using gw = startTestGateway(ADMIN);
  await using server = startServer("127.0.0.1", echo);
  using conn = await connectTo(gw.endpoint(6));
  assert.equal((await socksConnect(conn, target("127.0.0.1", server.port))).reply.reply, 0);
  const during = await scrape(gw);
  assert.equal(sampleValue(during, 'dualgate_active_relays{command="connect"}'), 1);
  assert.equal(sampleValue(during, "dualgate_active_connections"), 1);
  await conn.closeWrite();
  await readAll(conn);
  await until("the record", () => gw.records.length === 1);
  const after = await scrape(gw);
  assert.equal(sampleValue(after, 'dualgate_active_relays{command="connect"}'), 0);
  assert.equal(
    sampleValue(
      after,
      'dualgate_connections_total{command="connect",families="v6-v4",outcome="relayed"}',
    ),
    1,
  );
});

Deno.test("connection limits refuse at once and are counted by limit", async () => {
  await using gw = startTestGateway(
    ADMIN + "limits: { max_connections: 3, max_connections_per_client: 2 }\n" +
      "timeouts: { handshake: 30 }\nlog: { level: error }",
  );
  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 2; i++) held.push(await connectTo(gw.endpoint(4)));
    await until("2 active", () => gw.gateway.activeConnections === 2);
    {
      const started = performance.now();
      using refused = await connectTo(gw.endpoint(4));
      assert.ok(await closedAtOnce(refused), "per-client refusal closes");
      assert.ok(performance.now() - started < 500);
    }
    held.push(await connectTo(gw.endpoint(6)));
    await until("3 active", () => gw.gateway.activeConnections === 3);
    {
      using refused = await connectTo(gw.endpoint(6));
      assert.ok(await closedAtOnce(refused), "global refusal closes");
    }
    const text = await scrape(gw);
    assert.equal(sampleValue(text, 'dualgate_limit_rejections_total{limit="per_client"}'), 1);
    assert.equal(sampleValue(text, 'dualgate_limit_rejections_total{limit="global"}'), 1);
    assert.equal(sampleValue(text, 'dualgate_limit_rejections_total{limit="auth_failures"}'), 0);
    assert.equal(sampleValue(text, "dualgate_active_connections"), 3);
  } finally {
    for (const conn of held) conn.close();
  }
  await until("no active", () => gw.gateway.activeConnections === 0);
});

Deno.test("failed logins past auth_failures_per_minute refuse the address, not others", async () => {
  await using gw = startTestGateway(
    ADMIN + "auth:\n  users:\n    - { name: alice, password: right-one }\n" +
      "limits: { auth_failures_per_minute: 2 }\nlog: { level: error }",
  );
  for (let i = 0; i < 2; i++) {
    using conn = await connectTo(gw.endpoint(4));
    assert.equal(await login(conn, "alice", "wrong-one"), 1);
  }
  await until("2 records", () => gw.records.length === 2);
  {
    // Even the right password: the address is refused right after accept.
    using conn = await connectTo(gw.endpoint(4));
    await writeAll(conn, encodeGreeting({ methods: [2] })).catch(() => {});
    assert.ok(await closedAtOnce(conn));
  }
  {
    using conn = await connectTo(gw.endpoint(6));
    assert.equal(await login(conn, "alice", "right-one"), 0);
  }
  const text = await scrape(gw);
  assert.equal(sampleValue(text, "dualgate_auth_failures_total"), 2);
  assert.equal(sampleValue(text, 'dualgate_limit_rejections_total{limit="auth_failures"}'), 1);
});

Deno.test("/healthz is 503 while the gateway drains and closed after it stopped", async () => {
  const gw = startTestGateway(ADMIN);
  await using server = startServer("127.0.0.1", echo);
  const admin = gw.gateway.adminEndpoint!;
  assert.equal(await health(admin), 200);
  using conn = await connectTo(gw.endpoint(4));
  assert.equal((await socksConnect(conn, target("127.0.0.1", server.port))).reply.reply, 0);
  const stopped = gw.gateway.stop(10_000);
  assert.equal(await health(admin), 503);
  await conn.closeWrite();
  await readAll(conn);
  await stopped;
  await assert.rejects(() => health(admin), Deno.errors.ConnectionRefused);
});

Deno.test("no password reaches the log, at debug level, for failed and successful logins", async () => {
  const dir = await Deno.makeTempDir();
  const secrets = ["Gw-s3cret-Pass", "Wr0ng-guess-Pass", "Hop-s3cret-Pass"];
  const hopPort = closedPort();
  try {
    await using gateway = await spawnLocalGateway(
      `listen: ["127.0.0.1:0"]
auth:
  users:
    - { name: alice, password: ${secrets[0]} }
routes:
  - to: ["*.chained.example"]
    chain: ["socks5://relay:${secrets[2]}@127.0.0.1:${hopPort}"]
limits: { auth_failures_per_minute: 100 }
log: { level: debug }
`,
      { dir, listeners: 1 },
    );
    const endpoint = {
      address: parseIp(gateway.endpoints[0]!.hostname)!,
      port: gateway.endpoints[0]!.port,
    };
    {
      using conn = await connectTo(endpoint);
      assert.equal(await login(conn, "alice", secrets[1]!), 1);
    }
    {
      using conn = await connectTo(endpoint);
      assert.equal(await login(conn, secrets[1]!, secrets[0]!), 1);
    }
    for (const to of [target("127.0.0.1", closedPort()), target("x.chained.example", 80)]) {
      using conn = await connectTo(endpoint);
      assert.equal(await login(conn, "alice", secrets[0]!), 0);
      await writeAll(conn, encodeRequest({ command: 1, target: to }));
      assert.notEqual((await readSocksReply(readerOf(conn))).reply, 0);
    }
    await until(
      "4 connection lines",
      () => (gateway.stderr().match(/rejected /g) ?? []).length >= 4,
    );
    const log = gateway.stderr();
    assert.match(log, /user=alice/);
    for (const secret of secrets) {
      assert.ok(!log.includes(secret), `the log contains ${secret}:\n${log}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
