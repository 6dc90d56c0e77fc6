/**
 * `/api/status` while traffic flows: relays held open across both families and through a hop
 * with a dead first alternative show up by family pair and command, the hop's alternatives with
 * their state, and the finished connections once the relays end. The admin listener takes a
 * bearer token (`admin.auth.token_sha256`); without it the same request is refused.
 */
import assert from "node:assert/strict";
import { formatIp, type IpEndpoint, parseIp } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { tokenDigest } from "../../gateway/observe/admin_auth.ts";
import type { Status } from "../../gateway/observe/status.ts";
import {
  connectTo,
  echo,
  readerOf,
  readSocksReply,
  startServer,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const TOKEN = "status-test-token";

function target(text: string, port: number): SocksTarget {
  const address = parseIp(text);
  return { address: address ?? { family: "name", name: text }, port };
}

/** Opens a relay to `to` through `gateway` and checks one echo round trip through it. */
async function openRelay(gateway: IpEndpoint, to: SocksTarget): Promise<Deno.TcpConn> {
  const conn = await connectTo(gateway);
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(conn, encodeRequest({ command: 1, target: to }));
  assert.equal((await readSocksReply(reader)).reply, 0);
  await writeAll(conn, new TextEncoder().encode("ping"));
  assert.deepEqual(await reader.readExact(4), new TextEncoder().encode("ping"));
  return conn;
}

async function fetchStatus(
  gw: TestGateway,
  token: string | null,
): Promise<{ status: number; body: string }> {
  const admin = gw.gateway.adminEndpoint!;
  const client = Deno.createHttpClient({});
  try {
    const response = await fetch(
      `http://${formatIp(admin.address)}:${admin.port}/api/status`,
      { client, ...(token !== null && { headers: { authorization: `Bearer ${token}` } }) },
    );
    return { status: response.status, body: await response.text() };
  } finally {
    client.close();
  }
}

async function status(gw: TestGateway): Promise<Status> {
  const response = await fetchStatus(gw, TOKEN);
  assert.equal(response.status, 200);
  return JSON.parse(response.body);
}

/** Waits (bounded) until `check` holds. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

Deno.test("/api/status shows live relays by family pair, the hop's marked alternative, then the finished ones", async () => {
  await using last = startTestGateway(`resolver:
  hosts:
    v4.hop.example: ["127.0.0.1"]
`);
  using closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  const hop = last.endpoint(4);
  await using gw = startTestGateway(`admin:
  listen: "127.0.0.1:0"
  auth: { token_sha256: "${
    Array.from(tokenDigest(TOKEN), (b) => b.toString(16).padStart(2, "0")).join("")
  }" }
routes:
  - to: ["*.hop.example"]
    chain:
      - any: ["socks5://127.0.0.1:${deadPort}", "socks5://${formatIp(hop.address)}:${hop.port}"]
        fail_timeout: 600
`);
  await using v4 = startServer("127.0.0.1", echo);
  await using v6 = startServer("::1", echo);

  const unauthenticated = await fetchStatus(gw, null);
  assert.equal(unauthenticated.status, 401);
  assert.equal((await fetchStatus(gw, "wrong")).status, 401);

  const relays = [
    await openRelay(gw.endpoint(4), target("::1", v6.port)),
    await openRelay(gw.endpoint(6), target("127.0.0.1", v4.port)),
    await openRelay(gw.endpoint(4), target("v4.hop.example", v4.port)),
  ];
  try {
    const live = await status(gw);
    assert.deepEqual(live.connections.activeByFamilies, {
      "v4-v4": 1,
      "v4-v6": 1,
      "v6-v4": 1,
      "v6-v6": 0,
    });
    assert.equal(live.connections.activeByCommand["connect"], 3);
    assert.equal(live.connections.activeByCommandAndFamilies["connect v4-v6"], 1);
    assert.equal(live.connections.active, 3);
    assert.equal(live.hops.length, 1);
    const [dead, up] = live.hops[0]!.alternatives;
    assert.equal(dead!.label, `socks5://127.0.0.1:${deadPort}`);
    assert.equal(dead!.state, "marked");
    assert.ok(dead!.since !== null && Date.parse(dead!.since) <= Date.parse(live.generatedAt));
    assert.equal(up!.state, "up");
    assert.equal(live.workers.count, 1);
  } finally {
    for (const conn of relays) conn.close();
  }
  await until("three relayed records", () => gw.records.length >= 3);
  await until("no live relay", async () => (await status(gw)).connections.active === 0);
  const done = await status(gw);
  assert.deepEqual(done.connections.activeByFamilies, {
    "v4-v4": 0,
    "v4-v6": 0,
    "v6-v4": 0,
    "v6-v6": 0,
  });
  assert.equal(done.connections.finishedByFamilies["v4-v6"], 1);
  assert.equal(done.connections.finishedByFamilies["v6-v4"], 1);
  assert.equal(done.connections.finishedByFamilies["v4-v4"], 1);
  assert.deepEqual(done.replies, [{ code: 0, name: "succeeded", count: 3 }]);
  assert.equal(done.bytes.up, 12);
  assert.equal(done.bytes.down, 12);
});

Deno.test("admin.auth users: failed admin logins count against limits.auth_failures_per_minute", async () => {
  await using gw = startTestGateway(`auth:
  users: [{ name: alice, password: wonderland }]
limits: { auth_failures_per_minute: 3 }
admin: { listen: "127.0.0.1:0", auth: { users: true } }
`);
  const admin = gw.gateway.adminEndpoint!;
  const client = Deno.createHttpClient({});
  const get = async (credentials: string) => {
    const response = await fetch(`http://${formatIp(admin.address)}:${admin.port}/api/status`, {
      client,
      headers: { authorization: `Basic ${btoa(credentials)}` },
    });
    await response.body?.cancel();
    return response.status;
  };
  try {
    assert.equal(await get("alice:wonderland"), 200);
    for (let i = 0; i < 3; i++) assert.equal(await get(`alice:guess-${i}`), 401);
    // Over the limit, even the right password is not checked: guessing over HTTP is bounded
    // exactly as over SOCKS.
    assert.equal(await get("alice:wonderland"), 401);
    assert.equal(gw.gateway.metrics.authFailures.value(), 3);
  } finally {
    client.close();
  }
});
