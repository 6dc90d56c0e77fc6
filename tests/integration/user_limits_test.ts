/**
 * Per-user limits through a running gateway: connection limits under a flood of one user's
 * connections, rate caps measured (with a tolerance: an accuracy check, not a performance
 * assertion) while another user's relays are capped too, quotas, and the per-user metrics.
 */
import assert from "node:assert/strict";
import { sampleValue } from "../helpers/http_get.ts";
import { parseConfig } from "../../gateway/config/load.ts";
import { httpReaderOf } from "./_http_client.ts";
import { socksHandshake } from "../../socks5/client.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Command } from "../../socks5/types.ts";
import {
  connectTo,
  randomBytes,
  readAll,
  sha256,
  startServer,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const KiB = 1024, MiB = 1024 * 1024;

const USERS = `
auth:
  users:
    - { name: alice, password: a-secret }
    - { name: bob, password: b-secret }
`;

/** Opens a CONNECT through `gw` as `user` (password: `<initial>-secret`) to 127.0.0.1:`port`. */
async function connectAs(gw: TestGateway, user: string, port: number): Promise<Deno.TcpConn> {
  const conn = await connectTo(gw.endpoint(4));
  try {
    await socksHandshake(conn, {
      command: Command.Connect,
      target: { address: { family: "name", name: "127.0.0.1" }, port },
    }, { credentials: { username: user, password: `${user[0]}-secret` } });
    return conn;
  } catch (error) {
    conn.close();
    throw error;
  }
}

/** The REP of a refused CONNECT, or 0 when it succeeded (the connection is closed then). */
async function replyOf(gw: TestGateway, user: string, port: number): Promise<number> {
  try {
    (await connectAs(gw, user, port)).close();
    return 0;
  } catch (error) {
    if (error instanceof SocksReplyError) return error.reply;
    throw error;
  }
}

/** A server that holds each connection open until the client closes it. */
function holdingServer() {
  return startServer("127.0.0.1", async (conn) => {
    await readAll(conn).catch(() => {});
  });
}

Deno.test("limits.per_user.max_connections: a flood of one user's connections gets REP 2, others are served", async () => {
  await using server = holdingServer();
  await using gw = startTestGateway(`${USERS}
limits: { per_user: { max_connections: 2 } }
`);
  const held = [
    await connectAs(gw, "alice", server.port),
    await connectAs(gw, "alice", server.port),
  ];
  const refused = await Promise.all(
    Array.from({ length: 8 }, () => replyOf(gw, "alice", server.port)),
  );
  assert.deepEqual(refused, Array(8).fill(2));
  // bob is not alice: his own two places are free.
  const bobs = [await connectAs(gw, "bob", server.port), await connectAs(gw, "bob", server.port)];
  // A place given back is taken again.
  held.pop()!.close();
  let again: Deno.TcpConn | undefined;
  for (let attempt = 0; attempt < 50 && again === undefined; attempt++) {
    again = await connectAs(gw, "alice", server.port).catch(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return undefined;
    });
  }
  assert.ok(again, "alice's released place was never given back");
  for (const conn of [...held, ...bobs, again]) conn.close();
  const metrics = gw.gateway.metrics.render();
  assert.equal(
    sampleValue(metrics, 'dualgate_user_refusals_total{user="alice",reason="max_connections"}'),
    8,
  );
  assert.ok(
    gw.records.some((r) =>
      r.user === "alice" && r.reply === 2 && r.refusal === "max_connections" &&
      r.reason === "user connection limit reached"
    ),
  );
});

Deno.test("bandwidth caps: bob gets his 1 MiB/s while alice's four relays share her 512 KiB/s", async () => {
  const payload = randomBytes(2 * MiB);
  const chunk = randomBytes(64 * KiB);
  // "bulk" sends `payload`; any other first byte starts an endless stream.
  await using server = startServer("127.0.0.1", async (conn) => {
    const first = new Uint8Array(1);
    if ((await conn.read(first)) !== 1) return;
    if (first[0] === 1) {
      await writeAll(conn, payload);
      await conn.closeWrite();
      await readAll(conn).catch(() => {});
      return;
    }
    for (let i = 0; i < 10_000; i++) await writeAll(conn, chunk);
  });
  await using gw = startTestGateway(`
auth:
  users:
    - { name: alice, password: a-secret, limits: { bandwidth: { down: 512KiB } } }
    - { name: bob, password: b-secret, limits: { bandwidth: { down: 1MiB } } }
`);
  const alices = await Promise.all(
    Array.from({ length: 4 }, () => connectAs(gw, "alice", server.port)),
  );
  let aliceBytes = 0;
  const buffer = new Uint8Array(64 * KiB);
  const aliceReads = alices.map(async (conn) => {
    await writeAll(conn, Uint8Array.of(0));
    try {
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        aliceBytes += n;
      }
    } catch { /* closed by the test */ }
  });
  const bob = await connectAs(gw, "bob", server.port);
  const started = performance.now();
  const aliceBefore = aliceBytes;
  await writeAll(bob, Uint8Array.of(1));
  const received = await readAll(bob);
  const seconds = (performance.now() - started) / 1000;
  const aliceDuring = aliceBytes - aliceBefore;
  bob.close();
  for (const conn of alices) conn.close();
  await Promise.all(aliceReads);
  assert.equal(await sha256(received), await sha256(payload));
  // 2 MiB less one burst at 1 MiB/s: 1.95 s; alice's flood does not slow bob down.
  assert.ok(seconds >= 1.6 && seconds <= 3, `bob's 2 MiB at 1 MiB/s took ${seconds.toFixed(2)} s`);
  // alice's four relays together keep to her rate (plus one burst each, and one tick of slack).
  const allowed = 512 * KiB * seconds * 1.15 + 4 * 26 * KiB + 64 * KiB;
  assert.ok(aliceDuring <= allowed, `alice got ${aliceDuring} bytes in ${seconds.toFixed(2)} s`);
  assert.ok(aliceDuring > 0);
});

Deno.test("quota: a relay ends when the user's quota is spent and the next connection gets REP 2", async () => {
  const payload = randomBytes(600 * 1000);
  await using server = startServer("127.0.0.1", async (conn) => {
    await writeAll(conn, payload).catch(() => {});
    await conn.closeWrite().catch(() => {});
    await readAll(conn).catch(() => {});
  });
  await using gw = startTestGateway(`${USERS}
limits: { per_user: { quota: { bytes: 1MB, period: day } } }
`);
  const first = await connectAs(gw, "alice", server.port);
  await first.closeWrite();
  assert.equal(await sha256(await readAll(first)), await sha256(payload));
  first.close();
  const second = await connectAs(gw, "alice", server.port);
  await second.closeWrite();
  const cut = await readAll(second).catch(() => new Uint8Array(0));
  second.close();
  // 400 kB were left: the relay stops there, and what came is the start of the payload.
  assert.ok(cut.length <= 400_000, `${cut.length}`);
  assert.deepEqual(cut, payload.subarray(0, cut.length));
  for (let i = 0; i < 50 && !gw.records.some((r) => r.reason === "quota"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(await replyOf(gw, "alice", server.port), 2);
  // bob has his own quota.
  const bobs = await connectAs(gw, "bob", server.port);
  await bobs.closeWrite();
  assert.equal((await readAll(bobs)).length, payload.length);
  bobs.close();
  const metrics = gw.gateway.metrics.render();
  assert.equal(
    sampleValue(metrics, 'dualgate_user_refusals_total{user="alice",reason="quota"}'),
    1,
  );
  assert.equal(
    sampleValue(metrics, 'dualgate_user_bytes_total{user="alice",direction="down"}'),
    1_000_000,
  );
});

Deno.test("per-user metrics: bytes and connections for configured users and one anonymous bucket", async () => {
  await using server = startServer("127.0.0.1", async (conn) => {
    await writeAll(conn, randomBytes(1000));
    await conn.closeWrite();
    await readAll(conn).catch(() => {});
  });
  await using gw = startTestGateway(USERS);
  const conn = await connectAs(gw, "bob", server.port);
  await conn.closeWrite();
  await readAll(conn);
  conn.close();
  for (let i = 0; i < 50 && gw.records.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const metrics = gw.gateway.metrics.render();
  assert.equal(
    sampleValue(metrics, 'dualgate_user_bytes_total{user="bob",direction="down"}'),
    1000,
  );
  assert.equal(sampleValue(metrics, 'dualgate_user_connections_total{user="bob"}'), 1);
  assert.equal(sampleValue(metrics, 'dualgate_user_connections_total{user="alice"}'), 0);
  assert.equal(sampleValue(metrics, 'dualgate_user_connections_total{user="-"}'), 0);
  // A name no user has never becomes a series.
  assert.doesNotMatch(metrics, /user="mallory"/);
});

Deno.test("bandwidth caps: forty-one relays of one user share its one bucket, new ones wait on its debt", async () => {
  const chunk = randomBytes(64 * KiB);
  await using server = startServer("127.0.0.1", async (conn) => {
    for (let i = 0; i < 10_000; i++) await writeAll(conn, chunk);
  });
  await using gw = startTestGateway(`
auth:
  users:
    - { name: alice, password: a-secret, limits: { bandwidth: { down: 256KiB } } }
`);
  // Spend the bucket's burst first, so that every relay below starts with the user in debt.
  const conns: Deno.TcpConn[] = [await connectAs(gw, "alice", server.port)];
  let bytes = 0;
  const buffer = new Uint8Array(64 * KiB);
  const readers: Promise<void>[] = [];
  const readFrom = (conn: Deno.TcpConn) =>
    readers.push((async () => {
      try {
        for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) bytes += n;
      } catch { /* closed by the test */ }
    })());
  readFrom(conns[0]!);
  while (bytes === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const started = performance.now();
  const before = bytes;
  const more = await Promise.all(
    Array.from({ length: 40 }, () => connectAs(gw, "alice", server.port)),
  );
  conns.push(...more);
  more.forEach(readFrom);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const seconds = (performance.now() - started) / 1000;
  const got = bytes - before;
  for (const conn of conns) conn.close();
  await Promise.all(readers);
  // A bucket per relay would let 41 × 256 KiB/s through (seen: 9 MB in 1 s); the user's one
  // bucket allows about 256 KiB, plus its burst and one read.
  const allowed = 256 * KiB * seconds * 1.15 + 2 * 13 * KiB + 64 * KiB;
  assert.ok(got <= allowed, `41 relays got ${got} bytes in ${seconds.toFixed(2)} s`);
});

Deno.test("reload: a user whose limits are unchanged keeps its open connections counted; new limits apply to new connections", async () => {
  await using server = holdingServer();
  const yamlOf = (max: number) =>
    `listen: ["127.0.0.1:0"]\n${USERS}limits: { per_user: { max_connections: ${max} } }\n`;
  let yaml = yamlOf(1);
  await using gw = startTestGateway(yaml, {
    loadConfig: () => Promise.resolve(parseConfig(yaml)),
  });
  const held = await connectAs(gw, "alice", server.port);
  assert.equal(await replyOf(gw, "alice", server.port), 2);
  // The same limits: alice's state is kept, her open connection still takes her one place.
  await gw.gateway.reload();
  assert.equal(gw.gateway.generation, 2);
  assert.equal(await replyOf(gw, "alice", server.port), 2);
  // New limits reach new connections at once.
  yaml = yamlOf(3);
  await gw.gateway.reload();
  assert.equal(gw.gateway.generation, 3);
  const more = [
    await connectAs(gw, "alice", server.port),
    await connectAs(gw, "alice", server.port),
  ];
  for (const conn of [held, ...more]) conn.close();
});

Deno.test("http: CONNECT counts against the user's max_connections; past it, 403 and a per-user refusal", async () => {
  await using server = holdingServer();
  await using gw = startTestGateway(`listen: [{ address: "127.0.0.1:0", protocol: http }]
${USERS}limits: { per_user: { max_connections: 1 } }
`);
  const tunnel = async () => {
    const conn = await connectTo(gw.endpoint(4));
    await writeAll(
      conn,
      new TextEncoder().encode(
        `CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\n` +
          `Proxy-Authorization: Basic ${btoa("alice:a-secret")}\r\n\r\n`,
      ),
    );
    const line = await httpReaderOf(conn).readLine(1000, 400);
    return { conn, line };
  };
  const first = await tunnel();
  assert.equal(first.line, "HTTP/1.1 200 Connection established");
  const second = await tunnel();
  second.conn.close();
  assert.equal(second.line, "HTTP/1.1 403 Forbidden");
  first.conn.close();
  // The refusal is recorded once its connection is closed, after the 403.
  const refusedRecord = () =>
    gw.records.some((r) => r.user === "alice" && r.refusal === "max_connections");
  for (let i = 0; i < 100 && !refusedRecord(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(refusedRecord(), "no max_connections refusal recorded for alice");
  const metrics = gw.gateway.metrics.render();
  assert.equal(
    sampleValue(metrics, 'dualgate_user_refusals_total{user="alice",reason="max_connections"}'),
    1,
  );
});

Deno.test("status page: a user named like markup is data in /api/status, never in the page's HTML", async () => {
  const hostile = "<img src=x onerror=alert(1)>";
  await using gw = startTestGateway(`auth:
  users:
    - { name: "${hostile}", password: h-secret }
admin: { listen: "127.0.0.1:0" }
`);
  const admin = gw.gateway.adminEndpoint!;
  const base = `http://127.0.0.1:${admin.port}`;
  const api = await fetch(`${base}/api/status`);
  const status = await api.json() as { users: { rows: { user: string }[] } };
  assert.ok(status.users.rows.some((row) => row.user === hostile), "the user's row is missing");
  const page = await fetch(`${base}/`);
  const html = await page.text();
  // The page is static: names arrive as JSON and are written with textContent.
  assert.ok(!html.includes("onerror=alert"), "a user name reached the page's markup");
  assert.ok(!/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(html));
  assert.ok(html.includes('id="users"'));
});
